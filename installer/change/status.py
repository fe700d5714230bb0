"""`kaudit status`: what a node's audit configuration is, and whether the running API server uses it.

Read-only. Three round trips per node: sudo check (at connect), gather (manifest, process
table, clock), then file checks and the readiness probe together; ssh and local targets one more
at connect, for the node's flavor marks (connect.node_context).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from installer.errors import KauditError
from installer.node import facts as nodefacts
from installer.node import health
from installer.scripts import load as scripts
from installer.transport.ssh import SSHOptions

if TYPE_CHECKING:
    from installer.targets.connect import NodeContext



@dataclass
class PathStatus:
    flag: str
    container_path: str
    host_path: str | None
    reachable: bool
    mount_is_directory: bool | None
    exists: bool | None = None
    kind: str | None = None
    sha256: str | None = None  # the policy and webhook config; never the log (it can be huge)
    size: int | None = None  # bytes
    mtime: float | None = None
    text: str | None = None  # the policy's own text (UTF-8, up to POLICY_TEXT_MAX bytes, matching sha256)


@dataclass
class ApiServerStatus:
    running: bool
    pid: int | None = None
    started_at: float | None = None
    audit_flags: dict[str, str] = field(default_factory=dict)
    flags_match_manifest: bool | None = None
    started_after_policy: bool | None = None


@dataclass
class NodeStatus:
    node: str
    ok: bool
    error: str | None = None
    manifest_path: str | None = None
    manifest_sha256: str | None = None
    kubernetes_version: str | None = None
    audit_enabled: bool = False
    managed_by_kaudit: bool = False
    profile: str | None = None
    audit_flags: dict[str, str] = field(default_factory=dict)
    paths: list[PathStatus] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    api_server: ApiServerStatus | None = None
    readyz: dict[str, Any] | None = None
    flavor: str | None = None
    cluster: str | None = None
    reverted: bool = False  # kaudit enabled auditing, and something rewrote the manifest since
    last_change: dict[str, Any] | None = None  # kaudit's last confirmed operation: id, op, at, summary, by
    # The last operation when it did not end confirmed: id, summary, state, at, why, guard_pid,
    # lock_holder, manifest_is_its_result.
    unfinished: dict[str, Any] | None = None
    # The other nodes of its cluster (read by the same `status`) whose audit configuration is not this one's.
    differs_from: list[str] = field(default_factory=list)
    # The rollout's health gate on this node (health.ProbeResult.gate_answer): may another node of its cluster
    # change now? `health` says why not (null when healthy); a node that cannot be read is not healthy.
    healthy: bool = False
    health: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The policy's bytes come back with its status (the diff's "before" side, e.g. in the Ansible collection);
# a policy is a few KiB, a larger file's text is left out. Never the webhook config: it can hold credentials.
POLICY_TEXT_MAX = 256 * 1024


def _how(flag: str) -> str:
    """What the status script reads of an audit path: the log's size only, the policy's bytes, a hash else."""
    if flag.endswith("log-path"):
        return "s"
    return "c" if flag == "--audit-policy-file" else "h"


def _text(encoded: str | None, sha256: str | None) -> str | None:
    """The file's text when it decodes, is UTF-8 and has the sha256 the node computed."""
    if encoded is None or sha256 is None:
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
        text = data.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return text if hashlib.sha256(data).hexdigest() == sha256 else None


