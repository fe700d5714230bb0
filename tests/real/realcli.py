"""The user's `kaudit` (tests/userinstall.py: the wheel without extras) against the real node."""

from __future__ import annotations

from tests.kaudit_cli import Run, kaudit
from tests.node.realnode import RealNode


def on(node: RealNode, command: str, *args: str, timeout: float = 300) -> Run:
    """`kaudit COMMAND TARGET ARGS...` with the node's key and known_hosts, as kadmin (NOPASSWD sudo)."""
    assert node.node is not None
    return kaudit(command, node.node.target("kadmin"), "-i", str(node.node.key_path), "--known-hosts",
                  str(node.node.known_hosts), *args, timeout=timeout)


def change(node: RealNode, command: str, *args: str, timeout: float = 120) -> Run:
    """A changing command with --yes and JSON output; the real API server needs a real timeout."""
    return on(node, command, "--yes", "--output", "json", "--timeout", str(timeout), *args, timeout=timeout * 3 + 60)
