"""The node side of a change: one function per node script the phases run (lock.sh, apply.sh, await.sh,
confirm.sh, restore.sh, takeover.sh), each building the script's arguments, reading its key=value answer
and exit code (scripts/exitcodes.py), and returning a value or raising the error people read.

Everything here goes through a `Transport` (kind's exec.Cmder is the model): the unit tests give it an
in-memory node that speaks the same protocol (tests/unit/change/fake_node.py). No phase logic here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from installer.change import journal
from installer.change.data import Desired, Ready, TimedOut, load
from installer.change.workflow import PhaseError
from installer.errors import NodeError, OperationFailed
from installer.node import containerlog, health, layout
from installer.node import facts as nodefacts
from installer.scripts import load as scripts
from installer.scripts.exitcodes import ScriptExit
from installer.transport import Session, Transport, open_session

if TYPE_CHECKING:
    from installer.manifest.read import Manifest

KEEP_BACKUPS = 10


class GuardRestored(OperationFailed):
    """confirm.sh: the guard's time was up and it restored the backup before kaudit could confirm."""


def operator() -> str:
    """user@host of whoever runs kaudit: recorded in the lock and the journal."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _values(text: str) -> dict[str, str]:
    """A script's key=value lines."""
    return dict(line.partition("=")[::2] for line in text.splitlines())


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data) + b"\n"


def audit_log(info: Any) -> Any:
    """The manifest's --audit-log-path check (container and host path), or None."""
    return next((p for p in info.audit.paths if p.flag == "--audit-log-path"), None)


def audit_tokens(manifest: bytes | Manifest) -> list[str]:
    """The argv tokens a kube-apiserver started from this manifest carries for its audit flags."""
    argv = load(manifest).info.argv
    tokens: list[str] = []
    for i, tok in enumerate(argv):
        if tok.startswith("--audit-"):
            tokens.append(tok)
            if "=" not in tok and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                tokens.append(argv[i + 1])
    return tokens


def lock_error(node: str, holder: str) -> NodeError:
    return NodeError(f"lock: another kaudit run holds the node's lock ({holder}); use --break-lock only if "
                     "that run is gone", node=node)


def lock(t: Transport, node_layout: layout.NodeLayout, *, break_lock: bool) -> Session:
    """lock.sh: the node's flock, held by a process on the node for as long as the returned session lives."""
    holder = f"kaudit by {operator()} since {datetime.now(timezone.utc):%H:%M:%SZ}"
    session = open_session(t, *scripts.LOCK.bind(lock=node_layout.lock, holder=holder,
                                                 mode="break" if break_lock else ""))
    line = session.readline()
    if line != "locked":
        session.close()
        if not line:
            raise NodeError("lock: the connection was lost before the lock was taken; nothing was changed",
                            node=t.name)
        if line.startswith("bad "):
            raise NodeError(f"lock: {line[4:]}; nothing was changed", node=t.name)
        raise lock_error(t.name, line.removeprefix("held ").strip() or "another process")
    return session


