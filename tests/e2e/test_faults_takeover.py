"""A re-run after a lost connection takes over the unconfirmed change (issue 11, item 5).

The connection is cut while kaudit waits for the new API server (right after the manifest write,
while the old instance still answers, while the new one starts, after it is ready but before the
confirmation); the re-run, with a guard grace far too long for the guard to be what fixes it,
confirms the change or restores its backup at once, then carries on with its own request.
Each time on the node: the manifest, the running instance's flags, no guard left, the journal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from installer.change.plans import EnableInput, plan_enable
from installer.policy.source import PolicySource
from installer.scripts import load as scripts
from installer.transport import Transport
from tests.conftest import NodeFactory
from tests.faults import (
    cut,
    guard_pids,
    healthy_with,
    journal,
    lock_free,
    manifest_of,
    rollout,
    tally,
)
from tests.kaudit_cli import Run, on
from tests.node.node import TestNode

LONG = 600.0  # guard grace: the guard's deadline is far beyond anything these tests wait for


def rerun(node: TestNode, command: str, *args: str, timeout: float = 10) -> Run:
    return on(node, command, "--yes", "--output", "json", "--timeout", str(timeout), "--guard-grace", str(int(LONG)),
              *args, timeout=timeout * 4 + 60)


def lose_connection(node: TestNode, profile: str = "minimal", **seams: Any) -> tuple[str, bytes, list[int]]:
    """Enable `profile` in this process and cut its connection at a chosen moment of the wait.
    Returns the change's backup id, the manifest it wrote and the guard left waiting."""
    before = manifest_of(node)
    inp = EnableInput(PolicySource.of_profile(profile))
    r, _ = rollout(node, plan_enable, lambda _n: inp, timeout=10, guard_grace=LONG, **seams)
    assert r.exit_code == 3 and r.changed and "guard" in r.message, (r.exit_code, r.message)
    assert r.backup
    written = manifest_of(node)
    assert written != before
    guards = guard_pids(node)
    assert len(guards) == 1, guards
    assert lock_free(node)
    return r.backup, written, guards


def records_of(node: TestNode, ident: str) -> list[dict[str, Any]]:
    return [rec for rec in journal(node) if rec.get("id") == ident]


def assert_no_guard(node: TestNode, *old: int) -> None:
    """No guard left right after the re-run (asserted at once, not waited for)."""
    assert not node.path("/var/lib/kaudit/guard.pid").exists()
    assert guard_pids(node) == []
    for pid in old:
        assert node.run(f"kill -0 {pid}", check=False).returncode != 0, pid


def on_progress(match: str, seen: dict[str, Any], node: TestNode) -> Callable[[Transport, str], None]:
    """Cut the connection at the first progress line containing `match` (once)."""
    def hook(t: Transport, message: str) -> None:
        if match in message and "cut" not in seen:
            seen["cut"] = message
            seen["instance"] = node.current_instance()
            cut(t)
    return hook


def before_confirm(seen: dict[str, Any], node: TestNode) -> tuple[str, Callable[[Transport], None]]:
    def hook(t: Transport) -> None:
        seen["cut"] = "before confirm"
        seen["instance"] = node.current_instance()
        cut(t)
    return scripts.CONFIRM.text, hook


MOMENTS = ["after-write", "old-still-answers", "new-starting", "ready-before-confirm"]


