"""A generator of realistic audit events (audit.k8s.io/v1 JSON lines), for the tests and the bench.

The traffic of a small real cluster, in the proportions a 24 h log of one shows: kubelets renewing
leases and patching node status, controllers and the scheduler listing and watching, kube-proxy and
CoreDNS watching endpoint slices, health and discovery probes (non-resource URLs), operators reading
pods and logs, exec'ing, scaling deployments, CI creating and deleting workloads, service-account
token requests, token reviews, a few failed authentications. Stages RequestReceived and
ResponseComplete (ResponseStarted for watches and exec), levels as a typical "recommended-style"
log records them (`level_of`), with request and response bodies where the level has them: events
average about 1 KB.

Deterministic for a seed. Written independently of kaudit's evaluator: the levels here come from the
small table in `level_of`, not from any policy kaudit parses.
"""

from __future__ import annotations

import gzip
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

NODES = ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3", "worker-4")
NAMESPACES = ("default", "kube-system", "monitoring", "team-a", "team-b", "ci")


@dataclass(frozen=True)
class Request:
    user: str
    groups: tuple[str, ...]
    verb: str
    uri: str
    group: str = ""
    version: str = "v1"
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    code: int = 200
    user_agent: str = "kubectl/v1.34.1 (linux/amd64) kubernetes/abc1234"
    impersonated: str | None = None


def _sa(ns: str, name: str) -> tuple[str, tuple[str, ...]]:
    return f"system:serviceaccount:{ns}:{name}", ("system:serviceaccounts", f"system:serviceaccounts:{ns}",
                                                 "system:authenticated")


def _path(r: str, group: str, version: str, ns: str, name: str = "", sub: str = "") -> str:
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if ns:
        base += f"/namespaces/{ns}"
    base += f"/{r}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base


