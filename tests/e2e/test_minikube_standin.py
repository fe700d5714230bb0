"""minikube://, end to end, against a test node standing in for a minikube node (docker driver).

No minikube here: stand-ins for `minikube` and `docker` (tests/fakes/) answer from a real profile
tree (MINIKUBE_HOME/.minikube/profiles/<p>/config.json, machines/<m>/id_rsa) and publish the node's
SSH port as the docker driver does. Everything kaudit does is real: discovery, SSH as minikube's
`docker` user with the machine's key, the minikube layout (state in /var/lib/minikube/kaudit),
host-key handling for minikube nodes, the change itself and the minikube caveat.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import NodeFactory
from tests.corpus_files import MANIFESTS as CORPUS
from tests.node.node import TestNode
from tests.standins import minikube_env
from tests.userinstall import kaudit_argv

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
MINIKUBE_MANIFEST = CORPUS / "009-minikube-v1.32-port-8443.yaml"


def _kaudit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*kaudit_argv(), *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=120, check=False)


def _minikube_env(node: TestNode, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, **minikube_env(node, tmp_path)}


def test_enable_status_disable_on_a_minikube_node(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory(MINIKUBE_MANIFEST.read_bytes())
    original = node.path(MANIFEST).read_bytes()
    env = _minikube_env(node, tmp_path)

    run = _kaudit(env, "enable", "minikube://", "--profile", "minimal", "--yes", "--output", "json",
                  "--timeout", "10", "--guard-grace", "3")
    assert run.returncode == 0, run.stdout + run.stderr
    [result] = json.loads(run.stdout)["nodes"]
    assert result["node"] == "minikube://minikube/minikube" and result["flavor"] == "minikube"
    assert result["action"] == "enabled" and "minikube start" in result["caveat"]
    assert any(a.startswith("--audit-policy-file=") for a in node.current_instance()["argv"])  # type: ignore[index]
    # minikube's state directory (it survives `minikube stop`/`start`), reached as the docker user.
    assert (node.path("/var/lib/minikube/kaudit/backups") / result["backup"]).is_dir()
    assert not node.path("/var/lib/kaudit/journal").exists()
    assert "Accepted publickey for docker" in node.sshd_log()
    assert "ssh-key -n minikube" in (tmp_path / "minikube.log").read_text()

    status = _kaudit(env, "status", "minikube://", "--output", "json")
    assert status.returncode == 0, status.stderr
    [s] = json.loads(status.stdout)["nodes"]
    assert s["flavor"] == "minikube" and s["managed_by_kaudit"] and s["last_change"]["id"] == result["backup"]

    off = _kaudit(env, "disable", "minikube://", "--yes", "--output", "json", "--timeout", "10")
    assert off.returncode == 0, off.stdout + off.stderr
    assert node.path(MANIFEST).read_bytes() == original


def test_backups_and_rollback_after_enable_on_a_minikube_node(node_factory: NodeFactory, tmp_path: Path) -> None:
    """`backups` and `rollback` find what `enable` kept in minikube's state directory."""
    node = node_factory(MINIKUBE_MANIFEST.read_bytes())
    original = node.path(MANIFEST).read_bytes()
    env = _minikube_env(node, tmp_path)
    run = _kaudit(env, "enable", "minikube://", "--profile", "minimal", "--yes", "--output", "json",
                  "--timeout", "10", "--guard-grace", "3")
    assert run.returncode == 0, run.stdout + run.stderr
    [result] = json.loads(run.stdout)["nodes"]
    backups_dir = node.path("/var/lib/minikube/kaudit/backups")
    assert sorted(p.name for p in backups_dir.iterdir()) == sorted([result["backup"], "original"])

    listing = _kaudit(env, "backups", "minikube://", "--output", "json")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    [entry] = json.loads(listing.stdout)["nodes"]
    assert entry["node"] == "minikube://minikube/minikube" and entry["ok"], entry
    assert sorted(b["id"] for b in entry["backups"]) == sorted([result["backup"], "original"])
    text = _kaudit(env, "backups", "minikube://")
    [row] = [r for r in text.stdout.splitlines() if r.startswith(f"  {result['backup']}  ")]
    assert "restores: auditing off" in row and "(taken before: enable auditing with profile minimal)" in row, row

    back = _kaudit(env, "rollback", "minikube://", "--yes", "--output", "json", "--timeout", "10")
    assert back.returncode == 0, back.stdout + back.stderr
    assert json.loads(back.stdout)["nodes"][0]["action"] == "rolled-back"
    assert node.path(MANIFEST).read_bytes() == original  # the pre-enable bytes, comments and all
    journal = [json.loads(line) for line in node.path("/var/lib/minikube/kaudit/journal").read_text().splitlines()]
    assert {"op": "rollback", "state": "confirmed"}.items() <= journal[-1].items(), journal[-1]
    assert not node.path("/var/lib/kaudit/journal").exists() and not node.path("/var/lib/kaudit/backups").exists()
