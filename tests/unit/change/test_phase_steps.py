"""Each phase on its own: what it reads of the phase data and the node, what it returns, what it leaves in the
result, against the in-memory node."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from installer.change import phases
from installer.change.data import Options, PhaseOrderError, Ready, RunData, Written
from installer.change.noderun import NodeRun, Rollback
from installer.change.plans import plan_enable
from installer.change.workflow import NotHealthy, PhaseError
from installer.errors import NodeError, OperationFailed
from installer.node import layout
from installer.targets import flavors
from tests.unit.change.conftest import DEFAULT_MANIFEST, FakeNode, enable


def node_run(node: FakeNode, answer: bool = True, **options: Any) -> NodeRun:
    return NodeRun(node, plan_enable, enable(), Options(**{"timeout": 5.0, **options}), lambda _n, _d: answer,
                   lambda _n, _m: None, flavors.KUBEADM, layout.KUBEADM)


def planned(run: NodeRun) -> RunData:
    return phases.plan(run, phases.preflight(run, RunData()))


def test_preflight_reads_the_node_once_and_parses_the_manifest(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.preflight(run, RunData())
    found = data.node()
    assert found.manifest == node.manifest and found.before.data == node.manifest
    assert found.facts.manifest_path == "/etc/kubernetes/manifests/kube-apiserver.yaml"
    assert node.calls == ["gather"] and run.result.flavor == "kubeadm"


def test_preflight_refuses_a_node_short_of_disk(node: FakeNode) -> None:
    node.free_kb = 100
    with pytest.raises(PhaseError, match="only 100 KiB free on /etc/kubernetes/manifests"):
        phases.preflight(node_run(node), RunData())


def test_preflight_names_a_manifest_that_does_not_parse(node: FakeNode) -> None:
    node.manifest = b"apiVersion: v1\nkind: Pod\nspec: [\n"
    with pytest.raises(PhaseError) as caught:
        phases.preflight(node_run(node), RunData())
    assert caught.value.phase == "read manifest"


def test_plan_returns_the_desired_manifest_and_the_diff(node: FakeNode) -> None:
    run = node_run(node)
    data = planned(run)
    desired = data.plan()
    assert desired.op == "enable" and b"--audit-policy-file" in desired.manifest
    assert not data.done and data.would == "would enable auditing with profile minimal"
    assert data.plan_notes and run.result.notes == list(data.plan_notes)
    assert run.result.diff and run.result.policy_file == desired.policy[0]  # type: ignore[index]


def test_plan_of_a_node_already_so_is_done(node: FakeNode) -> None:
    phases.run_change(node, plan_enable, enable(), Options(timeout=5), lambda _n, _d: True, lambda _n, _m: None,
                      layout.KUBEADM, flavors.KUBEADM)
    run = node_run(node)
    data = planned(run)
    assert data.done and run.result.action == "unchanged" and run.result.ok


def test_a_phase_that_reads_what_no_phase_set_says_which_phase_is_missing(node: FakeNode) -> None:
    with pytest.raises(PhaseOrderError, match="the plan phase has not run"):
        phases.apply(node_run(node), phases.preflight(node_run(node), RunData()))


def test_ask_refuses_on_no_and_skips_a_diff_already_shown(node: FakeNode) -> None:
    run = node_run(node, answer=False)
    data = planned(run)
    with pytest.raises(NodeError, match="not confirmed: nothing changed"):
        phases.ask(run, data)
    assert phases.ask(run, replace(data, shown=data.plan().manifest)) is not None


def test_lock_holds_the_session_until_finish(node: FakeNode) -> None:
    run = node_run(node)
    assert phases.unlocked(run, RunData())
    phases.lock(run, RunData())
    assert run.lock is not None and not phases.unlocked(run, RunData())
    run.finish(RunData())
    assert node.sessions[-1].closed


def test_lock_held_by_another_run(node: FakeNode) -> None:
    node.lock_holder = "kaudit by a@b"
    with pytest.raises(NodeError, match=r"lock: another kaudit run holds the node's lock \(kaudit by a@b\)"):
        phases.lock(node_run(node), RunData())


def test_apply_writes_and_returns_when(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.apply(run, planned(run))
    written = data.write()
    assert written.backup == run.result.backup and run.result.changed
    assert written.backup.startswith("20231114T2213") and "-enable-" in written.backup
    assert node.backups[written.backup] == DEFAULT_MANIFEST.encode() and node.guard == written.backup
    assert run.guard_since == written.applied_at and node.manifest == data.plan().manifest


def test_await_returns_the_ready_instance_and_its_verification(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.apply(run, planned(run))
    assert phases.restarts(run, data)
    data = phases.await_instance(run, data)
    assert isinstance(data.ready, Ready) and data.ready.pid == run.result.new_instance_pid == 101
    assert run.result.verify and run.result.verify["verified"] is True
    assert run.result.ready_seconds == pytest.approx(data.ready.ready_at - data.write().applied_at)


def test_await_raises_not_healthy_with_the_log_lines(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.apply(run, planned(run))
    node.crashing.add(node.manifest)
    with pytest.raises(NotHealthy) as caught:
        phases.await_instance(run, data)
    assert caught.value.why == "no healthy new kube-apiserver within 5 s (crash-looping)"
    assert caught.value.log_lines and "no such file" in caught.value.log_lines[0]


def test_restore_written_puts_the_backup_back_and_says_so(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.apply(run, planned(run))
    with pytest.raises(OperationFailed, match="the previous manifest was restored and the API server is healthy"):
        run.restore_written(data, "crash-looping", ["E0101 boom"])
    assert node.manifest == DEFAULT_MANIFEST.encode() and run.rollback == Rollback.HEALTHY
    assert node.states(data.write().backup) == ["begin", "rolled-back"]


def test_confirm_records_and_completes(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.await_instance(run, phases.apply(run, planned(run)))
    data = phases.confirm(run, data)
    assert data.done and run.result.ok and run.result.action == "enabled"
    assert node.journal[-1]["state"] == "confirmed" and node.guard is None
    assert run.result.caveat and run.result.permanent and "--format kubeadm" in run.result.permanent


def test_confirm_after_the_guard_restored_is_not_changed(node: FakeNode) -> None:
    run = node_run(node)
    data = phases.await_instance(run, phases.apply(run, planned(run)))
    node.guard_restored_first = True
    with pytest.raises(OperationFailed, match="the node's guard had already restored backup"):
        phases.confirm(run, data)
    assert run.result.changed is False


def test_the_interrupted_message_follows_the_rollback(node: FakeNode) -> None:
    run = node_run(node)
    data = replace(phases.preflight(run, RunData()), written=Written("b1", 0.0, 0.0))
    run.result.backup, run.result.changed, run.guard_since = "b1", True, 1_700_000_000.0
    assert run.interrupted(data).startswith("the new manifest was written and is not confirmed: the node's guard "
                                            "restores backup b1 at 22:13:55Z (node clock)")
    run.rollback = Rollback.STARTED
    assert run.interrupted(data).startswith("kaudit stopped during the rollback")
    run.rollback = Rollback.PUT_BACK
    assert "was not yet seen healthy" in run.interrupted(data)
