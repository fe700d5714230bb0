"""Changing one node: ordered, named steps (kubeadm's phases are the model).

preflight → plan (render + validate + lint, read + patch + validate) → lock → apply (journal,
backup, upload policy, arm the guard, write manifest: one atomic remote command) → await the new
instance → verify → confirm → record. Any failure after the manifest is written restores the
backup; a lost connection leaves it to the node-side guard.

A re-run that finds such a change still unconfirmed (its guard waiting) takes it over instead of
making the operator wait for the guard: under the lock it re-arms the guard for itself, then
confirms the change when its new instance is healthy and it is what this run asks for, or restores
its backup at once; then it plans against what is there and carries on as any run.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import posixpath
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from installer.errors import (
    EXIT_FAILED_RESTORED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RESTORED,
    EXIT_OK,
    EXIT_REFUSED,
    KauditError,
    NodeError,
    OperationFailed,
    RestoreFailed,
)
from installer.node import containerlog, health, layout
from installer.node import facts as nodefacts
from installer.scripts import load as scripts
from installer.scripts.exitcodes import ScriptExit
from installer.transport import Session, Transport, open_session

MIN_FREE_KB = 10 * 1024
KEEP_BACKUPS = 10
RESTORE_WAIT = 60.0


@dataclass
class Desired:
    """What a node should look like after the operation."""

    op: str  # enable, switch, disable, rollback
    manifest: bytes
    summary: str  # one line for people: "enable profile cis", "switch minimal -> cis"
    profile: str | None = None
    policy: tuple[str, bytes] | None = None  # (node path, content)
    webhook: tuple[str, bytes] | None = None
    policy_text: str | None = None  # shown by --dry-run
    notes: list[str] = field(default_factory=list)  # facts worth a line: the log's disk budget
    export_args: str | None = None  # `kaudit export` arguments for the same policy, when known


@dataclass
class Options:
    timeout: float = 120.0
    guard_grace: float = 30.0
    dry_run: bool = False
    break_lock: bool = False
    verify: bool = True
    settle: float = 0.5  # seconds a ready new instance must stay up: one that crashes right away is no success


@dataclass
class NodeResult:
    node: str
    ok: bool
    exit_code: int
    action: str  # enabled, switched, disabled, rolled-back, unchanged, dry-run, refused, failed-restored, ...
    message: str
    changed: bool = False
    backup: str | None = None
    profile: str | None = None
    diff: str | None = None
    policy_file: str | None = None
    ready_seconds: float | None = None
    new_instance_pid: int | None = None
    verify: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    cluster: str | None = None
    flavor: str | None = None
    caveat: str | None = None  # what will undo this change later, and how to make it permanent
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Planner = Callable[[nodefacts.NodeFacts, Any], Desired]
Confirm = Callable[[str, str], bool]  # (node, diff) -> go ahead?
Progress = Callable[[str, str], None]  # (node, message)

DONE = {"enable": "enabled", "switch": "switched", "disable": "disabled", "rollback": "rolled-back"}


@functools.lru_cache(maxsize=16)
def _info(manifest_bytes: bytes) -> Any:
    """manifest.read, once per manifest: each step asks about the same old and new bytes."""
    from installer.manifest.read import read

    return read(manifest_bytes)


def _audit_log(info: Any) -> Any:
    """The manifest's --audit-log-path check (container and host path), or None."""
    return next((p for p in info.audit.paths if p.flag == "--audit-log-path"), None)


def audit_tokens(manifest_bytes: bytes) -> list[str]:
    """The argv tokens a kube-apiserver started from this manifest carries for its audit flags."""
    argv = _info(manifest_bytes).argv
    tokens: list[str] = []
    for i, tok in enumerate(argv):
        if tok.startswith("--audit-"):
            tokens.append(tok)
            if "=" not in tok and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                tokens.append(argv[i + 1])
    return tokens