def apply(t: Transport, node_layout: layout.NodeLayout, facts: nodefacts.NodeFacts, manifest: bytes,
          before: Manifest, desired: Desired, backup_id: str, *, guard_secs: int, repaired: list[str]
          ) -> tuple[float, float]:
    """apply.sh: journal entry, backup, content-addressed files, the guard, the manifest, in one command.
    `repaired` are the files being put right (replaced, not backed up). Returns when the manifest was renamed
    into place: (epoch, seconds since boot), node clock."""
    info = before.info
    before_sha = hashlib.sha256(manifest).hexdigest()
    record = journal.entry(backup_id, journal.BEGIN, facts.now, op=desired.op, summary=desired.summary,
                           before=before_sha, after=hashlib.sha256(desired.manifest).hexdigest())
    held = {p.flag: p.host_path for p in info.audit.paths if p.host_path}
    meta = {"id": backup_id, "op": desired.op, "created": facts.now, "manifestSha256": before_sha,
            "profile": info.audit.profile, "auditOn": bool(info.audit.flags), "summary": desired.summary,
            "policy": held.get("--audit-policy-file"), "webhookConfig": held.get("--audit-webhook-config-file")}
    backed_up = [p.host_path for p in info.audit.paths if p.host_path and p.host_path not in repaired
                 and p.flag in ("--audit-policy-file", "--audit-webhook-config-file")]
    parts = [desired.manifest, desired.policy[1] if desired.policy else b"",
             desired.webhook[1] if desired.webhook else b"", journal.encode(record),
             json.dumps(meta).encode()]
    stdin = b"".join(_b64(p) for p in parts)
    sums = " ".join(hashlib.sha256(p).hexdigest() for p in parts)
    new_log = audit_log(desired.after.info)
    log_dir = posixpath.dirname(new_log.host_path) if new_log and new_log.host_path else ""
    res = t.run(*scripts.APPLY.bind(
        backed_up, state=node_layout.state_dir, manifest=facts.manifest_path, expect=before_sha, id=backup_id,
        pin="0" if info.audit.managed else "1", policy=desired.policy[0] if desired.policy else "",
        webhook=desired.webhook[0] if desired.webhook else "", guard_secs=str(guard_secs),
        guard_script=scripts.GUARD.text, logdir=log_dir, sums=sums), stdin=stdin, timeout=120)
    values = _values(res.text)
    if res.rc == ScriptExit.CONFLICT:
        raise NodeError(f"write manifest: {facts.manifest_path} was changed by someone else since kaudit read "
                        "it; nothing was written, re-run to see the new diff", node=t.name)
    if res.rc == ScriptExit.UNSAFE:
        raise NodeError(f"refused: {values.get('unsafe')}. Another user could plant links where kaudit writes "
                        "as root, or read the audit events: make it root's and writable by no one else, "
                        "then re-run; nothing was changed", node=t.name)
    if res.rc == ScriptExit.PAYLOAD:
        raise NodeError("write manifest: the data kaudit sent did not arrive whole (its sha256 differs); "
                        "nothing was changed. Re-run; if it happens again, check what reads the command's "
                        "input on the node (sudo's configuration)", node=t.name)
    if res.rc == ScriptExit.TAMPERED:
        raise NodeError(f"backup: {values.get('tampered')} was changed by someone else (its content no longer "
                        "matches the hash in its name); nothing was written. Compare it with the profile "
                        "(`kaudit render`) and remove or restore it, then re-run", node=t.name)
    if res.rc != 0 or "applied" not in values:
        steps = [line[5:] for line in res.text.splitlines() if line.startswith("step=")]
        failed = steps[-1] if steps else "journal"
        raise NodeError(f"{failed}: {res.err or 'failed'}; the manifest was not changed", node=t.name)
    epoch, uptime = values["applied"].split()
    return float(epoch), float(uptime)


def verifiable_log(info: Any) -> str | None:
    """The host path of the audit log when kaudit can look for events in it."""
    log = audit_log(info)
    return None if log is None or log.container_path == "-" else log.host_path


def await_instance(t: Transport, node_layout: layout.NodeLayout, since_uptime: float, manifest: bytes | Manifest, *,
                   timeout: float, settle: float, verify_marker: str | None, progress: Callable[[str], None]
                   ) -> Ready | TimedOut:
    """await.sh: wait on the node for an instance started after `since_uptime` (seconds since boot) with the
    manifest's audit flags, ready and settled; with a marker, a verification request's event is looked for."""
    parsed = load(manifest)
    info = parsed.info
    tokens = audit_tokens(parsed)
    log_path = verifiable_log(info) if verify_marker else None
    verify_url = (health.url(info.probe.scheme, info.probe.host, info.probe.port, "")
                  + f"/api/v1/namespaces/default/configmaps?limit=1&kaudit-verify={verify_marker}"
                  if log_path else "")
    limit = int(timeout)
    waiting_since = time.monotonic()
    session = open_session(t, *scripts.AWAIT.bind(
        tokens, since=f"{since_uptime:.2f}", timeout=str(limit),
        url=info.probe.url, kc=health.admin_kubeconfig_for(info.probe, node_layout),
        mode="present" if tokens else "absent",
        settle=str(int(settle * 10)), vurl=verify_url, marker=f"kaudit-verify={verify_marker}",
        vlog=log_path or ""))
    verified = ""
    try:
        while True:
            line = session.readline()
            if not line:
                raise PhaseError("the connection was lost while waiting", phase="await", node=t.name)
            key, _, value = line.partition("=")
            if key == "progress":  # each second: the state, the time waited and the limit
                progress(f"{value} ({time.monotonic() - waiting_since:.0f} s of {limit} s)")
            elif key == "verify":
                verified = value
            elif key == "ready":
                pid, _started, ready_at, *_via = value.split()
                return Ready(int(pid), float(ready_at), verified)
            elif key == "timeout":
                lines: list[str] = []
                while (more := session.readline()):  # the API server's last log lines, then the end
                    if more.startswith("log="):
                        lines.append(containerlog.message(more[4:]))
                return TimedOut(value, lines)
    finally:
        session.close()


