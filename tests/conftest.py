"""Shared fixtures: real test nodes (tests/node/, docs/design.md section 6)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node import TestNode, missing_requirements
from tests.userinstall import bindir

NodeFactory = Callable[..., TestNode]


NODE_FIXTURES = {"node_factory", "module_node", "manifest_node"}


UNIT = Path(__file__).resolve().parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a test node is `e2e`. tests/unit (mirroring installer/'s subpackages)
    holds only tests that need neither a node nor the user install, so that it runs in seconds."""
    for item in items:
        if NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            if item.path.is_relative_to(UNIT):
                raise pytest.UsageError(f"{item.nodeid} starts a test node: it belongs in tests/e2e, not tests/unit")
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    """Build the user install (tests/userinstall.py) once, before the xdist workers start, so that no
    test pays for it in the middle of a timed scenario (a guard's deadline, a wait)."""
    if not hasattr(config, "workerinput") and not _only_unit(config):
        bindir()


def _only_unit(config: pytest.Config) -> bool:
    """`scripts/test tests/unit` needs no wheel: tests/unit does not run the installed command."""
    args = [a.split("::")[0] for a in config.args]
    return bool(args) and all(Path(a).resolve().is_relative_to(UNIT) for a in args)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core. The node tests mostly wait (a kubelet's restart delay, probes, a
    guard's deadline): on 2 cores the suite used under one core on average with one worker per core
    (13m51s); two per core: 11m00s; three per core: 10m15s but timing-sensitive tests start to flake."""
    return 2 * (os.cpu_count() or 1)


def _skip_without_node_support() -> None:
    reason = missing_requirements()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def node_factory(tmp_path: Path) -> Iterator[NodeFactory]:
    """`node_factory(manifest=None, **TestNode.start kwargs)` -> a started node; all stopped at teardown."""
    _skip_without_node_support()
    nodes: list[TestNode] = []

    def make(manifest: bytes | None = None, **kwargs: Any) -> TestNode:
        node = TestNode.start(tmp_path / f"node{len(nodes)}", manifest, **kwargs)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.stop()


@pytest.fixture(scope="module")
def module_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNode]:
    """One default node (commented kubeadm manifest) shared by a module's tests: do not break it."""
    _skip_without_node_support()
    node = TestNode.start(tmp_path_factory.mktemp("module-node"))
    try:
        yield node
    finally:
        node.stop()