def node_status(node: NodeContext) -> NodeStatus:
    """Status of one connected node. Raises KauditError when the manifest cannot be read or parsed."""
    from installer.manifest.parse import ManifestError
    from installer.manifest.read import read

    transport = node.transport
    facts = nodefacts.gather(transport, node.layout)
    if facts.manifest is None:
        raise KauditError(facts.manifest_problem or "no manifest", node=transport.name)
    try:
        info = read(facts.manifest)
    except ManifestError as exc:
        raise KauditError(f"{facts.manifest_path}: {exc.message}", node=transport.name) from None
    status = NodeStatus(
        node=transport.name,
        ok=True,
        manifest_path=facts.manifest_path,
        manifest_sha256=hashlib.sha256(facts.manifest).hexdigest(),
        kubernetes_version=".".join(map(str, info.kubernetes_version)) if info.kubernetes_version else None,
        audit_enabled=bool(info.audit.flags),
        managed_by_kaudit=info.audit.managed,
        profile=info.audit.profile,
        audit_flags=dict(info.audit.flags),
        foreign=list(info.audit.foreign),
    )
    status.paths = [
        PathStatus(
            flag=p.flag,
            container_path=p.container_path,
            host_path=p.host_path,
            reachable=p.host_path is not None,
            mount_is_directory=p.mount_is_directory,
        )
        for p in info.audit.paths
    ]
    probe_url = health.url(info.probe.scheme, info.probe.host, info.probe.port, info.probe.path)
    checked = [f"{_how(p.flag)}:{p.host_path}" for p in status.paths if p.host_path and p.container_path != "-"]
    result = transport.run(*scripts.STATUS.bind(checked, url=probe_url,
                                                kubeconfig=health.admin_kubeconfig_for(info.probe, node.layout),
                                                max_content=str(POLICY_TEXT_MAX)), timeout=60)
    stats: dict[str, list[str]] = {}
    contents: dict[str, str] = {}
    probe_fields: list[str] = []
    unsafe: list[str] = []
    for line in result.text.splitlines():
        key, _, value = line.partition("=")
        if key == "stat":
            mtime, size, kind, digest, path = value.split(" ", 4)
            stats[path] = [mtime, size, kind, digest]
        elif key == "content":
            encoded, _, path = value.partition(" ")
            contents[path] = encoded
        elif key == "probe":
            probe_fields = value.split()
        elif key == "unsafe":
            unsafe.append(f"the audit log is readable by someone else: {value} (make it root's and writable by "
                          "no one else: kaudit refuses to change this node until then)")
    for p in status.paths:
        if p.host_path in stats:
            mtime, size, kind, digest = stats[p.host_path]
            p.exists = kind != "missing"
            p.size = int(size) if size.isdigit() else None
            p.kind = None if kind == "missing" else kind
            p.sha256 = None if digest == "-" else digest
            p.mtime = None if mtime == "-" else float(mtime)
            p.text = _text(contents.get(p.host_path), p.sha256)
    code = int(probe_fields[0]) if probe_fields and probe_fields[0].isdigit() else 0
    probe = health.ProbeResult(probe_url, code, probe_fields[1] if len(probe_fields) > 1 else "anonymous")
    status.readyz = {"url": probe.url, "code": probe.code, "via": probe.via, "ready": probe.ready}
    status.health = probe.gate_answer()
    status.healthy = status.health is None
    status.api_server = _api_server(facts, info.audit.flags, status.paths)
    status.flavor = node.flavor.name
    status.unfinished = _unfinished(facts)
    status.problems = _problems(status) + unsafe
    last = facts.last_confirmed
    if last:
        status.last_change = {k: last.get(k) for k in ("id", "op", "at", "summary", "by")}
    if last and last.get("auditAfter") and not info.audit.managed:
        # kaudit's journal says auditing is on; the manifest says otherwise: a tool rewrote it.
        status.reverted = True
        status.problems.insert(0, node.flavor.reverted_message())
    return status


# /proc/stat's btime and the file's mtime are both whole seconds: a process started in the same second
# as the write can look up to a second older than the file. Policies rewritten later are still caught.
START_TIME_SLACK = 1.0


def _api_server(
    facts: nodefacts.NodeFacts, manifest_flags: dict[str, str], paths: list[PathStatus]
) -> ApiServerStatus:
    proc = facts.newest_process()
    if proc is None:
        return ApiServerStatus(running=False)
    from installer.manifest.read import parse_flags

    # Read like the manifest's flags, so both forms and bare booleans compare alike; keyed as the manifest's
    # `audit_flags` and `paths[].flag` are, with the leading `--` (one spelling in the JSON: schemaVersion 2).
    running_flags = {k: v for k, v in parse_flags(proc.argv).items() if k.startswith("--audit-")}
    expected = {f"--{k.removeprefix('--')}": v for k, v in manifest_flags.items()}
    policy_mtimes = [p.mtime for p in paths if p.flag.endswith("audit-policy-file") and p.mtime is not None]
    return ApiServerStatus(
        running=True,
        pid=proc.pid,
        started_at=proc.started_at,
        audit_flags=running_flags,
        flags_match_manifest=running_flags == expected,
        started_after_policy=(proc.started_at + START_TIME_SLACK >= policy_mtimes[0]) if policy_mtimes else None,
    )


def _unfinished(facts: nodefacts.NodeFacts) -> dict[str, Any] | None:
    """kaudit's last operation here when it did not end confirmed (in flight, rolled back, restored
    by the guard, failed), from the journal; None when the last one was confirmed."""
    rec = facts.last_record
    if not rec or rec.get("state") == "confirmed":
        return None
    begin = facts.last_begin if facts.last_begin and facts.last_begin.get("id") == rec.get("id") else {}
    written = facts.manifest is not None and hashlib.sha256(facts.manifest).hexdigest() == begin.get("after")
    return {"id": rec.get("id"), "summary": begin.get("summary"), "state": rec.get("state"),
            "at": rec.get("at"), "why": rec.get("why"), "guard_pid": facts.guard_pid,
            "lock_holder": facts.lock_holder, "manifest_is_its_result": written}


