"""What kaudit keeps on a node over many operations, and how it reaches nodes that need more than a bare target."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import NodeFactory
from tests.kaudit_cli import change, kaudit, on
from tests.paths import ROOT
from tests.userinstall import kaudit_argv

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def test_backups_rotate_keeping_the_pinned_original_and_only_kaudits_unreferenced_policies_go(
        node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.0, restart_delay=0.0, start_delay=0.0)
    original = node.path(MANIFEST).read_bytes()
    stray = node.path("/etc/kubernetes/audit/policy-000000000000.yaml")
    profiles = ["minimal", "cis"] * 5 + ["minimal"]  # 11 changes: one more than is kept
    for i, profile in enumerate(profiles):
        run = change(node, "enable", "--profile", profile)
        assert run.code == 0, run.out
        if i == 0:
            stray.write_text("someone else's file, named like kaudit's\n")
    backups = sorted(p.name for p in node.path("/var/lib/kaudit/backups").iterdir())
    assert "original" in backups
    assert len([b for b in backups if b != "original"]) == 10
    assert node.path("/var/lib/kaudit/backups/original/manifest").read_bytes() == original
    # kaudit's own policies go once nothing refers to them; a file kaudit never wrote stays, even
    # when it is named like kaudit's (e.g. placed where `kaudit export` said).
    policies = sorted(p.name for p in node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    assert "policy-000000000000.yaml" in policies
    assert stray.read_text() == "someone else's file, named like kaudit's\n"
    assert len(policies) == 3, policies  # minimal and cis, both referenced, and the stray
    for p in node.path("/etc/kubernetes/audit").glob("policy-*.yaml"):
        if p != stray:
            assert oct(p.stat().st_mode & 0o777) == "0o600"
    # The pinned original still restores byte for byte.
    assert change(node, "rollback", "--to", "original").code == 0
    assert node.path(MANIFEST).read_bytes() == original


def test_readyz_without_anonymous_auth_uses_the_admin_kubeconfig(node_factory: NodeFactory) -> None:
    seeded = node_factory(ready_timeout=10)
    manifest = seeded.path(MANIFEST).read_text()
    seeded.stop()
    locked = manifest.replace("    - --allow-privileged=true\n", "    - --allow-privileged=true\n"
                              "    - --anonymous-auth=false\n")
    assert locked != manifest
    node = node_factory(locked.encode(), rewrite=False)
    status = on(node, "status", "--output", "json")
    assert status.code == 0
    assert status.node["readyz"]["ready"] and status.node["readyz"]["via"] == "admin-token"
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 0, run.out
    assert run.node["verify"]["verified"] is True


def test_ssh_config_alias_through_an_include(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "cp.conf").write_text(
        f"Host cp-test\n  HostName {node.host}\n  Port {node.ssh_port}\n  User kadmin\n"
        f"  IdentityFile {node.key_path}\n  UserKnownHostsFile {node.known_hosts}\n"
    )
    config = tmp_path / "config"
    config.write_text(f"Include {tmp_path}/conf.d/*.conf\n\nHost *\n  ServerAliveInterval 30\n")
    run = kaudit("status", "cp-test", "-F", str(config), "--output", "json")
    assert run.code == 0, run.out + run.err
    assert run.node["ok"] and run.node["node"] == "cp-test"



def test_proxyjump_through_a_bastion(node_factory: NodeFactory, tmp_path: Path) -> None:
    """The control plane is reached through a jump host (ProxyJump), as on most private networks."""
    bastion, cp = node_factory(), node_factory()
    known = tmp_path / "known_hosts"
    known.write_text(bastion.known_hosts.read_text() + cp.known_hosts.read_text())
    config = tmp_path / "config"
    config.write_text(
        f"Host bastion\n  HostName {bastion.host}\n  Port {bastion.ssh_port}\n  User kadmin\n"
        f"  IdentityFile {bastion.key_path}\n\n"
        f"Host cp1\n  HostName {cp.host}\n  Port {cp.ssh_port}\n  User kadmin\n  IdentityFile {cp.key_path}\n"
        "  ProxyJump bastion\n"
    )
    run = kaudit("status", "cp1", "-F", str(config), "--known-hosts", str(known), "--output", "json")
    assert run.code == 0, run.out + run.err
    assert run.node["ok"] and run.node["api_server"]["pid"] == cp.current_instance()["pid"]  # type: ignore[index]
    # The way in went through the bastion: kaudit logged in there (and only tunnelled through it).
    assert "Accepted publickey for kadmin" in bastion.sshd_log()
    assert "Starting session" not in bastion.sshd_log()


def test_local_target_on_the_node_itself(node_factory: NodeFactory) -> None:
    """`kaudit enable local`, run as root on the control-plane node (no SSH)."""
    import json
    import shlex

    node = node_factory()
    original = node.path(MANIFEST).read_bytes()
    repo = ROOT
    kaudit_cmd = f"cd {shlex.quote(str(repo))} && {shlex.quote(kaudit_argv()[0])}"
    run = node.run(f"{kaudit_cmd} enable local --profile minimal --yes --output json --timeout 10 </dev/null",
                   check=False, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)["nodes"][0]
    assert result["node"] == "local" and result["action"] == "enabled"
    assert result["verify"]["verified"] is True
    run = node.run(f"{kaudit_cmd} disable local --yes --output json --timeout 10 </dev/null", check=False, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert node.path(MANIFEST).read_bytes() == original