def _requests(rng: random.Random) -> Iterator[tuple[float, Request]]:
    """(weight, request) for one draw of the traffic mix."""
    node = rng.choice(NODES)
    ns = rng.choice(NAMESPACES)
    pod = f"web-{rng.randrange(40):02d}-{rng.choice('abcdefgh')}{rng.randrange(100)}"
    kubelet = (f"system:node:{node}", ("system:nodes", "system:authenticated"))
    kcm = ("system:kube-controller-manager", ("system:authenticated",))
    sched = ("system:kube-scheduler", ("system:authenticated",))
    admin = ("kubernetes-admin", ("kubeadm:cluster-admins", "system:authenticated"))
    ci = _sa("ci", "deployer")
    lease = "coordination.k8s.io"
    yield 18, Request(*kubelet, "update", _path("leases", lease, "v1", "kube-node-lease", node), lease, "v1",
                      "leases", "", "kube-node-lease", node, user_agent=f"kubelet/v1.34.1 ({node})")
    yield 6, Request(*kubelet, "patch", _path("nodes", "", "v1", "", node, "status"), "", "v1", "nodes",
                     "status", "", node, user_agent="kubelet/v1.34.1")
    yield 5, Request(*kubelet, "get", _path("nodes", "", "v1", "", node) + "?resourceVersion=0&timeout=10s",
                     "", "v1", "nodes", "", "", node, user_agent="kubelet/v1.34.1")
    yield 3, Request(*kubelet, "watch", _path("configmaps", "", "v1", ns) +
                     "?allowWatchBookmarks=true&fieldSelector=metadata.name%3Dkube-root-ca.crt&watch=true",
                     "", "v1", "configmaps", "", ns, "kube-root-ca.crt", user_agent="kubelet/v1.34.1")
    yield 3, Request(*kubelet, "patch", _path("pods", "", "v1", ns, pod, "status"), "", "v1", "pods", "status",
                     ns, pod, user_agent="kubelet/v1.34.1")
    yield 2, Request(*kubelet, "get", _path("secrets", "", "v1", ns, "app-tls"), "", "v1", "secrets", "", ns,
                     "app-tls", user_agent="kubelet/v1.34.1")
    yield 2, Request(*kubelet, "create", _path("serviceaccounts", "", "v1", ns, "default", "token"), "", "v1",
                     "serviceaccounts", "token", ns, "default", 201, user_agent="kubelet/v1.34.1")
    for who in ("kube-controller-manager", "kube-scheduler"):
        u = kcm if who == "kube-controller-manager" else sched
        yield 4, Request(*u, "update", _path("leases", lease, "v1", "kube-system", who), lease, "v1", "leases", "",
                         "kube-system", who, user_agent=f"{who}/v1.34.1 leader-election")
        yield 1, Request(*u, "get", _path("leases", lease, "v1", "kube-system", who), lease, "v1", "leases", "",
                         "kube-system", who, user_agent=f"{who}/v1.34.1 leader-election")
    for r, g in (("pods", ""), ("replicasets", "apps"), ("deployments", "apps"), ("endpointslices",
                 "discovery.k8s.io"), ("jobs", "batch"), ("nodes", ""), ("services", ""), ("events", "")):
        ver = "v1"
        yield 0.6, Request(*kcm, "list", _path(r, g, ver, "") + "?limit=500&resourceVersion=0", g, ver, r,
                           user_agent="kube-controller-manager/v1.34.1")
        yield 0.5, Request(*kcm, "watch", _path(r, g, ver, "") + "?allowWatchBookmarks=true&timeoutSeconds=470"
                           "&watch=true", g, ver, r, user_agent="kube-controller-manager/v1.34.1")
    ctrl = _sa("kube-system", "replicaset-controller")
    yield 2, Request(*ctrl, "update", _path("replicasets", "apps", "v1", ns, "web-7d9f", "status"), "apps", "v1",
                     "replicasets", "status", ns, "web-7d9f", user_agent="kube-controller-manager/v1.34.1")
    yield 2, Request(*ctrl, "create", _path("pods", "", "v1", ns), "", "v1", "pods", "", ns, "", 201,
                     user_agent="kube-controller-manager/v1.34.1")
    yield 2, Request(*sched, "create", _path("pods", "", "v1", ns, pod, "binding"), "", "v1", "pods", "binding",
                     ns, pod, 201, user_agent="kube-scheduler/v1.34.1")
    proxy = ("system:kube-proxy", ("system:authenticated",))
    yield 1, Request(*proxy, "watch", _path("endpointslices", "discovery.k8s.io", "v1", "") +
                     "?labelSelector=%21service.kubernetes.io%2Fheadless&watch=true", "discovery.k8s.io", "v1",
                     "endpointslices", user_agent="kube-proxy/v1.34.1")
    dns = _sa("kube-system", "coredns")
    yield 1, Request(*dns, "list", _path("services", "", "v1", "") + "?limit=500", "", "v1", "services",
                     user_agent="coredns/v1.11.3")
    probe = ("system:anonymous", ("system:unauthenticated",))
    for path, w in (("/readyz", 3.0), ("/livez", 3.0), ("/healthz", 1.0)):
        yield w, Request(*probe, "get", path, user_agent="kube-probe/1.34")
    yield 2, Request(*kcm, "get", "/apis?timeout=32s", user_agent="kube-controller-manager/v1.34.1")
    yield 1, Request(*kcm, "get", "/api/v1?timeout=32s", user_agent="kube-controller-manager/v1.34.1")
    yield 0.6, Request(*admin, "get", "/openapi/v3/apis/apps/v1", user_agent="kubectl/v1.34.1")
    yield 0.5, Request(*admin, "get", "/version?timeout=32s")
    yield 0.4, Request(*_sa("monitoring", "prometheus"), "get", "/metrics", user_agent="Prometheus/2.54.1")
    yield 1.5, Request(*admin, "list", _path("pods", "", "v1", ns) + "?limit=500", "", "v1", "pods", "", ns)
    yield 1, Request(*admin, "get", _path("pods", "", "v1", ns, pod), "", "v1", "pods", "", ns, pod)
    yield 0.5, Request(*admin, "get", _path("pods", "", "v1", ns, pod, "log") + "?container=app", "", "v1", "pods",
                       "log", ns, pod)
    yield 0.1, Request(*admin, "create", _path("pods", "", "v1", ns, pod, "exec") +
                       "?command=sh&container=app&stdin=true&tty=true", "", "v1", "pods", "exec", ns, pod, 101)
    yield 0.2, Request(*admin, "list", _path("secrets", "", "v1", ns), "", "v1", "secrets", "", ns)
    yield 0.2, Request(*admin, "get", _path("configmaps", "", "v1", ns, "app-config"), "", "v1", "configmaps", "",
                       ns, "app-config")
    yield 0.2, Request(*admin, "patch", _path("deployments", "apps", "v1", ns, "web", "scale"), "apps", "v1",
                       "deployments", "scale", ns, "web")
    yield 0.1, Request(*admin, "get", _path("namespaces", "", "v1", "", ns), "", "v1", "namespaces", "", ns, ns)
    yield 0.1, Request(*admin, "list", _path("pods", "", "v1", ns) + "?limit=500", "", "v1", "pods", "", ns,
                       impersonated="jane")
    yield 0.5, Request(*ci, "create", _path("deployments", "apps", "v1", "ci"), "apps", "v1", "deployments", "",
                       "ci", "", 201, user_agent="argocd-application-controller/v2.12")
    yield 0.5, Request(*ci, "patch", _path("deployments", "apps", "v1", "ci", "build-api"), "apps", "v1",
                       "deployments", "", "ci", "build-api", user_agent="argocd-application-controller/v2.12")
    yield 0.3, Request(*ci, "delete", _path("jobs", "batch", "v1", "ci", "build-4711"), "batch", "v1", "jobs", "",
                       "ci", "build-4711", user_agent="argocd-application-controller/v2.12")
    yield 0.3, Request(*ci, "update", _path("configmaps", "", "v1", "ci", "pipeline-state"), "", "v1", "configmaps",
                       "", "ci", "pipeline-state", user_agent="argocd-application-controller/v2.12")
    yield 0.5, Request("system:kube-apiserver", ("system:authenticated",), "create",
                       "/apis/authentication.k8s.io/v1/tokenreviews", "authentication.k8s.io", "v1", "tokenreviews",
                       code=201, user_agent="kube-apiserver/v1.34.1")
    yield 0.4, Request(*_sa("monitoring", "kube-state-metrics"), "create",
                       "/apis/authorization.k8s.io/v1/subjectaccessreviews", "authorization.k8s.io", "v1",
                       "subjectaccessreviews", code=201, user_agent="kube-rbac-proxy/0.18")
    yield 0.3, Request(*kcm, "create", _path("events", "events.k8s.io", "v1", ns), "events.k8s.io", "v1", "events",
                       "", ns, "", 201)
    yield 0.1, Request("", (), "get", _path("secrets", "", "v1", "kube-system"), "", "v1", "secrets", "",
                       "kube-system", "", 401, user_agent="curl/8.5.0")
    yield 0.1, Request(*_sa("team-a", "app"), "list", _path("secrets", "", "v1", "kube-system"), "", "v1",
                       "secrets", "", "kube-system", "", 403, user_agent="python-requests/2.32")


