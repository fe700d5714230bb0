"""Which kaudit operation `kaudit rollback` (without --to) undoes, from the node's journal."""

from __future__ import annotations

from typing import Any

from installer.change.history import last_undoable


def rec(ident: str, state: str) -> dict[str, Any]:
    return {"id": ident, "state": state, "at": 0}


def test_the_newest_confirmed_operation_that_still_stands() -> None:
    assert last_undoable([]) is None
    assert last_undoable([rec("a", "begin"), rec("a", "confirmed")]) == "a"
    ops = [rec("a", "begin"), rec("a", "confirmed"), rec("b", "begin"), rec("b", "confirmed")]
    assert last_undoable(ops) == "b"


def test_operations_that_ended_undone_or_failed_are_skipped() -> None:
    base = [rec("a", "begin"), rec("a", "confirmed")]
    assert last_undoable([*base, rec("b", "begin"), rec("b", "rolled-back")]) == "a"
    assert last_undoable([*base, rec("b", "begin"), rec("b", "guard-restored")]) == "a"
    assert last_undoable([*base, rec("b", "begin"), rec("b", "failed")]) == "a"


def test_a_change_written_and_never_ended_is_the_one_to_undo() -> None:
    """Its kaudit run and its guard are gone (a reboot): the manifest on the node is its result."""
    base = [rec("a", "begin"), rec("a", "confirmed")]
    assert last_undoable([*base, rec("b", "begin")]) == "b"
    assert last_undoable([rec("b", "begin")]) == "b"
