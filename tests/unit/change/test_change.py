"""A whole change of one node through the runner, against the in-memory node: what the result says, what the
node holds after, which scripts ran (the contract the e2e tests check on a real node, in milliseconds)."""

from __future__ import annotations

import pytest

from installer.errors import EXIT_FAILED_RESTORED, EXIT_INTERRUPTED, EXIT_NOT_RESTORED, EXIT_OK, EXIT_REFUSED
from installer.scripts.exitcodes import ScriptExit
from tests.unit.change.conftest import DEFAULT_MANIFEST, FakeNode, enable, plan_disable, run

STEPS = ["preflight", "plan", "lock", "apply", "await", "confirm"]


def test_enable_writes_awaits_and_confirms(node: FakeNode) -> None:
    r = run(node)
    assert (r.ok, r.exit_code, r.action, r.changed) == (True, EXIT_OK, "enabled", True), r.message
    assert node.calls == ["gather", "lock", "apply", "await", "confirm"]
    assert [s["name"] for s in r.steps] == STEPS
    assert r.backup and node.states(r.backup) == ["begin", "confirmed"]
    assert node.guard is None and b"--audit-policy-file" in node.manifest
    assert r.policy_file in node.files and r.new_instance_pid == 101
    assert r.verify == {"verified": True, "reason": "a test request's event was found in /var/log/kubernetes/"
                                                    "audit/audit.log"}
    assert r.message.startswith("enable auditing with profile minimal: new kube-apiserver (pid 101) ready")
    assert all(s.closed for s in node.sessions)  # the lock's and the wait's


def test_a_second_run_finds_nothing_to_do(node: FakeNode) -> None:
    run(node)
    node.calls.clear()
    r = run(node)
    assert (r.ok, r.action, r.changed) == (True, "unchanged", False)
    assert r.message == "already so (update auditing with profile minimal): nothing changed, nothing restarted"
    assert node.calls == ["gather"]


def test_dry_run_stops_after_the_plan(node: FakeNode) -> None:
    r = run(node, dry_run=True)
    assert (r.ok, r.action, r.changed) == (True, "dry-run", False)
    assert r.message == "would enable auditing with profile minimal"
    assert r.diff and "+    - --audit-policy-file=" in r.diff
    assert node.calls == ["gather"] and node.manifest == DEFAULT_MANIFEST.encode()
    assert [s["name"] for s in r.steps] == ["preflight", "plan"]


def test_no_at_the_question_changes_nothing(node: FakeNode) -> None:
    r = run(node, answer=False)
    assert (r.ok, r.exit_code, r.action) == (False, EXIT_REFUSED, "refused")
    assert r.message == "not confirmed: nothing changed"
    assert node.calls == ["gather"]


@pytest.mark.parametrize(("fault", "said"), [
    (ScriptExit.CONFLICT, "was changed by someone else since kaudit read it; nothing was written"),
    (ScriptExit.PAYLOAD, "did not arrive whole"),
    (ScriptExit.UNSAFE, "refused: /var/lib/kaudit is writable by others"),
    (ScriptExit.TAMPERED, "was changed by someone else (its content no longer matches the hash in its name)"),
    (1, "backup: failed; the manifest was not changed"),
])
def test_a_refused_write_changes_nothing(node: FakeNode, fault: int, said: str) -> None:
    node.apply_exit = fault
    r = run(node)
    assert (r.ok, r.exit_code, r.action, r.changed) == (False, EXIT_REFUSED, "refused", False)
    assert said in r.message, r.message
    assert node.manifest == DEFAULT_MANIFEST.encode() and node.calls == ["gather", "lock", "apply"]


def test_a_new_instance_that_never_gets_ready_is_rolled_back(node: FakeNode) -> None:
    node.ready_after = 1  # the first wait times out; the restored configuration's comes up
    r = run(node)
    assert (r.ok, r.exit_code, r.action, r.changed) == (False, EXIT_FAILED_RESTORED, "failed-restored", False)
    assert r.message.startswith("no healthy new kube-apiserver within 5 s (crash-looping) (kube-apiserver said: ")
    assert "the previous manifest was restored and the API server is healthy with it" in r.message
    assert node.manifest == DEFAULT_MANIFEST.encode() and r.log_lines
    assert node.calls == ["gather", "lock", "apply", "await", "restore", "await"]
    assert r.backup and node.states(r.backup) == ["begin", "rolled-back"]
    assert not r.notes  # the disk budget of a change that did not stand goes


