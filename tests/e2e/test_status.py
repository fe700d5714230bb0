"""`kaudit status` over real SSH, and every way reaching a node can fail (issue 2, items 7-8)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from tests.conftest import NodeFactory
from tests.corpus_files import MANIFESTS as CORPUS
from tests.kaudit_cli import kaudit, on
from tests.node.node import TestNode
from tests.userinstall import kaudit_argv

HAND_AUDITED = CORPUS / "002-kubeadm-v1.28-already-audited-inline-comments.yaml"
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
POLICY = b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def test_status_of_an_unaudited_node(module_node: TestNode) -> None:
    run = on(module_node, "status", "--output", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["schemaVersion"] == 2 and doc["command"] == "status"
    s = run.node
    assert s["ok"] and s["audit_enabled"] is False and s["managed_by_kaudit"] is False
    assert s["manifest_path"] == MANIFEST
    assert s["manifest_sha256"] == hashlib.sha256(module_node.path(MANIFEST).read_bytes()).hexdigest()
    assert s["kubernetes_version"] == "1.30"
    assert s["api_server"]["running"] and s["api_server"]["pid"] == module_node.current_instance()["pid"]  # type: ignore[index]
    assert s["readyz"]["ready"] and s["readyz"]["url"] == f"https://127.0.0.1:{module_node.api_port}/readyz"
    assert s["problems"] == []
    text = on(module_node, "status")
    assert "auditing: off" in text.out and "readiness: ready" in text.out
    assert "runs without audit flags" in text.out


def test_status_of_a_hand_audited_node(node_factory: NodeFactory) -> None:
    node = node_factory(HAND_AUDITED.read_bytes(), extra_files={"/etc/kubernetes/audit/policy.yaml": POLICY})
    node.wait_ready(15)
    run = on(node, "status", "--output", "json")
    assert run.code == 0, run.err
    s = run.node
    assert s["audit_enabled"] is True and s["managed_by_kaudit"] is False
    assert s["audit_flags"]["--audit-policy-file"] == "/etc/kubernetes/audit/policy.yaml"
    assert s["audit_flags"]["--audit-log-maxsize"] == "5"
    policy = next(p for p in s["paths"] if p["flag"] == "--audit-policy-file")
    assert policy["reachable"] and policy["host_path"] == "/etc/kubernetes/audit/policy.yaml"
    assert policy["sha256"] == hashlib.sha256(POLICY).hexdigest()
    assert policy["text"] == POLICY.decode()  # the policy's own bytes (the diff's "before" side)
    log = next(p for p in s["paths"] if p["flag"] == "--audit-log-path")
    assert log["reachable"] and log["mount_is_directory"] is True
    # The log is sized, never read through: it can be hundreds of MB.
    log_file = node.path(log["host_path"])
    assert log["sha256"] is None and log["text"] is None and isinstance(log["size"], int)
    assert 0 <= log["size"] <= log_file.stat().st_size  # the simulator keeps appending events
    assert s["foreign"], "kaudit says what it did not add"
    api = s["api_server"]
    assert api["running"] and api["flags_match_manifest"] is True and api["started_after_policy"] is True
    assert api["audit_flags"]["--audit-log-maxbackup"] == "1"
    text = on(node, "status")
    assert "configured NOT by kaudit" in text.out
    assert "carries the manifest's audit flags" in text.out
    # Someone edits the policy after the API server started: it still runs the old one (no reload).
    node.run("touch -d '+10 seconds' /etc/kubernetes/audit/policy.yaml")
    later = on(node, "status", "--output", "json")
    assert later.node["api_server"]["started_after_policy"] is False
    assert any("started before its policy file was written" in p for p in later.node["problems"])


def test_status_flags_a_log_file_mount_and_an_unmounted_policy(node_factory: NodeFactory) -> None:
    manifest = HAND_AUDITED.read_text()
    # Mount the log file itself (rotation breaks) and point the policy outside every mount.
    manifest = manifest.replace("--audit-policy-file=/etc/kubernetes/audit/policy.yaml",
                                "--audit-policy-file=/srv/policy.yaml")
    manifest = manifest.replace("--audit-log-path=/etc/kubernetes/audit/logs/audit.log",
                                "--audit-log-path=/var/log/audit.log")
    manifest = manifest.replace("    - mountPath: /etc/kubernetes/audit      # audit logging\n",
                                "    - mountPath: /var/log/audit.log\n      name: logfile\n"
                                "    - mountPath: /etc/kubernetes/audit      # audit logging\n")
    manifest = manifest.replace("  - hostPath:                               # audit logging\n",
                                "  - hostPath:\n      path: /var/log/audit.log\n      type: FileOrCreate\n"
                                "    name: logfile\n  - hostPath:                               # audit logging\n")
    node = node_factory(manifest.encode(), ready_timeout=5)
    run = on(node, "status", "--output", "json")
    assert run.code == 0, run.err
    problems = " | ".join(run.node["problems"])
    assert "/srv/policy.yaml is not under any hostPath mount" in problems
    assert "mounted as a file" in problems


@pytest.fixture
def stopped_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line(run_err: str, run_out: str) -> str:
    lines = [line for line in run_out.splitlines() if line.strip()]
    assert len(lines) == 1, run_out
    return lines[0]


def test_refused_connection(stopped_port: int) -> None:
    run = kaudit("status", f"kadmin@127.0.0.1:{stopped_port}")
    assert run.code == 2
    line = _one_line(run.err, run.out)
    assert line.startswith(f"kadmin@127.0.0.1:{stopped_port}: ERROR") and "connection refused" in line


def test_unreachable_host() -> None:
    run = kaudit("status", "kadmin@no-such-host.invalid")
    assert run.code == 2 and "cannot resolve host no-such-host.invalid" in _one_line(run.err, run.out)


def test_wrong_key(module_node: TestNode, tmp_path: Path) -> None:
    import subprocess

    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    run = kaudit("status", module_node.target(), "-i", str(key), "--known-hosts", str(module_node.known_hosts))
    assert run.code == 2 and "authentication failed for user kadmin" in _one_line(run.err, run.out)


def test_unknown_host_key_is_refused_then_accepted_explicitly(module_node: TestNode, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    run = kaudit("status", module_node.target(), "-i", str(module_node.key_path), "--known-hosts", str(known))
    line = _one_line(run.err, run.out)
    assert run.code == 2 and "unknown host key" in line and module_node.host_key_fingerprint in line
    assert not known.exists()
    run = kaudit("status", module_node.target(), "-i", str(module_node.key_path), "--known-hosts", str(known),
                 "--accept-new-host-key")
    assert run.code == 0, run.out
    assert f"[127.0.0.1]:{module_node.ssh_port}" in known.read_text()
    run = kaudit("status", module_node.target(), "-i", str(module_node.key_path), "--known-hosts", str(known))
    assert run.code == 0


def test_changed_host_key_is_always_refused(module_node: TestNode, tmp_path: Path) -> None:
    import subprocess

    other = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = (tmp_path / "hostkey.pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{module_node.ssh_port} {pub[0]} {pub[1]}\n")
    for extra in ([], ["--accept-new-host-key"]):
        run = kaudit("status", module_node.target(), "-i", str(module_node.key_path), "--known-hosts", str(known),
                     *extra)
        line = _one_line(run.err, run.out)
        assert run.code == 2 and "HOST KEY CHANGED" in line and module_node.host_key_fingerprint in line


def test_user_without_sudo(module_node: TestNode) -> None:
    run = on(module_node, "status", user="knosudo")
    assert run.code == 2 and "may not use sudo" in _one_line(run.err, run.out)


def test_sudo_with_password_on_stdin(module_node: TestNode) -> None:
    from tests.node.node import SUDO_PASSWORD

    run = on(module_node, "status", "--sudo-password-stdin", "--output", "json", user="kpw",
             stdin=SUDO_PASSWORD + "\n")
    assert run.code == 0, run.out
    assert SUDO_PASSWORD not in run.out + run.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, f"no manifest at {MANIFEST}"),
        (b"kind: Pod\napiVersion: v1\nmetadata: {name: x\n", "not valid YAML"),
        (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
         "not a v1 Pod (apiVersion 'v1', kind 'ConfigMap')"),
        (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers:\n  - name: etcd\n"
         b"    image: registry.k8s.io/etcd:3.5.12-0\n    command: [etcd]\n", "no container runs kube-apiserver"),
    ],
)
def test_bad_manifests_are_reported_and_left_alone(node_factory: NodeFactory, content: bytes | None,
                                                   message: str) -> None:
    node = node_factory(ready_timeout=5)
    path = node.path(MANIFEST)
    if content is None:
        path.unlink()
    else:
        path.write_bytes(content)
    before = sorted(p.name for p in node.path("/etc/kubernetes").rglob("*"))
    run = on(node, "status")
    assert run.code == 2
    line = _one_line(run.err, run.out)
    assert line.startswith(f"{node.target()}: ERROR") and message in line, line
    assert sorted(p.name for p in node.path("/etc/kubernetes").rglob("*")) == before
    if content is not None:
        assert path.read_bytes() == content


def test_status_names_the_last_kaudit_change_and_who_made_it(node_factory: NodeFactory) -> None:
    import getpass
    import socket

    from tests.kaudit_cli import change

    node = node_factory()
    assert on(node, "status", "--output", "json").node["last_change"] is None
    run = change(node, "enable", "--profile", "cis")
    assert run.code == 0, run.out
    last = on(node, "status", "--output", "json").node["last_change"]
    assert last["id"] == run.node["backup"] and last["op"] == "enable"
    assert last["summary"] == "enable auditing with profile cis"
    assert last["by"] == f"{getpass.getuser()}@{socket.gethostname()}"
    text = on(node, "status").out
    assert "last kaudit change: " in text and f"(backup {run.node['backup']}, by {last['by']})" in text


def test_status_tells_what_became_of_a_change_kaudit_could_not_finish(node_factory: NodeFactory) -> None:
    """The operator's laptop dies mid-change: `status` says the change is pending under the guard,
    then that the guard restored it; with the guard gone too (a reboot), it is a problem to act on."""
    import subprocess

    from tests.faults import guard_done
    from tests.kaudit_cli import change, ssh_args

    node = node_factory()
    original = node.path(MANIFEST).read_bytes()
    node.configure(never_ready=True)  # the new instance never becomes ready: kaudit stays in its wait

    def enable_then_die() -> None:
        proc = subprocess.Popen([*kaudit_argv(), "enable", node.target(), *ssh_args(node),
                                 "--profile", "minimal", "--yes", "--timeout", "3", "--guard-grace", "10"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        node.wait_for(lambda: node.path(MANIFEST).read_bytes() != original, 30, what="the manifest to change")
        proc.kill()
        proc.wait()

    enable_then_die()
    pending = on(node, "status", "--output", "json").node
    left = pending["unfinished"]
    assert left["state"] == "begin" and left["summary"] == "enable auditing with profile minimal"
    assert left["guard_pid"] and left["manifest_is_its_result"] is True
    assert not any("never confirmed" in p for p in pending["problems"])  # the guard has it in hand
    assert f"the node's guard (pid {left['guard_pid']}) restores the backup" in on(node, "status").out
    guard_done(node, 30)  # its deadline: 13 s after the write (long enough for the status calls above)
    restored = on(node, "status", "--output", "json").node["unfinished"]
    assert restored["state"] == "guard-restored" and restored["id"] == left["id"]
    assert node.path(MANIFEST).read_bytes() == original
    # Again, and this time the guard dies with it (as in a reboot): nothing will undo the change.
    enable_then_die()
    node.run("kill -9 $(cut -d' ' -f1 /var/lib/kaudit/guard.pid)")
    orphan = on(node, "status", "--output", "json").node
    assert orphan["unfinished"]["guard_pid"] is None
    assert "no guard is left to undo it" in on(node, "status").out
    advice = f"kaudit rollback --to {orphan['unfinished']['id']}"
    assert any("written but never confirmed" in p and advice in p for p in orphan["problems"]), orphan["problems"]
    node.configure(never_ready=False)
    plain = change(node, "rollback", "--dry-run")  # "undo the last kaudit operation" means this one too
    assert plain.code == 0 and f"restore backup {orphan['unfinished']['id']}" in plain.node["message"], plain.out
    undo = change(node, *advice.split()[1:])
    assert undo.code == 0, undo.out
    assert node.path(MANIFEST).read_bytes() == original
    assert on(node, "status", "--output", "json").node["unfinished"] is None
