"""kube://CONTEXT (issue 15 item 7): the target form, kubectl's node list and errors read without kubectl, and
the inventory `kaudit inventory` prints, read back by kaudit's own inventory reader."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from installer.errors import EXIT_REFUSED, InputError, KauditError, NodeError
from installer.targets import flavors, kube
from installer.targets.inventory import parse_inventory
from installer.targets.parse import Cluster, Target, group_targets, parse_target
from tests.standins import kube_node

ARGV = ["kubectl", "--context", "prod", "get", "nodes", "-l", "node-role.kubernetes.io/control-plane", "-o", "json"]


def node_list(*items: dict[str, Any]) -> str:
    """What kubectl prints for `get nodes -o json`."""
    return json.dumps({"apiVersion": "v1", "items": list(items), "kind": "List", "metadata": {"resourceVersion": ""}},
                      indent=4)


def klog(err: str, n: int = 5) -> str:
    """client-go's discovery errors as kubectl 1.32 logs them before its own message (observed with a local
    kubectl v1.32 against a closed port)."""
    return "".join(f'E1202 01:49:34.14495{i}   16567 memcache.go:265] "Unhandled Error" err="couldn\'t get current '
                   f'server API group list: Get \\"https://127.0.0.1:1/api?timeout=32s\\": {err}"\n' for i in range(n))


# -- the target form ----------------------------------------------------------------------------------
@pytest.mark.parametrize("context", ["prod", "kind-dev", "admin@cluster.local", "gke_proj_europe-west1_prod",
                                     "arn:aws:eks:eu-west-1:123456789012:cluster/prod"])
def test_kube_target_keeps_the_context_name_verbatim(context: str) -> None:
    t = parse_target(f"kube://{context}")
    assert (t.kind, t.cluster, t.node, t.display) == ("kube", context, None, f"kube://{context}")


@pytest.mark.parametrize(("raw", "message"), [("kube://", "names no kube context"),
                                              ("kube://a\x1bb", "control characters")])
def test_bad_kube_targets_say_why(raw: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_target(raw)


def test_an_unknown_scheme_lists_kube() -> None:
    with pytest.raises(InputError, match="kube://"):
        parse_target("kubernetes://prod")


def test_each_context_is_a_cluster_of_its_own() -> None:
    clusters = group_targets([parse_target("a@cp1"), parse_target("kube://prod"), parse_target("kube://staging")])
    assert [(c.name, len(c.nodes)) for c in clusters] == [("a@cp1", 1), ("kube://prod", 1), ("kube://staging", 1)]


# -- kubectl's node list --------------------------------------------------------------------------------
def test_internal_ip_else_hostname_in_kubectls_order() -> None:
    text = node_list(
        kube_node("cp-2", "10.0.0.12", "cp-2", external_ip="203.0.113.12"),
        kube_node("cp-1", None, "cp-1.example.com"),
        kube_node("cp-3", "fd00::13", "cp-3"),
    )
    nodes = kube.parse_nodes(text, "prod")
    assert [(n.name, n.address, n.address_type) for n in nodes] == [
        ("cp-2", "10.0.0.12", "InternalIP"), ("cp-1", "cp-1.example.com", "Hostname"),
        ("cp-3", "fd00::13", "InternalIP"),
    ]
    # The ssh targets the user would have typed: plain hosts, user/port/key left to ssh_config.
    assert [(t.kind, t.host, t.user, t.port, t.display) for t in (n.target for n in nodes)] == [
        ("ssh", "10.0.0.12", None, None, "10.0.0.12"), ("ssh", "cp-1.example.com", None, None, "cp-1.example.com"),
        ("ssh", "fd00::13", None, None, "[fd00::13]"),
    ]
    assert parse_target(nodes[2].target.display) == Target(raw="[fd00::13]", kind="ssh", host="fd00::13")


def test_dual_stack_takes_the_first_internal_ip() -> None:
    node = kube_node("cp-1", "10.0.0.11", "cp-1")
    node["status"]["addresses"].insert(1, {"type": "InternalIP", "address": "fd00::11"})
    assert kube.parse_nodes(node_list(node), "prod")[0].address == "10.0.0.11"


def test_no_control_plane_node_is_the_managed_cluster_error() -> None:
    with pytest.raises(NodeError) as exc:
        kube.parse_nodes(node_list(), "eks-prod")
    assert exc.value.node == "kube://eks-prod" and exc.value.exit_code == EXIT_REFUSED
    assert "no node labelled node-role.kubernetes.io/control-plane" in exc.value.message
    assert "managed cluster" in exc.value.message and "\n" not in str(exc.value)


@pytest.mark.parametrize(("text", "message"), [
    ("", "did not print JSON"),
    ("<html><body>502 Bad Gateway</body></html>", "did not print JSON"),
    ('{"items": []', "did not print JSON"),
    ('{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp-1"}}', "did not print a node list"),
    ("[1, 2]", "did not print a node list"),
    (node_list({"kind": "Node", "metadata": {}}), "item 0 is not a Node with a name"),
    (node_list({"kind": "Pod", "metadata": {"name": "x"}}), "item 0 is not a Node with a name"),
    (node_list(kube_node("cp-1")), "cp-1 reports neither an InternalIP nor a Hostname"),
    (node_list(kube_node("cp-1", external_ip="203.0.113.1")), "neither an InternalIP nor a Hostname"),
    (node_list(kube_node("cp-1", "10.0.0.1; reboot")), "is not a host name or address"),
])
def test_output_that_is_not_a_node_list_is_one_line(text: str, message: str) -> None:
    with pytest.raises(NodeError) as exc:
        kube.parse_nodes(text, "prod")
    assert message in exc.value.message and "\n" not in str(exc.value)
    assert str(exc.value).startswith("kube://prod: ")


# -- kubectl's errors (the texts kubectl prints) ----------------------------------------------------------
@pytest.mark.parametrize(("stderr", "kind", "message"), [
    ("Error in configuration: context was not found for specified context: nope\n", InputError,
     "no context 'nope' in the kubeconfig (`kubectl config get-contexts` lists them)"),
    ("error: invalid configuration: [context was not found for specified context: nope, cluster has no server "
     "defined]\n", InputError, "no context 'nope'"),
    (klog("dial tcp 127.0.0.1:1: connect: connection refused")
     + "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n",
     NodeError, "kubectl cannot reach the cluster's API server, so its control-plane nodes cannot be listed "
                "(kubectl: The connection to the server 127.0.0.1:1 was refused)"),
    (klog("dial tcp 10.0.0.1:6443: i/o timeout") + "Unable to connect to the server: dial tcp 10.0.0.1:6443: "
     "i/o timeout\n", NodeError, "(kubectl: Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout)"),
    (klog("dial tcp: lookup api.gone.example: no such host"), NodeError,
     'cannot reach the cluster\'s API server, so its control-plane nodes cannot be listed (kubectl: couldn\'t get '
     'current server API group list: Get "https://127.0.0.1:1/api?timeout=32s": dial tcp: lookup api.gone.example: '
     "no such host)"),
    ("error: You must be logged in to the server (Unauthorized)\n", NodeError,
     "`kubectl --context nope get nodes` failed: You must be logged in to the server (Unauthorized)"),
    ('Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource "nodes" in API group "" at '
     "the cluster scope\n", NodeError, 'failed: Error from server (Forbidden): nodes is forbidden: User "dev"'),
    ("", NodeError, "failed: exit code 1"),
])
def test_kubectl_failures_are_one_line(stderr: str, kind: type[KauditError], message: str) -> None:
    exc = kube.kubectl_failure("nope", 1, stderr)
    assert type(exc) is kind and exc.exit_code == EXIT_REFUSED and exc.node == "kube://nope"
    assert message in exc.message, exc.message
    assert "\n" not in str(exc) and "memcache.go" not in str(exc) and "did you specify" not in str(exc)


def test_a_long_kubectl_message_is_shortened() -> None:
    exc = kube.kubectl_failure("prod", 1, "error: " + "x" * 1000 + "\n")
    assert len(exc.message) < 320 and exc.message.endswith("...")


class FakeKubectl:
    def __init__(self, code: int = 0, out: str = "", err: str = "", raises: KauditError | None = None) -> None:
        self.result, self.raises, self.calls = (code, out, err), raises, []  # type: ignore[var-annotated]

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if self.raises is not None:
            raise self.raises
        return self.result


def test_one_kubectl_call_with_the_documented_arguments() -> None:
    run = FakeKubectl(out=node_list(kube_node("cp-1", "10.0.0.11", "cp-1"), kube_node("w-1", "10.0.1.1",
                                                                                     control_plane=False)))
    # the stand-in selects by label as the API does; here the runner returns what it is given, workers included
    assert [n.address for n in kube.list_control_plane("prod", run)] == ["10.0.0.11", "10.0.1.1"]
    assert run.calls == [ARGV]


def test_kubectl_missing_names_the_target() -> None:
    run = FakeKubectl(raises=InputError("the kubectl command is not installed or not on PATH (...)"))
    with pytest.raises(InputError) as exc:
        kube.list_control_plane("prod", run)
    assert str(exc.value).startswith("kube://prod: the kubectl command is not installed")


def test_run_kubectl_without_kubectl_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError, match="kubectl command is not installed or not on PATH"):
        kube.run_kubectl(ARGV)


def test_a_cluster_expands_to_plain_ssh_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    run = FakeKubectl(out=node_list(kube_node("cp-1", "10.0.0.11"), kube_node("cp-2", "10.0.0.12")))
    monkeypatch.setattr(kube, "run_kubectl", run)
    cluster = flavors.expand_cluster(Cluster(name="kube://prod", nodes=[parse_target("kube://prod")]))
    assert cluster.name == "kube://prod"
    assert cluster.nodes == [parse_target("10.0.0.11"), parse_target("10.0.0.12")]  # as if typed by hand


# -- `kaudit inventory` ------------------------------------------------------------------------------------
def test_the_inventory_reads_back_as_the_same_clusters_and_nodes() -> None:
    found = [("kind-dev", [kube.KubeNode("dev-control-plane", "172.18.0.2", "InternalIP")]),
             ("prod", [kube.KubeNode("cp-1", "10.0.0.11", "InternalIP"), kube.KubeNode("cp-2", "cp-2.lan", "Hostname"),
                       kube.KubeNode("cp-3", "fd00::13", "InternalIP")])]
    text = kube.inventory_text(found)
    assert text.startswith("# kaudit inventory kind-dev prod\n")
    clusters = parse_inventory(text, "kube.yml")
    assert [c.name for c in clusters] == ["kind_dev", "prod"]
    for cluster, (_, nodes) in zip(clusters, found, strict=True):
        assert [(t.kind, t.host, t.user, t.port, t.display) for t in cluster.nodes] == [
            ("ssh", n.address, None, None, n.name) for n in nodes]
    doc = kube.inventory_document(found)
    prod = doc["all"]["children"]["control_plane"]["children"]["prod"]
    assert prod["vars"] == {"kaudit_cluster": "prod", "kaudit_kube_context": "prod"}
    assert prod["hosts"]["cp-3"] == {"ansible_host": "fd00::13"}


@pytest.mark.parametrize(("contexts", "groups"), [
    (["arn:aws:eks:eu-west-1:123456789012:cluster/prod"], ["arn_aws_eks_eu_west_1_123456789012_cluster_prod"]),
    (["admin@cluster.local", "kind-dev", "kind_dev"], ["admin_cluster_local", "kind_dev", "kind_dev_2"]),
    (["all", "ungrouped", "control_plane", "2024-prod", "--"], ["kube_all", "kube_ungrouped", "kube_control_plane",
                                                              "kube_2024_prod", "context"]),
])
def test_group_names_are_ansible_names(contexts: list[str], groups: list[str]) -> None:
    taken: set[str] = set()
    assert [kube.group_name(c, taken) for c in contexts] == groups


def test_a_node_name_in_two_contexts_stays_in_its_own_cluster() -> None:
    found = [("a", [kube.KubeNode("master-1", "10.0.0.1", "InternalIP")]),
             ("b", [kube.KubeNode("master-1", "10.1.0.1", "InternalIP"),
                    kube.KubeNode("m2", "10.1.0.2", "InternalIP")])]
    clusters = parse_inventory(kube.inventory_text(found))
    assert [[(t.display, t.host) for t in c.nodes] for c in clusters] == [
        [("a-master-1", "10.0.0.1")], [("b-master-1", "10.1.0.1"), ("m2", "10.1.0.2")]]
