"""The node's journal (STATE/journal, node.layout.NodeLayout.journal): kaudit's record of its operations.

One JSON object per line, appended, never rewritten. Every line kaudit writes has one form, the compact
one `encode` makes: `{"id":ID,"state":STATE,"at":EPOCH,...}` (no spaces; id, state and at first, the
rest in the order given). The node scripts write theirs with `journal_add` (scripts/sh/lib/journal.sh)
in exactly that form, append Python's with `journal_append`, and find entries with `journal_has` /
`journal_match`, which match the `"id":"ID"` and `"state":"STATE"` tokens wherever they stand and
however they are spaced: older kaudit versions wrote spaced lines (`json.dumps`' default), and nodes
keep them. Python reads by parsing (`parse`), skipping what is not an entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

State = Literal["begin", "confirmed", "failed", "rolled-back", "guard-restored", "guard-restore-failed"]

BEGIN: Final = "begin"  # apply.sh is about to back up and write (Python's record)
CONFIRMED: Final = "confirmed"  # the change stands (confirm.sh, Python's record)
FAILED: Final = "failed"  # apply.sh undid its own traces before the manifest was written
ROLLED_BACK: Final = "rolled-back"  # kaudit restored the backup (restore.sh, Python's record)
GUARD_RESTORED: Final = "guard-restored"  # not confirmed in time: the guard restored the backup (guard.sh)
GUARD_RESTORE_FAILED: Final = "guard-restore-failed"  # ... and could not, yet (guard.sh; it retries)

STATES: Final[tuple[State, ...]] = (BEGIN, CONFIRMED, FAILED, ROLLED_BACK, GUARD_RESTORED, GUARD_RESTORE_FAILED)
ENDED: Final = frozenset({CONFIRMED, ROLLED_BACK, GUARD_RESTORED, FAILED})  # the operation is over
UNDONE: Final = frozenset({ROLLED_BACK, GUARD_RESTORED})  # ... and its backup was put back

_FIRST = ("id", "state", "at")


def line(entry: Mapping[str, Any]) -> str:
    """One journal line without its newline (a script argument: confirm.sh's and restore.sh's `record`):
    compact JSON, id, state and at first (journal_add's form)."""
    if entry.get("state") not in STATES:
        raise ValueError(f"not a journal state: {entry.get('state')!r}")
    ordered = {k: entry[k] for k in _FIRST if k in entry} | {k: v for k, v in entry.items() if k not in _FIRST}
    return json.dumps(ordered, separators=(",", ":"))


def encode(entry: Mapping[str, Any]) -> bytes:
    """One journal line, newline included (apply.sh's journal part)."""
    return line(entry).encode() + b"\n"


def entry(ident: str, state: State, at: float, **fields: Any) -> dict[str, Any]:
    """An entry as `encode` orders it."""
    return {"id": ident, "state": state, "at": at, **fields}


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One line as an entry, or None: not JSON, or JSON that is not an object ([1,2], null)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def parse(data: bytes | str | Iterable[str]) -> list[dict[str, Any]]:
    """The entries of a journal (its bytes, text or lines), oldest first; lines that are not entries skipped."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    lines = data.splitlines() if isinstance(data, str) else data
    return [e for e in map(parse_line, lines) if e is not None]


def last_undoable(entries: list[dict[str, Any]]) -> str | None:
    """The id of the newest operation that still stands: confirmed and not undone since, or begun and
    never ended (its kaudit run and guard are gone, e.g. after a reboot; preflight refuses while a
    guard or a lock holder is still at work). None when there is nothing to undo."""
    ended = {e.get("id") for e in entries if e.get("state") in ENDED}
    undone = {e.get("id") for e in entries if e.get("state") in UNDONE}
    for e in reversed(entries):
        state, ident = e.get("state"), e.get("id")
        if (state == CONFIRMED and ident not in undone) or (state == BEGIN and ident not in ended):
            return str(ident)
    return None
