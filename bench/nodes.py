"""Test nodes for the benchmarks (tests/node), and what their sshd saw."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.node import TestNode

_ACCEPTED = re.compile(r"Accepted publickey for ")
_COMMAND = re.compile(r"Starting session: command ")
_SUBSYSTEM = re.compile(r"Starting session: subsystem ")


@dataclass
class SshdCounts:
    connections: int  # "Accepted publickey": one per SSH connection authenticated
    commands: int  # "Starting session: command": one per remote command (exec channel)
    subsystems: int  # "Starting session: subsystem 'sftp'": file transfers (Ansible without pipelining)


def sshd_counts(node: TestNode) -> SshdCounts:
    log = node.sshd_log()
    return SshdCounts(
        connections=len(_ACCEPTED.findall(log)),
        commands=len(_COMMAND.findall(log)),
        subsystems=len(_SUBSYSTEM.findall(log)),
    )


def start_node(workdir: Path, **knobs: Any) -> TestNode:
    base = Path(tempfile.mkdtemp(prefix="node-", dir=workdir))
    return TestNode.start(base, ready_timeout=60.0, **knobs)


@contextlib.contextmanager
def nodes(workdir: Path, count: int, **knobs: Any) -> Iterator[list[TestNode]]:
    """`count` fresh nodes, started a few at a time, all stopped at the end."""
    started: list[TestNode] = []
    try:
        with ThreadPoolExecutor(max_workers=min(count, 6)) as pool:
            futures = [pool.submit(start_node, workdir, **knobs) for _ in range(count)]
            errors = []
            for f in futures:
                try:
                    started.append(f.result())
                except Exception as exc:  # keep going: the others are stopped below
                    errors.append(exc)
            if errors:
                raise errors[0]
        yield started
    finally:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: n.stop(), started))
