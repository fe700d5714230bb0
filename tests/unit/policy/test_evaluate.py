"""The API server's policy evaluation (installer/policy/evaluate.py): each rule of issue 13 item 2."""

from __future__ import annotations

import pytest

from installer.policy.evaluate import (
    Attributes,
    Evaluator,
    attributes,
    path_matches,
    request_info,
    resource_matches,
)
from installer.policy.model import GroupResources, Policy, Rule
from installer.policy.validate import parse


def attrs(verb: str, uri: str, user: str | None = "alice", groups: tuple[str, ...] = ("system:authenticated",)
          ) -> Attributes:
    return attributes(user, groups, verb, request_info(verb, uri))


def policy(*rules: Rule, omit: tuple[str, ...] = (), omf: bool = False) -> Policy:
    return Policy(rules=rules, omit_stages=omit, omit_managed_fields=omf)


def level(p: Policy, a: Attributes, version: tuple[int, int] | None = None) -> tuple[str, int | None]:
    d = Evaluator(p, version).decide(a)
    return d.level, d.rule


def res(group: str = "", *resources: str, names: tuple[str, ...] = ()) -> GroupResources:
    return GroupResources(group, tuple(resources), names)


# --------------------------------------------------------------------------- attributes from the path


def test_resource_paths() -> None:
    i = request_info("get", "/api/v1/namespaces/default/pods/web-1")
    assert i == (True, "/api/v1/namespaces/default/pods/web-1", "", "v1", "default", "pods", "", "web-1")
    i = request_info("get", "/apis/apps/v1/namespaces/ns/deployments/web/scale")
    assert (i.api_group, i.api_version, i.namespace, i.resource, i.subresource, i.name) == (
        "apps", "v1", "ns", "deployments", "scale", "web")
    i = request_info("list", "/api/v1/pods?limit=500&resourceVersion=0")
    assert (i.resource_request, i.namespace, i.resource, i.name) == (True, "", "pods", "")


def test_create_on_a_collection_has_no_name() -> None:
    # the event's objectRef.name carries the new object's name, but the policy saw none
    i = request_info("create", "/api/v1/namespaces/default/configmaps")
    assert (i.resource, i.name) == ("configmaps", "")
    p = policy(Rule(level="RequestResponse", resources=(res("", "configmaps", names=("cm1",)),)),
               Rule(level="Metadata"))
    assert level(p, attrs("create", "/api/v1/namespaces/default/configmaps")) == ("Metadata", 1)
    assert level(p, attrs("update", "/api/v1/namespaces/default/configmaps/cm1")) == ("RequestResponse", 0)


def test_namespace_own_requests_have_namespace_equal_to_name() -> None:
    i = request_info("get", "/api/v1/namespaces/kube-system")
    assert (i.namespace, i.resource, i.name, i.subresource) == ("kube-system", "namespaces", "kube-system", "")
    i = request_info("update", "/api/v1/namespaces/team-a/finalize")
    assert (i.namespace, i.resource, i.name, i.subresource) == ("team-a", "namespaces", "team-a", "finalize")
    i = request_info("update", "/api/v1/namespaces/team-a/status")
    assert (i.namespace, i.resource, i.subresource) == ("team-a", "namespaces", "status")
    # creating or listing namespaces: cluster-scoped, no namespace
    i = request_info("create", "/api/v1/namespaces")
    assert (i.namespace, i.resource, i.name) == ("", "namespaces", "")
    p = policy(Rule(level="Request", namespaces=("kube-system",)), Rule(level="Metadata"))
    assert level(p, attrs("delete", "/api/v1/namespaces/kube-system")) == ("Request", 0)
    assert level(p, attrs("list", "/api/v1/namespaces")) == ("Metadata", 1)


def test_non_resource_paths() -> None:
    for uri in ("/healthz", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version?timeout=32s",
                "/openapi/v2", "/livez/etcd"):
        assert not request_info("get", uri).resource_request, uri
    # percent-decoded, query dropped
    assert request_info("get", "/readyz%2Fetcd?verbose=1").path == "/readyz/etcd"
    assert request_info("get", "/metrics?x=%2F").path == "/metrics"


def test_legacy_watch_and_proxy_prefixes() -> None:
    i = request_info("watch", "/api/v1/watch/namespaces/default/pods")
    assert (i.namespace, i.resource, i.name) == ("default", "pods", "")
    i = request_info("proxy", "/api/v1/proxy/namespaces/default/pods/web-1/some/path")
    assert (i.namespace, i.resource, i.name, i.subresource) == ("default", "pods", "web-1", "")
    i = request_info("get", "/api/v1/nodes/node-1/proxy/metrics")
    assert (i.resource, i.name, i.subresource) == ("nodes", "node-1", "proxy")


