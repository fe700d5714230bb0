"""`kaudit status` as data: one spelling of flag keys, and the nodes of a cluster that differ (issue 24)."""

from __future__ import annotations

from installer.change.status import NodeStatus, PathStatus, _api_server, flag_differences
from installer.node.facts import NodeFacts, Process


def test_running_flags_are_keyed_as_the_manifest_flags_are() -> None:
    """`audit_flags` and `api_server.audit_flags` use the same keys: the flag with its leading `--`."""
    manifest_flags = {"--audit-log-path": "/var/log/a.log", "--audit-log-maxbackup": "1"}
    facts = NodeFacts(static_pod_path="/m", manifest_path="/m/k.yaml", manifest=b"x", manifest_problem=None,
                      now=0.0, free_kb=None,
                      processes=[Process(1, 10.0, ["kube-apiserver", "--audit-log-path=/var/log/a.log",
                                                   "--audit-log-maxbackup", "1", "--etcd-servers=x"])])
    api = _api_server(facts, manifest_flags, [])
    assert api.audit_flags == manifest_flags
    assert api.flags_match_manifest is True


def _node(name: str, profile: str | None, sha: str | None = None) -> NodeStatus:
    s = NodeStatus(node=name, ok=True, cluster="c", audit_enabled=profile is not None, managed_by_kaudit=True,
                   profile=profile)
    if profile:
        s.audit_flags = {"--audit-policy-file": f"/etc/kubernetes/audit/policy-{profile}.yaml"}
        s.paths = [PathStatus("--audit-policy-file", "/p", "/p", True, True, sha256=sha or profile * 8)]
    return s


def test_the_odd_node_of_a_cluster_is_flagged_with_the_way_back() -> None:
    nodes = [_node("cp1", "minimal"), _node("cp2", None), _node("cp3", None)]
    flag_differences(nodes)
    assert nodes[0].differs_from == ["cp2", "cp3"]
    assert nodes[1].differs_from == ["cp1"] and nodes[2].differs_from == ["cp1"]
    (problem,) = nodes[0].problems
    assert "profile minimal" in problem and "auditing off on cp2" in problem
    assert "kaudit rollback cp1" in problem and "cp2 cp3" in problem
    assert nodes[1].problems == [] and nodes[2].problems == []  # the majority


def test_same_configuration_or_other_clusters_are_not_flagged() -> None:
    nodes = [_node("cp1", "minimal"), _node("cp2", "minimal")]
    other = _node("solo", None)
    other.cluster = "d"
    flag_differences([*nodes, other])
    assert all(n.differs_from == [] and n.problems == [] for n in (*nodes, other))


def test_a_policy_edited_in_place_is_a_difference() -> None:
    nodes = [_node("cp1", "minimal", "a" * 64), _node("cp2", "minimal", "b" * 64)]
    flag_differences(nodes)
    assert nodes[0].differs_from == ["cp2"] and nodes[1].differs_from == ["cp1"]
    assert nodes[0].problems and nodes[1].problems  # a tie: both are named
