"""The control-plane simulator: kubelet static-pod behaviour and kube-apiserver start-up and audit."""

from __future__ import annotations

import base64
import time

import pytest

from tests.corpus_files import MANIFESTS as CORPUS
from tests.node import TestNode
from tests.node.seed import DEFAULT_MANIFEST

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
POLICY = "/etc/kubernetes/audit/policy.yaml"
ANCHOR = "    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\n"

POLICY_YAML = b"""\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/livez*"]
- level: None
  resources:
  - group: ""
    resources: ["pods/log"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets"]
- level: RequestResponse
  omitStages: ["RequestReceived"]
  resources:
  - group: ""
    resources: ["pods"]
- level: None
  resources:
  - group: apps
    resources: ["*/scale"]
- level: Request
  verbs: ["create", "update"]
  userGroups: ["system:masters"]
- level: Metadata
"""


def audited(text: str = DEFAULT_MANIFEST, *, flags: tuple[str, ...] = (), log_path: str =
            "/var/log/kubernetes/audit/audit.log", mount_log: bool = True, policy: str = POLICY) -> bytes:
    """The default manifest with audit flags, a read-only policy dir mount and a log dir mount."""
    lines = [f"    - --audit-policy-file={policy}\n", f"    - --audit-log-path={log_path}\n",
             *[f"    - {f}\n" for f in flags]]
    text = text.replace(ANCHOR, ANCHOR + "".join(lines))
    mounts = "    - mountPath: /etc/kubernetes/audit\n      name: audit-policy\n      readOnly: true\n"
    vols = "  - hostPath:\n      path: /etc/kubernetes/audit\n      type: DirectoryOrCreate\n    name: audit-policy\n"
    if mount_log:
        mounts += "    - mountPath: /var/log/kubernetes/audit\n      name: audit-log\n"
        vols += ("  - hostPath:\n      path: /var/log/kubernetes/audit\n      type: DirectoryOrCreate\n"
                 "    name: audit-log\n")
    text = text.replace("    volumeMounts:\n", "    volumeMounts:\n" + mounts, 1)
    text = text.replace("  volumes:\n", "  volumes:\n" + vols, 1)
    return text.encode()


def cmdline(node: TestNode, pid: int) -> list[str]:
    raw = base64.b64decode(node.run(f"base64 -w0 /proc/{pid}/cmdline").stdout)
    assert raw.endswith(b"\0")
    return raw[:-1].decode().split("\0")


def edit(node: TestNode, new: str | bytes) -> float:
    """Replace the manifest the way kaudit does (dotfile temp + rename); returns the time of the change."""
    path = node.path(node.manifest_path)
    tmp = path.with_name(".kube-apiserver.yaml.tmp")
    tmp.write_bytes(new.encode() if isinstance(new, str) else new)
    t = time.time()
    tmp.rename(path)
    return t


def events(node: TestNode, name: str, since: float = 0) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in node.sim_log() if r["event"] == name and r["ts"] >= since]


def test_instance_cmdline_is_the_manifest_command(module_node: TestNode) -> None:
    inst = module_node.wait_ready(10)
    assert cmdline(module_node, inst["pid"]) == inst["argv"]
    assert inst["argv"][0] == "kube-apiserver" and f"--secure-port={module_node.api_port}" in inst["argv"]
    assert module_node.run(f"cat /proc/{inst['pid']}/comm").stdout.strip() == "kube-apiserver"
    # Only the instance looks like an API server: the simulator's own command line does not.
    assert module_node.run("pgrep -f '^kube-apiserver '").stdout.split() == [str(inst["pid"])]
    status, body, headers = module_node.request("/readyz", full=True)
    assert (status, body, headers["X-Sim-Pid"]) == (200, "ok", str(inst["pid"]))


def test_fake_api_verbs_and_auth(module_node: TestNode) -> None:
    assert module_node.request("/api/v1/namespaces/default/pods")[0] == 200
    st, body = module_node.request("/api/v1/namespaces/default/configmaps", "POST",
                                   body={"metadata": {"name": "x"}, "data": {"a": "b"}}, admin=True)
    assert st == 200 and '"data": {"a": "b"}' in body
    assert module_node.request("/readyz", token="wrong")[0] == 401
    assert module_node.request("/nope")[0] == 404


