"""`kaudit inventory CONTEXT...` and kube://CONTEXT failures, from the installed command with the `kubectl`
stand-in (tests/fakes/kubectl) answering as kubectl does: no node is needed, because every case here ends
before kaudit connects to one (the nodes themselves: tests/e2e/test_kube_targets.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from installer.targets.inventory import parse_inventory
from installer.yamlio import reader
from tests.kaudit_cli import kaudit
from tests.standins import kube_node, kubectl_calls, kubectl_env

SELECTOR = ["-l", "node-role.kubernetes.io/control-plane", "-o", "json"]
CONTEXTS: dict[str, dict[str, Any]] = {
    "kind-dev": {"nodes": [kube_node("dev-control-plane", "172.18.0.2", "dev-control-plane"),
                           kube_node("dev-worker", "172.18.0.3", "dev-worker", control_plane=False)]},
    "arn:aws:eks:eu-west-1:123456789012:cluster/prod": {"nodes": [kube_node("ip-10-0-1-5", "10.0.1.5",
                                                                            control_plane=False)]},
    "prod": {"nodes": [kube_node("cp-1", "10.0.0.11", "cp-1", external_ip="203.0.113.11"),
                       kube_node("cp-2", None, "cp-2.lan"), kube_node("cp-3", "10.0.0.13", "cp-3")]},
    "down": {"api": "refused", "server": "10.9.0.1:6443"},
    "slow": {"api": "timeout", "server": "10.9.0.2:6443"},
    "expired": {"api": "unauthorized"},
    "junk": {"stdout": "<html><body>502 Bad Gateway</body></html>\n"},
}
EKS = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return kubectl_env(tmp_path, CONTEXTS)


def test_inventory_prints_one_group_per_context(env: dict[str, str], tmp_path: Path) -> None:
    run = kaudit("inventory", "kind-dev", "kube://prod", env=env)
    assert run.code == 0, run.err
    assert run.err == ""
    doc = reader().load(run.out)
    groups = doc["all"]["children"]["control_plane"]["children"]
    assert list(groups) == ["kind_dev", "prod"]
    assert groups["kind_dev"] == {"hosts": {"dev-control-plane": {"ansible_host": "172.18.0.2"}},
                                  "vars": {"kaudit_cluster": "kind_dev", "kaudit_kube_context": "kind-dev"}}
    assert groups["prod"]["hosts"] == {"cp-1": {"ansible_host": "10.0.0.11"}, "cp-2": {"ansible_host": "cp-2.lan"},
                                       "cp-3": {"ansible_host": "10.0.0.13"}}
    # One kubectl call per context, exactly the documented one; the worker is not a host.
    assert kubectl_calls(tmp_path) == [["--context", "kind-dev", "get", "nodes", *SELECTOR],
                                       ["--context", "prod", "get", "nodes", *SELECTOR]]
    # kaudit reads it back as the clusters kube:// stands for.
    path = tmp_path / "kube.yml"
    path.write_text(run.out)
    clusters = parse_inventory(run.out, str(path))
    assert [(c.name, [t.host for t in c.nodes]) for c in clusters] == [
        ("kind_dev", ["172.18.0.2"]), ("prod", ["10.0.0.11", "cp-2.lan", "10.0.0.13"])]


@pytest.mark.parametrize(("context", "message"), [
    ("nope", "kaudit: kube://nope: no context 'nope' in the kubeconfig (`kubectl config get-contexts` lists them)"),
    ("down", "kaudit: kube://down: kubectl cannot reach the cluster's API server, so its control-plane nodes cannot "
             "be listed (kubectl: The connection to the server 10.9.0.1:6443 was refused)"),
    ("slow", "kaudit: kube://slow: kubectl cannot reach the cluster's API server, so its control-plane nodes cannot "
             "be listed (kubectl: Unable to connect to the server: dial tcp 10.9.0.2:6443: i/o timeout)"),
    ("expired", "kaudit: kube://expired: `kubectl --context expired get nodes` failed: You must be logged in to the "
                "server (Unauthorized)"),
    (EKS, f"kaudit: kube://{EKS}: the API lists no node labelled node-role.kubernetes.io/control-plane: a managed "
          "cluster (EKS, GKE, AKS and the like) runs its control plane out of sight"),
    ("junk", "kaudit: kube://junk: `kubectl --context junk get nodes -l node-role.kubernetes.io/control-plane -o "
             "json` did not print JSON"),
])
def test_inventory_errors_are_one_line_and_print_no_inventory(env: dict[str, str], context: str, message: str) -> None:
    run = kaudit("inventory", "prod", context, env=env)
    assert run.code == 2
    assert run.out == ""  # not half an inventory
    [line] = run.err.splitlines()
    assert line.startswith(message), line
    assert "Traceback" not in run.err and "memcache.go" not in run.err


def test_inventory_reports_every_failing_context(env: dict[str, str]) -> None:
    run = kaudit("inventory", "down", "nope", "prod", "kube://", env=env)
    assert run.code == 2 and run.out == ""
    lines = run.err.splitlines()
    assert [ln.split(":")[1].strip() for ln in lines] == ["kube", "kube", "target 'kube"]
    assert lines[0].startswith("kaudit: kube://down: ") and lines[1].startswith("kaudit: kube://nope: ")


def test_without_kubectl_on_path(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    no_kubectl = {**env, "PATH": str(empty)}
    run = kaudit("inventory", "prod", env=no_kubectl)
    assert run.code == 2 and run.out == ""
    assert run.err == ("kaudit: kube://prod: the kubectl command is not installed or not on PATH (kube:// targets "
                       "list their control-plane nodes with kubectl)\n")
    status = kaudit("status", "kube://prod", env=no_kubectl)
    assert status.code == 2 and "kube://prod" in status.out and "kubectl command is not installed" in status.out


@pytest.mark.parametrize("context", ["nope", "down", EKS, "junk"])
def test_a_changing_command_on_a_bad_context_is_refused_before_any_connection(
        env: dict[str, str], tmp_path: Path, context: str) -> None:
    run = kaudit("enable", f"kube://{context}", "--profile", "minimal", "--yes", "--output", "json", env=env)
    assert run.code == 2, run.out + run.err
    [node] = json.loads(run.out)["nodes"]
    assert (node["node"], node["ok"], node["action"], node["exit_code"]) == (f"kube://{context}", False, "refused", 2)
    assert "\n" not in node["message"] and "Traceback" not in run.err
    text = kaudit("enable", f"kube://{context}", "--profile", "minimal", "--yes", env=env)
    assert text.code == 2
    assert text.out.splitlines()[0].startswith(f"kube://{context}: refused: ")


def test_status_on_a_cluster_whose_api_is_down(env: dict[str, str]) -> None:
    run = kaudit("status", "kube://down", "--output", "json", env=env)
    assert run.code == 2
    [node] = json.loads(run.out)["nodes"]
    assert node["node"] == "kube://down" and not node["ok"]
    assert "kubectl cannot reach the cluster's API server" in json.dumps(node)
