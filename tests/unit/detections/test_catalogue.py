"""The detection catalogue (profiles/detections): it loads, every entry is complete, and each detection
fires on a hand-made event of its shape and not on a near miss; bursts need their count; blind spots
come from the policy's own first-match evaluation."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from installer.auditlog.reader import Event
from installer.detections import catalogue as detections
from installer.errors import InputError

DECODE = msgspec.json.Decoder(Event).decode
T0 = "2026-05-01T10:00:00.000000Z"


def ev(verb: str, resource: str = "", *, group: str = "", sub: str = "", ns: str = "default", name: str = "x",
       user: str = "jane", groups: tuple[str, ...] = ("system:authenticated",), code: int = 201,
       uri: str | None = None, request: Any = None, ts: str = T0, ip: str = "10.1.1.1",
       audit_id: str | None = None, **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request" if request is not None else "Metadata",
        "auditID": audit_id or f"{verb}-{resource}-{sub}-{user}-{ts}-{code}", "stage": "ResponseComplete",
        "requestURI": uri or f"/api/v1/namespaces/{ns}/{resource}/{name}", "verb": verb,
        "user": {"username": user, "groups": list(groups)}, "sourceIPs": [ip], "userAgent": "kubectl/v1.34.0",
        "responseStatus": {"metadata": {}, "code": code}, "requestReceivedTimestamp": ts, "stageTimestamp": ts,
        **extra,
    }
    if resource:
        doc["objectRef"] = {k: v for k, v in {"resource": resource, "namespace": ns, "name": name, "apiGroup": group,
                                               "apiVersion": "v1", "subresource": sub}.items() if v}
    if request is not None:
        doc["requestObject"] = request
    return json.dumps(doc, separators=(",", ":")).encode()


RBAC = "rbac.authorization.k8s.io"
ADM = "admissionregistration.k8s.io"


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": spec}


def deploy(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Deployment", "spec": {"template": {"spec": spec}}}


# name -> (an event it must find, a near miss it must not)
CASES: dict[str, tuple[bytes, bytes]] = {
    "pod-exec": (ev("create", "pods", sub="exec", code=101), ev("create", "pods", sub="exec", code=403)),
    "pod-attach": (ev("create", "pods", sub="attach", code=101), ev("get", "pods", sub="log", code=200)),
    "pod-port-forward": (ev("create", "pods", sub="portforward", code=101), ev("get", "pods", code=200)),
    "ephemeral-container": (ev("patch", "pods", sub="ephemeralcontainers", code=200),
                            ev("patch", "pods", sub="status", code=200)),
    "node-proxy": (ev("get", "nodes", sub="proxy", ns="", code=200), ev("get", "nodes", ns="", code=200)),
    "service-proxy": (ev("get", "services", sub="proxy", code=200), ev("get", "services", code=200)),
    "secret-read-by-user": (ev("get", "secrets", code=200),
                            ev("get", "secrets", user="system:kube-controller-manager", code=200)),
    "secret-list-by-user": (ev("list", "secrets", name="", code=200), ev("list", "secrets", name="", code=403)),
    "secret-changed-by-user": (ev("delete", "secrets", code=200), ev("get", "configmaps", code=200)),
    "serviceaccount-token-request": (ev("create", "serviceaccounts", sub="token", code=201),
                                     ev("create", "serviceaccounts", sub="token", user="system:node:cp-1")),
    "serviceaccount-created": (ev("create", "serviceaccounts", code=201),
                               ev("create", "serviceaccounts", user="system:serviceaccount:kube-system:x")),
    "serviceaccount-in-kube-system": (ev("create", "serviceaccounts", ns="kube-system"),
                                      ev("create", "serviceaccounts", ns="team-a")),
    "configmap-with-credentials": (ev("create", "configmaps", request={"data": {"password": "hunter2"}}),
                                   ev("create", "configmaps", request={"data": {"color": "blue"}})),
    "cluster-admin-binding": (
        ev("create", "clusterrolebindings", group=RBAC, ns="", request={"roleRef": {"name": "cluster-admin"}}),
        ev("create", "clusterrolebindings", group=RBAC, ns="", request={"roleRef": {"name": "view"}})),
    "wildcard-clusterrole": (
        ev("create", "clusterroles", group=RBAC, ns="", request={"rules": [{"verbs": ["*"], "resources": ["pods"]}]}),
        ev("create", "clusterroles", group=RBAC, ns="",
           request={"rules": [{"verbs": ["get"], "resources": ["pods"]}]})),
    "role-grants-exec": (
        ev("create", "roles", group=RBAC, request={"rules": [{"verbs": ["create"], "resources": ["pods/exec"]}]}),
        ev("create", "roles", group=RBAC, request={"rules": [{"verbs": ["get"], "resources": ["pods/log"]}]})),
    "rbac-binding-changed": (ev("patch", "rolebindings", group=RBAC, code=200),
                             ev("patch", "rolebindings", group=RBAC, code=403)),
    "system-clusterrole-changed": (ev("delete", "clusterroles", group=RBAC, ns="", name="system:node", code=200),
                                   ev("delete", "clusterroles", group=RBAC, ns="", name="mine", code=200)),
    "rbac-self-review": (ev("create", "selfsubjectrulesreviews", group="authorization.k8s.io", ns="", name=""),
                         ev("create", "subjectaccessreviews", group="authorization.k8s.io", ns="", name="")),
    "privileged-pod": (
        ev("create", "pods", request=pod({"containers": [{"securityContext": {"privileged": True}}]})),
        ev("create", "pods", request=pod({"containers": [{"securityContext": {"privileged": False}}]}))),
    "hostpath-pod": (
        ev("create", "deployments", group="apps", request=deploy({"volumes": [{"hostPath": {"path": "/"}}]})),
        ev("create", "deployments", group="apps", request=deploy({"volumes": [{"emptyDir": {}}]}))),
    "host-network-pod": (ev("create", "pods", request=pod({"hostNetwork": True})),
                         ev("create", "pods", request=pod({"hostNetwork": False}))),
    "host-pid-ipc-pod": (ev("create", "pods", request=pod({"hostPID": True})),
                         ev("create", "pods", request=pod({}))),
    "added-capabilities-pod": tuple(
        ev("create", "pods", request=pod({"containers": [{"securityContext": {"capabilities": {"add": [c]}}}]}))
        for c in ("SYS_ADMIN", "CHOWN")),
    "pod-in-kube-system": (ev("create", "pods", ns="kube-system"),
                           ev("create", "pods", ns="kube-system", user="system:serviceaccount:kube-system:ds")),
    "nodeport-service": (ev("create", "services", request={"spec": {"type": "NodePort"}}),
                         ev("create", "services", request={"spec": {"type": "ClusterIP"}})),
    "cronjob-changed": (ev("create", "cronjobs", group="batch"), ev("get", "cronjobs", group="batch", code=200)),
    "deployment-deleted": (ev("delete", "deployments", group="apps", code=200),
                           ev("delete", "deployments", group="extensions", code=200)),
    "sidecar-injected": (ev("patch", "deployments", group="apps", code=200),
                         ev("patch", "deployments", group="apps", sub="scale", code=200)),
    "admission-webhook-changed": (ev("delete", "validatingwebhookconfigurations", group=ADM, ns="", code=200),
                                  ev("get", "validatingwebhookconfigurations", group=ADM, ns="", code=200)),
    "admission-policy-changed": (ev("delete", "validatingadmissionpolicybindings", group=ADM, ns="", code=200),
                                 ev("list", "validatingadmissionpolicies", group=ADM, ns="", code=200)),
    "csr-approved": (ev("update", "certificatesigningrequests", group="certificates.k8s.io", sub="approval", ns="",
                        code=200),
                     ev("update", "certificatesigningrequests", group="certificates.k8s.io", sub="approval", ns="",
                        user="system:kube-controller-manager", code=200)),
    "events-deleted": (ev("deletecollection", "events", name="", code=200), ev("create", "events", code=201)),
    "namespace-deleted": (ev("delete", "namespaces", ns="team-a", name="team-a", code=200),
                          ev("delete", "namespaces", ns="team-a", name="team-a", user="system:serviceaccount:a:b",
                             code=200)),
    "crd-changed": (ev("delete", "customresourcedefinitions", group="apiextensions.k8s.io", ns="", code=200),
                    ev("get", "customresourcedefinitions", group="apiextensions.k8s.io", ns="", code=200)),
    "anonymous-allowed": (ev("list", "pods", name="", user="system:anonymous", groups=("system:unauthenticated",),
                             code=200),
                          ev("get", "", user="system:anonymous", uri="/healthz", code=200)),
    "forbidden-serviceaccount": (ev("list", "secrets", name="", user="system:serviceaccount:ci:runner", code=403),
                                 ev("list", "secrets", name="", user="jane", code=403)),
}
BURSTS = {"unauthenticated-burst": 401, "forbidden-burst": 403}


def test_the_catalogue_loads_and_is_complete() -> None:
    catalogue = detections.load()
    assert len(catalogue) >= 30
    names = [d.name for d in catalogue]
    assert len(set(names)) == len(names)
    for d in catalogue:
        assert d.title and d.why and d.rules and d.level in ("Metadata", "Request", "RequestResponse")
        assert all(r.split(":", 1)[0] in ("Falco k8saudit", "Sigma", "Elastic", "Microsoft Threat Matrix for "
                                          "Kubernetes", "MITRE ATT&CK") for r in d.rules), d.rules
        assert d.match
    # every detection has a test here
    assert set(names) == set(CASES) | set(BURSTS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_detection_finds_its_shape(name: str) -> None:
    (det,) = detections.select(detections.load(), [name])
    hit, miss = CASES[name]
    assert det.matches(DECODE(hit), hit), name
    assert not det.matches(DECODE(miss), miss), name
    hunt = detections.Hunt([det])
    for raw in (hit, hit, miss):  # the same request twice (by auditID) is one
        hunt.add(DECODE(raw), raw)
    (finding,) = hunt.findings()
    assert finding["events"] == 1 and finding["name"] == name and finding["why"] == det.why
    assert finding["firstSeen"] == T0 and finding["topUsers"][0]["events"] == 1


@pytest.mark.parametrize("name", sorted(BURSTS))
def test_bursts_need_their_count_in_their_window(name: str) -> None:
    (det,) = detections.select(detections.load(), [name])
    assert det.burst is not None
    count, seconds = int(det.burst["count"]), float(det.burst["seconds"])
    code = BURSTS[name]

    def hunt(n: int, spacing: float) -> list[dict[str, Any]]:
        h = detections.Hunt([det])
        for i in range(n):
            ts = f"2026-05-01T10:{int(i * spacing) // 60:02d}:{int(i * spacing) % 60:02d}.000000Z"
            raw = ev("get", "pods", code=code, ts=ts, audit_id=f"a{i}")
            h.add(DECODE(raw), raw)
        return h.findings()

    assert hunt(count - 1, 0.5) == []
    assert hunt(count, seconds * 2 / count) == []  # spread out: no burst
    (finding,) = hunt(count, 0.5)
    assert finding["events"] == count


POLICY_METADATA = b"""apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources: [{group: "", resources: [events]}]
- level: Metadata
"""


def test_blind_spots_follow_the_policy() -> None:
    catalogue = detections.load()
    spots = detections.blind_spots(catalogue, [("cp-1", POLICY_METADATA, None)])
    by = {s["detection"]: s for s in spots}
    assert by["events-deleted"]["kind"] == "blind" and by["events-deleted"]["recorded"] == "None"
    assert by["privileged-pod"]["kind"] == "degraded" and by["privileged-pod"]["needs"] == "Request"
    assert "pod-exec" not in by and "secret-read-by-user" not in by
    unknown = detections.blind_spots(catalogue, [("cp-2", None, None)])
    assert unknown[0]["detection"] is None and "could not be read" in unknown[0]["note"]
    text = detections.render_text([], spots)
    assert "no findings" in text and "events-deleted" in text


def test_bad_catalogue_entries_are_refused() -> None:
    base = {"name": "x", "title": "t", "why": "w", "level": "Metadata", "rules": ["Sigma: y"],
            "match": {"verbs": ["get"]}}

    def parse(**change: Any) -> None:
        detections.parse("t.yaml", json.dumps({"detections": [{**base, **change}]}))

    parse()
    with pytest.raises(InputError, match="kebab"):
        parse(name="Bad Name")
    with pytest.raises(InputError, match="unknown match"):
        parse(match={"verb": ["get"]})
    with pytest.raises(InputError, match="at least Request"):
        parse(match={"request": [{"path": "spec", "exists": True}]})
    with pytest.raises(InputError, match="public rule"):
        parse(rules=[])
    with pytest.raises(InputError, match="no detection"):
        detections.select(detections.load(), ["nope"])


def test_coverage_of_the_shipped_profiles() -> None:
    from installer.policy.profiles import render
    from installer.policy.validate import check

    catalogue = detections.load()
    states = {}
    for profile in ("minimal", "recommended", "all-bodies"):
        report = check(render(profile, {}).text)
        assert report.policy is not None
        states[profile] = {c["detection"]: c["state"] for c in detections.coverage(catalogue, report.policy)}
        assert set(states[profile]) == {d.name for d in catalogue}
    # more detail never loses a detection a lighter profile keeps
    order = {"lost": 0, "degraded": 1, "kept": 2}
    for name in states["minimal"]:
        assert order[states["all-bodies"][name]] >= order[states["minimal"][name]], name
    assert states["all-bodies"]["privileged-pod"] == "kept"
