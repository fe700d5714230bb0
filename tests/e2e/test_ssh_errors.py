"""Reaching a node fails: one line as OpenSSH would say it, the documented exit code, and never a
traceback or paramiko's own text (issue 24 item 4). Ports that are not SSH servers: a plain HTTP
listener, one that accepts and never answers, and the test node's own API server (TLS)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.kaudit_cli import Run, kaudit
from tests.node.node import TestNode

EXIT_UNREACHABLE = 2  # README "Exit codes": bad input, unreachable node, or refused before any change


@contextmanager
def listener(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that hands each connection to `handle`; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for conn in held:
            conn.close()


def http(conn: socket.socket) -> None:
    """An HTTP server: it reads the request (here the client's SSH banner) and answers 400."""
    try:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Connection: close\r\n\r\n400 Bad Request")
    finally:
        conn.close()


def silent(conn: socket.socket) -> None:
    """Accepts and never answers (a firewall's tarpit, a wedged daemon): the connection stays open."""


def clean(run: Run) -> str:
    """The one line the failure printed (text output); nothing of Python's or paramiko's anywhere."""
    both = run.out + run.err
    assert "Traceback" not in both and "paramiko" not in both.lower() and "Exception" not in both, both
    assert "no existing session" not in both.lower(), both
    lines = [line for line in both.splitlines() if line.strip()]
    assert len(lines) == 1, both
    return lines[0]


def test_an_http_port_does_not_speak_ssh() -> None:
    with listener(http) as port:
        run = kaudit("status", f"kubeops@127.0.0.1:{port}")
        assert run.code == EXIT_UNREACHABLE, run
        line = clean(run)
        assert line == (f"kubeops@127.0.0.1:{port}: ERROR cannot connect to 127.0.0.1:{port}: "
                        "the port does not speak SSH (it answered 'HTTP/1.1 400 Bad Request')"), line
        run = kaudit("status", f"kubeops@127.0.0.1:{port}", "--output", "json")
        assert run.code == EXIT_UNREACHABLE and run.err == "", run
        assert "Traceback" not in run.out and "paramiko" not in run.out.lower()
        assert "does not speak SSH (it answered 'HTTP/1.1 400 Bad Request')" in run.node["error"]


def test_the_api_servers_tls_port_does_not_speak_ssh(module_node: TestNode) -> None:
    # the mistake the issue saw: the API server's port (6443 on a real node) instead of SSH's
    run = kaudit("status", f"kadmin@127.0.0.1:{module_node.api_port}", "--known-hosts",
                 str(module_node.known_hosts), "-i", str(module_node.key_path))
    assert run.code == EXIT_UNREACHABLE, run
    # a TLS server (Go's, Python's, OpenSSL's) closes on a first record that is not TLS, and says nothing
    assert clean(run).endswith(f"cannot connect to 127.0.0.1:{module_node.api_port}: the port does not speak SSH "
                               "(it closed the connection without an SSH banner)"), run


def test_a_port_that_never_answers_times_out_after_the_seconds_it_says() -> None:
    with listener(silent) as port:
        started = time.monotonic()
        run = kaudit("status", f"kubeops@127.0.0.1:{port}", "--connect-timeout", "2", timeout=60)
        took = time.monotonic() - started
        assert run.code == EXIT_UNREACHABLE, run
        assert clean(run).endswith(f"cannot connect to 127.0.0.1:{port}: connection timed out after 2 s: "
                                   "the port accepted the connection but sent no SSH banner"), run
        assert took < 15, took


def test_the_ssh_configs_connect_timeout_is_respected(tmp_path: Path) -> None:
    with listener(silent) as port:
        config = tmp_path / "ssh_config"
        config.write_text(f"Host tarpit\n  HostName 127.0.0.1\n  Port {port}\n  User kubeops\n  ConnectTimeout 1\n")
        started = time.monotonic()
        run = kaudit("status", "tarpit", "-F", str(config), "--output", "json", timeout=60)
        assert run.code == EXIT_UNREACHABLE and run.err == "", run
        assert run.node["error"] == (f"cannot connect to 127.0.0.1:{port}: connection timed out after 1 s: "
                                     "the port accepted the connection but sent no SSH banner"), run.node
        assert time.monotonic() - started < 12
        # the command line wins over the file
        run = kaudit("status", "tarpit", "-F", str(config), "--connect-timeout", "2", timeout=60)
        assert "timed out after 2 s" in clean(run), run


def test_a_port_that_closes_at_once_and_a_refused_port() -> None:
    with listener(lambda conn: conn.close()) as port:
        run = kaudit("status", f"kubeops@127.0.0.1:{port}")
        assert run.code == EXIT_UNREACHABLE
        assert clean(run).endswith("the port does not speak SSH (it closed the connection without an SSH banner)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    run = kaudit("status", f"kubeops@127.0.0.1:{closed}")
    assert run.code == EXIT_UNREACHABLE
    assert clean(run).endswith(f"cannot connect to 127.0.0.1:{closed}: connection refused (nothing listens on "
                               "that port)")


def test_a_changing_command_says_the_same_one_line(tmp_path: Path) -> None:
    with listener(http) as port:
        run = kaudit("enable", f"kubeops@127.0.0.1:{port}", "--profile", "minimal", "--yes")
        assert run.code == EXIT_UNREACHABLE, run
        both = run.out + run.err
        assert "Traceback" not in both and "paramiko" not in both.lower(), both
        assert "the port does not speak SSH (it answered 'HTTP/1.1 400 Bad Request')" in both, both


def test_authentication_failure_names_the_keys_tried(module_node: TestNode, tmp_path: Path) -> None:
    import subprocess

    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    run = kaudit("status", module_node.target(), "-i", str(key), "--known-hosts", str(module_node.known_hosts),
                 env={"SSH_AUTH_SOCK": ""})
    assert run.code == EXIT_UNREACHABLE
    assert clean(run).endswith(f"authentication failed for user kadmin at 127.0.0.1:{module_node.ssh_port} "
                               f"(permission denied; tried key {key})"), run


def test_a_jump_host_that_does_not_speak_ssh_is_named_for_the_node(tmp_path: Path) -> None:
    with listener(http) as port:
        config = tmp_path / "ssh_config"
        config.write_text(f"Host cp\n  HostName 10.0.0.5\n  User kubeops\n  ProxyJump kubeops@127.0.0.1:{port}\n")
        run = kaudit("status", "cp", "-F", str(config))
        assert run.code == EXIT_UNREACHABLE
        assert clean(run) == (f"cp: ERROR jump host kubeops@127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: "
                              "the port does not speak SSH (it answered 'HTTP/1.1 400 Bad Request')"), run
