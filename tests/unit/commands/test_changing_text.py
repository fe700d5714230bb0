"""The pure pieces of a change's text: the one question per cluster, the commands that finish or undo a stopped
rollout, and the stopped marks (issue 24 item 6)."""

from __future__ import annotations

import shlex

from installer.change.phases import NodeResult
from installer.change.rollout import Planned, mark_stopped, worst_exit
from installer.commands.changing import cluster_question, rerun_commands

DIFF = ("--- a/etc/kubernetes/manifests/kube-apiserver.yaml\n+++ b/etc/kubernetes/manifests/kube-apiserver.yaml\n"
        "@@ -1,2 +1,3 @@\n   - --advertise-address={ip}\n+  - --audit-policy-file=/p\n")


def test_one_question_shows_the_same_change_once_and_names_the_nodes() -> None:
    planned = [Planned(f"cp{i}", DIFF.format(ip=f"10.0.0.{i}"), "would enable auditing") for i in (1, 2, 3)]
    text = cluster_question("prod", planned)
    assert text.count("[y/N]") == 1 and "Apply this change to cp1, cp2, cp3?" in text
    assert text.count("--audit-policy-file") == 1 and "the change on every node (as on cp1)" in text
    other = Planned("cp3", DIFF.format(ip="10.0.0.3").replace("/p", "/q"), "would enable auditing")
    text = cluster_question("prod", [*planned[:2], other])
    assert "the change on cp1, cp2 (as on cp1):" in text and "the change on cp3:" in text
    text = cluster_question("prod", [planned[0], Planned("cp2", "", "already so")])
    assert "cp2: already so" in text and "Apply this change to cp1?" in text


def test_rerun_commands_keep_the_options_and_swap_the_targets() -> None:
    argv = ["/venv/bin/kaudit", "enable", "a@h1", "a@h2", "a@h3", "--profile", "minimal", "--yes", "-i", "/k",
            "--known-hosts=/kh", "--accept-new-host-key"]
    finish, undo = rerun_commands(argv, ["a@h1", "a@h2", "a@h3"], ["a@h2", "a@h3"], ["a@h1"])
    assert finish is not None
    assert shlex.split(finish) == ["kaudit", "enable", "a@h2", "a@h3", "--profile", "minimal", "--yes", "-i", "/k",
                                   "--known-hosts=/kh", "--accept-new-host-key"]
    assert shlex.split(undo) == ["kaudit", "rollback", "a@h1", "-i", "/k", "--known-hosts=/kh",
                                 "--accept-new-host-key"]


def _r(node: str, ok: bool, code: int, action: str, changed: bool = False) -> NodeResult:
    return NodeResult(node=node, ok=ok, exit_code=code, action=action, message="m", changed=changed)


def test_a_rollout_stopped_after_a_change_exits_4_and_marks_the_nodes_left() -> None:
    results = [_r("cp1", True, 0, "enabled", True), _r("cp2", False, 2, "refused"), _r("cp3", False, 2, "not-changed")]
    assert mark_stopped(results) == ["cp2", "cp3"]
    assert [r.exit_code for r in results] == [0, 4, 4] and results[2].stopped_at == "cp2"
    assert worst_exit(results) == 4
    nothing_changed = [_r("cp1", False, 1, "failed-restored"), _r("cp2", False, 2, "not-changed")]
    assert mark_stopped(nothing_changed) == [] and worst_exit(nothing_changed) == 1
    interrupted = [_r("cp1", True, 0, "enabled", True), _r("cp2", False, 130, "interrupted")]
    mark_stopped(interrupted)
    assert worst_exit(interrupted) == 130 and interrupted[1].stopped_at == "cp2"
