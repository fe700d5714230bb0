"""The journal's one format (installer/change/journal.py): what Python writes the node scripts find, what
the scripts write Python parses, and lines of older kaudit versions (spaced) are still read on both sides.
The scripts run for real, with `sh`, on a journal in a temp dir."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from installer.change import journal
from installer.scripts import load
from installer.scripts.exitcodes import ScriptExit

LIB = Path(load.__file__).with_name("sh") / "lib"
AT = 1700000000.25  # the scripts' `now`, fixed so their line can be compared byte for byte


def sh(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`code` after the journal's shell functions (and common.sh's, which they use), `now` fixed."""
    lib = "".join((LIB / name).read_text() for name in ("common.sh", "journal.sh"))
    return subprocess.run(["sh", "-c", f"{lib}\nnow() {{ echo {AT}; }}\n{code}", "sh", *args],
                          capture_output=True, text=True, timeout=30, check=False)


def old_line(ident: str, state: str) -> bytes:
    """How kaudit wrote its entries before the journal had one form (json.dumps' spaces, op before state)."""
    return (json.dumps({"id": ident, "op": "enable", "state": state, "at": 1.0}) + "\n").encode()


def test_encode_is_compact_with_id_state_and_at_first() -> None:
    line = journal.encode({"op": "enable", "summary": 'a "quoted", b: c', "at": 1.5, "state": "begin", "id": "x"})
    assert line == b'{"id":"x","state":"begin","at":1.5,"op":"enable","summary":"a \\"quoted\\", b: c"}\n'
    assert journal.encode(journal.entry("x", "confirmed", 2.0, by="me")) == \
        b'{"id":"x","state":"confirmed","at":2.0,"by":"me"}\n'
    assert journal.line(journal.entry("x", "failed", 3)) == '{"id":"x","state":"failed","at":3}'
    with pytest.raises(ValueError, match="not a journal state"):
        journal.encode({"id": "x", "state": "done", "at": 1})


def test_parse_reads_old_spaced_lines_and_skips_what_is_not_an_entry() -> None:
    data = old_line("a", "begin") + b"garbage\n[1, 2]\nnull\n\n" + journal.encode(journal.entry("a", "confirmed", 2))
    assert [(e["id"], e["state"]) for e in journal.parse(data)] == [("a", "begin"), ("a", "confirmed")]
    assert journal.parse(data.decode()) == journal.parse(data.decode().splitlines()) == journal.parse(data)


@pytest.mark.parametrize("state", journal.STATES)
def test_every_state_written_by_python_is_found_by_the_scripts(tmp_path: Path, state: journal.State) -> None:
    path = tmp_path / "journal"
    line = journal.encode({"summary": "x", "id": "b1", "op": "enable", "state": state, "at": 2.0})
    path.write_bytes(journal.encode(journal.entry("b2", "begin", 1.0)) + line
                     + journal.encode(journal.entry("b3", state, 3.0)))
    found = sh('journal_match "$1" b1 "$2"; journal_has "$1" b1 "$2" && echo has; '
               'journal_has "$1" b1 other-state || echo "no other"', str(path), state)
    assert found.stdout.splitlines() == [line.decode().rstrip("\n"), "has", "no other"]
    assert sh('journal_match "$1" "" "$2"', str(path), state).stdout.count("\n") == (2 if state != "begin" else 3)


@pytest.mark.parametrize("state", journal.STATES)
def test_every_state_written_by_the_scripts_parses_in_python_as_encode_writes_it(tmp_path: Path,
                                                                                 state: journal.State) -> None:
    path = tmp_path / "journal"
    assert sh('journal_add "$1" 20240101T000000-enable-ab12 "$2"', str(path), state).returncode == 0
    [parsed] = journal.parse(path.read_bytes())
    assert parsed == journal.entry("20240101T000000-enable-ab12", state, AT)
    assert path.read_bytes() == journal.encode(parsed)


@pytest.mark.parametrize("state", journal.STATES)
def test_old_spaced_lines_are_found_by_the_scripts(tmp_path: Path, state: str) -> None:
    path = tmp_path / "journal"
    path.write_bytes(old_line("old", state) + b'{"id" : "old2" ,  "state" :\t"' + state.encode() + b'"}\n')
    found = sh('journal_match "$1" old "$2"; journal_has "$1" old2 "$2" && echo has', str(path), state)
    assert found.stdout.splitlines() == [old_line("old", state).decode().rstrip("\n"), "has"]


