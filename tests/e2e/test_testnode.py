"""The test node itself: real sshd, users and sudo rules, its own files and processes (docs/design.md §6)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from pathlib import Path

import paramiko
import pytest

from tests.node import SUDO_PASSWORD, USERS, TestNode


def _client(node: TestNode, user: str) -> paramiko.SSHClient:
    c = paramiko.SSHClient()
    c.load_host_keys(str(node.known_hosts))
    c.set_missing_host_key_policy(paramiko.RejectPolicy())  # the known_hosts line must match
    c.connect(node.host, node.ssh_port, username=user, key_filename=str(node.key_path),
              look_for_keys=False, allow_agent=False, timeout=10)
    return c


def _exec(c: paramiko.SSHClient, cmd: str, stdin: str | None = None, pty: bool = False) -> tuple[int, str, str]:
    i, o, e = c.exec_command(cmd, get_pty=pty, timeout=20)
    if stdin is not None:
        i.write(stdin)
        i.channel.shutdown_write()
    out, err = o.read().decode(), e.read().decode()
    return o.channel.recv_exit_status(), out, err


@pytest.mark.parametrize("user", USERS)
def test_every_user_logs_in_with_the_test_key(module_node: TestNode, user: str) -> None:
    with _client(module_node, user) as c:
        rc, out, _ = _exec(c, "id -un; echo $HOME")
    assert rc == 0
    name, home = out.split()
    assert name == user
    assert home == ("/root" if user == "root" else f"/home/{user}")


def test_host_key_matches_known_hosts_and_fingerprint(module_node: TestNode) -> None:
    with _client(module_node, "kadmin") as c:
        key = c.get_transport().get_remote_server_key()  # type: ignore[union-attr]
    fp = "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    assert fp == module_node.host_key_fingerprint
    line = module_node.known_hosts.read_text().strip()
    assert line.startswith(f"[127.0.0.1]:{module_node.ssh_port} ssh-ed25519 ")


def test_unknown_key_and_password_are_refused(module_node: TestNode, tmp_path: Path) -> None:
    other = tmp_path / "other"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        c.connect(module_node.host, module_node.ssh_port, username="kpw", key_filename=str(other),
                  look_for_keys=False, allow_agent=False, timeout=10)
    c.close()
    c = paramiko.SSHClient()
    c.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):  # PasswordAuthentication no
        c.connect(module_node.host, module_node.ssh_port, username="kpw", password=SUDO_PASSWORD,
                  look_for_keys=False, allow_agent=False, timeout=10)
    c.close()


def test_sudo_rules(module_node: TestNode) -> None:
    with _client(module_node, "kadmin") as c:
        assert _exec(c, "sudo -n id -u")[:2] == (0, "0\n")
    with _client(module_node, "kpw") as c:
        rc, _, err = _exec(c, "sudo -n true")
        assert rc != 0 and "password is required" in err
        rc, out, _ = _exec(c, "sudo -S -p '' id -u", stdin=SUDO_PASSWORD + "\n")
        assert (rc, out) == (0, "0\n")
        rc, _, _ = _exec(c, "sudo -S -p '' true", stdin="wrong\n")
        assert rc != 0
        # timestamp_timeout=0: a later command asks again (no cached credentials between tests)
        assert _exec(c, "sudo -n true")[0] != 0
    with _client(module_node, "ktty") as c:
        rc, _, err = _exec(c, "sudo -n true")
        assert rc != 0 and "tty" in err
        rc, out, _ = _exec(c, "sudo -n id -u", pty=True)
        assert rc == 0 and out.strip() == "0"
    with _client(module_node, "knosudo") as c:
        assert _exec(c, "sudo -n true")[0] != 0
        assert _exec(c, "cat /etc/kubernetes/manifests/kube-apiserver.yaml")[0] != 0  # 0600 root


def test_openssh_client_works_too(module_node: TestNode) -> None:
    r = module_node.ssh("kadmin", "sudo -n cat /etc/kubernetes/manifests/kube-apiserver.yaml")
    assert r.returncode == 0, r.stderr
    assert f"--secure-port={module_node.api_port}" in r.stdout


def test_sshd_log_counts_connections_and_commands(module_node: TestNode) -> None:
    before = module_node.sshd_log()
    with _client(module_node, "kadmin") as c:
        _exec(c, "true")
        _exec(c, "true")
    log = module_node.wait_for(lambda: module_node.sshd_log() if module_node.sshd_log() != before else "", 5)
    new = log[len(before):]
    assert new.count("Accepted publickey for kadmin") == 1
    assert new.count("Starting session: command for kadmin") == 2


def test_node_paths_and_run(module_node: TestNode) -> None:
    host_file = module_node.path("/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert host_file.is_relative_to(module_node.base)
    inside = module_node.run("cat /etc/kubernetes/manifests/kube-apiserver.yaml").stdout
    assert inside == host_file.read_text()
    assert module_node.path("/usr/bin/env") == Path("/usr/bin/env")  # shared with the host
    assert module_node.run("false", check=False).returncode == 1


def test_seeded_kubernetes_files(module_node: TestNode) -> None:
    text = module_node.path("/etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    assert text.startswith("# kube-apiserver static pod")  # comments survive seeding
    assert "10.0.0.10" not in text and ":6443" not in text and "port: 6443" not in text
    assert f"advertise-address.endpoint: 127.0.0.1:{module_node.api_port}" in text
    admin = module_node.path("/etc/kubernetes/admin.conf").read_text()
    assert module_node.admin_token in admin
    assert module_node.path("/etc/kubernetes/pki/apiserver.crt").exists()
    assert "staticPodPath: /etc/kubernetes/manifests" in module_node.path("/var/lib/kubelet/config.yaml").read_text()


def test_nodes_are_isolated(node_factory) -> None:  # type: ignore[no-untyped-def]
    a, b = node_factory(), node_factory()
    assert len({a.ssh_port, a.api_port, b.ssh_port, b.api_port}) == 4
    a.path("/etc/kubernetes/marker-a").write_text("a")
    assert b.ssh("root", "test -e /etc/kubernetes/marker-a").returncode == 1
    assert a.ssh("root", "cat /etc/kubernetes/marker-a").stdout == "a"
    assert not Path("/etc/kubernetes/marker-a").exists()  # the host's own directory is untouched
    assert "kadmin" not in Path("/etc/passwd").read_text()
    # Each node's process table holds only its own processes: one API server, on its own port.
    for node in (a, b):
        ps = node.ssh("kadmin", "ps -eo pid=,args=").stdout
        apis = [line for line in ps.splitlines() if line.split()[1] == "kube-apiserver"]
        assert len(apis) == 1, ps
        assert f"--secure-port={node.api_port}" in apis[0]
        assert "bin/pytest" not in ps and "init.py" in ps.splitlines()[0]  # PID 1 is the node's init
    assert a.request("/readyz")[0] == b.request("/readyz")[0] == 200


def test_stop_is_idempotent_and_takes_everything_down(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    pid = node.init_pid
    node.stop()
    node.stop()
    assert pid is not None and not Path(f"/proc/{pid}").exists()
    for port in (node.ssh_port, node.api_port):
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(0.5)
            s.connect(("127.0.0.1", port))


@pytest.mark.e2e
def test_context_manager(tmp_path: Path) -> None:
    from tests.node import missing_requirements

    if missing_requirements():
        pytest.skip(missing_requirements() or "")
    with TestNode.start(tmp_path / "n") as node:
        assert node.wait_ready(5)["pid"]
        pid = node.init_pid
    assert not Path(f"/proc/{pid}").exists()