def same_pod(a: bytes, b: bytes) -> bool:
    """Whether two manifests declare the same pod (comments and layout aside): no restart follows."""
    from installer.manifest.parse import compose, decode, to_python

    try:
        return bool(to_python(compose(decode(a))) == to_python(compose(decode(b))))
    except Exception:  # a manifest that does not parse is never "the same pod"
        return False


def stale_files(facts: nodefacts.NodeFacts, desired: Desired) -> list[str]:
    """The desired content-addressed files that the node lacks or holds with other content."""
    out = []
    for item in (desired.policy, desired.webhook):
        if item is not None:
            path, data = item
            have = facts.audit_files.get(path)
            if have is None or have[0] != hashlib.sha256(data).hexdigest():
                out.append(path)
    return out


def _stale_note(facts: nodefacts.NodeFacts, stale: list[str]) -> str:
    """Whether the running API server read the right file: it reads its policy only when it starts."""
    proc = facts.newest_process()
    replaced = [facts.audit_files[p][1] for p in stale if p in facts.audit_files]
    if proc is None or not replaced:  # none running, or the file is missing (no server starts without it)
        return ""
    if max(replaced) >= int(proc.started_at):
        return " (the running kube-apiserver started before the file was replaced: it uses the right policy)"
    return ("; WARNING: the running kube-apiserver started after the file was replaced and may be using the "
            "replaced content: restart it (e.g. `kaudit disable`, then `kaudit enable`)")


def _operator() -> str:
    """user@host of whoever runs kaudit: recorded in the lock and the journal."""
    import getpass
    import socket

    return f"{getpass.getuser()}@{socket.gethostname()}"


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data) + b"\n"