def test_field_selector_name_is_the_name_of_a_list_or_watch() -> None:
    uri = "/api/v1/namespaces/kube-system/configmaps?fieldSelector=metadata.name%3Dkubeadm-config&watch=true"
    assert request_info("watch", uri).name == "kubeadm-config"
    assert request_info("list", "/api/v1/nodes?fieldSelector=metadata.name==n1").name == "n1"
    assert request_info("list", "/api/v1/nodes?fieldSelector=metadata.name!=n1").name == ""
    assert request_info("list", "/api/v1/nodes?fieldSelector=spec.unschedulable%3Dfalse").name == ""
    p = policy(Rule(level="None", resources=(res("", "configmaps", names=("kubeadm-config",)),)),
               Rule(level="Metadata"))
    assert level(p, attrs("watch", uri)) == ("None", 0)


# --------------------------------------------------------------------------- users, groups, verbs


def test_user_is_the_authenticated_one_and_star_is_literal() -> None:
    p = policy(Rule(level="None", users=("system:kube-proxy",)), Rule(level="Metadata"))
    assert level(p, attrs("get", "/api/v1/nodes", user="system:kube-proxy")) == ("None", 0)
    assert level(p, attrs("get", "/api/v1/nodes", user="bob")) == ("Metadata", 1)
    star = policy(Rule(level="None", users=("*",)), Rule(level="None", user_groups=("*",)),
                  Rule(level="None", verbs=("*",)), Rule(level="Metadata"))
    assert level(star, attrs("get", "/api/v1/nodes")) == ("Metadata", 3)
    assert level(star, attrs("*", "/api/v1/nodes", user="x")) == ("None", 2)


def test_user_groups_any_group_matches_and_no_user_matches_none() -> None:
    p = policy(Rule(level="Request", user_groups=("system:nodes", "ops")), Rule(level="Metadata"))
    assert level(p, attrs("get", "/api/v1/pods", groups=("system:authenticated", "ops"))) == ("Request", 0)
    assert level(p, attrs("get", "/api/v1/pods", groups=("system:authenticated",))) == ("Metadata", 1)
    # a failed authentication has no user: neither users nor userGroups rules match
    assert level(p, attrs("get", "/api/v1/pods", user=None, groups=())) == ("Metadata", 1)
    nobody = policy(Rule(level="Request", users=("",)), Rule(level="Metadata"))
    assert level(nobody, attrs("get", "/api/v1/pods", user=None, groups=())) == ("Metadata", 1)


def test_verbs() -> None:
    p = policy(Rule(level="None", verbs=("watch", "list")), Rule(level="Metadata"))
    assert level(p, attrs("watch", "/api/v1/pods?watch=1")) == ("None", 0)
    assert level(p, attrs("get", "/api/v1/namespaces/a/pods/b")) == ("Metadata", 1)


# --------------------------------------------------------------------------- first match, no match


def test_first_match_wins_and_no_match_is_none() -> None:
    p = policy(Rule(level="Metadata", resources=(res("", "pods"),)), Rule(level="RequestResponse"))
    assert level(p, attrs("get", "/api/v1/namespaces/a/pods/b")) == ("Metadata", 0)
    only = policy(Rule(level="Metadata", resources=(res("", "secrets"),)), omit=("RequestReceived",))
    d = Evaluator(only).decide(attrs("get", "/api/v1/namespaces/a/pods/b"))
    assert (d.level, d.rule, d.omit_stages) == ("None", None, frozenset({"RequestReceived"}))


# --------------------------------------------------------------------------- namespaces


def test_empty_namespace_matches_cluster_scoped_and_all_namespace_lists() -> None:
    p = policy(Rule(level="Request", namespaces=("",)), Rule(level="Metadata"))
    assert level(p, attrs("get", "/api/v1/nodes/n1")) == ("Request", 0)
    assert level(p, attrs("list", "/api/v1/pods")) == ("Request", 0)  # every namespace at once
    assert level(p, attrs("list", "/api/v1/namespaces/default/pods")) == ("Metadata", 1)
    # a namespaces rule never matches a non-resource request
    assert level(p, attrs("get", "/healthz")) == ("Metadata", 1)
    star = policy(Rule(level="Request", namespaces=("*",)), Rule(level="Metadata"))
    assert level(star, attrs("get", "/api/v1/namespaces/default/pods/x")) == ("Metadata", 1)


# --------------------------------------------------------------------------- non-resource URLs


def test_non_resource_urls() -> None:
    assert path_matches("/apis/apps/v1", "/api*")  # a plain text prefix, not a path segment
    assert path_matches("/healthz", "/healthz")
    assert not path_matches("/healthz/etcd", "/healthz")
    assert path_matches("/healthz/etcd", "/healthz*")
    assert path_matches("/anything", "*")
    assert path_matches("/api", "/api**")
    p = policy(Rule(level="None", non_resource_urls=("/healthz*", "/version")), Rule(level="Metadata"))
    assert level(p, attrs("get", "/healthz/etcd?verbose")) == ("None", 0)
    assert level(p, attrs("get", "/version?timeout=32s")) == ("None", 0)
    assert level(p, attrs("get", "/metrics")) == ("Metadata", 1)
    # a nonResourceURLs rule never matches a resource request
    p2 = policy(Rule(level="None", non_resource_urls=("*",)), Rule(level="Metadata"))
    assert level(p2, attrs("get", "/api/v1/pods")) == ("Metadata", 1)
    assert level(p2, attrs("get", "/api/v1")) == ("None", 0)  # discovery is non-resource


