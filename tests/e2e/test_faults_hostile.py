"""A hostile node (issue 7, item 2): full disks, read-only filesystems, the manifests directory on
its own mount, a manifest changed between read and write, a replaced policy file, a stale lock, the
kubelet's static pod path elsewhere. Each time: a clear refusal or a correct change, never a lost node."""

from __future__ import annotations

import hashlib

from installer.change.plans import EnableInput, plan_enable
from installer.policy.source import PolicySource
from installer.transport import Transport
from tests.conftest import NodeFactory
from tests.faults import MANIFEST, guard_done, healthy_with, listing, lock_free, manifest_of, rollout, tally
from tests.kaudit_cli import change
from tests.node.node import TestNode

STATE = ("/etc/kubernetes", "/var/lib/kaudit")


def node_manifest(node: TestNode) -> bytes:
    """The manifest as the node sees it (a mount inside the node hides the host directory)."""
    import base64

    return base64.b64decode(node.run(f"base64 < {MANIFEST}").stdout)


def _unchanged(node: TestNode, before: bytes, files: object) -> None:
    assert node_manifest(node) == before
    assert listing(node, *STATE) == files
    healthy_with(node, before)
    assert lock_free(node)


def test_full_state_disk_and_full_manifests_disk(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    tries = survived = 0
    # kaudit's state directory on a tiny, full tmpfs: the backup cannot be written.
    node.run("mount -t tmpfs -o size=8k,mode=700 tmpfs /var/lib/kaudit && "
             "dd if=/dev/zero of=/var/lib/kaudit/filler bs=1k count=8 2>/dev/null; true")
    files = listing(node, *STATE)
    run = change(node, "enable", "--profile", "minimal", timeout=3)
    tries += 1
    assert run.code == 2, run.out + run.err
    assert "the manifest was not changed" in run.node["message"] or "space" in run.node["message"], run.node
    guard_done(node)
    _unchanged(node, before, files)
    survived += 1
    node.run("umount /var/lib/kaudit")
    # The manifests directory on its own tiny tmpfs (the manifest copied in first): refused up front.
    # (the copy goes through a fresh mktemp file: the node shares the machine's /tmp)
    node.run(f"m=$(mktemp) && cp -p {MANIFEST} \"$m\" && "
             "mount -t tmpfs -o size=64k,mode=755 tmpfs /etc/kubernetes/manifests "
             f"&& cp -p \"$m\" {MANIFEST} && rm -f \"$m\"")
    files = listing(node, *STATE)
    run = change(node, "enable", "--profile", "minimal", timeout=3)
    tries += 1
    assert run.code == 2 and "free" in run.node["message"], run.node
    _unchanged(node, before, files)
    survived += 1
    node.run("umount /etc/kubernetes/manifests")
    tally("disk full (state dir / manifests dir)", tries, survived, 0 if node_manifest(node) == before else 1)


def test_read_only_filesystem_is_refused_and_nothing_changes(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    node.run("mount -o remount,bind,ro /etc/kubernetes")
    try:
        files = listing(node, "/etc/kubernetes")
        run = change(node, "enable", "--profile", "minimal", timeout=3)
        assert run.code == 2, run.out + run.err
        assert "not changed" in run.node["message"] or "read-only" in run.node["message"], run.node
        guard_done(node)
        assert node_manifest(node) == before and listing(node, "/etc/kubernetes") == files
        healthy_with(node, before)
        assert lock_free(node)
    finally:
        node.run("mount -o remount,bind,rw /etc/kubernetes")
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0, run.out
    tally("read-only /etc/kubernetes", 1, 1, 0)


def test_manifests_directory_on_its_own_mount(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    node.run(f"cp -p {MANIFEST} /tmp/m && mount -t tmpfs -o size=64m,mode=755 tmpfs /etc/kubernetes/manifests && "
             f"cp -p /tmp/m {MANIFEST}")
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0, run.out + run.err
    after = node_manifest(node)
    assert after != before
    healthy_with(node, after)
    assert node.run("ls -A /etc/kubernetes/manifests").stdout.split() == ["kube-apiserver.yaml"]
    run = change(node, "disable", timeout=10)
    assert run.code == 0 and node_manifest(node) == before
    tally("manifests dir on a different mount", 2, 2, 0)


def test_manifest_changed_by_someone_else_between_read_and_write(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    theirs = manifest_of(node) + b"# edited by someone else\n"

    def edit(t: Transport, k: int) -> None:
        if k == 2:  # right after the preflight read (command 1 reads the node's flavor marks)
            node.path(MANIFEST).write_bytes(theirs)

    r, _ = rollout(node, plan_enable, lambda t: EnableInput(PolicySource.of_profile("minimal")), after_command=edit)
    assert not r.ok and r.exit_code == 2 and "changed by someone else" in r.message, r.message
    assert manifest_of(node) == theirs  # their edit survives, nothing of ours was written
    guard_done(node)
    assert manifest_of(node) == theirs
    r, _ = rollout(node, plan_enable, lambda t: EnableInput(PolicySource.of_profile("minimal")), timeout=10)
    assert r.ok and b"# edited by someone else" in manifest_of(node)
    tally("manifest changed between read and write", 1, 1, 0)


def test_policy_file_replaced_by_someone_else(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    original = manifest_of(node)
    assert change(node, "enable", "--profile", "minimal", timeout=10).code == 0
    enabled = manifest_of(node)
    policy = next(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    good = policy.read_bytes()
    assert policy.name == f"policy-{hashlib.sha256(good).hexdigest()[:12]}.yaml"
    policy.write_bytes(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    # A change would back the replaced file up as kaudit's: refused, with the file named.
    run = change(node, "switch", "--profile", "cis", timeout=10)
    assert run.code == 2 and "changed by someone else" in run.node["message"] and policy.name in run.node["message"]
    assert manifest_of(node) == enabled
    policy.write_bytes(good)  # the operator puts it back
    # Switch, then roll back to the enabled state: the backup's policy (the real one) comes back.
    assert change(node, "switch", "--profile", "cis", timeout=10).code == 0
    run = change(node, "rollback", timeout=10)
    assert run.code == 0, run.out
    assert manifest_of(node) == enabled
    assert policy.read_bytes() == good, "the backup's policy was not restored"
    assert change(node, "disable", timeout=10).code == 0 and manifest_of(node) == original
    tally("policy file replaced by someone else", 1, 1, 0)


def test_stale_lock_is_refused_with_its_holder_and_broken_on_request(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1)
    before = manifest_of(node)
    node.run("mkdir -p /var/lib/kaudit && chmod 700 /var/lib/kaudit && "
             "setsid sh -c 'exec 9>>/var/lib/kaudit/lock; flock 9; "
             "echo \"kaudit by bob@laptop since 09:00:00Z (pid $$)\" > /var/lib/kaudit/lock.holder; "
             "exec sleep 600' </dev/null >/dev/null 2>&1 &")
    node.wait_for(lambda: node.path("/var/lib/kaudit/lock.holder").exists(), 5)
    run = change(node, "enable", "--profile", "minimal", timeout=3)
    assert run.code == 2 and "bob@laptop" in run.node["message"], run.node
    assert manifest_of(node) == before
    run = change(node, "enable", "--profile", "minimal", "--break-lock", timeout=10)
    assert run.code == 0, run.out
    assert not node.run("ps -eo args | grep -x 'sleep 600'", check=False).stdout.strip()
    assert lock_free(node)
    tally("stale lock (refused, then --break-lock)", 2, 2, 0)


def test_kubelet_static_pod_path_elsewhere(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.1, restart_delay=0.1, kubelet_static_pod_path="/etc/kubernetes/static")
    path = "/etc/kubernetes/static/kube-apiserver.yaml"
    before = node.path(path).read_bytes()
    run = change(node, "enable", "--profile", "minimal", timeout=10)
    assert run.code == 0, run.out + run.err
    after = node.path(path).read_bytes()
    assert after != before and b"--audit-policy-file" in after
    healthy_with(node, after)
    assert not node.path("/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
    assert change(node, "disable", timeout=10).code == 0
    assert node.path(path).read_bytes() == before
    tally("kubelet staticPodPath elsewhere", 2, 2, 0)
