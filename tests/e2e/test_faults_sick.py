"""A sick API server (issue 7, item 3): never ready; ready then crash-looping; slow to start just
under and just over the timeout. Each time the rollback (or the success) is verified on the node."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import NodeFactory
from tests.faults import guard_done, healthy_with, lock_free, manifest_of, tally, valid_manifest
from tests.kaudit_cli import change
from tests.node.node import TestNode


def _heal_after_change(node: TestNode, before: bytes) -> threading.Thread:
    """Once the new (sick) configuration is running, make the next instances healthy again, so the
    restored configuration can come back (the sickness belongs to the new configuration)."""
    def heal() -> None:
        node.wait_for(lambda: manifest_of(node) != before, 30, what="the change")
        node.wait_for(lambda: manifest_of(node) == before, 60, what="the rollback")
        node.configure(never_ready=False, crash_after_ready=None, start_delay=0.1)
    th = threading.Thread(target=heal, daemon=True)
    th.start()
    return th


@pytest.mark.parametrize("sickness", [
    {"never_ready": True},
    {"crash_after_ready": 0.3},
    {"start_delay": 5.0},  # just over a 4 s timeout
])
def test_sick_new_instance_is_rolled_back(node_factory: NodeFactory, sickness: dict[str, object]) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1, crash_backoff=0.2)
    before = manifest_of(node)
    node.configure(**sickness)
    healer = _heal_after_change(node, before)
    run = change(node, "enable", "--profile", "minimal", timeout=4)
    healer.join(5)
    assert run.code == 1, run.out + run.err
    result = run.node
    assert result["action"] == "failed-restored" and "restored" in result["message"], result
    assert manifest_of(node) == before and valid_manifest(before)
    healthy_with(node, before)
    guard_done(node)
    assert lock_free(node)
    assert manifest_of(node) == before
    # Healthy again: a re-run converges.
    again = change(node, "enable", "--profile", "minimal", timeout=10)
    assert again.code == 0, again.out
    tally(f"sick API server: {next(iter(sickness))}", 1, 1, 0)


def test_slow_start_just_under_the_timeout_succeeds(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    node.configure(start_delay=2.5)
    run = change(node, "enable", "--profile", "minimal", timeout=5)
    assert run.code == 0, run.out + run.err
    after = manifest_of(node)
    healthy_with(node, after)
    guard_done(node)
    assert manifest_of(node) == after  # the guard stood down: the change stays
    tally("sick API server: start_delay just under the timeout", 1, 1, 0)
