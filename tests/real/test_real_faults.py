"""Faults on the real node: a change the real API server cannot start with is restored; the SSH connection
cut during the await leaves it to the node's guard; the new API server killed mid-await."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import change
from tests.userinstall import kaudit_argv, user_env


def _wait(pred, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.time() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def test_an_unwritable_audit_log_directory_is_restored(fresh_node: RealNode) -> None:
    """kube-apiserver opens its audit log at start (ensureLogFile): on an immutable directory it exits
    and the kubelet crash-loops it. kaudit restores the kubeadm manifest and says what went wrong."""
    node = fresh_node
    assert node.node is not None
    original = node.node.path(kube.MANIFEST).read_bytes()
    logdir = node.node.path("/var/log/kubernetes/audit")
    logdir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(logdir)], check=True)
    try:
        old = {p["pid"] for p in kube.apiservers(node)}
        run = change(node, "enable", "--profile", "minimal", timeout=60)
        assert run.code == 1, (run.code, run.out, run.err)
        assert node.node.path(kube.MANIFEST).read_bytes() == original
        assert "audit" in (run.out + run.err).lower()
        new = kube.wait_new_apiserver(node, 0)
        assert not any(a.startswith("--audit-") for a in new["argv"])
        assert old  # the API server before the change ran; after the restore one runs, healthy
        assert node.api_ready()
    finally:
        subprocess.run(["chattr", "-i", str(logdir)], check=False)


def test_ssh_cut_during_await_leaves_it_to_the_guard(fresh_node: RealNode) -> None:
    """kaudit killed (SIGKILL: its SSH connection drops) while awaiting the new API server: the node's
    guard restores the kubeadm manifest once --timeout + --guard-grace have passed; the real API server
    comes back healthy without the audit flags."""
    node = fresh_node
    assert node.node is not None
    manifest = node.node.path(kube.MANIFEST)
    original = manifest.read_bytes()
    target = node.node.target("kadmin")
    proc = subprocess.Popen([*kaudit_argv(), "enable", target, "-i", str(node.node.key_path), "--known-hosts",
                             str(node.node.known_hosts), "--yes", "--profile", "minimal", "--timeout", "20",
                             "--guard-grace", "5"], env=user_env(None), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(lambda: manifest.read_bytes() != original, 60, "kaudit's write")
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    cut = time.time()
    _wait(lambda: manifest.read_bytes() == original, 90, "the guard's restore")
    restored_at = time.time()
    restored = restored_at - cut
    # The instance the restored manifest starts: the kubelet may still have started the audited one after
    # the cut (a slow kubelet under load), so only an instance started after the restore counts.
    new = kube.wait_new_apiserver(node, restored_at + 1)
    assert not any(a.startswith("--audit-") for a in new["argv"])
    kube.TIMELINES.append({"what": "guard restore after SSH cut", "seconds_after_cut": round(restored, 1)})


def test_new_api_server_killed_mid_await(fresh_node: RealNode) -> None:
    """The new kube-apiserver container SIGKILLed as soon as it runs: the kubelet restarts the container;
    kaudit still confirms a new, ready instance with the audit flags (exit 0)."""
    node = fresh_node
    assert node.node is not None
    old = {p["pid"] for p in kube.apiservers(node)}
    target = node.node.target("kadmin")
    proc = subprocess.Popen([*kaudit_argv(), "enable", target, "-i", str(node.node.key_path), "--known-hosts",
                             str(node.node.known_hosts), "--yes", "--profile", "minimal", "--timeout", "150",
                             "-o", "json"], env=user_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    new = _wait(lambda: [p for p in kube.apiservers(node) if p["pid"] not in old], 120, "a new kube-apiserver")
    node.run(f"kill -9 {new[-1]['pid']}", check=False)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    [now] = kube.apiservers(node)
    assert now["pid"] != new[-1]["pid"] and "audit-policy-file" in kube.flags(now["argv"])
    assert node.api_ready()
