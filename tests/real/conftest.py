"""The real tier: kaudit against a real kubeadm node (tests/node/realnode.py), one node for the session.

Marked `real`. Skipped, with a one-line reason, when the node cannot run here (not root, no containerd or
runc, binaries not built) or under xdist: the tier shares one node, so it runs in its own pytest session
without workers (`scripts/test` runs `pytest -n 0 tests/real` after the rest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.realnode import RealNode, missing_real_requirements
from tests.real import kube
from tests.real.kube import reset

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.real)
            item.add_marker(pytest.mark.timeout(900))  # real restarts take 15-45 s; the first test starts the node
            if hasattr(config, "workerinput"):
                item.add_marker(pytest.mark.skip(
                    reason="the real tier shares one node: run it without xdist (pytest -n 0 tests/real)"))


_start_error: str | None = None


@pytest.fixture(scope="session")
def real_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    """One real node for the session (kubeadm init takes about a minute). Reset between tests by
    `fresh_node`. When it cannot come up, every real test skips with the reason (one line)."""
    global _start_error
    reason = missing_real_requirements()
    if reason:
        pytest.skip(reason)
    if _start_error:
        pytest.skip(_start_error)
    try:
        node = RealNode.start(tmp_path_factory.mktemp("realnode"))
    except Exception as e:  # whatever keeps the node from coming up here: skip the tier with the reason
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        _start_error = f"the real node did not come up: {first[:300]}"
        pytest.skip(_start_error)
    assert node.node is not None
    node.original_manifest = node.node.path(kube.MANIFEST).read_bytes()  # type: ignore[attr-defined]
    yield node
    node.stop()


@pytest.fixture
def fresh_node(real_node: RealNode) -> RealNode:
    """The session's node, reset (see `reset`)."""
    return reset(real_node)


@pytest.fixture(scope="module")
def ids(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> dict[str, kube.Identity]:
    """Client certificates: the admin kubeconfig's, and a user no RBAC rule names (`viewer`)."""
    where = tmp_path_factory.mktemp("ids")
    return {"admin": kube.admin_identity(real_node, where), "viewer": kube.viewer_identity(real_node, where)}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The real restarts this session measured: kaudit's own steps per change, and the restart timelines."""
    from tests.real.realcli import TIMES

    if TIMES or kube.TIMELINES:
        terminalreporter.section("real node: measured restarts")
        for t in TIMES:
            terminalreporter.write_line(json.dumps(t))
        for t in kube.TIMELINES:
            terminalreporter.write_line(json.dumps(t))