@pytest.mark.parametrize("moment", MOMENTS)
def test_rerun_takes_over_and_confirms(node_factory: NodeFactory, moment: str) -> None:
    knobs = {"after-write": {}, "old-still-answers": {"linger": 3.0}, "new-starting": {"start_delay": 3.0},
             "ready-before-confirm": {}}[moment]
    node = node_factory(**{"linger": 0.1, "restart_delay": 0.1, **knobs})
    old_pid = node.current_instance()["pid"]  # type: ignore[index]
    seen: dict[str, Any] = {}
    seams: dict[str, Any] = {
        "after-write": {"after_script": (scripts.APPLY.text, cut)},
        "old-still-answers": {"progress": on_progress("waiting for a new kube-apiserver", seen, node)},
        "new-starting": {"progress": on_progress(" up, ", seen, node)},
        "ready-before-confirm": {"before_script": before_confirm(seen, node)},
    }[moment]
    ident, wanted, guards = lose_connection(node, **seams)
    if moment == "old-still-answers":
        assert seen["instance"]["pid"] == old_pid, seen  # the cut came while the old instance answered
    if moment == "new-starting":
        assert seen["instance"]["pid"] != old_pid and not seen["instance"]["ready_at"], seen
    if moment == "ready-before-confirm":
        assert seen["instance"]["pid"] != old_pid and seen["instance"]["ready_at"], seen
    assert [rec["state"] for rec in records_of(node, ident)] == ["begin"]

    again = rerun(node, "enable", "--profile", "minimal")
    assert again.code == 0, again.out + again.err
    result = again.node
    assert result["ok"] and result["action"] == "enabled" and result["backup"] == ident, result
    assert f"took over the unconfirmed change {ident}: confirmed" in result["notes"], result
    assert manifest_of(node) == wanted
    running = healthy_with(node, wanted, timeout=1)
    assert result["new_instance_pid"] == running["pid"]
    assert_no_guard(node, *guards)
    states = records_of(node, ident)
    assert [rec["state"] for rec in states] == ["begin", "confirmed"], states
    assert states[-1]["takenOver"] is True
    assert lock_free(node)
    # And it stays: an ordinary run finds nothing to do.
    assert rerun(node, "enable", "--profile", "minimal").node["action"] == "unchanged"
    tally(f"re-run after a lost connection ({moment}): confirmed by the take-over", 1, 1, 0)


def _heal_after_restore(node: TestNode, before: bytes) -> threading.Thread:
    def heal() -> None:
        node.wait_for(lambda: manifest_of(node) == before, 60, what="the restore")
        node.configure(never_ready=False, crash_after_ready=None)
    th = threading.Thread(target=heal, daemon=True)
    th.start()
    return th


def test_crash_looping_pending_change_is_restored_then_the_request_proceeds(node_factory: NodeFactory) -> None:
    """Its new instance crashes right after it is ready: the re-run's wait for it fails, it restores the
    backup at once (not at the guard's deadline), then its own request (the same) goes through."""
    node = node_factory(linger=0.1, restart_delay=0.1, crash_backoff=0.2)
    before = manifest_of(node)
    node.configure(crash_after_ready=0.2)
    ident, wanted, guards = lose_connection(node, after_script=(scripts.APPLY.text, cut))
    healer = _heal_after_restore(node, before)
    again = rerun(node, "enable", "--profile", "minimal", timeout=4)
    healer.join(5)
    assert again.code == 0, again.out + again.err
    result = again.node
    assert result["action"] == "enabled" and result["backup"] != ident, result
    assert any(n.startswith(f"took over the unconfirmed change {ident}: restored (its new kube-apiserver was not "
                            "healthy") for n in result["notes"]), result["notes"]
    assert manifest_of(node) == wanted
    healthy_with(node, wanted, timeout=1)
    assert_no_guard(node, *guards)
    states = records_of(node, ident)
    assert [rec["state"] for rec in states] == ["begin", "rolled-back"], states
    assert states[-1]["takenOver"] is True and "guard-restored" not in str(journal(node))
    assert [rec["state"] for rec in records_of(node, result["backup"])] == ["begin", "confirmed"]
    tally("re-run after a lost connection: crash-looping change restored, then re-applied", 1, 1, 0)


