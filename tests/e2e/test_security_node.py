"""Security, issue 23: what a local user, an odd sudo set-up or a corrupted state directory could make
kaudit do to a node, from the user's install. Each test names its item of the issue. The log-reading
side (masking, crafted events, escapes, odd log files, --save) is in test_security_logs.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.scripts import load
from installer.scripts.exitcodes import ScriptExit
from tests.conftest import NodeFactory
from tests.faults import MANIFEST, journal, manifest_of
from tests.kaudit_cli import change, kaudit, on
from tests.node.node import TestNode
from tests.standins import Recorder401


def node_uid(node: TestNode, name: str) -> int:
    """A user of the node (its own /etc/passwd)."""
    for line in node.path("/etc/passwd").read_text().splitlines():
        if line.split(":")[0] == name:
            return int(line.split(":")[2])
    raise KeyError(name)


# ------------------------------------------------------------ 1: a password sudo never asks for


@pytest.mark.parametrize("password", ["", "Passw0rd"])
def test_a_sudo_password_for_a_node_whose_sudo_asks_none_never_reaches_the_node(
        node_factory: NodeFactory, password: str) -> None:
    node = node_factory(linger=0.2, restart_delay=0.1)
    original = manifest_of(node)
    run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", stdin=password + "\n")
    assert run.code == 0, run.out + run.err
    enabled = manifest_of(node)
    assert b"--audit-policy-file" in enabled
    run = change(node, "disable", "--sudo-password-stdin", stdin=password + "\n")
    assert run.code == 0, run.out + run.err
    assert manifest_of(node) == original
    for backup in node.path("/var/lib/kaudit/backups").iterdir():
        meta = json.loads((backup / "meta.json").read_text())
        assert meta.get("id") and "state" not in meta, meta  # the meta, not the journal record
    # requiretty and NOPASSWD: the password is not an answer to a prompt that never comes
    run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="ktty",
                 stdin=password + "\n")
    assert run.code == 0, run.out + run.err
    assert manifest_of(node) == enabled


def test_apply_changes_nothing_when_its_input_did_not_arrive_whole(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = manifest_of(node)
    parts = [b"apiVersion: v1\n", b"", b"", b'{"id":"x","state":"begin"}\n', b"{}"]
    sums = " ".join(hashlib.sha256(p).hexdigest() for p in parts)
    import base64

    # what a sudo that reads no password leaves: the password line first, each part one line late
    stdin = b"Passw0rd\n" + b"".join(base64.b64encode(p) + b"\n" for p in parts)
    text, args = load.APPLY.bind(state="/var/lib/kaudit", manifest=MANIFEST,
                                 expect=hashlib.sha256(before).hexdigest(), id="20260101T000000Z-enable-aaaa",
                                 pin="1", policy="", webhook="", guard_secs="5", guard_script="exit 0", logdir="",
                                 sums=sums)
    proc = node_sh(node, text, args, stdin)
    assert proc.returncode == ScriptExit.PAYLOAD, proc
    assert manifest_of(node) == before
    assert not node.path("/var/lib/kaudit/journal").exists()
    assert not list(node.path("/var/lib/kaudit").glob("backups/*"))


def node_sh(node: TestNode, text: str, args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["nsenter", "-t", str(node.init_pid), "-m", "-p", "--", "sh", "-c", text, "sh", *args],
                          input=stdin, capture_output=True, timeout=60, check=False)


# ------------------------------------------------------------ 5, 6: directories other users can write


def test_planted_links_in_a_directory_others_can_write_are_refused(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = manifest_of(node)
    audit = node.path("/etc/kubernetes/audit")
    audit.mkdir(exist_ok=True)
    audit.chmod(0o777)
    etcd = node.path("/etc/kubernetes/manifests/etcd.yaml")
    etcd.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: etcd}\n")
    etcd_before = etcd.read_bytes()
    rendered = on(node, "render", "minimal").out  # anyone can compute the policy's name
    name = f"policy-{hashlib.sha256(rendered.encode()).hexdigest()[:12]}.yaml"
    for n in range(2, 40000, 97):  # the temp names a predictable `$$` would give
        (audit / f".{name}.kaudit-tmp.{n}").symlink_to("/etc/kubernetes/manifests/etcd.yaml")
    run = change(node, "enable", "--profile", "minimal")
    assert run.code != 0, run.out
    message = run.node["message"]
    assert "/etc/kubernetes/audit is writable by every user" in message and "nothing was changed" in message
    assert etcd.read_bytes() == etcd_before and manifest_of(node) == before
    audit.chmod(0o755)  # fixed by the operator: the planted links are harmless with random temp names
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 0, run.out + run.err
    assert etcd.read_bytes() == etcd_before


def test_a_log_directory_another_user_owns_is_refused(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.2, restart_delay=0.1)
    kpw = node_uid(node, "kpw")  # an unprivileged user of the node
    before = manifest_of(node)
    logs = node.path("/var/log/kubernetes")
    logs.mkdir(exist_ok=True)
    (logs / "audit").mkdir(exist_ok=True)
    (logs / "audit" / "audit.log").write_text("")
    for p in (logs, logs / "audit", logs / "audit" / "audit.log"):
        os.chown(p, kpw, kpw)
    run = change(node, "enable", "--profile", "minimal")
    assert run.code != 0, run.out
    assert f"/var/log/kubernetes is owned by uid {kpw}, not root" in run.node["message"]
    assert manifest_of(node) == before
    # made the user's after kaudit enabled auditing: status says so
    for p in (logs, logs / "audit", logs / "audit" / "audit.log"):
        os.chown(p, 0, 0)
    assert change(node, "enable", "--profile", "minimal").code == 0
    os.chown(logs / "audit", kpw, kpw)
    st = on(node, "status")
    assert f"/var/log/kubernetes/audit is owned by uid {kpw}, not root" in st.out, st.out


# ------------------------------------------------------------ 4: a guard whose restore fails


def test_the_guard_journals_a_failed_restore_retries_and_status_tells_the_truth(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.2, restart_delay=0.1)
    original = manifest_of(node)
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 0, run.out + run.err
    enabled = manifest_of(node)
    (ident,) = [r["id"] for r in journal(node) if r.get("state") == "confirmed"]
    # the change as its run left it when the connection went: written, never confirmed
    lines = [ln for ln in node.path("/var/lib/kaudit/journal").read_text().splitlines() if '"confirmed"' not in ln]
    node.path("/var/lib/kaudit/journal").write_text("\n".join(lines) + "\n")
    node.run("chattr +i /etc/kubernetes/manifests")  # the manifests filesystem refuses every write
    try:
        text, args = load.GUARD.bind(state="/var/lib/kaudit", manifest=MANIFEST, id=ident,
                                     new=hashlib.sha256(enabled).hexdigest(), secs="0")
        node.run(f"setsid sh -c {shquote(text)} guard {' '.join(shquote(a) for a in args)} "
                 "</dev/null >/dev/null 2>&1 &")
        node.wait_for(lambda: any(r.get("state") == "guard-restore-failed" for r in journal(node)) or None,
                      timeout=20, what="the guard's failed restore")
        assert not any(r.get("state") == "guard-restored" for r in journal(node))
        assert manifest_of(node) == enabled
        status = on(node, "status")
        assert "could NOT restore the backup" in status.out, status.out
        dry = change(node, "rollback", "--dry-run")
        assert ident in dry.out + dry.err, dry.out + dry.err
    finally:
        node.run("chattr -i /etc/kubernetes/manifests")
    node.wait_for(lambda: any(r.get("state") == "guard-restored" for r in journal(node)) or None,
                  timeout=20, what="the guard's retry")
    assert manifest_of(node) == original


def shquote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# ------------------------------------------------------------ 11: corrupted state


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_lock_that_is_not_a_file_is_reported_at_once(node_factory: NodeFactory, kind: str) -> None:
    node = node_factory()
    before = manifest_of(node)
    node.run("mkdir -p /var/lib/kaudit && " + ("mkfifo" if kind == "fifo" else "mkdir") + " /var/lib/kaudit/lock")
    started = time.monotonic()
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 2, run.out + run.err
    assert "/var/lib/kaudit/lock is not a regular file" in run.node["message"], run.node["message"]
    assert time.monotonic() - started < 30
    assert manifest_of(node) == before


@pytest.mark.parametrize("line", ["[1,2]", "null", "5", '"x"'])
def test_a_journal_line_that_is_not_a_record_does_not_break_rollback(node_factory: NodeFactory, line: str) -> None:
    node = node_factory(linger=0.2, restart_delay=0.1)
    original = manifest_of(node)
    assert change(node, "enable", "--profile", "minimal").code == 0
    with node.path("/var/lib/kaudit/journal").open("a") as f:
        f.write(line + "\n")
    run = change(node, "rollback")
    assert run.code == 0, run.out + run.err
    assert "Traceback" not in run.err and manifest_of(node) == original


@pytest.mark.parametrize("form", ["pid", "pid and another start time"])
def test_a_stale_guard_pid_naming_another_live_process_does_not_block(node_factory: NodeFactory, form: str) -> None:
    node = node_factory(linger=0.2, restart_delay=0.1)
    other = node.run("sleep 600 >/dev/null 2>&1 & echo $!").stdout.strip()
    node.run("mkdir -p /var/lib/kaudit")
    node.path("/var/lib/kaudit/guard.pid").write_text(other + ("\n" if form == "pid" else " 1\n"))
    try:
        run = change(node, "enable", "--profile", "minimal")
        assert run.code == 0, run.out + run.err
    finally:
        node.run(f"kill {other}", check=False)


# ------------------------------------------------------------ 7: the admin token and the probe address


def test_the_admin_token_never_goes_to_a_probe_pointed_elsewhere(node_factory: NodeFactory) -> None:
    from tests.node.seed import DEFAULT_MANIFEST

    anchor = "    - --authorization-mode=Node,RBAC\n"
    node = node_factory(DEFAULT_MANIFEST.replace(anchor, anchor + "    - --anonymous-auth=false\n").encode(),
                        linger=0.2, restart_delay=0.1)
    recorder = Recorder401()
    try:
        text = manifest_of(node).decode()
        start = text.index("readinessProbe:")
        end = text.index("scheme:", start)
        probe = text[start:end]
        pointed = probe.replace(f"port: {node.api_port}", f"port: {recorder.port}")
        assert pointed != probe
        node.path(MANIFEST).write_text(text[:start] + pointed + text[end:])
        time.sleep(1.5)  # the simulator restarts on the manifest change
        before = manifest_of(node)
        status = on(node, "status")
        run = change(node, "enable", "--profile", "minimal", timeout=3)
        # never ready through that probe: restored, and (the restored one is not ready either) exit 3
        assert run.code == 3 and manifest_of(node) == before, run.out + run.err
        assert recorder.requests, "the probe never reached the recorder: this test shows nothing"
        assert recorder.requests == [None] * len(recorder.requests), recorder.requests
        assert status.code == 0
    finally:
        recorder.close()


# ------------------------------------------------------------ 12: unchecked options and ssh_config


@pytest.mark.parametrize(("option", "value"), [("--guard-grace", "-1000"), ("--guard-grace", "0"),
                                               ("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "-5")])
def test_out_of_range_seconds_are_refused(option: str, value: str) -> None:
    run = kaudit("enable", "nowhere.invalid", "--profile", "minimal", "--yes", option, value)
    assert run.code == 2 and f"Invalid value for '{option}'" in run.err and "Traceback" not in run.err, run.err


def _ssh_config(tmp_path: Path, node: TestNode, extra: str, port: str = "") -> str:
    config = tmp_path / "config"
    config.write_text(f"Host cp\n  HostName {node.host}\n  Port {port or node.ssh_port}\n  User kadmin\n{extra}")
    return str(config)


def test_ssh_config_is_honoured_or_refused_never_bypassed(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    args = ["--known-hosts", str(node.known_hosts), "--output", "json"]
    run = kaudit("status", "cp", "-F", _ssh_config(tmp_path, node, "", port="abc"), *args)
    assert run.code == 2 and "Port abc for host cp is not a port number" in run.err + run.out, run.out + run.err
    assert "Traceback" not in run.err
    # IdentitiesOnly: only the configured key, here one the node does not know; never the agent's or ~/.ssh's
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(node.key_path, home / ".ssh" / "id_ed25519")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    env = {"HOME": str(home), "SSH_AUTH_SOCK": ""}
    config = _ssh_config(tmp_path, node, f"  IdentityFile {stranger}\n")
    assert kaudit("status", "cp", "-F", config, *args, env=env).code == 0  # ~/.ssh/id_ed25519 let it in
    config = _ssh_config(tmp_path, node, f"  IdentityFile {stranger}\n  IdentitiesOnly yes\n")
    run = kaudit("status", "cp", "-F", config, *args, env=env)
    assert run.code == 2 and "authentication failed" in run.out + run.err, run.out + run.err
    # ProxyCommand: used (the marker shows it ran), and a failing one is a failure, not a direct connection
    marker = tmp_path / "proxy-ran"
    relay = (f"sh -c 'touch {marker}; exec {sys.executable} -c \""
             "import socket,sys,threading;s=socket.create_connection((sys.argv[1],int(sys.argv[2])));"
             "threading.Thread(target=lambda:[sys.stdout.buffer.write(b) or sys.stdout.flush() "
             "for b in iter(lambda:s.recv(65536),b\\\"\\\")],daemon=True).start();"
             "[s.sendall(b) for b in iter(lambda:sys.stdin.buffer.read1(65536),b\\\"\\\")]\" %h %p'")
    config = _ssh_config(tmp_path, node, f"  IdentityFile {node.key_path}\n  ProxyCommand {relay}\n")
    run = kaudit("status", "cp", "-F", config, *args)
    assert run.code == 0 and marker.exists(), run.out + run.err
    config = _ssh_config(tmp_path, node, f"  IdentityFile {node.key_path}\n  ProxyCommand false\n")
    run = kaudit("status", "cp", "-F", config, *args)
    assert run.code == 2, run.out + run.err


# ------------------------------------------------------------ 13: dangerous log paths


@pytest.mark.parametrize("path", ["/etc/kubernetes/manifests/audit.log", "/audit.log", "/etc/audit.log",
                                  "/var/lib/kaudit/audit.log", "/var/log/audit.log", "/etc/kubernetes/pki/a.log"])
def test_a_log_path_that_would_mount_a_system_directory_is_refused(path: str) -> None:
    run = kaudit("enable", "nowhere.invalid", "--profile", "minimal", "--dry-run", "--log-path", path)
    assert run.code == 2 and "read-write into the API server" in run.err, run.out + run.err


def test_a_log_path_in_a_custom_static_pod_directory_is_refused(node_factory: NodeFactory) -> None:
    node = node_factory(kubelet_static_pod_path="/var/log/static-pods")
    before = node.path(node.manifest_path).read_bytes()
    run = change(node, "enable", "--profile", "minimal", "--log-path", "/var/log/static-pods/x/audit.log")
    assert run.code == 2 and "read-write into the API server" in run.node["message"], run.out
    assert node.path(node.manifest_path).read_bytes() == before


def test_a_flag_value_holding_a_newline_does_not_break_disable(node_factory: NodeFactory) -> None:
    from tests.node.seed import DEFAULT_MANIFEST

    anchor = "    - --authorization-mode=Node,RBAC\n"
    odd = '    - "--service-node-port-range=30000-32767\\n--audit-log-path=/tmp/x"\n'
    node = node_factory(DEFAULT_MANIFEST.replace(anchor, anchor + odd).encode(), linger=0.2, restart_delay=0.1)
    original = manifest_of(node)
    assert change(node, "enable", "--profile", "minimal").code == 0
    run = change(node, "disable")
    assert run.code == 0, run.out + run.err
    assert manifest_of(node) == original
