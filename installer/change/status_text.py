"""Text rendering of `kaudit status` for people."""

from __future__ import annotations

import datetime

from installer.change.status import NodeStatus


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


_ENDINGS = {
    "rolled-back": "failed, and kaudit restored the backup",
    "guard-restored": "not confirmed in time: the node's guard restored the backup",
    "guard-restore-failed": ("not confirmed in time, and the node's guard could NOT restore the backup (it retries "
                             "for 10 minutes); the manifest is still the change's: `kaudit rollback` restores "
                             "that change's backup"),
    "failed": "failed before the manifest was written; nothing changed",
}


def _unfinished_line(left: dict[str, object]) -> str:
    state = str(left.get("state"))
    if state != "begin":
        ending = _ENDINGS.get(state, state) + (f" ({left['why']})" if left.get("why") else "")
    elif left.get("lock_holder"):
        ending = f"in progress ({left['lock_holder']})"
    elif left.get("guard_pid"):
        ending = (f"written, not confirmed: the node's guard (pid {left['guard_pid']}) restores the backup "
                  "unless it is confirmed in time")
    elif left.get("manifest_is_its_result"):
        ending = "written and never confirmed, and no guard is left to undo it (see the problem below)"
    else:
        ending = "begun and never ended; the manifest is not what it would have written"
    return f"  last kaudit attempt: {_when_any(left.get('at'))}, {left.get('summary') or left.get('id')}: {ending}"


def _when_any(value: object) -> str:
    return _when(value if isinstance(value, (int, float)) else None)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_text(s: NodeStatus) -> str:
    if not s.ok:
        return f"{s.node}: ERROR {s.error}"
    flavor = f", {s.flavor}" if s.flavor else ""
    lines = [f"{s.node}: {s.manifest_path} (Kubernetes {s.kubernetes_version or 'version unknown'}{flavor})"]
    if not s.audit_enabled:
        lines.append("  auditing: off (no --audit-* flags in the manifest)")
    else:
        owner = f"by kaudit, profile {s.profile or '(custom policy)'}" if s.managed_by_kaudit else "NOT by kaudit"
        lines.append(f"  auditing: on, configured {owner}")
        for name, value in s.audit_flags.items():
            lines.append(f"    {name}={value}")
        for p in s.paths:
            where = p.host_path if p.reachable else "NOT MOUNTED"
            extra = ""
            if p.sha256:
                extra = f", sha256 {p.sha256[:12]}"
            elif p.kind == "file" and p.size is not None:
                extra = f", {_size(p.size)}"
            elif p.exists is False:
                extra = ", not there yet" if p.flag.endswith("log-path") else ", MISSING"
            if p.mount_is_directory is not None and p.flag.endswith("log-path"):
                extra += ", directory mount" if p.mount_is_directory else ", FILE mount (breaks rotation)"
            lines.append(f"    {p.flag}: host {where}{extra}")
        for f in s.foreign:
            lines.append(f"    not added by kaudit: {f}")
    api = s.api_server
    if api is None or not api.running:
        lines.append("  kube-apiserver: not running")
    else:
        if not s.audit_enabled and not api.audit_flags:
            match = "runs without audit flags, as the manifest says"
        else:
            match = {True: "carries the manifest's audit flags", False: "does NOT carry the manifest's audit flags",
                     None: "?"}[api.flags_match_manifest]
        lines.append(f"  kube-apiserver: pid {api.pid}, started {_when(api.started_at)}, {match}")
    last = s.last_change
    if last:
        by = f", by {last['by']}" if last.get("by") else ""
        when = _when_any(last.get("at"))
        lines.append(f"  last kaudit change: {when}, {last.get('summary')} (backup {last.get('id')}{by})")
    if s.unfinished:
        lines.append(_unfinished_line(s.unfinished))
    if s.readyz:
        state = "ready" if s.readyz["ready"] else "NOT ready"
        answer = s.readyz['code'] or 'no answer'
        lines.append(f"  readiness: {state} ({s.readyz['url']} -> {answer}, {s.readyz['via']})")
    for problem in s.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)