# --------------------------------------------------------------------------- resources


def test_group_without_resources_matches_every_resource_and_subresource() -> None:
    p = policy(Rule(level="Request", resources=(res("apps"),)), Rule(level="Metadata"))
    assert level(p, attrs("get", "/apis/apps/v1/namespaces/a/deployments/d/scale")) == ("Request", 0)
    assert level(p, attrs("list", "/apis/apps/v1/statefulsets")) == ("Request", 0)
    assert level(p, attrs("list", "/apis/batch/v1/jobs")) == ("Metadata", 1)
    # the core group is ""
    core = policy(Rule(level="Request", resources=(res(""),)), Rule(level="Metadata"))
    assert level(core, attrs("get", "/api/v1/namespaces/a/pods/p/log")) == ("Request", 0)
    assert level(core, attrs("get", "/apis/apps/v1/namespaces/a/deployments/d")) == ("Metadata", 1)


def test_resource_patterns() -> None:
    assert resource_matches("pods", "pods", "")
    assert not resource_matches("pods", "pods", "log")  # pods does not match pods/log
    assert resource_matches("pods/log", "pods", "log")
    assert resource_matches("pods/*", "pods", "exec")
    assert resource_matches("pods/*", "pods", "")  # pods/* also matches plain pods
    assert not resource_matches("pods/*", "services", "")
    assert resource_matches("*/scale", "deployments", "scale")
    assert resource_matches("*/scale", "replicasets", "scale")
    assert not resource_matches("*/scale", "deployments", "")
    assert not resource_matches("*/scale", "deployments", "status")
    assert resource_matches("*", "pods", "exec")
    assert not resource_matches("*/*", "pods", "")


def test_resource_names_never_match_a_request_without_a_name() -> None:
    p = policy(Rule(level="None", resources=(res("coordination.k8s.io", "leases", names=("kube-scheduler",)),)),
               Rule(level="Metadata"))
    base = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    assert level(p, attrs("update", base + "/kube-scheduler")) == ("None", 0)
    assert level(p, attrs("update", base + "/other")) == ("Metadata", 1)
    assert level(p, attrs("list", base)) == ("Metadata", 1)
    assert level(p, attrs("create", base)) == ("Metadata", 1)


def test_wildcard_group_only_where_the_api_server_accepts_it() -> None:
    p = policy(Rule(level="Request", resources=(res("*", "*"),)), Rule(level="Metadata"))
    a = attrs("get", "/apis/apps/v1/namespaces/a/deployments/d")
    assert level(p, a, (1, 36)) == ("Request", 0)
    assert level(p, a, (1, 35)) == ("Metadata", 1)


# --------------------------------------------------------------------------- stages and managed fields


def test_omit_stages_union_and_managed_fields_override() -> None:
    p = policy(
        Rule(level="Metadata", resources=(res("", "pods"),), omit_stages=("ResponseStarted",),
             omit_managed_fields=False),
        Rule(level="Request", resources=(res("", "services"),)),
        omit=("RequestReceived",), omf=True,
    )
    ev = Evaluator(p)
    pods = ev.decide(attrs("get", "/api/v1/namespaces/a/pods/b"))
    assert pods.omit_stages == {"RequestReceived", "ResponseStarted"}
    assert pods.omit_managed_fields is False  # set on the rule: overrides the policy
    svc = ev.decide(attrs("get", "/api/v1/namespaces/a/services/b"))
    assert svc.omit_stages == {"RequestReceived"}
    assert svc.omit_managed_fields is True  # unset: the policy's
    none = ev.decide(attrs("get", "/healthz"))
    assert (none.level, none.omit_managed_fields) == ("None", True)


# --------------------------------------------------------------------------- the cache


def test_cache_keys_only_what_the_policy_can_see() -> None:
    p = policy(Rule(level="None", resources=(res("", "endpoints"),)), Rule(level="Metadata"))
    ev = Evaluator(p)
    for i in range(100):
        ev.decide(attrs("get", f"/api/v1/namespaces/ns{i % 3}/pods/p{i}", user=f"u{i}"))
    assert ev.distinct == 3 and ev.hits == 97  # names and users are not in the key
    named = Evaluator(policy(Rule(level="None", resources=(res("", "pods", names=("p1",)),)), Rule(level="Metadata")))
    assert named.decide(attrs("get", "/api/v1/namespaces/a/pods/p1")).rule == 0
    assert named.decide(attrs("get", "/api/v1/namespaces/a/pods/p2")).rule == 1


@pytest.mark.parametrize("profile", ["minimal", "recommended", "cis", "security", "write-bodies", "all-bodies"])
def test_profiles_evaluate(profile: str) -> None:
    from installer.policy.profiles import render

    parsed = parse(render(profile).text)
    assert parsed.ok and parsed.policy is not None
    ev = Evaluator(parsed.policy)
    d = ev.decide(attrs("get", "/api/v1/namespaces/default/secrets/s"))
    assert d.level in ("None", "Metadata")  # never bodies of Secrets
