"""The node scripts' calls (remote.py): arguments by name, the key=value answers and exit codes read back."""

from __future__ import annotations

import pytest

from installer.change import remote
from installer.change.data import Ready, TimedOut
from installer.errors import NodeError
from installer.node import layout
from tests.unit.change.conftest import FakeNode


def test_lock_says_a_connection_lost_before_the_lock(node: FakeNode) -> None:
    node.lose_after = "lock"
    with pytest.raises(NodeError, match="the connection was lost before the lock was taken"):
        remote.lock(node, layout.KUBEADM, break_lock=False)


def test_await_reads_ready_and_timeout(node: FakeNode) -> None:
    seen: list[str] = []
    ready = remote.await_instance(node, layout.KUBEADM, 0.0, node.manifest, timeout=5, settle=0.5, verify_marker=None,
                                  progress=seen.append)
    assert ready == Ready(101, node.now + 2.5, "") and seen[0].startswith("starting (0 s of 5 s)")
    node.crashing.add(node.manifest)
    out = remote.await_instance(node, layout.KUBEADM, 0.0, node.manifest, timeout=5, settle=0.5, verify_marker=None,
                                progress=seen.append)
    assert isinstance(out, TimedOut) and out.state == "crash-looping" and len(out.log_lines) == 1


def test_await_asks_for_the_manifests_audit_flags(node: FakeNode) -> None:
    """A manifest without audit flags waits for an instance with none (mode absent); the fake checks the tokens."""
    assert remote.audit_tokens(node.manifest) == []
    assert isinstance(remote.await_instance(node, layout.KUBEADM, 0.0, node.manifest, timeout=5, settle=0.5,
                                            verify_marker="m", progress=lambda _m: None), Ready)


def test_restore_of_a_missing_backup_says_so(node: FakeNode) -> None:
    record = {"id": "nope", "state": "rolled-back", "at": 1.0}
    assert remote.restore(node, layout.KUBEADM, "/m", "nope", record) == "no backup nope"


@pytest.mark.parametrize(("guard", "state"), [(None, "gone"), ("other", "other")])
def test_take_over_answers(node: FakeNode, guard: str | None, state: str) -> None:
    node.guard = guard
    assert remote.take_over(node, layout.KUBEADM, "/m", "x", node.manifest, guard_secs=35)["state"] == state
