"""Shared fixtures: real test nodes (tests/node/, docs/design.md section 6)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node import TestNode, missing_requirements
from tests.userinstall import bindir

NodeFactory = Callable[..., TestNode]


NODE_FIXTURES = {"node_factory", "module_node", "manifest_node"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that starts a test node is `e2e` (`scripts/test -m "not e2e"` runs the rest in seconds)."""
    for item in items:
        if NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def pytest_configure(config: pytest.Config) -> None:
    """Build the user install (tests/userinstall.py) once, before the xdist workers start, so that no
    test pays for it in the middle of a timed scenario (a guard's deadline, a wait)."""
    if not hasattr(config, "workerinput"):
        bindir()


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