_MANAGED = [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": "2026-05-01T10:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}}}]


def _object(req: Request, rng: random.Random) -> dict[str, object]:
    kind = (req.subresource or req.resource).rstrip("s").capitalize() or "Status"
    # ObjectMeta's fields in the order the API server writes them (Go's struct order): managedFields last
    meta: dict[str, object] = {"name": req.name or f"gen-{rng.randrange(10**6)}"}
    if req.namespace:
        meta["namespace"] = req.namespace
    meta.update({"uid": str(uuid.UUID(int=rng.getrandbits(128))), "resourceVersion": str(rng.randrange(10**8)),
                 "labels": {"app": "web", "tier": "frontend"}, "managedFields": _MANAGED})
    spec = {"replicas": rng.randrange(1, 6), "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "app", "image": "registry.example.com/web:1.4.2",
                                                  "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                                  "env": [{"name": "LOG_LEVEL", "value": "info"},
                                                          {"name": "REGION", "value": "eu-west-1"}],
                                                  "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}}
    return {"kind": kind, "apiVersion": f"{req.group}/{req.version}" if req.group else req.version,
            "metadata": meta, "spec": spec}


def level_of(req: Request) -> str:
    """The level a typical recommended-style policy records (this generator's own table)."""
    if req.uri.startswith(("/readyz", "/livez", "/healthz", "/version")):
        return "None"
    if req.resource in ("secrets", "configmaps", "tokenreviews") or req.subresource == "token":
        return "Metadata"
    if req.resource == "leases":
        return "None"
    if req.user.startswith("system:node:") and req.verb == "patch":
        return "Request"
    if req.verb in ("get", "list", "watch"):
        return "Metadata"
    if not req.resource:
        return "Metadata"
    return "RequestResponse"


# audit.k8s.io/v1 Event's fields in the order the log backend writes them (Go's struct order)
_EVENT_ORDER = ("kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser",
                "sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
                "requestReceivedTimestamp", "stageTimestamp", "annotations")


