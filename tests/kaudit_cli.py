"""Running the real `kaudit` command against a test node, as a user would."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from tests.node.node import TestNode
from tests.userinstall import kaudit_argv, user_env


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.out)
        return doc

    @property
    def node(self) -> dict[str, Any]:
        nodes: list[dict[str, Any]] = self.json()["nodes"]
        return nodes[0]


def kaudit(*args: str, stdin: str | None = None, timeout: float = 120, env: dict[str, str] | None = None) -> Run:
    """The `kaudit` a user installed (the wheel without extras, tests/userinstall.py); `env` adds to the
    environment (HOME, PATH with the docker/minikube stand-ins, ...)."""
    proc = subprocess.run(
        [*kaudit_argv(), *args], input=stdin, capture_output=True, text=True, env=user_env(env),
        timeout=timeout, check=False, stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def ssh_args(node: TestNode) -> list[str]:
    return ["-i", str(node.key_path), "--known-hosts", str(node.known_hosts)]


def on(node: TestNode, command: str, *args: str, user: str = "kadmin", stdin: str | None = None,
       timeout: float = 120) -> Run:
    """`kaudit COMMAND TARGET ARGS...` with the node's key and known_hosts."""
    return kaudit(command, node.target(user), *ssh_args(node), *args, stdin=stdin, timeout=timeout)


def change(node: TestNode, command: str, *args: str, user: str = "kadmin", stdin: str | None = None,
           timeout: float = 10) -> Run:
    """A changing command with --yes, JSON output and a short per-node timeout."""
    return on(node, command, "--yes", "--output", "json", "--timeout", str(timeout), "--guard-grace", "3",
              *args, user=user, stdin=stdin, timeout=timeout * 4 + 60)
