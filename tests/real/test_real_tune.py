"""`kaudit tune` against the real API server (issue 22): the policy tune derives from a real log, enabled
on the real node, makes the real server write what tune's evaluation predicted.

1. `all-bodies` is enabled (every request with its bodies, Secrets and ConfigMaps at Metadata), and the
   test sends a fixed request set (window A): an admin creating, reading, changing and deleting
   ConfigMaps, Secrets, a pod with a hostPath volume, a RoleBinding and an Event (requests CIS
   detections read), a user RBAC knows nothing of getting 403s (forbidden-burst reads those), a
   monitoring agent (`kaudit-monitor`, a ClusterRole of the test's own: `view` is aggregated by a
   controller that may be restarting) polling pods and ConfigMaps, and a pretend node
   (`system:node:kaudit-fake`) renewing its Lease: the chatty classes a tuned policy should cut. The
   cluster's own components (kubelet, controller-manager, scheduler, the API server's own
   loopback client) write meanwhile; tune sees all of it.
2. `kaudit tune` (the user's install) on that log gives the policy; `kaudit simulate --policy-file` on
   the test's own events of window A gives the prediction: per event whether it is written and at
   which level (`-o events`), and the bytes written (`-o json`).
3. `kaudit enable --policy-file tuned.yaml` (a real restart), the same request set again (window B), and
   the events the real server wrote for it are compared with the prediction.

What is compared: only the test's own requests (told apart by their User-Agent, `kaudit-real/tune-a/<i>`
and `kaudit-real/tune-b/<i>`, same length so the events' sizes do not differ by it). Background traffic
differs between the windows (a freshly restarted server's controllers re-list, leases renew on their
own clock), so its volume says nothing about the prediction. Events are compared as a multiset of
(user, verb, request URI, stage, level): the same requests, the same stages (RequestReceived omitted),
at the same level, none cut that tune kept and none written that tune cut. Bytes: the real server's
lines for those events (with their newlines, as simulate counts) against simulate's bytes for the
same events of window A under the tuned policy, within 5% (timestamps, audit IDs and UIDs have fixed
widths; resource versions may gain a digit).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kaudit_cli import kaudit
from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import TIMES, change

NS = "kaudit-real-tune"
MONITOR = "kaudit-monitor"
FAKE_NODE = "kaudit-fake"
MONITOR_ROLE = "kaudit-monitor-read"
VERSION = "1.34"
RENEW = {"renew": True}  # the body of a lease renewal: the Lease just read, with a new renewTime

Request = tuple[str, str, str, dict[str, Any] | None]


def _identity(node: RealNode, where: Path, cn: str, org: str) -> kube.Identity:
    """A client certificate for CN/O signed by the cluster CA."""
    assert node.node is not None
    pki = node.node.path("/etc/kubernetes/pki")
    name = cn.replace(":", "_")
    key, csr, cert = where / f"{name}.key", where / f"{name}.csr", where / f"{name}.crt"
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", f"/O={org}/CN={cn}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(pki / "ca.crt"), "-CAkey",
                    str(pki / "ca.key"), "-CAcreateserial", "-CAserial", str(where / "ca.srl"), "-days", "2",
                    "-out", str(cert)], check=True, capture_output=True)
    return kube.Identity(cn, cert, key)


def traffic() -> list[Request]:
    """The request set, the same in both windows: (who, method, path, body)."""
    ns = f"/api/v1/namespaces/{NS}"
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}/rolebindings"
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{FAKE_NODE}"
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": NS},
          "data": {"mode": "a"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app", "namespace": NS},
              "stringData": {"token": "kaudit-real-tune-secret"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": NS},
           "spec": {"automountServiceAccountToken": False, "nodeSelector": {"kaudit.test/nowhere": "x"},
                    "containers": [{"name": "c", "image": "registry.kaudit.test/none:1",
                                    "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
                    "volumes": [{"name": "h", "hostPath": {"path": "/var/log"}}]}}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "monitor-edit", "namespace": NS},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "User", "name": MONITOR, "apiGroup": "rbac.authorization.k8s.io"}]}
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "probe", "namespace": NS},
             "involvedObject": {"kind": "Pod", "name": "probe", "namespace": NS},
             "reason": "Probe", "message": "kaudit tune test", "type": "Normal"}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "list", "resource": "secrets", "namespace": NS}}}
    changed_cm = {**cm, "data": {"mode": "b"}}
    out: list[Request] = [
        ("admin", "POST", f"{ns}/configmaps", cm),
        ("admin", "GET", f"{ns}/configmaps/app", None),
        ("admin", "PUT", f"{ns}/configmaps/app", changed_cm),
        ("admin", "POST", f"{ns}/secrets", secret),
        ("admin", "GET", f"{ns}/secrets/app", None),
        ("admin", "GET", f"{ns}/secrets", None),
        ("admin", "POST", f"{ns}/pods", pod),
        ("admin", "GET", f"{ns}/pods/probe", None),
        ("admin", "POST", rbac, binding),
        ("admin", "POST", f"{ns}/events", event),
        ("monitor", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review),
    ]
    for _ in range(10):  # the chatty part: a monitoring agent polling, a node renewing its lease
        out += [("monitor", "GET", "/api/v1/namespaces/kube-system/pods", None),
                ("monitor", "GET", f"{ns}/pods", None),
                ("monitor", "GET", f"{ns}/configmaps", None),
                ("node", "GET", lease, None),
                ("node", "PUT", lease, RENEW)]
    out += [
        ("admin", "DELETE", f"{ns}/events/probe", None),
        ("admin", "DELETE", f"{rbac}/monitor-edit", None),
        ("admin", "DELETE", f"{ns}/pods/probe", None),
        ("admin", "DELETE", f"{ns}/secrets/app", None),
        ("admin", "DELETE", f"{ns}/configmaps/app", None),
        ("viewer", "GET", f"{ns}/secrets", None),
        ("viewer", "GET", f"{ns}/pods", None),
        ("viewer", "DELETE", f"{ns}/configmaps/app", None),
    ]
    return out


def send(node: RealNode, ids: dict[str, kube.Identity], tag: str) -> list[int]:
    """Send traffic() with User-Agent kaudit-real/<tag>/<i>; the status of each."""
    statuses = []
    last = ""
    for i, (who, method, path, body) in enumerate(traffic()):
        if body is RENEW:
            lease = json.loads(last)
            lease["spec"]["renewTime"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = lease
        status, last = kube.request(node, ids[who], method, path, body, agent=f"kaudit-real/{tag}/{i}")
        statuses.append(status)
    return statuses


@pytest.fixture(scope="module")
def people(real_node: RealNode, ids: dict[str, kube.Identity],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, kube.Identity]]:
    """The admin, the viewer, the monitoring agent (may read pods and ConfigMaps) and the pretend node; the
    namespace, its default ServiceAccount and the pretend node's Lease (sent before the first window)."""
    where = tmp_path_factory.mktemp("tune-ids")
    out = {**ids, "monitor": _identity(real_node, where, MONITOR, "kaudit-monitors"),
           "node": _identity(real_node, where, f"system:node:{FAKE_NODE}", "system:nodes")}
    setup: list[tuple[str, str, dict[str, Any]]] = [
        ("admin", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
        ("admin", f"/api/v1/namespaces/{NS}/serviceaccounts",
         {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
        ("admin", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": MONITOR_ROLE},
          "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}]}),
        ("admin", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
          "metadata": {"name": MONITOR_ROLE},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": MONITOR_ROLE},
          "subjects": [{"kind": "User", "name": MONITOR, "apiGroup": "rbac.authorization.k8s.io"}]}),
        ("node", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
         {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
          "metadata": {"name": FAKE_NODE, "namespace": "kube-node-lease"},
          "spec": {"holderIdentity": FAKE_NODE, "leaseDurationSeconds": 40,
                   "renewTime": "2026-01-01T00:00:00.000000Z"}}),
    ]
    for who, path, body in setup:
        status, text = kube.request(real_node, out[who], "POST", path, body, agent="kaudit-real/tune-setup")
        assert status in (201, 409), (path, status, text[:300])
    yield out
    for path in (f"/api/v1/namespaces/{NS}",
                 f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{MONITOR_ROLE}",
                 f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{MONITOR_ROLE}",
                 f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{FAKE_NODE}"):
        with contextlib.suppress(OSError):  # the node's API server gone: nothing to clean
            kube.request(real_node, out["admin"], "DELETE", path, agent="kaudit-real/tune-cleanup")


def _tail(path: Path, offset: int) -> list[bytes]:
    """The complete lines of the file from byte `offset` on (a line being written is left out)."""
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    return data[: data.rfind(b"\n") + 1].splitlines(keepends=True)


def _ours(path: Path, offset: int, tag: str, n: int, until: Any = None,
          timeout: float = 15.0) -> list[tuple[bytes, dict[str, Any]]]:
    """The log's events (line with its newline, event) of the requests sent with `tag`, once `until(them)`
    holds (default: every request has its ResponseComplete event), or after `timeout`."""
    prefix = f"kaudit-real/{tag}/"
    deadline = time.time() + timeout
    while True:
        out = [(line, ev) for line in _tail(path, offset)
               if prefix.encode() in line and (ev := json.loads(line)).get("userAgent", "").startswith(prefix)]
        done = until(out) if until else len({ev["userAgent"] for _, ev in out
                                             if ev["stage"] == "ResponseComplete"}) == n
        if done or time.time() > deadline:
            return out
        time.sleep(0.2)


def _read_by_a_detection(req: Request) -> bool:
    """The requests of traffic() a CIS detection reads: Secrets touched by a person (secret-read-by-user,
    secret-list-by-user, secret-changed-by-user), the hostPath pod (hostpath-pod), the RoleBinding
    (rbac-binding-changed), the Event deleted (events-deleted), the access review (rbac-self-review), and
    the 403s (forbidden-burst)."""
    who, method, path, _ = req
    return (who == "viewer" or "/secrets" in path or path.endswith("/selfsubjectaccessreviews")
            or (method == "POST" and path.endswith("/pods")) or "/rolebindings" in path
            or (method == "DELETE" and "/events/" in path))


def _key(ev: dict[str, Any], level: str) -> tuple[str, str, str, str, str]:
    return (ev["user"]["username"], ev["verb"], ev["requestURI"], ev["stage"], level)


RESTARTS: list[float] = []  # seconds each _enable took (the real restart, mostly)


def _enable(node: RealNode, *args: str) -> tuple[Path, int]:
    """`kaudit enable ARGS` (a real restart, or nothing when the node is already so); the log's path (from
    the running server's flags) and its size once that server is ready: everything after that offset is
    the new server's."""
    assert node.node is not None
    start = time.monotonic()
    old = {p["pid"] for p in kube.apiservers(node)}
    run = change(node, "enable", *args)
    assert run.code == 0, f"kaudit enable {args}: exit {run.code}\n{run.out}\n{run.err}"
    procs = kube.apiservers(node)
    assert len(procs) == 1 and node.api_ready(), procs
    assert run.node["action"] == "unchanged" or procs[0]["pid"] not in old, (run.node, old, procs)
    RESTARTS.append(round(time.monotonic() - start, 1))
    steps = {s["name"]: s["seconds"] for s in run.node.get("steps", [])}
    TIMES.append({"command": " ".join(("enable", *args)), **steps, "ready_seconds": run.node.get("ready_seconds")})
    log = node.node.path(kube.flags(procs[0]["argv"])["audit-log-path"])
    return log, log.stat().st_size if log.exists() else 0


def test_the_real_api_server_writes_what_tune_predicted(real_node: RealNode, people: dict[str, kube.Identity],
                                                       tmp_path: Path) -> None:
    node = real_node
    t0 = time.monotonic()
    n = len(traffic())

    # Window A: everything recorded, bodies included.
    log, offset = _enable(node, "--profile", "all-bodies")
    sent_a = send(node, people, "tune-a")
    assert sent_a[0] == 201 and sent_a[6] == 201 and sent_a[-3:] == [403, 403, 403], sent_a
    ours_a = _ours(log, offset, "tune-a", n)
    assert len({ev["userAgent"] for _, ev in ours_a}) == n, f"window A: {len(ours_a)} events for {n} requests"
    window_a = tmp_path / "window-a.log"
    window_a.write_bytes(b"".join(_tail(log, offset)))
    mine_a = tmp_path / "ours-a.log"
    mine_a.write_bytes(b"".join(line for line, _ in ours_a))

    # The policy, and the prediction for exactly the test's requests.
    run = kaudit("tune", str(window_a), "-o", "json", "--kubernetes-version", VERSION, timeout=180)
    assert run.code == 0, run.err
    doc = run.json()
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(doc["policy"])
    valid = kaudit("validate", str(tuned), "--kubernetes-version", VERSION)
    assert valid.code == 0, valid.out + valid.err
    sim = kaudit("simulate", str(mine_a), "--policy-file", str(tuned), "-o", "json", "--kubernetes-version", VERSION)
    assert sim.code == 0, sim.err
    cand = sim.json()["candidates"][0]
    assert sim.json()["log"]["bytes"] == mine_a.stat().st_size  # simulate counts lines with their newlines
    assert not cand["bytesAtLeast"] and cand["bytesEstimated"] == 0, cand
    rows = kaudit("simulate", str(mine_a), "--policy-file", str(tuned), "-o", "events", "--kubernetes-version",
                  VERSION)
    assert rows.code == 0, rows.err
    by_id = {ev["auditID"]: ev for _, ev in ours_a}
    predicted: Counter[tuple[str, str, str, str, str]] = Counter()
    index_of: dict[tuple[str, str, str, str, str], set[int]] = {}
    levels: dict[int, set[str]] = {i: set() for i in range(n)}
    for line in rows.out.splitlines():
        row = json.loads(line)
        ev = by_id[row["auditID"]]
        i = int(ev["userAgent"].rsplit("/", 1)[1])
        if row["written"]:
            predicted[_key(ev, row["level"])] += 1
            index_of.setdefault(_key(ev, row["level"]), set()).add(i)
            levels[i].add(row["level"])
    assert sum(predicted.values()) == cand["events"]

    # What tune must keep and what it should cut, on the prediction.
    requests = traffic()
    read = [i for i, r in enumerate(requests) if _read_by_a_detection(r)]
    lost = [requests[i][:3] for i in read if not levels[i]]
    assert not lost, f"tune cut requests detections read: {lost}"
    for i, (_, method, path, _) in enumerate(requests):
        if method == "POST" and path.endswith(("/pods", "/rolebindings")):
            assert levels[i] == {"Request"}, (requests[i][:3], levels[i])  # hostpath-pod, cluster-admin-binding
    # The biggest chatty class (kube-system's pods, bodies included) must be cut. The lease renewals are
    # smaller: a restart that made the controllers re-list could fill the room for cut rules before them.
    polls = [i for i, (_, _, path, _) in enumerate(requests) if path.endswith("kube-system/pods")]
    assert not any(levels[i] for i in polls), ("tune did not cut the monitoring agent's polling", doc["rules"])
    leases_cut = not any(levels[i] for i, r in enumerate(requests) if r[0] == "node")

    # Window B: the tuned policy on the real server, the same requests.
    log_b, offset_b = _enable(node, "--policy-file", str(tuned))
    sent_b = send(node, people, "tune-b")
    assert sent_b == sent_a
    ours_b = _ours(log_b, offset_b, "tune-b", n, until=lambda got: len(got) >= cand["events"])
    time.sleep(0.5)  # nothing more than predicted arrives late
    ours_b = _ours(log_b, offset_b, "tune-b", n, until=lambda got: True)
    actual = Counter(_key(ev, ev["level"]) for _, ev in ours_b)
    written = sum(len(line) for line, _ in ours_b)

    missing, extra = predicted - actual, actual - predicted
    figures = {"requests": n, "eventsA": len(ours_a), "bytesA": mine_a.stat().st_size,
               "windowA": {"events": len(window_a.read_bytes().splitlines()), "bytes": window_a.stat().st_size},
               "cutRules": len(doc["rules"]), "eventsPredicted": cand["events"], "eventsWritten": len(ours_b),
               "levels": dict(Counter(k[4] for k in predicted.elements())),
               "bytesPredicted": cand["bytes"], "bytesWritten": written,
               "bytesDiffPct": round(100 * (written - cand["bytes"]) / max(cand["bytes"], 1), 2),
               "leasesCut": leases_cut, "restartSeconds": RESTARTS[-2:],
               "seconds": round(time.monotonic() - t0, 1)}
    print("tune on the real node:", json.dumps(figures))
    assert not missing and not extra, (
        f"tune predicted (missing from the real log): {dict(missing)}; the real server wrote (not predicted): "
        f"{dict(extra)}; requests {sorted({i for k in missing for i in index_of.get(k, ())})} (predicted), "
        f"{sorted({int(ev['userAgent'].rsplit('/', 1)[1]) for _, ev in ours_b if _key(ev, ev['level']) in extra})} "
        "(written)")
    assert abs(written - cand["bytes"]) <= 0.05 * cand["bytes"], figures
    assert b"kaudit-real-tune-secret" not in b"".join(_tail(log_b, offset_b)), "the tuned policy logged a Secret"
