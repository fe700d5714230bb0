"""A re-run that finds an earlier run's change unconfirmed (its guard waiting) takes it over: confirms it when it
is what this run asks for and healthy, else restores its backup at once and carries on (phases of the runner's
list, timed, under its rollback policy)."""

from __future__ import annotations

from installer.errors import EXIT_INTERRUPTED, EXIT_REFUSED
from tests.unit.change.conftest import DEFAULT_MANIFEST, FakeNode, enable, run


def lost_change(node: FakeNode, profile: str = "minimal") -> tuple[str, bytes]:
    """An enable whose run lost the node while waiting: its guard waits. Returns (backup id, its manifest)."""
    node.lose_after = "await"
    r = run(node, plan_input=enable(profile))
    assert r.changed and r.backup and node.guard == r.backup, r.message
    node.lost, node.lose_after = False, None
    node.calls.clear()
    return r.backup, node.manifest


def test_a_wanted_healthy_change_is_confirmed(node: FakeNode) -> None:
    ident, written = lost_change(node)
    r = run(node)
    assert (r.ok, r.action, r.changed, r.backup) == (True, "enabled", True, ident), r.message
    assert r.message.startswith(f"enable auditing with profile minimal: took over the unconfirmed change {ident} "
                                "(its kaudit run lost the node) and confirmed it: kube-apiserver (pid ")
    assert f"took over the unconfirmed change {ident}: confirmed" in r.notes
    assert node.calls == ["gather", "lock", "takeover", "await", "confirm"]
    assert [s["name"] for s in r.steps] == ["preflight", "plan", "lock", "take over", "await", "confirm"]
    assert node.states(ident) == ["begin", "confirmed"] and node.journal[-1]["takenOver"] is True
    assert node.manifest == written and node.guard is None


def test_a_change_this_run_does_not_ask_for_is_restored_then_the_request_applied(node: FakeNode) -> None:
    ident, _ = lost_change(node)
    r = run(node, plan_input=enable("cis"))
    assert (r.ok, r.action, r.profile) == (True, "enabled", "cis"), r.message
    assert f"took over the unconfirmed change {ident}: restored (it is not what this run asks for)" in r.notes
    assert node.calls == ["gather", "lock", "takeover", "restore", "await", "gather", "apply", "await", "confirm"]
    assert [s["name"] for s in r.steps] == ["preflight", "plan", "lock", "take over", "restore", "preflight",
                                            "plan", "apply", "await", "confirm"]
    assert node.states(ident) == ["begin", "rolled-back"] and node.journal[-1]["state"] == "confirmed"


def test_an_unhealthy_change_is_restored_then_the_request_applied_again(node: FakeNode) -> None:
    ident, written = lost_change(node)
    node.ready_after = node.waits + 1  # the take-over's wait times out; later ones find the instance
    r = run(node)
    assert (r.ok, r.action) == (True, "enabled"), r.message
    assert any(n.startswith(f"took over the unconfirmed change {ident}: restored (its new kube-apiserver was not "
                            "healthy within 5 s") for n in r.notes), r.notes
    assert node.states(ident) == ["begin", "rolled-back"] and node.manifest == written
    assert node.calls == ["gather", "lock", "takeover", "await", "restore", "await", "gather", "apply", "await",
                          "confirm"]


def test_rollback_asked_of_a_pending_change_restores_it_at_once(node: FakeNode) -> None:
    from installer.change.plans import plan_disable

    ident, _ = lost_change(node)
    r = run(node, plan_disable)
    assert r.ok and r.action == "disabled", r.message
    assert r.message == (f"took over the unconfirmed change {ident} and restored its backup; the node is as asked "
                         "(auditing is already off) and the API server is healthy")
    assert node.manifest == DEFAULT_MANIFEST.encode() and r.changed


