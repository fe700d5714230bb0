"""Connection loss at every step and at random moments (issue 7, item 1).

The SSH connection is cut right after the k-th remote command, for every k of a clean run of
enable, switch, disable and rollback; afterwards (once the guard has done its work) the manifest
is byte-identical to the state before or to the intended one, valid, the API server healthy with
it, the lock free, nothing but the manifest (and dotfile temps) ever in the manifests directory,
and a re-run converges.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from installer.change.history import read_backup
from installer.change.plans import EnableInput, plan_disable, plan_enable, plan_rollback
from installer.policy.source import PolicySource
from tests.conftest import NodeFactory
from tests.faults import (
    MANIFEST,
    cut_after,
    guard_done,
    healthy_with,
    lock_free,
    manifest_of,
    rollout,
    tally,
    valid_manifest,
    watch_manifests_dir,
)
from tests.kaudit_cli import change
from tests.node.node import TestNode

MINIMAL = EnableInput(PolicySource.of_profile("minimal"))
CIS = EnableInput(PolicySource.of_profile("cis"))


def _ops() -> dict[str, tuple[Any, Any, Any]]:
    """op -> (setup planner+input or None, planner, plan input)."""
    return {
        "enable": (None, plan_enable, lambda t: MINIMAL),
        "switch": ((plan_enable, lambda t: MINIMAL), plan_enable,
                   lambda t: CIS),
        "disable": ((plan_enable, lambda t: MINIMAL), plan_disable, lambda t: None),
        "rollback": ((plan_enable, lambda t: MINIMAL), plan_rollback,
                     lambda node: read_backup(node, "original")),
    }


def _restore_state(node: TestNode, manifest: bytes, files: dict[str, bytes]) -> None:
    """Put the node back in the 'before' state (as an operator's earlier run left it)."""
    for path, data in files.items():
        p = node.path(path)
        if not p.exists() or p.read_bytes() != data:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            p.chmod(0o600)
    if manifest_of(node) != manifest:
        tmp = node.path("/etc/kubernetes/manifests/.reset.tmp")
        tmp.write_bytes(manifest)
        tmp.rename(node.path(MANIFEST))
    healthy_with(node, manifest)


@pytest.mark.parametrize("op", ["enable", "switch", "disable", "rollback"])
def test_connection_lost_after_every_remote_command(node_factory: NodeFactory, op: str) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    setup, planner, plan_input = _ops()[op]
    if setup is not None:
        r, _ = rollout(node, *setup, timeout=10)
        assert r.ok, r.message
    before = manifest_of(node)
    audit_dir = node.path("/etc/kubernetes/audit")
    before_files = {f"/etc/kubernetes/audit/{p.name}": p.read_bytes() for p in audit_dir.glob("*")}
    # A clean run: the intended result, and how many remote commands it takes.
    r, t = rollout(node, planner, plan_input, timeout=10)
    assert r.ok and r.changed, r.message
    intended, commands = manifest_of(node), t.commands_run
    assert intended != before
    tries = survived = lost = 0
    for k in range(1, commands + 1):
        _restore_state(node, before, before_files)
        with watch_manifests_dir(node) as strays:
            r, _ = rollout(node, planner, plan_input, timeout=3, after_command=cut_after(k))
            if r.changed:
                guard_done(node)
            now = manifest_of(node)
            tries += 1
            ok = now in (before, intended) and valid_manifest(now)
            lost += 0 if ok else 1
            assert ok, (k, r.message)
            healthy_with(node, now)
            assert lock_free(node), k
            # Exit codes say what happened: refused before any change, or the guard decides.
            assert r.exit_code in (0, 2, 3), (k, r.exit_code, r.message)
            if r.exit_code == 2:
                assert not r.changed and now == before, (k, r.message)
            if r.exit_code == 3:
                assert "guard" in r.message, r.message
            again, _ = rollout(node, planner, plan_input, timeout=10)
            assert again.ok, (k, again.message)
            assert manifest_of(node) == intended
            healthy_with(node, intended)
        assert not strays, (k, strays)
        survived += 1
    tally(f"connection lost after command k ({op}, k=1..{commands})", tries, survived, lost)


def _sshd_session_pids(node: TestNode, user: str) -> list[int]:
    out = node.run("for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < $p/cmdline 2>/dev/null); "
                   f"case \"$c\" in 'sshd: {user}@notty'*) echo ${{p#/proc/}};; esac; done; true").stdout
    return [int(x) for x in out.split()]


def test_connection_killed_at_random_moments(node_factory: NodeFactory) -> None:
    """Kill the node's `sshd: kadmin@notty` at a random moment of enable / disable, several times."""
    node = node_factory(linger=0.1, restart_delay=0.1)
    original = manifest_of(node)
    rng = random.Random(7)
    tries = survived = lost = 0
    enabled: bytes | None = None
    for i in range(4):
        command = ("enable", "--profile", "minimal") if i % 2 == 0 else ("disable",)
        before = manifest_of(node)
        box: dict[str, Any] = {}
        with watch_manifests_dir(node) as strays:
            th = threading.Thread(target=lambda b=box, c=command: b.update(run=change(node, *c, timeout=3)))
            th.start()
            time.sleep(rng.uniform(0.3, 2.0))
            for pid in _sshd_session_pids(node, "kadmin"):
                node.run(f"kill -9 {pid}", check=False)
            th.join()
            run = box["run"]
            assert run.code in (0, 2, 3), run.out + run.err
            assert "Traceback" not in run.err
            guard_done(node)
            now = manifest_of(node)
            tries += 1
            intended = original if command == ("disable",) else (enabled or now)
            ok = valid_manifest(now) and now in (before, intended)
            lost += 0 if ok else 1
            assert ok, run.out
            healthy_with(node, now)
            assert lock_free(node)
            again = change(node, *command, timeout=10)
            assert again.code == 0, again.out + again.err
            if command != ("disable",):
                enabled = manifest_of(node)
            else:
                assert manifest_of(node) == original
        assert not strays, strays
        survived += 1
    tally("sshd session killed at a random moment (enable/disable)", tries, survived, lost)
