"""One way from targets to open nodes (targets/connect.py open_cluster, open_targets, visit_nodes): clusters
discovered once, each node opened with what discovery found, failures as values naming the node or cluster.
Discovery runs against the stand-in `docker` and `minikube` (tests/fakes/), as in test_flavors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from installer.errors import InputError, NodeError
from installer.targets import connect, flavors
from installer.targets.parse import Cluster, Target, parse_target
from installer.transport import Transport
from installer.transport.ssh import SSHOptions
from tests.paths import FAKES
from tests.unit.targets.test_flavors import _node, containers, kind_node, make_profile


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The stand-ins first on PATH; returns the discovery commands kaudit runs, as they run."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("MINIKUBE_HOME", str(tmp_path / "mk"))
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(tmp_path / "docker.json"))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    (tmp_path / "docker.json").write_text("[]")
    calls: list[list[str]] = []
    real = flavors.run_tool

    def counted(argv: list[str], why: str, **kw: float) -> str:
        calls.append(list(argv))
        return real(argv, why, **kw)

    monkeypatch.setattr(flavors, "run_tool", counted)
    return calls


def _open(target: Target) -> Transport:
    return connect.open_transport(target, SSHOptions())


def test_a_kind_cluster_is_discovered_once_and_its_nodes_opened_with_what_discovery_found(
        tmp_path: Path, tools: list[list[str]]) -> None:
    containers(tmp_path, [kind_node("dev", "dev-control-plane", "control-plane"),
                          kind_node("dev", "dev-control-plane2", "control-plane"),
                          kind_node("dev", "dev-worker", "worker")])
    nodes = list(connect.open_cluster(Cluster("kind://dev", [parse_target("kind://dev")]), _open))
    assert all(isinstance(n, connect.NodeContext) for n in nodes)
    assert [(n.name, n.flavor.name) for n in nodes if isinstance(n, connect.NodeContext)] == [
        ("kind://dev/dev-control-plane", "kind"), ("kind://dev/dev-control-plane2", "kind")]
    assert [c[:2] for c in tools] == [["docker", "ps"], ["docker", "ps"]]  # one discovery: two `docker ps`


def test_a_minikube_profile_is_listed_once(tmp_path: Path, tools: list[list[str]]) -> None:
    make_profile(tmp_path / "mk", "bare", "none", [_node("", "10.0.0.9", True)])
    [node] = connect.open_cluster(Cluster("minikube://bare", [parse_target("minikube://bare")]), _open)
    assert isinstance(node, connect.NodeContext)
    assert (node.name, node.layout.state_dir) == ("minikube://bare/bare", "/var/lib/minikube/kaudit")
    assert tools == [["minikube", "profile", "list", "-o", "json"]]


def test_a_target_named_directly_is_still_discovered_when_opened(tmp_path: Path, tools: list[list[str]]) -> None:
    containers(tmp_path, [kind_node("kind", "kind-control-plane", "control-plane")])
    assert _open(parse_target("kind://")).name == "kind://kind/kind-control-plane"
    assert len(tools) == 2


def test_what_cannot_be_listed_or_opened_is_a_value_naming_it(tmp_path: Path, tools: list[list[str]]) -> None:
    [cluster] = connect.open_cluster(Cluster("kind://gone", [parse_target("kind://gone")]), _open)
    assert isinstance(cluster, connect.Unreachable) and cluster.name == "kind://gone"
    assert "no kind cluster named gone" in cluster.error.message

    def refuse_first(target: Target) -> Transport:
        if target.node == "dev-control-plane":
            raise NodeError("connection refused")
        return _open(target)

    containers(tmp_path, [kind_node("dev", "dev-control-plane", "control-plane"),
                          kind_node("dev", "dev-control-plane2", "control-plane")])
    first, second = connect.open_cluster(Cluster("kind://dev", [parse_target("kind://dev")]), refuse_first)
    assert isinstance(first, connect.Unreachable) and first.name == "kind://dev/dev-control-plane"
    assert isinstance(second, connect.NodeContext) and second.name == "kind://dev/dev-control-plane2"


def test_open_targets_refuses_a_bad_target_list_before_opening_anything(tools: list[list[str]]) -> None:
    with pytest.raises(InputError):
        connect.open_targets(["kind://Bad_Name"], SSHOptions())
    assert tools == []
    seen = connect.visit_nodes(["kind://Bad_Name"], SSHOptions(), lambda n, c: ("read", n.name, c),
                               lambda n, c, m: ("failed", n, c))
    assert seen == [("failed", "kind://Bad_Name", None)]


def test_visit_nodes_reads_every_node_of_every_cluster_and_names_each_failure(
        tmp_path: Path, tools: list[list[str]]) -> None:
    containers(tmp_path, [kind_node("dev", "dev-control-plane", "control-plane")])
    seen = connect.visit_nodes(["kind://dev", "kind://gone"], SSHOptions(), lambda n, c: ("read", n.name, c),
                               lambda n, c, m: ("failed", n, c))
    assert seen == [("read", "kind://dev/dev-control-plane", "kind://dev"), ("failed", "kind://gone", "kind://gone")]
    assert len(tools) == 4  # two `docker ps` per cluster, nothing per node