def test_a_guard_gone_before_the_lock_leaves_nothing_to_take_over(node: FakeNode) -> None:
    ident, _ = lost_change(node)

    def guard_restores(n: FakeNode) -> None:
        n.manifest, n.guard = n.backups[ident], None
        n.journal.append({"id": ident, "state": "guard-restored"})
    node.before["takeover"] = guard_restores
    r = run(node)
    assert (r.ok, r.action) == (True, "enabled"), r.message
    assert f"the unconfirmed change {ident} was restored by the node's guard before this run could take it over" \
        in r.notes


def test_a_guard_waiting_for_another_change_refuses(node: FakeNode) -> None:
    lost_change(node)
    node.guard = "20200101T000000Z-enable-0000"
    r = run(node)
    assert (r.exit_code, r.changed) == (EXIT_REFUSED, False)
    assert "for a change this run cannot take over (the guard is not waiting for kaudit's last change)" in r.message


def test_no_to_the_take_over_leaves_it_to_its_guard(node: FakeNode) -> None:
    ident, _ = lost_change(node)
    r = run(node, plan_input=enable("cis"), answer=False)
    assert r.message == f"not confirmed: nothing changed (the unconfirmed change {ident} is left to its guard)"
    assert node.calls == ["gather"] and node.guard == ident


def test_dry_run_says_what_the_take_over_would_do(node: FakeNode) -> None:
    ident, _ = lost_change(node)
    r = run(node, dry_run=True)
    assert r.action == "dry-run" and r.message == (
        f"would take over the unconfirmed change {ident} (enable auditing with profile minimal) and confirm it once "
        "its new kube-apiserver is healthy (it is what this run asks for)")
    assert node.calls == ["gather"]


def test_ctrl_c_while_awaiting_the_taken_over_change_puts_its_backup_back(node: FakeNode) -> None:
    ident, _ = lost_change(node)
    node.interrupt_at = "await"
    r = run(node)
    assert (r.exit_code, r.action, r.changed) == (EXIT_INTERRUPTED, "interrupted", True)
    assert node.states(ident) == ["begin", "rolled-back"] and node.journal[-1]["why"] == "interrupted"
    assert node.manifest == DEFAULT_MANIFEST.encode() and node.guard is None
    assert r.message.startswith(f"the previous manifest was put back (backup {ident}) and the API server is healthy")


def test_a_take_over_that_loses_the_node_leaves_the_guard_armed(node: FakeNode) -> None:
    ident, _ = lost_change(node)
    node.lose_after = "takeover"
    r = run(node)
    assert (r.action, r.changed, r.backup) == ("NOT-RESTORED", True, ident), r.message
    assert "the node's guard restores backup" in r.message and node.guard == ident


def test_the_take_over_phases_hand_on_pending_then_taken_then_a_fresh_read(node: FakeNode) -> None:
    from installer.change import takeover
    from installer.change.data import Options, RunData
    from installer.change.noderun import NodeRun
    from installer.change.phases import preflight
    from installer.change.plans import plan_enable
    from installer.node import layout
    from installer.targets import flavors

    ident, written = lost_change(node)
    run = NodeRun(node, plan_enable, enable("cis"), Options(timeout=5), lambda _n, _d: True, lambda _n, _m: None,
                  flavors.KUBEADM, layout.KUBEADM)
    data = preflight(run, RunData())
    assert takeover.is_pending(run, data)
    data = takeover.plan(run, data)
    pending = data.take_over()
    assert (pending.ident, pending.why) == (ident, "it is not what this run asks for") and takeover.asks(run, data)
    data = takeover.take_over(run, data)
    assert data.taken_over().earlier == DEFAULT_MANIFEST.encode() and run.result.changed
    assert takeover.restores(run, data) and not takeover.awaits(run, data)
    data = takeover.restore(run, data)
    assert data.reread and run.took_over == ident and not run.result.changed
    data = takeover.read_again(run, data)
    assert data.pending is None and data.node().manifest == DEFAULT_MANIFEST.encode() != written
    assert not takeover.is_pending(run, data)
