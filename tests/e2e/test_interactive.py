"""A person at a terminal: the diff and the question on /dev/tty, and Ctrl-C during the wait."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

from tests.conftest import NodeFactory
from tests.kaudit_cli import ssh_args
from tests.node.node import TestNode
from tests.userinstall import kaudit_argv

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def _run_on_a_terminal(args: list[str], answer: bytes, timeout: float = 60) -> tuple[int, str]:
    """Run kaudit with a pty as its controlling terminal; answer its question; return (exit code, screen)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: kaudit on the terminal
        os.execv(kaudit_argv()[0], [*kaudit_argv(), *args])
    screen = b""
    answered = False
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if not answered and b"[y/N]" in screen:
                os.write(fd, answer)
                answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


def test_on_a_terminal_kaudit_shows_the_diff_and_asks(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = node.path(MANIFEST).read_bytes()
    args = ["enable", node.target(), *ssh_args(node), "--profile", "minimal", "--timeout", "10"]
    code, screen = _run_on_a_terminal(args, b"n\n")
    assert code == 2, screen
    assert "--audit-policy-file=/etc/kubernetes/audit/policy-" in screen and "Apply this change" in screen
    assert node.path(MANIFEST).read_bytes() == before
    code, screen = _run_on_a_terminal(args, b"y\n")
    assert code == 0, screen
    assert b"--audit-policy-file" in node.path(MANIFEST).read_bytes()


def _wait_for_change(node: TestNode, before: bytes, timeout: float = 20) -> None:
    node.wait_for(lambda: node.path(MANIFEST).read_bytes() != before, timeout, what="the manifest to change")


def test_ctrl_c_during_the_wait_rolls_back_and_exits_130(node_factory: NodeFactory) -> None:
    node = node_factory(linger=3.0)
    before = node.path(MANIFEST).read_bytes()
    proc = subprocess.Popen(
        [*kaudit_argv(), "enable", node.target(), *ssh_args(node), "--profile", "minimal",
         "--yes", "--timeout", "30", "--output", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    _wait_for_change(node, before)
    time.sleep(0.5)  # inside the wait: the old instance lingers for 3 s
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    assert "the previous manifest was put back" in out
    assert node.path(MANIFEST).read_bytes() == before
    ready = node.wait_ready(15)
    assert not any(a.startswith("--audit-") for a in ready["argv"])
    assert not node.path("/var/lib/kaudit/guard.pid").exists()