def test_pending_change_whose_policy_is_gone_is_restored_at_once(node_factory: NodeFactory) -> None:
    """The policy the unconfirmed change named was removed (the new instance crash-loops on it): not what
    the re-run asks for, so it restores without waiting for the instance, then re-applies with the file."""
    node = node_factory(linger=0.1, restart_delay=0.1, crash_backoff=0.2)
    ident, wanted, guards = lose_connection(node, after_script=(scripts.APPLY.text, cut))
    policies = list(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    assert len(policies) == 1
    policies[0].unlink()
    again = rerun(node, "enable", "--profile", "minimal")
    assert again.code == 0, again.out + again.err
    result = again.node
    assert result["action"] == "enabled", result
    assert any(n.startswith(f"took over the unconfirmed change {ident}: restored (") and "what it wrote" in n
               for n in result["notes"]), result["notes"]
    names = [step["name"] for step in result["steps"]]
    assert "await" not in names[:names.index("restore")], names  # restored without waiting for it
    assert manifest_of(node) == wanted and policies[0].exists()
    healthy_with(node, wanted, timeout=1)
    assert_no_guard(node, *guards)
    assert [rec["state"] for rec in records_of(node, ident)] == ["begin", "rolled-back"]


def test_rerun_asking_for_something_else_restores_then_applies_it(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    seen: dict[str, Any] = {}
    ident, wanted, guards = lose_connection(node, before_script=before_confirm(seen, node))
    again = rerun(node, "enable", "--profile", "cis")
    assert again.code == 0, again.out + again.err
    result = again.node
    assert result["action"] == "enabled" and result["profile"] == "cis", result
    assert f"took over the unconfirmed change {ident}: restored (it is not what this run asks for)" in result["notes"]
    now = manifest_of(node)
    assert now != wanted and b"--audit-policy-file" in now
    healthy_with(node, now, timeout=1)
    assert_no_guard(node, *guards)
    assert [rec["state"] for rec in records_of(node, ident)] == ["begin", "rolled-back"]


def test_rollback_in_the_pending_state_restores_at_once(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    ident, _, guards = lose_connection(node, after_script=(scripts.APPLY.text, cut))
    dry = rerun(node, "rollback", "--dry-run")
    assert dry.code == 0 and f"would take over the unconfirmed change {ident}" in dry.node["message"], dry.out
    assert guard_pids(node) == guards  # a dry run touches nothing
    undo = rerun(node, "rollback")
    assert undo.code == 0, undo.out + undo.err
    result = undo.node
    assert result["action"] == "rolled-back" and result["changed"] and result["backup"] == ident, result
    assert f"took over the unconfirmed change {ident}: restored (it is not what this run asks for)" in result["notes"]
    assert manifest_of(node) == before
    healthy_with(node, before, timeout=1)
    assert_no_guard(node, *guards)
    states = records_of(node, ident)
    assert [rec["state"] for rec in states] == ["begin", "rolled-back"] and states[-1]["takenOver"] is True


def test_take_over_that_loses_the_node_leaves_the_guard_armed(node_factory: NodeFactory) -> None:
    """The re-run loses its connection too, right after it took the guard over: a guard still waits (the
    one it re-armed), and a third run takes over again and confirms."""
    node = node_factory(linger=0.1, restart_delay=0.1)
    ident, wanted, guards = lose_connection(node, after_script=(scripts.APPLY.text, cut))
    # Cut right after the take-over re-armed the guard.
    inp = EnableInput(PolicySource.of_profile("minimal"))
    r, _ = rollout(node, plan_enable, lambda _n: inp, timeout=10, guard_grace=LONG,
                   after_script=(scripts.TAKEOVER.text, cut))
    assert r.exit_code == 3 and "guard" in r.message, r.message
    rearmed = guard_pids(node)
    assert len(rearmed) == 1 and rearmed != guards, (guards, rearmed)
    assert node.path("/var/lib/kaudit/guard.pid").read_text().split()[0] == str(rearmed[0])
    assert lock_free(node)
    third = rerun(node, "enable", "--profile", "minimal")
    assert third.code == 0 and f"took over the unconfirmed change {ident}: confirmed" in third.node["notes"], third.out
    assert manifest_of(node) == wanted
    assert_no_guard(node, *guards, *rearmed)


def test_a_live_lock_holder_still_refuses(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    ident, wanted, guards = lose_connection(node, after_script=(scripts.APPLY.text, cut))
    holder = node.run("echo 'kaudit by someone (pid 1)' > /var/lib/kaudit/lock.holder; "
                      "flock /var/lib/kaudit/lock sleep 60 </dev/null >/dev/null 2>&1 & echo $!").stdout.strip()
    node.wait_for(lambda: not lock_free(node, timeout=0.1), 5, what="the lock to be held")
    refused = rerun(node, "enable", "--profile", "minimal")
    assert refused.code == 2 and "holds the node's lock" in refused.node["message"], refused.out
    assert guard_pids(node) == guards and manifest_of(node) == wanted
    assert [rec["state"] for rec in records_of(node, ident)] == ["begin"]
    node.run(f"kill {holder}; true")
