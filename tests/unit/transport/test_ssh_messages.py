"""The one-line reasons a connection fails (issue 24 item 4); the e2e tests drive them on real ports."""

from __future__ import annotations

from installer.transport.ssh import _not_ssh


def test_a_well_known_control_plane_port_is_named() -> None:
    assert _not_ssh(b"", 0.1, 10, 6443) == (
        "the port does not speak SSH (it closed the connection without an SSH banner; "
        "6443 is usually the Kubernetes API server's port, SSH's is 22)")
    assert _not_ssh(b"", 0.1, 10, 2222).endswith("without an SSH banner)")


def test_what_the_port_answered_is_quoted_short_and_printable() -> None:
    line = _not_ssh(b"\x1b[31m" + b"x" * 100 + b"\r\nmore", 0.1, 10, 8080)
    assert line == f"the port does not speak SSH (it answered '?[31m{'x' * 52}...')"


def test_silence_until_the_timeout_is_a_timeout_with_its_seconds() -> None:
    assert _not_ssh(b"", 2.0, 2, 22) == (
        "connection timed out after 2 s: the port accepted the connection but sent no SSH banner")
    assert _not_ssh(b"", 1.5, 1.5, 22).startswith("connection timed out after 1.5 s:")
