"""kind://, end to end, against a test node standing in for a kind node container.

No Docker engine here: a stand-in `docker` (tests/fakes/docker) lists the containers kind labels
and runs `docker exec` inside the test node's namespaces, which is what the real `docker exec`
does with a kind node container. Everything kaudit does is real: discovery by kind's labels, the
docker exec transport (one process per remote command, long-running ones for the lock and the
wait), the kind flavor's state and caveats. tests/e2e/test_kind_e2e.py runs a real kind cluster where
Docker exists.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import NodeFactory
from tests.node.node import TestNode
from tests.paths import FAKES
from tests.userinstall import kaudit_argv

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def _kaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kaudit_argv(), *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=120, check=False)


def _docker_state(tmp_path: Path, control_planes: list[TestNode]) -> dict[str, str]:
    containers = [
        {"name": "kaudit-control-plane" + (str(i + 1) if i else ""), "status": "Up 5 minutes", "ports": {},
         "labels": {"io.x-k8s.kind.cluster": "kaudit", "io.x-k8s.kind.role": "control-plane"},
         "nsenter_pid": n.init_pid}
        for i, n in enumerate(control_planes)
    ]
    containers.append({"name": "kaudit-worker", "status": "Up 5 minutes", "ports": {},
                       "labels": {"io.x-k8s.kind.cluster": "kaudit", "io.x-k8s.kind.role": "worker"}})
    state = tmp_path / "docker-state.json"
    state.write_text(json.dumps(containers))
    return {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_DOCKER_STATE": str(state)}


def test_enable_switch_disable_on_a_two_control_plane_kind_cluster(node_factory: NodeFactory, tmp_path: Path) -> None:
    cp1, cp2 = node_factory(), node_factory()
    originals = [n.path(MANIFEST).read_bytes() for n in (cp1, cp2)]
    env = _docker_state(tmp_path, [cp1, cp2])
    run = _kaudit(env, "enable", "kind://kaudit", "--profile", "recommended", "--yes", "--output", "json",
                  "--timeout", "15")
    assert run.returncode == 0, run.stdout + run.stderr
    nodes = json.loads(run.stdout)["nodes"]
    assert [r["node"] for r in nodes] == ["kind://kaudit/kaudit-control-plane", "kind://kaudit/kaudit-control-plane2"]
    assert all(r["action"] == "enabled" and r["flavor"] == "kind" for r in nodes)
    assert "kind" in nodes[0]["caveat"] and "--format kind" in nodes[0]["caveat"]
    for n in (cp1, cp2):
        assert any(a.startswith("--audit-policy-file=") for a in n.current_instance()["argv"])  # type: ignore[index]
        assert n.path("/var/lib/kaudit/journal").exists()
    status = _kaudit(env, "status", "kind://kaudit", "--output", "json")
    assert status.returncode == 0, status.stderr
    assert [s["profile"] for s in json.loads(status.stdout)["nodes"]] == ["recommended", "recommended"]
    run = _kaudit(env, "switch", "kind://kaudit/kaudit-control-plane2", "--profile", "minimal", "--yes",
                  "--output", "json", "--timeout", "15")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["nodes"][0]["action"] == "switched"
    run = _kaudit(env, "disable", "kind://kaudit", "--yes", "--output", "json", "--timeout", "15")
    assert run.returncode == 0, run.stdout + run.stderr
    assert [n.path(MANIFEST).read_bytes() for n in (cp1, cp2)] == originals


def test_a_missing_kind_cluster_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
           "FAKE_DOCKER_STATE": str(tmp_path / "none")}
    run = _kaudit(env, "status", "kind://kaudit")
    assert run.returncode == 2
    assert "no kind cluster named kaudit" in run.stdout + run.stderr