def verify_result(manifest: Manifest, found: str) -> dict[str, Any]:
    """What the verification request during the settle time showed, for people."""
    log = audit_log(manifest.info)
    if log is None:
        return {"verified": False, "reason": "events go to a webhook only; kaudit cannot see them on the node"}
    if log.container_path == "-":
        return {"verified": False, "reason": "events go to the API server's stdout"}
    if log.host_path is None:
        return {"verified": False, "reason": f"{log.container_path} is not mounted: events are lost"}
    if found == "found":
        return {"verified": True, "reason": f"a test request's event was found in {log.host_path}"}
    return {"verified": False, "reason": f"no event for a test request (list configmaps) appeared in "
                                         f"{log.host_path} within 3 s: the policy may not record it"}


def confirm(t: Transport, node_layout: layout.NodeLayout, manifest_path: str, backup_id: str, desired: Desired,
            extra: dict[str, Any] | None = None) -> None:
    """confirm.sh: the guard stands down, the journal records the change, old backups and files go."""
    audit_after = bool(desired.after.info.audit.managed)
    record = journal.line(journal.entry(backup_id, journal.CONFIRMED, time.time(), op=desired.op,
                                        summary=desired.summary, profile=desired.profile, auditAfter=audit_after,
                                        by=operator(), **(extra or {})))
    res = t.run(*scripts.CONFIRM.bind(
        state=node_layout.state_dir, manifest=manifest_path, id=backup_id, audit=node_layout.audit_dir,
        record=record, keep=str(KEEP_BACKUPS), new=hashlib.sha256(desired.manifest).hexdigest()))
    if res.rc == ScriptExit.GUARD_RESTORED:
        raise GuardRestored(f"confirm: the node's guard had already restored backup {backup_id}: its time "
                            "(--timeout + --guard-grace) was up before kaudit could confirm; re-run with a "
                            "longer --guard-grace", node=t.name)
    if res.rc != 0:
        raise NodeError(f"confirm failed: {res.err or f'exit code {res.rc}'}", node=t.name)


def restore(t: Transport, node_layout: layout.NodeLayout, manifest_path: str, backup_id: str,
            record: dict[str, Any]) -> str | None:
    """restore.sh: the backup's manifest and files put back, the guard stood down, the journal told.
    Returns None when done, else what the script said went wrong."""
    res = t.run(*scripts.RESTORE.bind(state=node_layout.state_dir, manifest=manifest_path, id=backup_id,
                                      record=journal.line(record)))
    return None if res.rc == 0 else (res.err or res.text.strip() or f"exit code {res.rc}")


def take_over(t: Transport, node_layout: layout.NodeLayout, manifest_path: str, ident: str, manifest: bytes,
              *, guard_secs: int) -> dict[str, str]:
    """takeover.sh, under the lock: the guard waiting for change `ident` is replaced by one for this run.
    Returns its key=value answer (`state`: pending, gone, other, nobackup, changed)."""
    res = t.run(*scripts.TAKEOVER.bind(
        state=node_layout.state_dir, manifest=manifest_path, id=ident, new=hashlib.sha256(manifest).hexdigest(),
        secs=str(guard_secs), guard_script=scripts.GUARD.text))
    values = _values(res.text)
    if values.get("state") is None:
        raise NodeError(f"take over: {res.err or f'exit code {res.rc}'}", node=t.name)
    return values
