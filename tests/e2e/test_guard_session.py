"""The guard outlives the SSH session on systemd nodes (issue 12 item 4).

On a node where systemd is PID 1, logind tracks each SSH session by cgroup and, with
KillUserProcesses=yes (systemd's upstream default), kills all of its processes when the session
ends: a `setsid` child included, so a guard started that way dies exactly when kaudit's connection
is lost. There kaudit starts the guard with `systemd-run` as a transient unit outside the session.
The test node stands in for systemd and logind (tests/node/systemd.py): sd_booted(), one cgroup per
SSH session, `end_sessions()` doing what logind does at a session's end, and `systemd-run`/`systemctl`.
"""

from __future__ import annotations

import time

import pytest

from installer.change.plans import EnableInput, plan_enable
from installer.policy.source import PolicySource
from installer.scripts import load as scripts
from tests.conftest import NodeFactory
from tests.faults import cut, guard_done, guard_pids, manifest_of, rollout
from tests.node import systemd as systemd_parts
from tests.node.node import TestNode

pytestmark = pytest.mark.skipif(systemd_parts.missing() is not None, reason=str(systemd_parts.missing()))

TIMEOUT, GRACE = 2.0, 1.0  # the guard's deadline: about 3 s after the write


def lose_the_connection_after_apply(node: TestNode) -> tuple[bytes, bytes, int]:
    """Enable, and drop kaudit's connection right after the apply script armed the guard."""
    before = manifest_of(node)
    inp = EnableInput(PolicySource.of_profile("minimal"))
    r, _ = rollout(node, plan_enable, lambda _n: inp, timeout=TIMEOUT, guard_grace=GRACE,
                   after_script=(scripts.APPLY.text, cut))
    assert r.exit_code == 3 and r.changed and "guard" in r.message, (r.exit_code, r.message)
    written = manifest_of(node)
    assert written != before
    (guard,) = guard_pids(node)
    assert int(node.path("/var/lib/kaudit/guard.pid").read_text().split()[0]) == guard
    return before, written, guard


def test_on_a_systemd_node_the_guard_is_a_unit_and_survives_the_session(node_factory: NodeFactory) -> None:
    node = node_factory(systemd=True)
    before, _, guard = lose_the_connection_after_apply(node)
    cgroup = node.cgroup_of(guard)
    assert cgroup.startswith("/system.slice/kaudit-guard-") and cgroup.endswith(".service"), cgroup
    calls = node.run("cat /run/systemd/kaudit-standin/calls").stdout
    assert "systemd-run --quiet --collect --unit kaudit-guard-" in calls, calls
    assert "systemctl show --property MainPID --value kaudit-guard-" in calls, calls
    time.sleep(0.3)  # the SSH session is over on the node's side too
    node.end_sessions()  # logind: KillUserProcesses=yes
    assert node.run(f"kill -0 {guard}", check=False).returncode == 0, "the session's end killed the guard"
    guard_done(node, timeout=30)  # no confirmation comes: at its deadline the guard restores the backup
    assert manifest_of(node) == before
    assert node.wait_ready(20)


def test_without_systemd_run_a_setsid_guard_dies_with_the_session(node_factory: NodeFactory) -> None:
    """The failure the unit avoids, shown on the same node without sd_booted(): kaudit falls back to
    setsid (right for kind's nodes and containers, where no logind runs), and logind takes the guard."""
    node = node_factory(systemd=True)
    node.run("rmdir /run/systemd/system")
    before, written, guard = lose_the_connection_after_apply(node)
    assert node.cgroup_of(guard).startswith("/user.slice/session-")
    assert not node.run("cat /run/systemd/kaudit-standin/calls 2>/dev/null", check=False).stdout
    time.sleep(0.3)
    assert guard in node.end_sessions()
    time.sleep(TIMEOUT + GRACE + 2)  # past the guard's deadline: nobody restores
    assert manifest_of(node) == written != before
