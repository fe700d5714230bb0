"""End to end on a real kind cluster made from kind-config.yaml: enable, switch, disable.

Needs Docker and kind: skipped, with the reason, where either is missing (as in the development
sandbox). Creates a cluster with a unique name from the repository's kind-config.yaml (run in a
temporary directory, so the audit log directory lands there) and deletes it afterwards.
Takes a few minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.paths import ROOT
from tests.standins import docker_unavailable
from tests.userinstall import kaudit_argv

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def kaudit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kaudit_argv(), *args], capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    if shutil.which("kind") is None:
        pytest.skip("no kind command on PATH")
    name = f"kaudit-e2e-{uuid.uuid4().hex[:6]}"
    workdir = tmp_path_factory.mktemp("kind")
    shutil.copy(ROOT / "kind-config.yaml", workdir / "kind-config.yaml")
    subprocess.run(
        ["kind", "create", "cluster", "--name", name, "--config", "kind-config.yaml", "--wait", "120s"],
        cwd=workdir, check=True, timeout=600,
    )
    try:
        yield name, workdir
    finally:
        subprocess.run(["kind", "delete", "cluster", "--name", name], check=False, timeout=300)


def _status(target: str) -> dict[str, object]:
    proc = kaudit("status", target, "--output", "json")
    assert proc.returncode == 0, proc.stderr
    nodes: list[dict[str, object]] = json.loads(proc.stdout)["nodes"]
    return nodes[0]


def test_enable_switch_disable(cluster: tuple[str, Path]) -> None:
    name, workdir = cluster
    target = f"kind://{name}"
    node = f"{name}-control-plane"
    manifest = ["docker", "exec", node, "cat", "/etc/kubernetes/manifests/kube-apiserver.yaml"]
    original = subprocess.run(manifest, capture_output=True, check=True).stdout

    proc = kaudit("enable", target, "--profile", "recommended", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "kind create cluster" in proc.stdout + proc.stderr  # the flavor's caveat
    status = _status(target)
    assert status["audit_enabled"] and status["profile"] == "recommended" and not status["problems"]

    subprocess.run(["kubectl", "--context", f"kind-{name}", "get", "ns"], capture_output=True, check=False)
    log = workdir / "kind-audit-logs" / "audit.log"
    deadline = time.monotonic() + 60
    events = ""
    while time.monotonic() < deadline and "audit.k8s.io/v1" not in events:
        events = subprocess.run(
            ["docker", "exec", node, "cat", "/var/log/kubernetes/audit/audit.log"], capture_output=True, text=True,
            check=False,
        ).stdout
        time.sleep(1)
    assert '"kind":"Event"' in events
    if os.geteuid() == 0:
        assert log.exists()  # the same file, seen on the host through extraMounts

    proc = kaudit("switch", target, "--profile", "minimal", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert _status(target)["profile"] == "minimal"

    proc = kaudit("disable", target, "--yes")
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run(manifest, capture_output=True, check=True).stdout == original
