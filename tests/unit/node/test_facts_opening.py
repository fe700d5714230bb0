"""The first round trip to a node (issue 21 item 3): gather.sh reports the flavor marks and reads the node's
facts with the state directory the first mark found names; the node's first gather right after uses them,
once, and only for that layout."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from installer.node import facts, layout
from installer.transport import Result, Transport


class ThisMachine(Transport):
    """The node scripts run here, as this user (the paths they read are the test's); commands counted."""

    commands = 0

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        self.commands += 1
        proc = subprocess.run(command, shell=True, input=stdin, capture_output=True, timeout=timeout, check=False)
        return Result(proc.returncode, proc.stdout, proc.stderr)


def _node(tmp_path: Path) -> layout.NodeLayout:
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "kube-apiserver.yaml").write_text("kind: Pod\n")
    return dataclasses.replace(layout.KUBEADM, manifests_dir=str(tmp_path / "pods"), kubelet_config="/nonexistent",
                               state_dir=str(tmp_path / "state"), audit_dir=str(tmp_path / "audit"))


def test_the_first_mark_found_names_the_state_dir(tmp_path: Path) -> None:
    node = _node(tmp_path)
    (tmp_path / "mark-b").mkdir()
    (tmp_path / "mark-c").touch()
    (tmp_path / "other" / "state").mkdir(parents=True)
    (tmp_path / "other" / "state" / "journal").write_text('{"state":"confirmed","id":"x"}\n')
    marks = [(str(tmp_path / "mark-a"), "/a"), (str(tmp_path / "mark-b"), str(tmp_path / "other" / "state")),
             (str(tmp_path / "mark-c"), "/c")]
    opening = facts.gather_opening(ThisMachine(), node, marks)
    assert opening.hostname
    assert opening.paths == {str(tmp_path / "mark-b"), str(tmp_path / "mark-c")}
    assert opening.layout == dataclasses.replace(node, state_dir=str(tmp_path / "other" / "state"))
    assert opening.facts.manifest == b"kind: Pod\n"
    assert opening.facts.last_record == {"state": "confirmed", "id": "x"}


def test_no_mark_keeps_the_layout_and_gather_alone_reports_none(tmp_path: Path) -> None:
    node = _node(tmp_path)
    opening = facts.gather_opening(ThisMachine(), node, [(str(tmp_path / "nothing"), "/a")])
    assert (opening.paths, opening.layout, opening.facts.manifest) == (frozenset(), node, b"kind: Pod\n")
    plain = facts.gather(ThisMachine(), node)
    assert plain.manifest == b"kind: Pod\n" and plain.static_pod_path == opening.facts.static_pod_path


def test_the_first_gather_after_opening_costs_no_round_trip_once(tmp_path: Path) -> None:
    node = _node(tmp_path)
    transport = ThisMachine()
    opening = facts.gather_opening(transport, node, [])
    facts.keep(transport, opening)
    assert facts.gather(transport, node) is opening.facts
    assert transport.commands == 1
    again = facts.gather(transport, node)  # the second reads the node again
    assert again is not opening.facts and transport.commands == 2


def test_kept_facts_answer_only_their_layout_and_only_soon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = _node(tmp_path)
    transport = ThisMachine()
    facts.keep(transport, facts.gather_opening(transport, node, []))
    other = dataclasses.replace(node, state_dir=str(tmp_path / "elsewhere"))
    assert facts.gather(transport, other) is not None and transport.commands == 2
    facts.keep(transport, facts.gather_opening(transport, node, []))
    later = facts.time.monotonic() + facts.REUSE_SECONDS + 1
    monkeypatch.setattr(facts.time, "monotonic", lambda: later)
    facts.gather(transport, node)
    assert transport.commands == 4
