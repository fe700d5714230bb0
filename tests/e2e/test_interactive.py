"""A person at a terminal: the diff and the question on /dev/tty, and Ctrl-C during the wait."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import NodeFactory
from tests.fleetfiles import known_hosts_file
from tests.kaudit_cli import kaudit, ssh_args
from tests.node.node import SUDO_PASSWORD, TestNode
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


# ------------------------------------------------ password sudo on a terminal (issue 24 item 5)

PASSWORD_PROMPT = b"[sudo] password for kpw@127.0.0.1: "


def _converse(args: list[str], replies: dict[bytes, bytes], timeout: float = 90) -> tuple[int, str, dict[bytes, int]]:
    """kaudit on a pty: each time a prompt in `replies` appears (again), type its reply. Returns the exit
    code, everything the terminal showed (what a person would see, echo included) and how often each
    prompt came."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(kaudit_argv()[0], [*kaudit_argv(), *args])
    screen = b""
    seen = dict.fromkeys(replies, 0)
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
        for prompt, reply in replies.items():
            if screen.count(prompt) > seen[prompt]:
                seen[prompt] = screen.count(prompt)
                time.sleep(0.1)  # as a person types: after the prompt, with echo already off
                os.write(fd, reply)
    else:  # still waiting (for a prompt that never came, say): end it rather than hang the test
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace"), seen


def _two_password_nodes(node_factory: NodeFactory, tmp_path: Path) -> tuple[list[TestNode], list[str]]:
    """Two nodes whose login user kpw needs a password for sudo, as ~/.ssh/config aliases (each its own key)."""
    nodes = [node_factory(), node_factory()]
    config = tmp_path / "ssh_config"
    config.write_text("".join(
        f"Host pw{i}\n  HostName 127.0.0.1\n  Port {n.ssh_port}\n  User kpw\n  IdentityFile {n.key_path}\n"
        f"  IdentitiesOnly yes\n" for i, n in enumerate(nodes)))
    known = known_hosts_file(tmp_path / "known_hosts", nodes)
    return nodes, ["pw0", "pw1", "-F", str(config), "--known-hosts", str(known)]


def test_on_a_terminal_the_sudo_password_is_asked_once_for_every_node_and_never_shown(
        node_factory: NodeFactory, tmp_path: Path) -> None:
    nodes, targets = _two_password_nodes(node_factory, tmp_path)
    code, screen, seen = _converse(["status", *targets], {PASSWORD_PROMPT: SUDO_PASSWORD.encode() + b"\r"})
    assert code == 0, screen
    assert seen[PASSWORD_PROMPT] == 1, screen
    assert SUDO_PASSWORD not in screen and "--sudo-password-stdin" not in screen
    assert screen.count("auditing: off") == 2, screen
    # a wrong answer: asked once still, each node says so, nothing else
    code, screen, seen = _converse(["status", *targets], {PASSWORD_PROMPT: b"not-the-password\r"})
    assert code == 2 and seen[PASSWORD_PROMPT] == 1, screen
    assert screen.count("sudo for kpw: incorrect password") == 2 and "not-the-password" not in screen, screen
    # the change itself: one password for both nodes of the cluster, one at a time
    before = [n.path(MANIFEST).read_bytes() for n in nodes]
    code, screen, seen = _converse(["enable", *targets, "--profile", "minimal", "--yes", "--timeout", "10"],
                                   {PASSWORD_PROMPT: SUDO_PASSWORD.encode() + b"\r"})
    assert code == 0 and seen[PASSWORD_PROMPT] == 1, screen
    assert SUDO_PASSWORD not in screen
    for node, old in zip(nodes, before, strict=True):
        assert node.path(MANIFEST).read_bytes() != old and b"--audit-policy-file" in node.path(MANIFEST).read_bytes()


def test_sudo_password_stdin_and_dash_k_on_a_terminal_never_echo(node_factory: NodeFactory, tmp_path: Path) -> None:
    _nodes, targets = _two_password_nodes(node_factory, tmp_path)
    for flag in ("--sudo-password-stdin", "-K"):
        prompt = b"[sudo] password (for every node of this run that asks): "
        code, screen, seen = _converse(["status", *targets, flag], {prompt: SUDO_PASSWORD.encode() + b"\r"})
        assert code == 0 and seen[prompt] == 1, (flag, screen)
        assert SUDO_PASSWORD not in screen, (flag, screen)
        assert PASSWORD_PROMPT.decode() not in screen  # asked before connecting, not again
        assert screen.count("auditing: off") == 2, screen


def test_without_a_terminal_the_message_says_how_to_give_the_password(node_factory: NodeFactory) -> None:
    node = node_factory()
    # a session of its own: no controlling terminal even when the tests run on one
    proc = subprocess.run([*kaudit_argv(), "status", node.target("kpw"), *ssh_args(node), "-K"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True,
                          timeout=60, check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.strip() == ("kaudit: --ask-sudo-password (-K) needs a terminal to ask on: give the password "
                                   "on a pipe with --sudo-password-stdin"), proc
    run = kaudit("status", node.target("kpw"), *ssh_args(node), "--output", "json")
    assert run.code == 2 and "--sudo-password-stdin" in run.node["error"], run


def test_ctrl_c_or_ctrl_d_at_the_password_prompt(node_factory: NodeFactory, tmp_path: Path) -> None:
    nodes, targets = _two_password_nodes(node_factory, tmp_path)
    before = [n.path(MANIFEST).read_bytes() for n in nodes]
    enable = ["enable", *targets, "--profile", "minimal", "--yes", "--timeout", "10"]
    code, screen, seen = _converse(enable, {PASSWORD_PROMPT: b"\x03"})
    assert code == 130 and seen[PASSWORD_PROMPT] == 1, screen
    assert screen.endswith(PASSWORD_PROMPT.decode() + "\r\n") and "Traceback" not in screen, screen
    code, screen, seen = _converse(enable, {PASSWORD_PROMPT: b"\x04"})
    assert code == 2 and seen[PASSWORD_PROMPT] == 1, screen
    assert screen.split("\r\n")[0] == PASSWORD_PROMPT.decode(), screen  # a new line after the prompt
    assert screen.count("sudo for kpw wants a password, and none was given at the prompt") == 2, screen
    assert [n.path(MANIFEST).read_bytes() for n in nodes] == before