class NodeChange:
    """One node's operation; `run` returns its result and never raises for node problems."""

    def __init__(self, transport: Transport, planner: Planner, plan_input: Any, options: Options,
                 confirm: Confirm, progress: Progress, node_layout: layout.NodeLayout = layout.DEFAULT) -> None:
        self.t = transport
        self.planner = planner
        self.plan_input = plan_input
        self.options = options
        self.confirm = confirm
        self.progress = progress
        self.layout = node_layout
        self.result = NodeResult(node=transport.name, ok=False, exit_code=EXIT_REFUSED, action="refused", message="")
        self.lock: Session | None = None
        self.applied_at = 0.0  # node clock, epoch: when the new manifest was renamed into place
        self.flavor: Any = None  # flavors.Flavor when the target says (kind://, minikube://), else detected
        self.guard_at = 0.0  # node clock, epoch: when the guard now waiting was armed (its deadline follows)
        self.took_over: str | None = None  # the unconfirmed change this run took over and restored
        self.shown: bytes | None = None  # the manifest whose diff the user already said yes to

    # -- steps ------------------------------------------------------------------------------
    def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return fn()
        finally:
            self.result.steps.append({"name": name, "seconds": round(time.monotonic() - started, 3)})

    def preflight(self) -> nodefacts.NodeFacts:
        facts = nodefacts.gather(self.t, self.layout)
        if facts.manifest is None:
            raise NodeError(f"preflight: {facts.manifest_problem}", node=self.t.name)
        if facts.free_kb is not None and facts.free_kb < MIN_FREE_KB:
            raise NodeError(f"preflight: only {facts.free_kb} KiB free on {facts.static_pod_path}", node=self.t.name)
        if facts.lock_holder and not self.options.break_lock:
            raise self._lock_error(facts.lock_holder)
        # An armed guard (a change written and not confirmed) is taken over once the lock is held.
        return facts

    def _gather_locked(self) -> nodefacts.NodeFacts:
        """The node again, under this run's own lock (which gather reports as held)."""
        facts = nodefacts.gather(self.t, self.layout)
        if facts.manifest is None:
            raise NodeError(f"preflight: {facts.manifest_problem}", node=self.t.name)
        return facts

    def take_lock(self) -> None:
        holder = f"kaudit by {_operator()} since {datetime.now(timezone.utc):%H:%M:%SZ}"
        mode = "break" if self.options.break_lock else ""
        session = open_session(self.t, *scripts.LOCK.bind(lock=self.layout.lock, holder=holder, mode=mode))
        line = session.readline()
        if line != "locked":
            session.close()
            if not line:
                raise NodeError("lock: the connection was lost before the lock was taken; nothing was changed",
                                node=self.t.name)
            raise self._lock_error(line.removeprefix("held ").strip() or "another process")
        self.lock = session

    def _lock_error(self, holder: str) -> NodeError:
        return NodeError(f"lock: another kaudit run holds the node's lock ({holder}); use --break-lock only if "
                         "that run is gone", node=self.t.name)

    def apply(self, facts: nodefacts.NodeFacts, info: Any, desired: Desired, backup_id: str
              ) -> tuple[float, float]:
        """Returns when the manifest was renamed into place: (epoch, seconds since boot), node clock."""
        assert facts.manifest is not None
        before = hashlib.sha256(facts.manifest).hexdigest()
        record = {"id": backup_id, "op": desired.op, "state": "begin", "at": facts.now, "summary": desired.summary,
                  "before": before, "after": hashlib.sha256(desired.manifest).hexdigest()}
        meta = {"id": backup_id, "op": desired.op, "created": facts.now, "manifestSha256": before,
                "profile": info.audit.profile, "auditOn": bool(info.audit.flags), "summary": desired.summary}
        # A file being repaired is not kaudit's content any more: it is replaced, not backed up.
        skip = set(stale_files(facts, desired)) if desired.manifest == facts.manifest else set()
        backed_up = [p.host_path for p in info.audit.paths if p.host_path and p.host_path not in skip
                     and p.flag in ("--audit-policy-file", "--audit-webhook-config-file")]
        stdin = b"".join([
            _b64(desired.manifest),
            _b64(desired.policy[1] if desired.policy else b""),
            _b64(desired.webhook[1] if desired.webhook else b""),
            _b64(json.dumps(record).encode() + b"\n"),
            _b64(json.dumps(meta).encode()),
        ])
        new_log = _audit_log(_info(desired.manifest))
        log_dir = posixpath.dirname(new_log.host_path) if new_log and new_log.host_path else ""
        guard_secs = int(self.options.timeout + self.options.guard_grace)
        res = self.t.run(*scripts.APPLY.bind(
            backed_up, state=self.layout.state_dir, manifest=facts.manifest_path, expect=before, id=backup_id,
            pin="0" if info.audit.managed else "1", policy=desired.policy[0] if desired.policy else "",
            webhook=desired.webhook[0] if desired.webhook else "", guard_secs=str(guard_secs),
            guard_script=scripts.GUARD.text, logdir=log_dir), stdin=stdin, timeout=120)
        values = dict(line.partition("=")[::2] for line in res.text.splitlines())
        if res.rc == ScriptExit.CONFLICT:
            raise NodeError(f"write manifest: {facts.manifest_path} was changed by someone else since kaudit read "
                            "it; nothing was written, re-run to see the new diff", node=self.t.name)
        if res.rc == ScriptExit.TAMPERED:
            raise NodeError(f"backup: {values.get('tampered')} was changed by someone else (its content no longer "
                            "matches the hash in its name); nothing was written. Compare it with the profile "
                            "(`kaudit render`) and remove or restore it, then re-run", node=self.t.name)
        if res.rc != 0 or "applied" not in values:
            steps = [line[5:] for line in res.text.splitlines() if line.startswith("step=")]
            failed = steps[-1] if steps else "journal"
            raise NodeError(f"{failed}: {res.err or 'failed'}; the manifest was not changed", node=self.t.name)
        epoch, uptime = values["applied"].split()
        return float(epoch), float(uptime)

    def await_instance(self, since_uptime: float, manifest_bytes: bytes, timeout: float | None = None,
                       verify_marker: str | None = None) -> dict[str, str] | list[str]:
        """Wait on the node for an instance started after `since_uptime` (seconds since boot); returns
        the ready line's fields (with "verify": found/missing when a marker was given), or the lines
        explaining the timeout."""
        info = _info(manifest_bytes)
        tokens = audit_tokens(manifest_bytes)
        log_path = self._verifiable_log(info) if verify_marker else None
        verify_url = (health.url(info.probe.scheme, info.probe.host, info.probe.port, "")
                      + f"/api/v1/namespaces/default/configmaps?limit=1&kaudit-verify={verify_marker}"
                      if log_path else "")
        session = open_session(self.t, *scripts.AWAIT.bind(
            tokens, since=f"{since_uptime:.2f}", timeout=str(int(timeout or self.options.timeout)),
            url=info.probe.url, kc=layout.ADMIN_KUBECONFIG, mode="present" if tokens else "absent",
            settle=str(int(self.options.settle * 10)), vurl=verify_url, marker=f"kaudit-verify={verify_marker}",
            vlog=log_path or ""))
        timeout_lines: list[str] = []
        verified = ""
        try:
            while True:
                line = session.readline()
                if not line:
                    raise NodeError("await: the connection was lost while waiting", node=self.t.name)
                key, _, value = line.partition("=")
                if key == "progress":
                    self.progress(self.t.name, value)
                elif key == "verify":
                    verified = value
                elif key == "ready":
                    pid, started, ready_at, *via = value.split()
                    return {"pid": pid, "started": started, "ready_at": ready_at, "via": " ".join(via),
                            "verify": verified}
                elif key == "timeout":
                    timeout_lines.append(value)
                    # Read the remaining log lines, then stop.
                    while (more := session.readline()):
                        if more.startswith("log="):
                            timeout_lines.append(containerlog.message(more[4:]))
                    return timeout_lines
        finally:
            session.close()

    @staticmethod
    def _verifiable_log(info: Any) -> str | None:
        """The host path of the audit log when kaudit can look for events in it."""
        log = _audit_log(info)
        return None if log is None or log.container_path == "-" else log.host_path

    @staticmethod
    def verify_result(manifest_bytes: bytes, found: str) -> dict[str, Any]:
        """What the verification request during the settle time showed, for people."""
        log = _audit_log(_info(manifest_bytes))
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

    def confirm_change(self, facts: nodefacts.NodeFacts, backup_id: str, desired: Desired,
                       extra: dict[str, Any] | None = None) -> None:
        audit_after = bool(_info(desired.manifest).audit.managed)
        record = json.dumps({"id": backup_id, "op": desired.op, "state": "confirmed", "at": time.time(),
                             "summary": desired.summary, "profile": desired.profile, "auditAfter": audit_after,
                             "by": _operator(), **(extra or {})})
        res = self.t.run(*scripts.CONFIRM.bind(
            state=self.layout.state_dir, manifest=facts.manifest_path, id=backup_id, audit=self.layout.audit_dir,
            record=record, keep=str(KEEP_BACKUPS), new=hashlib.sha256(desired.manifest).hexdigest()))
        if res.rc == ScriptExit.GUARD_RESTORED:
            self.result.changed = False
            raise OperationFailed(f"confirm: the node's guard had already restored backup {backup_id}: its time "
                                  "(--timeout + --guard-grace) was up before kaudit could confirm; re-run with a "
                                  "longer --guard-grace", node=self.t.name)
        if res.rc != 0:
            raise NodeError(f"confirm failed: {res.err or f'exit code {res.rc}'}", node=self.t.name)

    def restore(self, facts: nodefacts.NodeFacts, backup_id: str, why: str, log_lines: list[str]) -> None:
        """Automatic rollback: put the backup back and wait for the old configuration to be healthy."""
        assert facts.manifest is not None
        self._put_back(facts.manifest_path, facts.manifest, backup_id,
                       {"id": backup_id, "state": "rolled-back", "at": time.time(), "why": why}, why)
        detail = f" (kube-apiserver said: {log_lines[-1]})" if log_lines else ""
        raise OperationFailed(f"{why}{detail}; the previous manifest was restored and the API server is healthy",
                              node=self.t.name)

    def _put_back(self, manifest_path: str, before: bytes, backup_id: str, record: dict[str, Any], why: str
                  ) -> None:
        """Restore the backup (`before` is its manifest) and wait for it to be healthy; RestoreFailed if not."""
        self.progress(self.t.name, f"rolling back: {why}")
        try:
            res = self.t.run(*scripts.RESTORE.bind(state=self.layout.state_dir, manifest=manifest_path, id=backup_id,
                                                   record=json.dumps(record)))
            if res.rc != 0:
                raise RestoreFailed(f"ROLLBACK FAILED: {res.err or res.text.strip()}; restore "
                                    f"{self.layout.backups_dir}/{backup_id}/manifest by hand", node=self.t.name)
            # Any instance with the old configuration will do, even one that never stopped: when the
            # manifest is put back before the kubelet replaced the old instance, it just keeps running.
            # The API server may be down: give it time, the kubelet may be backing off.
            back = self.await_instance(0.0, before, max(self.options.timeout, RESTORE_WAIT))
        except NodeError as exc:
            raise RestoreFailed(f"ROLLBACK FAILED ({exc.message}); the node's guard will restore "
                                f"{self.layout.backups_dir}/{backup_id} if the manifest is still the new one",
                                node=self.t.name) from None
        if not isinstance(back, dict):
            raise RestoreFailed(f"ROLLBACK FAILED: the previous configuration was restored but the API server is "
                                f"not healthy ({'; '.join(back[:1])}); a human is needed now", node=self.t.name)

    def _guard_pending(self, exc: NodeError) -> RestoreFailed:
        """The manifest was written but kaudit lost the node before confirming: the guard decides now."""
        secs = int(self.options.timeout + self.options.guard_grace)
        when = datetime.fromtimestamp((self.guard_at or self.applied_at) + secs, timezone.utc).strftime("%H:%M:%SZ")
        return RestoreFailed(f"{exc.message}. The new manifest was written and is not confirmed: the node's guard "
                             f"restores backup {self.result.backup} at {when} (node clock) unless it was confirmed; "
                             "check with `kaudit status` after that time", node=self.t.name)

    @staticmethod
    def _caveat(flavor: Any, info: Any, desired: Desired) -> str | None:
        """What will undo a change that leaves auditing on, and how to make it permanent; None when
        the change turned auditing off (nothing for a later tool to undo)."""
        after = _info(desired.manifest).audit
        if not after.managed:
            return None
        # A rollback knows the restored profile's name (from kaudit's annotation), not its variables.
        args = desired.export_args or (f"--profile {after.profile}" if after.profile else None)
        return str(flavor.caveat(args, info.kubernetes_version))

    # -- taking over an unconfirmed change ------------------------------------------------------
    def _take_over(self, facts: nodefacts.NodeFacts, info: Any, flavor: Any) -> nodefacts.NodeFacts | None:
        """An earlier run wrote a change and lost the node before confirming it; its guard still waits.
        Confirm it (healthy and what this run asks for) or restore its backup now, under the lock.
        Returns the node as it is afterwards to plan against, or None when this run is done."""
        from installer.manifest.diff import unified_diff

        r = self.result
        assert facts.manifest is not None
        pending = facts.last_begin or {}
        ident, op = str(pending.get("id") or ""), str(pending.get("op") or "")
        what = str(pending.get("summary") or op or "a change")
        after = hashlib.sha256(facts.manifest).hexdigest()
        if not ident or pending.get("after") != after:
            raise self._cannot_take_over(facts, "the manifest is not what kaudit's last change wrote")
        # What this run would do to the node as the unconfirmed change left it: nothing means it is wanted.
        desired: Desired | None = None
        why = ""
        try:
            desired = self._step("plan", lambda: self.planner(facts, self.plan_input))
        except NodeError as exc:  # an error in the user's input (InputError) refuses before anything
            why = f"this run cannot start from it: {exc.message}"
        if desired is not None:
            stale = stale_files(facts, desired)
            if desired.manifest != facts.manifest:
                why = "it is not what this run asks for"
            elif stale:
                why = f"{', '.join(stale)} no longer hold{'s' if len(stale) == 1 else ''} what it wrote"
            r.profile, r.notes = desired.profile, [*desired.notes]
            r.policy_file = desired.policy[0] if desired.policy else None
        if why and desired is not None:
            r.diff = unified_diff(facts.manifest, desired.manifest, facts.manifest_path, color=False)
        if self.options.dry_run:
            r.ok, r.exit_code, r.action = True, EXIT_OK, "dry-run"
            if not why:
                then = "confirm it once its new kube-apiserver is healthy (it is what this run asks for)"
            else:
                then = f"restore its backup now ({why}), then plan again"
                then += f" ({desired.summary})" if desired is not None else ""
            r.message = f"would take over the unconfirmed change {ident} ({what}) and {then}"
            return None
        if why and desired is not None:
            assert r.diff is not None
            if not self.confirm(self.t.name, r.diff):
                raise NodeError(f"not confirmed: nothing changed (the unconfirmed change {ident} is left to its "
                                "guard)", node=self.t.name)
            self.shown = desired.manifest
        self._step("lock", self.take_lock)
        self.progress(self.t.name, f"taking over the unconfirmed change {ident} ({what})")
        # From here on, a lost node is the guard's again (the old one or the one re-armed below).
        r.backup, r.changed, self.guard_at = ident, True, facts.now
        secs = int(self.options.timeout + self.options.guard_grace)
        res = self._step("take over", lambda: self.t.run(*scripts.TAKEOVER.bind(
            state=self.layout.state_dir, manifest=facts.manifest_path, id=ident, new=after, secs=str(secs),
            guard_script=scripts.GUARD.text)))
        values = dict(line.partition("=")[::2] for line in res.text.splitlines())
        state = values.get("state")
        if state != "pending":
            if state is None:
                raise NodeError(f"take over: {res.err or f'exit code {res.rc}'}", node=self.t.name)
            r.backup, r.changed = None, False
            if state != "gone":
                reasons = {"other": "the guard is not waiting for kaudit's last change",
                           "nobackup": f"its backup {ident} is missing", "changed": "the manifest was changed since"}
                raise self._cannot_take_over(facts, reasons.get(state) or state)
            # The guard finished between the preflight and the lock: nothing left to take over.
            end = "restored by the node's guard" if values.get("restored") else "ended"
            r.notes.append(f"the unconfirmed change {ident} was {end} before this run could take it over")
            fresh: nodefacts.NodeFacts = self._step("preflight", self._gather_locked)
            return fresh
        self.guard_at = float(values["armed"])
        applied_epoch, applied_uptime = (float(v) for v in values["applied"].split()[:2])
        self.applied_at = applied_epoch
        before = base64.b64decode(values.get("before", ""))
        record: dict[str, Any] = {"takenOver": True}
        if not why:
            assert desired is not None
            # A change that declared the same pod restarted nothing: any instance of it will do.
            since = 0.0 if same_pod(before, facts.manifest) else applied_uptime
            marker = f"{ident}-{secrets.token_hex(2)}" if self.options.verify and op != "disable" else None
            try:
                ready = self._step("await", lambda: self.await_instance(since, facts.manifest or b"",
                                                                        verify_marker=marker))
            except KeyboardInterrupt:
                r.changed, self.took_over = False, ident
                with contextlib.suppress(KauditError):
                    self._put_back(facts.manifest_path, before, ident, {
                        "id": ident, "state": "rolled-back", "at": time.time(), "why": "interrupted", **record,
                        "by": _operator()}, "interrupted")
                raise
            if isinstance(ready, dict):
                done = Desired(op=op or desired.op, manifest=facts.manifest, summary=what,
                               profile=info.audit.profile)
                self._step("confirm", lambda: self.confirm_change(facts, ident, done, record))
                r.ok, r.exit_code, r.action = True, EXIT_OK, DONE.get(done.op, done.op)
                r.new_instance_pid = int(ready["pid"])
                r.ready_seconds = round(float(ready["ready_at"]) - applied_epoch, 3)
                if marker:
                    r.verify = self.verify_result(facts.manifest, ready.get("verify", ""))
                r.caveat = self._caveat(flavor, info, desired)
                r.notes.append(f"took over the unconfirmed change {ident}: confirmed")
                r.message = (f"{what}: took over the unconfirmed change {ident} (its kaudit run lost the node) and "
                             f"confirmed it: kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} s "
                             "after the change")
                return None
            r.log_lines = ready[1:]
            why = (f"its new kube-apiserver was not healthy within {self.options.timeout:g} s "
                   f"({ready[0] if ready else '?'})")
        # Not wanted, or not healthy: restore its backup now rather than at the guard's deadline.
        r.changed = False
        self._step("restore", lambda: self._put_back(facts.manifest_path, before, ident, {
            "id": ident, "state": "rolled-back", "at": time.time(), "why": f"taken over by a re-run: {why}", **record,
            "by": _operator()}, f"the unconfirmed change {ident}: {why}"))
        self.took_over = ident
        r.notes.append(f"took over the unconfirmed change {ident}: restored ({why})")
        restored: nodefacts.NodeFacts = self._step("preflight", self._gather_locked)
        return restored

    def _cannot_take_over(self, facts: nodefacts.NodeFacts, why: str) -> NodeError:
        return NodeError(f"preflight: a kaudit guard (pid {facts.guard_pid}) waits on this node for a change this "
                         f"run cannot take over ({why}); it restores that change's backup when its time is up: "
                         "wait for it and re-run", node=self.t.name)

    # -- the whole operation --------------------------------------------------------------------
    def run(self) -> NodeResult:
        r = self.result
        try:
            self._run()
        except KeyboardInterrupt:
            r.exit_code, r.action = EXIT_INTERRUPTED, "interrupted"
            if r.changed:  # interrupted again, while rolling back: the node's guard finishes the job
                r.message = self._guard_pending(NodeError("interrupted during the rollback")).message
            elif r.backup:
                r.message = "interrupted: the previous manifest was put back"
            else:
                r.message = "interrupted before anything changed"
        except KauditError as exc:
            if isinstance(exc, NodeError) and r.changed:
                exc = self._guard_pending(exc)
            r.exit_code, r.message = exc.exit_code, exc.message
            r.action = {EXIT_FAILED_RESTORED: "failed-restored", EXIT_NOT_RESTORED: "NOT-RESTORED"}.get(
                exc.exit_code, "refused")
        finally:
            if self.lock is not None:
                self.lock.close()
        if self.took_over:  # the manifest is no longer the unconfirmed change's, whatever came after
            r.changed = True
        return r

    def _run(self) -> None:
        from installer.manifest.diff import unified_diff
        from installer.manifest.parse import ManifestError

        r = self.result
        facts = self._step("preflight", self.preflight)
        assert facts.manifest is not None
        try:
            info = _info(facts.manifest)
        except ManifestError as exc:
            raise NodeError(f"read manifest: {facts.manifest_path}: {exc.message}", node=self.t.name) from None
        from installer.targets import flavors

        flavor = self.flavor or flavors.detect_flavor(info)
        r.flavor = flavor.name
        if facts.guard_pid is not None:
            after = self._take_over(facts, info, flavor)
            if after is None:
                return
            facts = after
            assert facts.manifest is not None
            try:
                info = _info(facts.manifest)
            except ManifestError as exc:
                raise NodeError(f"read manifest: {facts.manifest_path}: {exc.message}", node=self.t.name) from None
        plan_facts = facts
        desired: Desired = self._step("plan", lambda: self.planner(plan_facts, self.plan_input))
        r.profile = desired.profile
        r.notes = [*r.notes, *desired.notes]
        r.policy_file = desired.policy[0] if desired.policy else None
        stale = stale_files(facts, desired) if desired.manifest == facts.manifest else []
        if desired.manifest == facts.manifest and not stale:
            r.ok, r.exit_code = True, EXIT_OK
            if self.took_over:  # the take-over's restore is all this run asks for
                r.action, r.backup = DONE.get(desired.op, desired.op), self.took_over
                r.message = (f"took over the unconfirmed change {self.took_over} and restored its backup; the node "
                             f"is as asked ({desired.summary}) and the API server is healthy")
                r.caveat = self._caveat(flavor, info, desired)
                return
            r.action = "unchanged"
            r.message = f"already so ({desired.summary}): nothing changed, nothing restarted"
            return
        if stale:
            # The manifest is as wanted but a policy (or webhook config) file it names was replaced or
            # removed: put the right content back. No restart: the manifest does not change.
            desired.summary = f"re-upload {', '.join(stale)} (replaced or removed by someone else)"
            desired.op = "repair"
        r.diff = unified_diff(facts.manifest, desired.manifest, facts.manifest_path, color=False)
        if self.options.dry_run:
            r.ok, r.exit_code, r.action = True, EXIT_OK, "dry-run"
            r.message = f"would {desired.summary}"
            return
        if self.shown != desired.manifest and not self.confirm(self.t.name, r.diff):
            raise NodeError("not confirmed: nothing changed" + (
                f" since the take-over restored backup {self.took_over}" if self.took_over else ""), node=self.t.name)
        if self.lock is None:
            self._step("lock", self.take_lock)
        backup_id = datetime.fromtimestamp(facts.now, timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{desired.op}"
        backup_id += "-" + secrets.token_hex(2)
        r.backup = backup_id
        changed_at, changed_uptime = self._step("apply", lambda: self.apply(facts, info, desired, backup_id))
        r.changed, self.applied_at = True, changed_at
        if same_pod(facts.manifest, desired.manifest):
            self._step("confirm", lambda: self.confirm_change(facts, backup_id, desired))
            r.ok, r.exit_code, r.action, r.message = True, EXIT_OK, desired.op, f"{desired.summary} (no restart needed)"
            if stale:
                r.action = "repaired"
                r.message = f"{desired.summary}; the manifest is unchanged, nothing restarted"
                r.message += _stale_note(facts, stale)
            r.caveat = self._caveat(flavor, info, desired)
            return
        marker = backup_id if self.options.verify and desired.op != "disable" else None
        try:
            ready = self._step("await", lambda: self.await_instance(changed_uptime, desired.manifest,
                                                                    verify_marker=marker))
        except KeyboardInterrupt:
            with contextlib.suppress(OperationFailed):
                self.restore(facts, backup_id, "interrupted", [])
            r.changed = False
            raise
        if not isinstance(ready, dict):
            r.log_lines = ready[1:]
            why = f"no healthy new kube-apiserver within {self.options.timeout:g} s ({ready[0] if ready else '?'})"
            r.changed = False
            self.restore(facts, backup_id, why, r.log_lines)
            return
        r.new_instance_pid = int(ready["pid"])
        r.ready_seconds = round(float(ready["ready_at"]) - changed_at, 3)
        if self.options.verify and desired.op != "disable":
            r.verify = self.verify_result(desired.manifest, ready.get("verify", ""))
        self._step("confirm", lambda: self.confirm_change(facts, backup_id, desired))
        r.ok, r.exit_code = True, EXIT_OK
        r.caveat = self._caveat(flavor, info, desired)
        r.action = DONE.get(desired.op, desired.op)
        r.message = f"{desired.summary}: new kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} s " \
                    f"after the change"