def _go_order(ev: dict[str, object]) -> dict[str, object]:
    return {k: ev[k] for k in _EVENT_ORDER if k in ev}


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events(n_requests: int, *, seed: int = 0, start: float = 1_777_600_000.0, span: float = 86_400.0,
           omit_received: bool = True, level: str | None = None) -> Iterator[dict[str, object]]:
    """The events of `n_requests` requests spread over `span` seconds (level None requests write nothing,
    so there are fewer events than 2 x n_requests). `level` forces one level on every request."""
    rng = random.Random(seed)
    step = span / max(n_requests, 1)
    batch: list[Request] = []
    for i in range(n_requests):
        if not batch:  # a fresh mix (other nodes, namespaces, pods) every 64 requests
            mix = list(_requests(rng))
            batch = rng.choices([r for _, r in mix], [w for w, _ in mix], k=64)
        req = batch.pop()
        lvl = level or level_of(req)
        if lvl == "None":
            continue
        t0 = start + i * step
        ev: dict[str, object] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": lvl,
            "auditID": str(uuid.UUID(int=rng.getrandbits(128))), "stage": "RequestReceived",
            "requestURI": req.uri, "verb": req.verb,
            "user": {"username": req.user, "groups": list(req.groups)} if req.user else {},
        }
        if req.impersonated:
            ev["impersonatedUser"] = {"username": req.impersonated, "groups": ["system:authenticated"]}
        ev["sourceIPs"] = [f"10.0.{rng.randrange(4)}.{rng.randrange(2, 250)}"]
        ev["userAgent"] = req.user_agent
        if req.resource:
            ref = {"resource": req.resource, "namespace": req.namespace, "name": req.name, "apiGroup": req.group,
                   "apiVersion": req.version, "subresource": req.subresource}
            ev["objectRef"] = {k: v for k, v in ref.items() if v}
        ev["requestReceivedTimestamp"] = _ts(t0)
        ev["stageTimestamp"] = _ts(t0)
        if req.code == 401:  # failed authentication: one ResponseStarted event, no user
            yield {**ev, "stage": "ResponseStarted", "user": {},
                   "responseStatus": {"metadata": {}, "status": "Failure", "message": "Unauthorized",
                                      "reason": "Unauthorized", "code": 401}}
            continue
        if not omit_received:
            yield dict(ev)
        # as kube-apiserver's BasicLongRunningRequestCheck: these also write ResponseStarted
        long_running = req.verb in ("watch", "proxy") or req.subresource in ("attach", "exec", "proxy", "log",
                                                                             "portforward")
        if long_running:
            yield {**ev, "stage": "ResponseStarted", "stageTimestamp": _ts(t0 + 0.002),
                   "responseStatus": {"metadata": {}, "code": req.code}}
        done = dict(ev)
        done["stage"] = "ResponseComplete"
        done["stageTimestamp"] = _ts(t0 + (300.0 if long_running else 0.004 + rng.random() * 0.01))
        status: dict[str, object] = {"metadata": {}, "code": req.code}
        if req.code >= 400:
            status.update(status="Failure", reason="Forbidden", message="forbidden")
        done["responseStatus"] = status
        name_created = req.verb == "create" and not req.name and req.resource
        if name_created:  # the objectRef gets the new object's name afterwards (pkg/audit/request.go)
            ref = dict(done.get("objectRef") or {})  # type: ignore[call-overload]
            ref["name"] = f"{req.resource[:-1]}-{rng.randrange(10**5)}"
            done["objectRef"] = ref
        writes = req.verb in ("create", "update", "patch") and req.resource and req.code < 400
        if lvl in ("Request", "RequestResponse") and writes and req.subresource != "exec":
            done["requestObject"] = _object(req, rng)
        if lvl == "RequestResponse" and req.resource and req.code < 400 and req.verb not in ("watch",) \
                and req.subresource != "exec":
            done["responseObject"] = _object(req, rng)
        done["annotations"] = {"authorization.k8s.io/decision": "forbid" if req.code == 403 else "allow",
                               "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding"}
        yield done


def lines(n_requests: int, **kwargs: object) -> Iterator[bytes]:
    for ev in events(n_requests, **kwargs):  # type: ignore[arg-type]
        yield json.dumps(_go_order(ev), separators=(",", ":")).encode() + b"\n"


def write(path: Path, n_requests: int, *, gz: bool = False, **kwargs: object) -> int:
    """Write a log of `n_requests` requests; returns the number of events."""
    count = 0
    opener = gzip.open if gz else open
    with opener(path, "wb") as out:  # type: ignore[operator]
        for line in lines(n_requests, **kwargs):
            out.write(line)
            count += 1
    return count


def write_size(path: Path, target_bytes: int, *, seed: int = 0, block: int = 20_000) -> tuple[int, int]:
    """A large log of about `target_bytes` (the bench): one hour of traffic generated, repeated with fresh
    auditIDs, each repetition an hour later than the one before (so the log spans as many hours as it has
    repetitions, as a real log does). Returns (events, bytes)."""
    start = 1_777_600_000.0 // 3600 * 3600  # on the hour: the sample's timestamps are in that hour or the next
    sample = list(lines(block, seed=seed, start=start, span=3600.0))
    written = events_ = 0
    hour = 0

    def prefix(h: int) -> bytes:
        return datetime.fromtimestamp(start + h * 3600, timezone.utc).strftime("%Y-%m-%dT%H").encode()

    with open(path, "wb") as out:
        while written < target_bytes:
            # the later hour first, so that a shifted timestamp is not shifted again
            swaps = [(prefix(1), prefix(hour + 1)), (prefix(0), prefix(hour))] if hour else []
            for line in sample:
                if hour:
                    line = line.replace(b'"auditID":"', b'"auditID":"%04x' % (hour % 65536), 1)
                    for old, new in swaps:
                        line = line.replace(old, new)
                out.write(line)
                written += len(line)
                events_ += 1
            hour += 1
    return events_, written