def test_comment_and_whitespace_edits_restart_nothing(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    first = node.wait_ready(10)
    text = node.path(MANIFEST).read_text()
    t = edit(node, "# reviewed again\n" + text.replace("    - --allow-privileged=true\n",
                                                          "    - --allow-privileged=true   # needed\n") + "\n\n")
    time.sleep(0.6)  # > linger + restart_delay + several polls
    assert [i["seq"] for i in node.instances()] == [first["seq"]]
    assert not events(node, "manifest-change", t)
    assert node.current_instance()["pid"] == first["pid"]  # type: ignore[index]


def test_content_change_lingers_then_replaces(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(linger=1.0, restart_delay=0.2, start_delay=0.2)
    old = node.wait_ready(10)
    text = node.path(MANIFEST).read_text()
    t = edit(node, text.replace(ANCHOR, ANCHOR + "    - --v=2\n"))
    answers = []
    while time.time() < t + 0.8:  # inside the linger window: the OLD instance answers, healthy
        st, _, h = node.request("/readyz", full=True)
        answers.append((st, h["X-Sim-Pid"]))
        time.sleep(0.05)
    assert answers and set(answers) == {(200, str(old["pid"]))}
    new = node.wait_ready(10, after=t)
    old = next(i for i in node.instances() if i["seq"] == old["seq"])
    assert old["stopped_at"] - t >= 0.95 and old["exit_reason"] == "manifest changed"
    assert new["started_at"] - old["stopped_at"] >= 0.19
    assert new["ready_at"] - new["started_at"] >= 0.19
    assert "--v=2" in new["argv"] and cmdline(node, new["pid"]) == new["argv"]
    assert node.request("/readyz", full=True)[2]["X-Sim-Pid"] == str(new["pid"])


def _crash_loop(node: TestNode, n: int = 3) -> list[dict]:  # type: ignore[type-arg]
    node.wait_for(lambda: len(events(node, "crash")) >= n, 15, what=f"{n} crashes")
    current = node.current_instance()  # once: the crash-looping instance can be gone by a second look
    assert current is None or not current["ready_at"]
    return node.instances()


def test_missing_policy_crash_loops_with_error_in_pod_log(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(audited(), crash_backoff=0.1)
    insts = _crash_loop(node)
    assert all(i["exit_code"] == 1 and "no such file or directory" in i["exit_reason"] for i in insts[:3])
    assert [i["restart_count"] for i in insts[:3]] == [0, 1, 2]
    logs = node.pod_logs()
    first = insts[0]["container_log"]
    assert first.startswith("/var/log/pods/kube-system_kube-apiserver_") and first.endswith("/kube-apiserver/0.log")
    assert 'run.go:72] "command failed" err="loading audit policy file' in logs[first]
    # Supplying the policy heals it (the kubelet keeps retrying the same pod).
    node.path(POLICY).parent.mkdir(parents=True, exist_ok=True)
    node.path(POLICY).write_bytes(POLICY_YAML)
    inst = node.wait_ready(10)
    assert inst["policy_path"] == POLICY and inst["events_lost"] is False


@pytest.mark.parametrize("policy, flags, message", [
    (b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metada\n", (), "Unsupported value"),
    (b"apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: Metadata\n", (), "no kind"),
    (b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", (), "0 rules"),
    (b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: on\n", (), "expected a string"),
    (POLICY_YAML, ("--audit-log-maxage=-1",), "--audit-log-maxage -1 can't be a negative number"),
    (POLICY_YAML, ("--audit-log-maxsize=big",), 'invalid argument "big"'),
    (POLICY_YAML, ("--audit-log-format=yaml",), "invalid audit log format"),
    (POLICY_YAML, ("--audit-log-max-age=3",), "unknown flag: --audit-log-max-age"),
    (POLICY_YAML, ("--audit-webhook-config-file=/etc/kubernetes/audit/nope.kubeconfig",), "no such file"),
])
def test_invalid_audit_setup_crash_loops(node_factory, policy: bytes, flags: tuple[str, ...],  # type: ignore[no-untyped-def]
                                         message: str) -> None:
    node = node_factory(audited(flags=flags), crash_backoff=0.1, extra_files={POLICY: policy})
    insts = _crash_loop(node, 2)
    assert message in insts[0]["exit_reason"]
    assert message.replace('"', '\\"') in node.pod_logs()[insts[0]["container_log"]]  # klog quotes err="..."


def test_unmounted_log_path_runs_and_loses_events(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(audited(log_path="/var/log/apiserver-audit.log", mount_log=False),
                        extra_files={POLICY: POLICY_YAML})
    inst = node.wait_ready(10)
    assert inst["events_lost"] is True and inst["policy_sha256"]
    assert node.request("/api/v1/namespaces/default/secrets/s")[0] == 200
    assert not node.path("/var/log/apiserver-audit.log").exists()


def test_duplicate_static_pod_is_reported(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    first = node.wait_ready(10)
    text = node.path(MANIFEST).read_text()
    node.path(MANIFEST + ".bak").write_text(text.replace(ANCHOR, ANCHOR + "    - --v=5\n"))
    dup = node.wait_for(lambda: events(node, "duplicate"), 5)[0]
    assert dup["pod"] == "kube-system/kube-apiserver"
    assert dup["files"] == [MANIFEST, MANIFEST + ".bak"] and dup["winner"] == MANIFEST
    time.sleep(0.4)
    assert [i["seq"] for i in node.instances()] == [first["seq"]]  # the first (sorted) file wins


def test_dotfiles_are_ignored_and_recorded(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    first = node.wait_ready(10)
    node.path("/etc/kubernetes/manifests/.kube-apiserver.yaml.kaudit-tmp").write_text("garbage: [")
    rec = node.wait_for(lambda: events(node, "ignored-dotfile"), 5)[0]
    assert rec["file"].endswith("/.kube-apiserver.yaml.kaudit-tmp")
    time.sleep(0.4)
    assert [i["seq"] for i in node.instances()] == [first["seq"]]
    assert not events(node, "manifest-invalid")


def test_invalid_manifest_stops_the_pod_until_fixed(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(linger=0.1)
    first = node.wait_ready(10)
    good = node.path(MANIFEST).read_text()
    edit(node, "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver\n")
    node.wait_for(lambda: events(node, "manifest-invalid"), 5)
    node.wait_for(lambda: node.current_instance() is None, 5)
    assert next(i for i in node.instances() if i["seq"] == first["seq"])["exit_reason"] == "manifest removed"
    t = edit(node, good)
    assert node.wait_ready(10, after=t)["argv"] == first["argv"]


def test_knobs_fail_next_start_never_ready_crash_after_ready(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(crash_backoff=0.1)
    node.wait_ready(10)
    text = node.path(MANIFEST).read_text()
    node.configure(fail_next_start=True)
    t = edit(node, text.replace(ANCHOR, ANCHOR + "    - --v=3\n"))
    inst = node.wait_ready(10, after=t)
    failed = [i for i in node.instances() if i["started_at"] > t and i["exit_code"] == 1]
    assert len(failed) == 1 and "fail_next_start" in failed[0]["exit_reason"] and inst["restart_count"] == 1
    node.configure(never_ready=True)
    t = edit(node, text)
    node.wait_for(lambda: (node.current_instance() or {}).get("started_at", 0) > t, 5)
    time.sleep(0.4)
    assert node.request("/readyz")[0] == 500 and not node.current_instance()["ready_at"]  # type: ignore[index]
    node.configure(never_ready=False, crash_after_ready=0.1)
    t = edit(node, text.replace(ANCHOR, ANCHOR + "    - --v=4\n"))
    node.wait_for(lambda: [c for c in events(node, "crash", t)], 10)
    assert "crash_after_ready" in node.instances()[-1]["exit_reason"] or len(events(node, "crash", t)) >= 1


def test_anonymous_auth_false_needs_the_admin_token(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(DEFAULT_MANIFEST.replace(ANCHOR, ANCHOR + "    - --anonymous-auth=false\n").encode())
    node.wait_ready(10)
    assert node.request("/readyz")[0] == 401
    assert node.request("/readyz", admin=True) == (200, "ok")


def test_kubelet_static_pod_path(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(kubelet_static_pod_path="/etc/kubernetes/static")
    inst = node.wait_ready(10)
    assert inst["file"] == "/etc/kubernetes/static/kube-apiserver.yaml"
    assert not list(node.path("/etc/kubernetes/manifests").iterdir())


def test_audit_events_follow_the_policy(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(audited(), extra_files={POLICY: POLICY_YAML})
    inst = node.wait_ready(10)
    assert inst["policy_path"] == POLICY and inst["events_lost"] is False
    log = node.path("/var/log/kubernetes/audit/audit.log")
    log.write_text("")  # drop probes made while starting
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}}
    node.request("/api/v1/namespaces/default/secrets", "POST", body=secret, admin=True)
    node.request("/api/v1/namespaces/default/pods/p1", user="alice", groups=["dev"])
    node.request("/api/v1/namespaces/default/pods/p1/log", user="alice")
    node.request("/apis/apps/v1/namespaces/default/deployments/d/scale", "PUT", body={}, admin=True)
    node.request("/api/v1/namespaces/default/configmaps", "POST", body={"metadata": {"name": "c"}}, admin=True)
    node.request("/healthz")
    node.request("/readyz?verbose")
    node.request("/api/v1/namespaces/default/configmaps/c", "DELETE", user="bob")
    evs = node.audit_events()
    by = [(e["verb"], e.get("objectRef", {}).get("resource", e["requestURI"]), e["stage"], e["level"]) for e in evs]
    assert by == [
        ("create", "secrets", "RequestReceived", "Metadata"), ("create", "secrets", "ResponseComplete", "Metadata"),
        ("get", "pods", "ResponseComplete", "RequestResponse"),
        ("create", "configmaps", "RequestReceived", "Request"),
        ("create", "configmaps", "ResponseComplete", "Request"),
        ("get", "/readyz?verbose", "RequestReceived", "Metadata"),
        ("get", "/readyz?verbose", "ResponseComplete", "Metadata"),
        ("delete", "configmaps", "RequestReceived", "Metadata"),
        ("delete", "configmaps", "ResponseComplete", "Metadata"),
    ]
    sec = evs[1]
    assert "requestObject" not in sec and "responseObject" not in sec  # Metadata: no bodies
    assert sec["user"] == {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    assert sec["objectRef"] == {"resource": "secrets", "namespace": "default", "apiVersion": "v1"}
    assert sec["responseStatus"]["code"] == 200 and sec["apiVersion"] == "audit.k8s.io/v1"
    pod = evs[2]
    assert pod["user"] == {"username": "alice", "groups": ["dev"]} and pod["responseObject"]["metadata"]["name"] == "p1"
    cm = evs[4]
    assert cm["requestObject"] == {"metadata": {"name": "c"}} and "responseObject" not in cm
    assert evs[0]["auditID"] == evs[1]["auditID"] != evs[3]["auditID"]


def test_corpus_kops_manifest_is_loopback_and_keeps_go_runner(node_factory) -> None:  # type: ignore[no-untyped-def]
    src = (CORPUS / "029-kops-go-runner-args-audited-webhook.yaml").read_bytes()
    webhook = (b"apiVersion: v1\nkind: Config\nclusters:\n- name: falco\n  cluster:\n"
               b"    server: http://127.0.0.1:9765/k8s-audit\ncontexts: []\nusers: []\n")
    node = node_factory(src, extra_files={"/etc/kubernetes/audit/policy-config.yaml": POLICY_YAML,
                                          "/etc/kubernetes/audit/webhook-config.yaml": webhook})
    text = node.path(MANIFEST).read_text()
    assert "--bind-address=127.0.0.1" in text and f"--secure-port={node.api_port}" in text
    assert "port: 443\n" not in text and f"containerPort: {node.api_port}" in text
    inst = node.wait_ready(10)
    argv = cmdline(node, inst["pid"])
    assert argv[0] == "/go-runner" and "/usr/local/bin/kube-apiserver" in argv and argv == inst["argv"]
    # The log path is under the node's own /var/log (a hostPath mount in this manifest).
    assert inst["audit_log_host_path"] == "/var/log/kube-apiserver-audit.log" and not inst["events_lost"]


def test_corpus_minikube_manifest_rewritten(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory((CORPUS / "009-minikube-v1.32-port-8443.yaml").read_bytes())
    text = node.path(MANIFEST).read_text()
    assert "192.168." not in text and "8443" not in text
    inst = node.wait_ready(10)
    assert "--advertise-address=127.0.0.1" in inst["argv"]
    assert node.request("/livez")[0] == 200


def test_several_nodes_run_at_once(node_factory) -> None:  # type: ignore[no-untyped-def]
    nodes = [node_factory(ready_timeout=None) for _ in range(3)]
    pids = {n.wait_ready(10)["pid"] for n in nodes}
    assert len({n.api_port for n in nodes}) == 3
    for n in nodes:
        assert n.request("/readyz")[0] == 200
    assert len(pids) >= 1  # pids are per PID namespace: they may well be equal


# --- the simulator's own matcher, without a node ----------------------------------------------------

def _level(policy: bytes, method: str, path: str, user: str = "u", groups: tuple[str, ...] = ("g",)) -> str:
    from tests.node import auditpolicy as ap

    pol = ap.load_policy(policy)
    return ap.evaluate(pol, ap.request_attributes(method, path, {}, user, list(groups)))[0]


@pytest.mark.parametrize("rule, method, path, expected", [
    ('{level: Metadata, verbs: ["*"]}', "GET", "/api/v1/pods", "None"),  # verbs have no wildcard
    ('{level: Metadata, resources: [{group: "", resources: ["pods/*"]}]}', "GET",
     "/api/v1/namespaces/a/pods/p", "Metadata"),
    ('{level: Metadata, resources: [{group: "", resources: ["pods/*"]}]}', "GET",
     "/api/v1/namespaces/a/pods/p/log", "Metadata"),
    ('{level: Metadata, resources: [{group: "", resources: ["pods"]}]}', "GET",
     "/api/v1/namespaces/a/pods/p/log", "None"),
    ('{level: Metadata, resources: [{group: "apps", resources: ["*/scale"]}]}', "PUT",
     "/apis/apps/v1/namespaces/a/deployments/d/scale", "Metadata"),
    ('{level: Metadata, resources: [{group: "", resources: ["configmaps"], resourceNames: ["x"]}]}', "GET",
     "/api/v1/namespaces/a/configmaps", "None"),  # a list has no name
    ('{level: Metadata, namespaces: [""]}', "GET", "/api/v1/nodes/n1", "Metadata"),  # cluster-scoped
    ('{level: Metadata, namespaces: ["kube-system"]}', "GET", "/api/v1/namespaces/default/pods", "None"),
    ('{level: Metadata, nonResourceURLs: ["/healthz*"]}', "GET", "/healthz/etcd", "Metadata"),
    ('{level: Metadata, nonResourceURLs: ["/healthz*"]}', "GET", "/api/v1/pods", "None"),
    ('{level: Metadata, users: ["system:anonymous"]}', "GET", "/readyz", "None"),
    ('{level: Metadata, userGroups: ["g"]}', "DELETE", "/api/v1/namespaces/a/pods", "Metadata"),
    ('{level: Metadata, verbs: ["deletecollection"]}', "DELETE", "/api/v1/namespaces/a/pods", "Metadata"),
    ('{level: Metadata, verbs: ["watch"]}', "GET", "/api/v1/watch/pods", "Metadata"),
])
def test_matcher(rule: str, method: str, path: str, expected: str) -> None:
    policy = f"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- {rule}\n".encode()
    assert _level(policy, method, path) == expected


def test_unknown_fields_are_dropped_like_the_lenient_loader() -> None:
    from tests.node import auditpolicy as ap

    pol = ap.load_policy(b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resource: [x]\n")
    assert pol.warnings and pol.rules[0].resources == []  # a typo makes the rule match everything