def _problems(status: NodeStatus) -> list[str]:
    problems: list[str] = []
    left = status.unfinished
    if (left and left["state"] == "begin" and left["manifest_is_its_result"] and left["guard_pid"] is None
            and left["lock_holder"] is None):
        # Written, never confirmed, and nothing left to restore it (the node rebooted, the guard was killed).
        problems.append(f"kaudit's change {left['id']} ({left['summary']}) was written but never confirmed, and no "
                        "guard is waiting to undo it: check the API server; `kaudit rollback --to "
                        f"{left['id']}` restores the manifest from before it")
    for p in status.paths:
        if p.container_path == "-":
            continue
        if not p.reachable:
            problems.append(
                f"{p.flag} {p.container_path} is not under any hostPath mount: the API server cannot see it"
            )
        elif p.exists is False and not p.flag.endswith("log-path"):
            problems.append(f"{p.flag}: {p.host_path} does not exist on the node")
        if p.flag.endswith("log-path") and p.mount_is_directory is False:
            problems.append(
                f"the audit log {p.container_path} is mounted as a file: log rotation fails "
                "('device or resource busy'); mount its directory instead"
            )
    api = status.api_server
    if api is not None and status.audit_enabled:
        if not api.running:
            problems.append("no kube-apiserver process is running")
        elif api.flags_match_manifest is False:
            problems.append("the running kube-apiserver does not carry the manifest's audit flags (not restarted yet?)")
        elif api.started_after_policy is False:
            problems.append(
                "the running kube-apiserver started before its policy file was written: it runs an older policy"
            )
    if status.readyz and not status.readyz["ready"]:
        problems.append(f"readiness: {status.readyz['url']} answered {status.readyz['code'] or 'nothing'}")
    return problems


def audit_config(s: NodeStatus) -> tuple[Any, ...]:
    """What must be equal on every control-plane node of a cluster: the audit flags and the content of the
    policy and webhook files they name (a hand-edited file keeps its path)."""
    files = tuple(sorted((p.flag, p.sha256) for p in s.paths if p.flag.endswith(("policy-file", "config-file"))))
    return (s.audit_enabled, s.profile, tuple(sorted(s.audit_flags.items())), files)


def describe_config(s: NodeStatus) -> str:
    """An audit configuration in a few words: `auditing off`, `profile minimal (policy 1a2b3c4d5e6f)`."""
    if not s.audit_enabled:
        return "auditing off"
    policy = next((p.sha256 for p in s.paths if p.flag == "--audit-policy-file" and p.sha256), None)
    what = f"profile {s.profile}" if s.profile else ("a custom policy" if s.managed_by_kaudit else "auditing set up "
                                                                                                    "without kaudit")
    return what + (f" (policy sha256 {policy[:12]})" if policy else "")


def flag_differences(statuses: list[NodeStatus]) -> None:
    """Within each cluster, the nodes whose audit configuration is not the others': a rollout stopped part-way
    (declined, failed, interrupted) or a node changed by hand. Each such node gets `differs_from` and a
    problem naming the majority's configuration and the two ways back to one configuration."""
    clusters: dict[str, list[NodeStatus]] = {}
    for s in statuses:
        if s.ok and s.cluster is not None:
            clusters.setdefault(s.cluster, []).append(s)
    for members in clusters.values():
        groups: dict[tuple[Any, ...], list[NodeStatus]] = {}
        for s in members:
            groups.setdefault(audit_config(s), []).append(s)
        if len(groups) < 2:
            continue
        largest = max(len(g) for g in groups.values())
        majority = [g for g in groups.values() if len(g) == largest]
        for config, group in groups.items():
            others = [o for o in members if audit_config(o) != config]
            for s in group:
                s.differs_from = [o.node for o in others]
            if len(majority) == 1 and group is majority[0]:
                continue  # the majority: the odd ones out carry the problem
            # The configuration the most nodes share; on a tie, every other one.
            ref = majority[0] if len(majority) == 1 else [o for o in others]
            theirs = "; ".join(dict.fromkeys(f"{describe_config(o)} on {o.node}" for o in ref))
            names = " ".join(s.node for s in group)
            rest = " ".join(o.node for o in others)
            for s in group:
                s.problems.append(
                    f"the nodes of this cluster differ: {describe_config(s)} here, {theirs}. If a rollout stopped "
                    f"part-way, `kaudit rollback {names}` undoes it here, or the same change on {rest} finishes it")


def run_status(raw_targets: list[str], ssh: SSHOptions) -> list[NodeStatus]:
    """Status of every node; a node that cannot be read gets ok=False and one line saying why. Nodes of one
    cluster whose audit configuration differs are flagged (flag_differences)."""
    from installer.targets.connect import visit_nodes

    def read(node: NodeContext, cluster: str) -> NodeStatus:
        status = node_status(node)
        status.cluster = cluster
        return status

    def failed(name: str, cluster: str | None, message: str) -> NodeStatus:
        return NodeStatus(node=name, ok=False, error=message, cluster=cluster, health=f"cannot be read: {message}")

    statuses = visit_nodes(raw_targets, ssh, read, failed)
    flag_differences(statuses)
    return statuses