def test_a_value_cannot_pass_for_an_id_or_a_state(tmp_path: Path) -> None:
    path = tmp_path / "journal"
    path.write_bytes(journal.encode({"id": "a", "state": "begin", "at": 1,
                                     "summary": '"id":"b","state":"confirmed" "state": "confirmed"'})
                     + journal.encode({"id": "ab", "state": "failed", "at": 1}))
    assert sh('journal_match "$1" b confirmed; journal_match "$1" "" confirmed; journal_match "$1" a failed',
              str(path)).stdout == ""
    assert sh('journal_match "$1" "" "" | wc -l; journal_has "$1" nope "" || echo none; '
              'journal_has "$2" a "" || echo "no file"', str(path), str(tmp_path / "missing")
              ).stdout.split() == ["2", "none", "no", "file"]


def _gather(state_dir: Path) -> dict[str, dict[str, object]]:
    res = subprocess.run(["sh", "-c", load.GATHER.text, "sh",
                          *load.GATHER.args(default_dir=str(state_dir / "manifests"), kubelet_config="/nonexistent",
                                            manifest_name="kube-apiserver.yaml", state=str(state_dir),
                                            max_bytes="1000", audit=str(state_dir / "audit"))],
                         capture_output=True, text=True, timeout=30, check=False)
    out = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    return {k: json.loads(base64.b64decode(out[k])) for k in ("last_confirmed", "last_begin", "last_record")
            if k in out}


def test_gather_finds_the_last_confirmed_and_begun_operations_in_either_form(tmp_path: Path) -> None:
    (tmp_path / "journal").write_bytes(
        old_line("old", "begin") + old_line("old", "confirmed")
        + journal.encode(journal.entry("new", "begin", 3, op="enable"))
        + journal.encode(journal.entry("new", "confirmed", 4, op="enable"))
        + journal.encode(journal.entry("newer", "begin", 5)) + journal.encode(journal.entry("newer", "failed", 6)))
    found = _gather(tmp_path)
    assert found["last_confirmed"]["id"] == "new" and found["last_begin"]["id"] == "newer"
    assert found["last_record"] == journal.entry("newer", "failed", 6)
    (tmp_path / "journal").write_bytes(old_line("old", "begin") + old_line("old", "confirmed"))
    found = _gather(tmp_path)
    assert (found["last_confirmed"]["state"], found["last_begin"]["state"]) == ("confirmed", "begin")


@pytest.mark.parametrize("form", ["script", "python"])
def test_confirm_and_takeover_see_the_guards_restore(tmp_path: Path, form: str) -> None:
    """confirm.sh refuses, and takeover.sh reports restored=1, once the journal says the guard restored."""
    state, manifest = tmp_path / "state", tmp_path / "kube-apiserver.yaml"
    state.mkdir()
    manifest.write_text("restored\n")
    if form == "script":
        sh('journal_add "$1" b1 guard-restored', str(state / "journal"))
    else:
        (state / "journal").write_bytes(journal.encode({"at": 1, "state": "guard-restored", "id": "b1"}))
    confirm = subprocess.run(["sh", "-c", load.CONFIRM.text, "sh", *load.CONFIRM.args(
        state=str(state), manifest=str(manifest), id="b1", audit=str(tmp_path / "audit"),
        record=journal.line(journal.entry("b1", "confirmed", 2)), keep="3", new="0" * 64)],
        capture_output=True, text=True, timeout=30, check=False)
    assert (confirm.returncode, confirm.stdout.strip()) == (ScriptExit.GUARD_RESTORED, "guard-restored")
    assert [e["state"] for e in journal.parse((state / "journal").read_bytes())] == ["guard-restored"]
    takeover = subprocess.run(["sh", "-c", load.TAKEOVER.text, "sh", *load.TAKEOVER.args(
        state=str(state), manifest=str(manifest), id="b1", new="0" * 64, secs="1", guard_script="exit 0")],
        capture_output=True, text=True, timeout=30, check=False)
    assert takeover.stdout.split() == ["restored=1", "state=gone"]
    other = subprocess.run(["sh", "-c", load.TAKEOVER.text, "sh", *load.TAKEOVER.args(
        state=str(state), manifest=str(manifest), id="b", new="0" * 64, secs="1", guard_script="exit 0")],
        capture_output=True, text=True, timeout=30, check=False)
    assert other.stdout.split() == ["state=gone"]


def test_what_is_undone_reads_entries_in_either_form() -> None:
    data = old_line("a", "begin") + old_line("a", "confirmed") + journal.encode(journal.entry("b", "begin", 3)) \
        + journal.encode(journal.entry("b", "guard-restored", 4))
    assert journal.last_undoable(journal.parse(data)) == "a"
