"""Security (issue 7, item 5), continued: kaudit's own profiles never record bodies of the sensitive
set under any variable combination (hypothesis, with kaudit's lint AND an independent first-match
evaluation written here); the sudo password in no traceback and no file on the node; the log
directory's mode and owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from installer.policy import validate as policy_mod
from installer.policy.profiles import list_profiles, render
from tests.conftest import NodeFactory
from tests.faults import MANIFEST, manifest_of, tally
from tests.kaudit_cli import change
from tests.node.node import SUDO_PASSWORD

# --------------------------------------------------------------------------- independent evaluation


@dataclass(frozen=True)
class Request:
    user: str
    groups: tuple[str, ...]
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str = "x"


def _rule_matches(rule: dict[str, Any], r: Request) -> bool:
    """k8s.io/apiserver/pkg/audit/policy/checker.go ruleMatches, re-written from its source."""
    if rule.get("users") and r.user not in rule["users"]:
        return False
    if rule.get("userGroups") and not any(g in rule["userGroups"] for g in r.groups):
        return False
    if rule.get("verbs") and r.verb not in rule["verbs"]:
        return False
    if rule.get("namespaces") or rule.get("resources"):
        if rule.get("namespaces") and r.namespace not in rule["namespaces"]:
            return False
        if not rule.get("resources"):
            return True
        combined = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
        for gr in rule["resources"]:
            if gr.get("group", "") != r.group:
                continue
            if not gr.get("resources"):
                return True
            for res in gr["resources"]:
                if gr.get("resourceNames") and r.name not in gr["resourceNames"]:
                    continue
                if res in (combined, "*"):
                    return True
                if r.subresource and res.startswith("*/") and r.subresource == res[2:]:
                    return True
                if res.endswith("/*") and r.resource == res[:-2]:
                    return True
        return False
    return not rule.get("nonResourceURLs")  # every request here is a resource request


def level_for(doc: dict[str, Any], r: Request) -> str:
    for rule in doc.get("rules") or []:
        if _rule_matches(rule, r):
            return str(rule["level"])
    return "None"


NAMESPACES = ["default", "kube-system", "ci", "staging", "team-a", ""]
USERS = ["alice", "system:serviceaccount:ci:runner", "system:kube-controller-manager", "system:apiserver",
         "kubelet", "system:node:n1", "system:anonymous"]
GROUPS = [("system:authenticated",), ("system:masters", "system:authenticated"), ("system:nodes",),
          ("system:serviceaccounts", "system:serviceaccounts:ci"), ()]
VERBS = ["create", "update", "patch", "get", "list", "watch", "delete", "deletecollection"]


def sensitive_requests() -> list[Request]:
    out = []
    for user in USERS:
        for groups in GROUPS:
            for ns in NAMESPACES[:-1]:
                for verb in VERBS:
                    out.append(Request(user, groups, verb, "", "secrets", "", ns))
                    out.append(Request(user, groups, verb, "", "configmaps", "", ns))
                out.append(Request(user, groups, "create", "", "serviceaccounts", "token", ns))
            out.append(Request(user, groups, "create", "authentication.k8s.io", "tokenreviews", "", ""))
    return out


SENSITIVE = sensitive_requests()

ns_names = st.sampled_from(["kube-system", "default", "ci", "staging", "kube-public", "team-a"])
free_text = st.sampled_from([*USERS, "system:authenticated", "system:masters", "system:nodes",
                                     "system:serviceaccounts", "a\"b", "x: y", "*"])
resource_specs = st.sampled_from(["secrets", "configmaps", "pods/log", "leases.coordination.k8s.io", "*",
                                  "serviceaccounts/token", "tokenreviews.authentication.k8s.io", "*/status",
                                  "events.events.k8s.io"])
bools = st.sampled_from(["true", "false"])


@st.composite
def profile_and_sets(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    profile = draw(st.sampled_from(list_profiles()))
    sets: dict[str, str] = {}
    for var in profile.variables:
        if not draw(st.booleans()):
            continue
        if var.type == "bool":
            sets[var.name] = draw(bools)
        elif var.type == "list":
            pool = {"extra_metadata_resources": resource_specs}.get(
                var.name, ns_names if "namespaces" in var.name else free_text)
            sets[var.name] = ",".join(draw(st.lists(pool, max_size=4)))
    return profile.name, sets


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile_and_sets())
def test_own_profiles_never_record_sensitive_bodies(case: tuple[str, dict[str, str]]) -> None:
    name, sets = case
    text = render(name, sets).text
    report = policy_mod.check(text, own_profile=True)
    assert report.ok and not report.errors, (name, sets, report.errors)
    doc = YAML(typ="safe", pure=True).load(text)
    for r in SENSITIVE:
        level = level_for(doc, r)
        assert level in ("None", "Metadata"), (name, sets, r, level)


def test_independent_evaluation_sees_bodies() -> None:
    """The evaluation above is not vacuous: a body-recording policy is caught by it."""
    doc = {"rules": [{"level": "None", "users": ["alice"]},
                     {"level": "RequestResponse", "resources": [{"group": "", "resources": ["*/token"]}]},
                     {"level": "Request", "namespaces": ["ci"]}, {"level": "Metadata"}]}
    levels = {(r.user, r.resource, r.subresource, r.namespace): level_for(doc, r) for r in SENSITIVE}
    assert levels[("alice", "secrets", "", "ci")] == "None"
    assert levels[("kubelet", "serviceaccounts", "token", "default")] == "RequestResponse"
    assert levels[("kubelet", "configmaps", "", "ci")] == "Request"
    assert levels[("kubelet", "secrets", "", "default")] == "Metadata"


# --------------------------------------------------------------------------- the sudo password


def test_sudo_password_not_in_traceback_nor_on_node(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.05, restart_delay=0.05)
    # A successful run first (files written with sudo), then errors after sudo succeeded.
    run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="kpw",
                 stdin=SUDO_PASSWORD + "\n", timeout=10)
    assert run.code == 0, run.out + run.err
    seen = run.out + run.err
    good = manifest_of(node)
    node.path(MANIFEST).write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    try:
        for args in (["enable", "--profile", "cis"], ["disable"], ["rollback"]):
            r = change(node, *args, "--sudo-password-stdin", user="kpw", stdin=SUDO_PASSWORD + "\n", timeout=3)
            assert r.code == 2, r.out + r.err
            seen += r.out + r.err
    finally:
        node.path(MANIFEST).write_bytes(good)
    # Wrong password: refused, and neither password is echoed.
    r = change(node, "disable", "--sudo-password-stdin", user="kpw", stdin="not-the-password\n", timeout=3)
    assert r.code == 2 and "not-the-password" not in r.out + r.err, r.out + r.err
    seen += r.out + r.err
    assert SUDO_PASSWORD not in seen
    found = node.run(f"grep -r -l -a -F -e '{SUDO_PASSWORD}' /var/lib/kaudit /etc/kubernetes /var/log "
                     "/home 2>/dev/null; true").stdout.split()
    assert not found, found
    tally("sudo password in tracebacks / node files", 5, 5, 0)


def test_log_directory_mode_and_owner(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.05, restart_delay=0.05)
    run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="kpw",
                 stdin=SUDO_PASSWORD + "\n", timeout=10)
    assert run.code == 0, run.out + run.err
    out = node.run("stat -c '%a %u %g' /var/log/kubernetes/audit /etc/kubernetes/audit "
                   "/var/lib/kaudit /var/lib/kaudit/backups").stdout.split("\n")
    log_dir, audit_dir, state, backups = (line.split() for line in out[:4])
    assert log_dir == ["700", "0", "0"], log_dir
    assert audit_dir[1:] == ["0", "0"] and int(audit_dir[0], 8) & 0o022 == 0, audit_dir
    assert state == ["700", "0", "0"] and backups[1:] == ["0", "0"], (state, backups)
    files = node.run("find /var/lib/kaudit /etc/kubernetes/audit -type f -printf '%m %u %p\\n'").stdout.splitlines()
    for line in files:
        mode, owner, path = line.split(" ", 2)
        assert owner == "root", line
        assert int(mode, 8) & 0o077 == 0 or path.endswith("lock"), line
    tally("file owners and modes after enable as a sudo user", 1, 1, 0)
