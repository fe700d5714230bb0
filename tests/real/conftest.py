"""The real tier: kaudit against a real kubeadm node (tests/node/realnode.py), one node for the session.

Marked `real`. Skipped, with a one-line reason, when the node cannot run here (not root, no containerd or
runc, binaries not built) or under xdist: the tier shares one node, so it runs in its own pytest session
without workers (`scripts/test` runs `pytest -n 0 tests/real` after the rest).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.node.realnode import RealNode, missing_real_requirements
from tests.real import kube

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.real)
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
    except (RuntimeError, TimeoutError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        _start_error = f"the real node did not come up: {first[:300]}"
        pytest.skip(_start_error)
    assert node.node is not None
    node.original_manifest = node.node.path(kube.MANIFEST).read_bytes()  # type: ignore[attr-defined]
    yield node
    node.stop()


@pytest.fixture
def fresh_node(real_node: RealNode) -> RealNode:
    """The session's node as kubeadm left it: its original kube-apiserver manifest (a restart when it
    differed), no kaudit state, no audit files or logs."""
    node = real_node
    assert node.node is not None
    manifest = node.node.path(kube.MANIFEST)
    original: bytes = node.original_manifest  # type: ignore[attr-defined]
    for leftover in manifest.parent.glob(".*"):
        leftover.unlink()
    changed = manifest.read_bytes() != original
    if changed:
        before = time.time()
        manifest.write_bytes(original)
        kube.wait_new_apiserver(node, before)
    for d in ("/var/lib/kaudit", "/etc/kubernetes/audit", "/var/log/kubernetes"):
        p = node.node.path(d)  # the contents only: /var/lib/kaudit itself is a bind mount's source
        for child in p.iterdir() if p.is_dir() else ():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    if not node.api_ready():
        kube.wait_new_apiserver(node, 0)
    return node