def test_a_restore_that_is_not_healthy_either_says_so(node: FakeNode) -> None:
    node.ready_after = 2
    r = run(node)
    assert (r.exit_code, r.action, r.changed) == (EXIT_NOT_RESTORED, "NOT-RESTORED", False)
    assert "is not healthy with it either" in r.message and node.manifest == DEFAULT_MANIFEST.encode()


def test_the_guard_restored_before_the_confirmation(node: FakeNode) -> None:
    node.guard_restored_first = True
    r = run(node)
    assert (r.exit_code, r.action, r.changed) == (EXIT_FAILED_RESTORED, "failed-restored", False)
    assert "the node's guard had already restored backup" in r.message


@pytest.mark.parametrize(("lost", "said"), [("apply", "the connection was lost"),
                                            ("await", "await: the connection was lost while waiting")])
def test_a_lost_connection_after_the_write_leaves_it_to_the_guard(node: FakeNode, lost: str, said: str) -> None:
    node.lose_after = lost
    r = run(node, guard_grace=30.0)
    assert (r.exit_code, r.action, r.changed) == (EXIT_NOT_RESTORED, "NOT-RESTORED", True)
    assert r.message.startswith(f"{said}. The new manifest was written and is not confirmed: the node's guard "
                                f"restores backup {r.backup} at "), r.message
    assert node.guard == r.backup


def test_a_held_lock_refuses_in_preflight(node: FakeNode) -> None:
    node.lock_holder = "kaudit by ops@laptop since 10:00:00Z (pid 7)"
    r = run(node)
    assert (r.exit_code, r.action) == (EXIT_REFUSED, "refused")
    assert r.message.startswith("lock: another kaudit run holds the node's lock (kaudit by ops@laptop")
    assert node.calls == ["gather"]
    assert run(node, break_lock=True).ok


def test_disable_after_enable(node: FakeNode) -> None:
    assert run(node).ok
    r = run(node, plan_disable)
    assert (r.ok, r.action) == (True, "disabled"), r.message
    assert b"--audit-" not in node.manifest and r.verify is None and r.caveat is None


def test_a_replaced_policy_file_is_put_back_without_a_restart(node: FakeNode) -> None:
    first = run(node)
    assert first.policy_file
    node.files[first.policy_file] = b"someone else's\n"
    node.calls.clear()
    r = run(node)
    assert (r.ok, r.action) == (True, "repaired"), r.message
    assert node.calls == ["gather", "lock", "apply", "confirm"]  # the same pod: nothing to await
    assert r.message.startswith(f"re-upload {first.policy_file} (replaced or removed by someone else); the "
                                "manifest is unchanged, nothing restarted")
    assert [s["name"] for s in r.steps] == ["preflight", "plan", "lock", "apply", "confirm"]


@pytest.mark.parametrize(("script", "changed", "said"), [
    ("gather", False, "before anything changed; nothing to undo"),
    ("lock", False, "before anything changed; nothing to undo"),
    ("apply", False, "kaudit stopped while writing the change: if the new manifest was written, the node's guard "
                     "restores backup "),
    ("await", False, "the previous manifest was put back (backup "),
    ("confirm", True, "the new manifest was written and is not confirmed: the node's guard restores backup "),
])
def test_ctrl_c_at_each_script_says_what_the_node_was_left_with(node: FakeNode, script: str, changed: bool,
                                                               said: str) -> None:
    node.interrupt_at = script
    r = run(node)
    assert (r.ok, r.exit_code, r.action, r.changed) == (False, EXIT_INTERRUPTED, "interrupted", changed)
    assert r.message.startswith(said), r.message
    if script == "await":
        assert r.message.endswith("and the API server is healthy with it; nothing else changed. Re-run the command "
                                  "to try again")
        assert node.manifest == DEFAULT_MANIFEST.encode() and node.guard is None


def test_enable_then_switch_profiles(node: FakeNode) -> None:
    assert run(node).ok
    r = run(node, plan_input=enable("cis"))
    assert (r.ok, r.action, r.profile) == (True, "switched", "cis"), r.message
    assert r.message.startswith("switch auditing from minimal to profile cis: new kube-apiserver")
