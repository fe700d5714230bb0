"""Changing one node: the ordered list of phases (PHASES, kubeadm's workflow.Phase is the model),
run by installer.change.workflow.

preflight → plan (render + validate + lint, read + patch + validate) → ask → lock → apply (journal,
backup, upload policy, arm the guard, write manifest: one atomic remote command) → await the new
instance (and verify) → confirm. A failure while awaiting restores the backup; a lost connection
after the write leaves it to the node-side guard. Each manifest version is parsed once
(manifest.read.load) and travels through the phases as a value: `before` and `desired.after`.

A re-run that finds such a change still unconfirmed (its guard waiting) takes it over instead of
making the operator wait for the guard: under the lock it re-arms the guard for itself, then
confirms the change when its new instance is healthy and it is what this run asks for, or restores
its backup at once; then it plans against what is there and carries on as any run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import posixpath
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from installer.change import workflow
from installer.change.workflow import NotHealthy, Phase, PhaseError
from installer.errors import (
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

if TYPE_CHECKING:
    from installer.manifest.read import Manifest

MIN_FREE_KB = 10 * 1024
KEEP_BACKUPS = 10
RESTORE_WAIT = 60.0


@dataclass
class Desired:
    """What a node should look like after the operation."""

    op: str  # enable, switch, disable, rollback
    after: Manifest  # the manifest the node should have, parsed
    summary: str  # one line for people: "enable profile cis", "switch minimal -> cis"
    profile: str | None = None
    policy: tuple[str, bytes] | None = None  # (node path, content)
    webhook: tuple[str, bytes] | None = None
    policy_text: str | None = None  # shown by --dry-run
    notes: list[str] = field(default_factory=list)  # facts worth a line: the log's disk budget
    warnings: tuple[str, ...] = ()  # the policy lint's, printed once per run (not in the JSON result)
    export_args: str | None = None  # `kaudit export` arguments for the same policy, when known

    @property
    def manifest(self) -> bytes:
        return self.after.data


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
    # The node at which its cluster's rollout stopped, on each node left as it was after others changed.
    stopped_at: str | None = None
    warnings: tuple[str, ...] = ()  # the plan's policy warnings: stderr only, not part of the JSON schema
    permanent: str | None = None  # the `kaudit export` command of the caveat, for the text's short note (not JSON)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["warnings"], out["permanent"]
        return out


Planner = Callable[[nodefacts.NodeFacts, "Manifest", Any], Desired]  # (facts, the manifest parsed, input)
Confirm = Callable[[str, str], bool]  # (node, diff) -> go ahead?
Progress = Callable[[str, str], None]  # (node, message)

DONE = {"enable": "enabled", "switch": "switched", "disable": "disabled", "rollback": "rolled-back"}


def _audit_log(info: Any) -> Any:
    """The manifest's --audit-log-path check (container and host path), or None."""
    return next((p for p in info.audit.paths if p.flag == "--audit-log-path"), None)


def _load(manifest: bytes | Manifest) -> Manifest:
    from installer.manifest.read import Manifest, load

    return manifest if isinstance(manifest, Manifest) else load(manifest)


def audit_tokens(manifest: bytes | Manifest) -> list[str]:
    """The argv tokens a kube-apiserver started from this manifest carries for its audit flags."""
    argv = _load(manifest).info.argv
    tokens: list[str] = []
    for i, tok in enumerate(argv):
        if tok.startswith("--audit-"):
            tokens.append(tok)
            if "=" not in tok and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                tokens.append(argv[i + 1])
    return tokens


def same_pod(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests declare the same pod (comments and layout aside): no restart follows."""
    from installer.manifest.parse import to_python

    return a is b or bool(to_python(a.located.root) == to_python(b.located.root))


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
        # What the phases hand on to each other:
        self.facts: nodefacts.NodeFacts | None = None  # the node as preflight (or a take-over) found it
        self.before: Manifest | None = None  # its manifest, parsed once
        self.desired: Desired | None = None  # what the plan wants
        self.stale: list[str] = []  # content-addressed files to re-upload (the manifest is as wanted)
        self.pending: tuple[Desired | None, str] | None = None  # the take-over's plan: (desired, why not wanted)
        self.changed_uptime = 0.0  # node clock, seconds since boot: when the new manifest was written
        self.would = ""  # what a dry run would do, for the result's message
        # A rollback's progress, for a final message that says where it got: the restore command was started,
        # it put the backup back (the guard stood down), the API server is healthy with it.
        self.restoring = False
        self.restored = False
        self.restore_healthy = False
        self.plan_notes: list[str] = []  # the plan's notes (the log's disk budget): only true of a change that stands

    # -- what the runner needs -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.t.name

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        return workflow.step(self, name, fn)

    def roll_back(self, why: str, log_lines: list[str]) -> None:
        assert self.facts is not None and self.before is not None and self.result.backup is not None
        self.restore(self.facts, self.before, self.result.backup, why, log_lines)

    def guard_pending(self, exc: NodeError) -> RestoreFailed:
        return self._guard_pending(exc)

    def report(self, message: str) -> None:
        self.progress(self.t.name, message)

    def finish(self) -> None:
        if self.lock is not None:
            self.lock.close()
        if self.took_over:  # the manifest is no longer the unconfirmed change's, whatever came after
            self.result.changed = True
        if not self.result.ok and self.plan_notes:  # a change that did not stand has no disk budget
            self.result.notes = [n for n in self.result.notes if n not in self.plan_notes]

    def _guard_deadline(self) -> str:
        secs = int(self.options.timeout + self.options.guard_grace)
        start = self.guard_at or self.applied_at or (self.facts.now if self.facts else time.time())
        return datetime.fromtimestamp(start + secs, timezone.utc).strftime("%H:%M:%SZ")

    def interrupted(self) -> str:
        """The final message of an interrupted run: what the node is left with, and the one thing to do next."""
        r, status = self.result, f"`kaudit status {self.t.name}`"
        if self.restored and self.restore_healthy:
            return (f"the previous manifest was put back (backup {r.backup}) and the API server is healthy with it; "
                    "nothing else changed. Re-run the command to try again")
        if self.restored:
            return (f"the previous manifest is back on the node (backup {r.backup}, the guard stood down), but its "
                    f"kube-apiserver was not yet seen healthy when kaudit stopped. Check it with {status}")
        if self.restoring:
            return (f"kaudit stopped during the rollback and cannot tell whether the previous manifest was put back; "
                    f"if not, the node's guard restores backup {r.backup} at {self._guard_deadline()} (node clock). "
                    f"Check with {status} after that time")
        if r.changed:
            return (f"the new manifest was written and is not confirmed: the node's guard "
                    f"restores backup {r.backup} at {self._guard_deadline()} (node clock). Check with {status} after "
                    "that time, or re-run the same command now to take the change over")
        if r.backup:  # interrupted while the write itself was under way
            return (f"kaudit stopped while writing the change: if the new manifest was written, the node's guard "
                    f"restores backup {r.backup} at {self._guard_deadline()} (node clock). Check with {status}")
        return "before anything changed; nothing to undo"

    # -- steps ------------------------------------------------------------------------------
    def preflight(self) -> nodefacts.NodeFacts:
        facts = nodefacts.gather(self.t, self.layout)
        if facts.manifest is None:
            raise PhaseError(f"{facts.manifest_problem}", node=self.t.name)
        if facts.state_problem:
            raise PhaseError(f"kaudit's state: {facts.state_problem}; nothing was changed. Check it and "
                             "remove or fix it by hand", node=self.t.name)
        if facts.free_kb is not None and facts.free_kb < MIN_FREE_KB:
            raise PhaseError(f"only {facts.free_kb} KiB free on {facts.static_pod_path}", node=self.t.name)
        if facts.lock_holder and not self.options.break_lock:
            raise self._lock_error(facts.lock_holder)
        # An armed guard (a change written and not confirmed) is taken over once the lock is held.
        return facts

    def _gather_locked(self) -> nodefacts.NodeFacts:
        """The node again, under this run's own lock (which gather reports as held)."""
        facts = nodefacts.gather(self.t, self.layout)
        if facts.manifest is None:
            raise PhaseError(f"{facts.manifest_problem}", phase="preflight", node=self.t.name)
        return facts

    def read_manifest(self, facts: nodefacts.NodeFacts) -> Manifest:
        """The node's manifest, parsed: once per version, every later phase asks this value."""
        from installer.manifest.parse import ManifestError
        from installer.manifest.read import load

        assert facts.manifest is not None
        try:
            return load(facts.manifest)
        except ManifestError as exc:
            raise PhaseError(f"{facts.manifest_path}: {exc.message}", phase="read manifest",
                             node=self.t.name) from None

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
            if line.startswith("bad "):
                raise NodeError(f"lock: {line[4:]}; nothing was changed", node=self.t.name)
            raise self._lock_error(line.removeprefix("held ").strip() or "another process")
        self.lock = session

    def _lock_error(self, holder: str) -> NodeError:
        return NodeError(f"lock: another kaudit run holds the node's lock ({holder}); use --break-lock only if "
                         "that run is gone", node=self.t.name)

    def apply(self, facts: nodefacts.NodeFacts, manifest: Manifest, desired: Desired, backup_id: str
              ) -> tuple[float, float]:
        """Returns when the manifest was renamed into place: (epoch, seconds since boot), node clock."""
        assert facts.manifest is not None
        info = manifest.info
        before = hashlib.sha256(facts.manifest).hexdigest()
        record = {"id": backup_id, "op": desired.op, "state": "begin", "at": facts.now, "summary": desired.summary,
                  "before": before, "after": hashlib.sha256(desired.manifest).hexdigest()}
        held = {p.flag: p.host_path for p in info.audit.paths if p.host_path}
        meta = {"id": backup_id, "op": desired.op, "created": facts.now, "manifestSha256": before,
                "profile": info.audit.profile, "auditOn": bool(info.audit.flags), "summary": desired.summary,
                "policy": held.get("--audit-policy-file"), "webhookConfig": held.get("--audit-webhook-config-file")}
        # A file being repaired is not kaudit's content any more: it is replaced, not backed up.
        skip = set(stale_files(facts, desired)) if desired.manifest == facts.manifest else set()
        backed_up = [p.host_path for p in info.audit.paths if p.host_path and p.host_path not in skip
                     and p.flag in ("--audit-policy-file", "--audit-webhook-config-file")]
        parts = [desired.manifest, desired.policy[1] if desired.policy else b"",
                 desired.webhook[1] if desired.webhook else b"", json.dumps(record).encode() + b"\n",
                 json.dumps(meta).encode()]
        stdin = b"".join(_b64(p) for p in parts)
        sums = " ".join(hashlib.sha256(p).hexdigest() for p in parts)
        new_log = _audit_log(desired.after.info)
        log_dir = posixpath.dirname(new_log.host_path) if new_log and new_log.host_path else ""
        guard_secs = int(self.options.timeout + self.options.guard_grace)
        res = self.t.run(*scripts.APPLY.bind(
            backed_up, state=self.layout.state_dir, manifest=facts.manifest_path, expect=before, id=backup_id,
            pin="0" if info.audit.managed else "1", policy=desired.policy[0] if desired.policy else "",
            webhook=desired.webhook[0] if desired.webhook else "", guard_secs=str(guard_secs),
            guard_script=scripts.GUARD.text, logdir=log_dir, sums=sums), stdin=stdin, timeout=120)
        values = dict(line.partition("=")[::2] for line in res.text.splitlines())
        if res.rc == ScriptExit.CONFLICT:
            raise NodeError(f"write manifest: {facts.manifest_path} was changed by someone else since kaudit read "
                            "it; nothing was written, re-run to see the new diff", node=self.t.name)
        if res.rc == ScriptExit.UNSAFE:
            raise NodeError(f"refused: {values.get('unsafe')}. Another user could plant links where kaudit writes "
                            "as root, or read the audit events: make it root's and writable by no one else, "
                            "then re-run; nothing was changed", node=self.t.name)
        if res.rc == ScriptExit.PAYLOAD:
            raise NodeError("write manifest: the data kaudit sent did not arrive whole (its sha256 differs); "
                            "nothing was changed. Re-run; if it happens again, check what reads the command's "
                            "input on the node (sudo's configuration)", node=self.t.name)
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

    def await_instance(self, since_uptime: float, manifest: bytes | Manifest, timeout: float | None = None,
                       verify_marker: str | None = None) -> dict[str, str] | list[str]:
        """Wait on the node for an instance started after `since_uptime` (seconds since boot); returns
        the ready line's fields (with "verify": found/missing when a marker was given), or the lines
        explaining the timeout."""
        parsed = _load(manifest)
        info = parsed.info
        tokens = audit_tokens(parsed)
        log_path = self._verifiable_log(info) if verify_marker else None
        verify_url = (health.url(info.probe.scheme, info.probe.host, info.probe.port, "")
                      + f"/api/v1/namespaces/default/configmaps?limit=1&kaudit-verify={verify_marker}"
                      if log_path else "")
        limit = int(timeout or self.options.timeout)
        waiting_since = time.monotonic()
        session = open_session(self.t, *scripts.AWAIT.bind(
            tokens, since=f"{since_uptime:.2f}", timeout=str(limit),
            url=info.probe.url, kc=health.admin_kubeconfig_for(info.probe), mode="present" if tokens else "absent",
            settle=str(int(self.options.settle * 10)), vurl=verify_url, marker=f"kaudit-verify={verify_marker}",
            vlog=log_path or ""))
        timeout_lines: list[str] = []
        verified = ""
        try:
            while True:
                line = session.readline()
                if not line:
                    raise PhaseError("the connection was lost while waiting", phase="await", node=self.t.name)
                key, _, value = line.partition("=")
                if key == "progress":  # each second: the state, the time waited and the limit
                    self.progress(self.t.name, f"{value} ({time.monotonic() - waiting_since:.0f} s of {limit} s)")
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
    def verify_result(manifest: Manifest, found: str) -> dict[str, Any]:
        """What the verification request during the settle time showed, for people."""
        log = _audit_log(manifest.info)
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
        audit_after = bool(desired.after.info.audit.managed)
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

    def restore(self, facts: nodefacts.NodeFacts, before: Manifest, backup_id: str, why: str,
                log_lines: list[str]) -> None:
        """Automatic rollback: put the backup back and wait for the old configuration to be healthy."""
        self._put_back(facts.manifest_path, before, backup_id,
                       {"id": backup_id, "state": "rolled-back", "at": time.time(), "why": why}, why)
        detail = f" (kube-apiserver said: {log_lines[-1]})" if log_lines else ""
        if why == "interrupted":
            raise OperationFailed("interrupted: the previous manifest was restored and the API server is healthy",
                                  node=self.t.name)
        raise OperationFailed(f"{why}{detail}; the previous manifest was restored and the API server is healthy "
                              "with it. Fix the cause (the kube-apiserver's log lines, `kaudit validate` for the "
                              "policy) and re-run", node=self.t.name)

    def _put_back(self, manifest_path: str, before: bytes | Manifest, backup_id: str, record: dict[str, Any],
                  why: str) -> None:
        """Restore the backup (`before` is its manifest) and wait for it to be healthy; RestoreFailed if not."""
        self.progress(self.t.name, f"rolling back: {why}")
        backup = f"{self.layout.backups_dir}/{backup_id}"
        self.restoring = True
        try:
            res = self.t.run(*scripts.RESTORE.bind(state=self.layout.state_dir, manifest=manifest_path, id=backup_id,
                                                   record=json.dumps(record)))
            if res.rc != 0:
                self.result.changed = True  # the manifest is still the new one
                raise RestoreFailed(
                    f"ROLLBACK FAILED ({res.err or res.text.strip() or f'exit code {res.rc}'}): the node still has the "
                    f"new manifest, and its API server is not healthy. Put the backup back by hand now: `sudo cp "
                    f"{backup}/manifest {manifest_path}` (the node's guard also tries at {self._guard_deadline()})",
                    node=self.t.name)
            self.restored, self.result.changed = True, False
            # Any instance with the old configuration will do, even one that never stopped: when the
            # manifest is put back before the kubelet replaced the old instance, it just keeps running.
            # The API server may be down: give it time, the kubelet may be backing off.
            back = self.await_instance(0.0, before, max(self.options.timeout, RESTORE_WAIT))
        except NodeError as exc:
            if self.restored:
                raise RestoreFailed(
                    f"the previous manifest was put back (backup {backup_id}), then kaudit lost the node "
                    f"({exc.message}) before its API server was seen healthy. Check it with `kaudit status "
                    f"{self.t.name}`", node=self.t.name) from None
            self.result.changed = True  # not known to be restored
            raise RestoreFailed(
                f"ROLLBACK FAILED ({exc.message}): kaudit lost the node while restoring; if the manifest is still the "
                f"new one, the node's guard restores {backup} at {self._guard_deadline()} (node clock). Check with "
                f"`kaudit status {self.t.name}` after that time", node=self.t.name) from None
        if not isinstance(back, dict):
            raise RestoreFailed(
                f"the previous manifest was put back (backup {backup_id}), but the API server is not healthy with it "
                f"either ({'; '.join(back[:1]) or 'no answer'}), so the cause is not kaudit's change alone. Look at "
                "the kube-apiserver's own log on the node now (`crictl logs` of its container, or "
                "/var/log/pods/kube-system_kube-apiserver-*)", node=self.t.name)
        self.restore_healthy = True

    def _guard_pending(self, exc: NodeError) -> RestoreFailed:
        """The manifest was written but kaudit lost the node before confirming: the guard decides now."""
        secs = int(self.options.timeout + self.options.guard_grace)
        when = datetime.fromtimestamp((self.guard_at or self.applied_at) + secs, timezone.utc).strftime("%H:%M:%SZ")
        return RestoreFailed(f"{exc.message}. The new manifest was written and is not confirmed: the node's guard "
                             f"restores backup {self.result.backup} at {when} (node clock) unless it was confirmed; "
                             "check with `kaudit status` after that time", node=self.t.name)

    @staticmethod
    def _caveat(flavor: Any, info: Any, desired: Desired) -> tuple[str | None, str | None]:
        """What will undo a change that leaves auditing on, and how to make it permanent, and the `kaudit
        export` command that does; (None, None) when the change turned auditing off (nothing for a later
        tool to undo)."""
        after = desired.after.info.audit
        if not after.managed:
            return None, None
        # A rollback knows the restored profile's name (from kaudit's annotation), not its variables.
        args = desired.export_args or (f"--profile {after.profile}" if after.profile else None)
        version = info.kubernetes_version
        export = f"kaudit export {args or '--profile P'} --format {flavor.name}"
        if flavor.name == "kubeadm":
            export += f" --kubernetes-version {version[0]}.{version[1]}" if version else " --kubernetes-version X.Y"
        return str(flavor.caveat(args, version)), export

    # -- taking over an unconfirmed change ------------------------------------------------------
    def plan_take_over(self) -> None:
        """An earlier run wrote a change and lost the node before confirming it; its guard still waits.
        Plan against the node as that change left it: nothing to do means the change is wanted."""
        from installer.manifest.diff import unified_diff

        r, facts, before = self.result, self.facts, self.before
        assert facts is not None and facts.manifest is not None and before is not None
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
            desired = self._step("plan", lambda: self.planner(facts, before, self.plan_input))
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
        self.pending = (desired, why)
        if not why:
            then = "confirm it once its new kube-apiserver is healthy (it is what this run asks for)"
        else:
            then = f"restore its backup now ({why}), then plan again"
            then += f" ({desired.summary})" if desired is not None else ""
        self.would = f"would take over the unconfirmed change {ident} ({what}) and {then}"

    def take_over(self) -> bool:
        """Confirm the unconfirmed change (healthy and what this run asks for) or restore its backup
        now, under the lock. True when this run is done; else the node is read again to plan against."""
        r, facts, before, flavor = self.result, self.facts, self.before, self.flavor
        assert facts is not None and facts.manifest is not None and before is not None and self.pending is not None
        info = before.info
        desired, why = self.pending
        pending = facts.last_begin or {}
        ident, op = str(pending.get("id") or ""), str(pending.get("op") or "")
        what = str(pending.get("summary") or op or "a change")
        after = hashlib.sha256(facts.manifest).hexdigest()
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
            self.facts = self._step("preflight", self._gather_locked)
            self.before = self.read_manifest(self.facts)
            return False
        self.guard_at = float(values["armed"])
        applied_epoch, applied_uptime = (float(v) for v in values["applied"].split()[:2])
        self.applied_at = applied_epoch
        earlier = base64.b64decode(values.get("before", ""))
        record: dict[str, Any] = {"takenOver": True}
        if not why:
            assert desired is not None
            # A change that declared the same pod restarted nothing: any instance of it will do.
            since = 0.0 if _same_pod_bytes(earlier, before) else applied_uptime
            marker = f"{ident}-{secrets.token_hex(2)}" if self.options.verify and op != "disable" else None
            try:
                ready = self._step("await", lambda: self.await_instance(since, before,
                                                                        verify_marker=marker))
            except KeyboardInterrupt:
                r.changed, self.took_over = False, ident
                with contextlib.suppress(KauditError):
                    self._put_back(facts.manifest_path, earlier, ident, {
                        "id": ident, "state": "rolled-back", "at": time.time(), "why": "interrupted", **record,
                        "by": _operator()}, "interrupted")
                raise
            if isinstance(ready, dict):
                done = Desired(op=op or desired.op, after=before, summary=what,
                               profile=info.audit.profile)
                self._step("confirm", lambda: self.confirm_change(facts, ident, done, record))
                r.ok, r.exit_code, r.action = True, EXIT_OK, DONE.get(done.op, done.op)
                r.new_instance_pid = int(ready["pid"])
                r.ready_seconds = round(float(ready["ready_at"]) - applied_epoch, 3)
                if marker:
                    r.verify = self.verify_result(before, ready.get("verify", ""))
                r.caveat, r.permanent = self._caveat(flavor, info, desired)
                r.notes.append(f"took over the unconfirmed change {ident}: confirmed")
                r.message = (f"{what}: took over the unconfirmed change {ident} (its kaudit run lost the node) and "
                             f"confirmed it: kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} s "
                             "after the change")
                return True
            r.log_lines = ready[1:]
            why = (f"its new kube-apiserver was not healthy within {self.options.timeout:g} s "
                   f"({ready[0] if ready else '?'})")
        # Not wanted, or not healthy: restore its backup now rather than at the guard's deadline.
        r.changed = False
        self._step("restore", lambda: self._put_back(facts.manifest_path, earlier, ident, {
            "id": ident, "state": "rolled-back", "at": time.time(), "why": f"taken over by a re-run: {why}", **record,
            "by": _operator()}, f"the unconfirmed change {ident}: {why}"))
        self.took_over = ident
        r.notes.append(f"took over the unconfirmed change {ident}: restored ({why})")
        self.facts = self._step("preflight", self._gather_locked)
        self.before = self.read_manifest(self.facts)
        return False

    def _cannot_take_over(self, facts: nodefacts.NodeFacts, why: str) -> NodeError:
        return NodeError(f"preflight: a kaudit guard (pid {facts.guard_pid}) waits on this node for a change this "
                         f"run cannot take over ({why}); it restores that change's backup when its time is up: "
                         "wait for it and re-run", node=self.t.name)

    # -- the phases ----------------------------------------------------------------------------
    def read_node(self) -> None:
        from installer.targets import flavors

        self.facts = self.preflight()
        self.before = self.read_manifest(self.facts)
        self.flavor = self.flavor or flavors.detect_flavor(self.before.info)
        self.result.flavor = self.flavor.name

    def plan(self) -> bool:
        from installer.manifest.diff import unified_diff

        r, facts, before = self.result, self.facts, self.before
        assert facts is not None and facts.manifest is not None and before is not None
        desired = self.desired = self.planner(facts, before, self.plan_input)
        r.profile = desired.profile
        r.notes = [*r.notes, *desired.notes]
        self.plan_notes = list(desired.notes)
        r.warnings = desired.warnings
        r.policy_file = desired.policy[0] if desired.policy else None
        stale = self.stale = stale_files(facts, desired) if desired.manifest == facts.manifest else []
        if desired.manifest == facts.manifest and not stale:
            r.ok, r.exit_code = True, EXIT_OK
            if self.took_over:  # the take-over's restore is all this run asks for
                r.action, r.backup = DONE.get(desired.op, desired.op), self.took_over
                r.message = (f"took over the unconfirmed change {self.took_over} and restored its backup; the node "
                             f"is as asked ({desired.summary}) and the API server is healthy")
                r.caveat, r.permanent = self._caveat(self.flavor, before.info, desired)
                return True
            r.action = "unchanged"
            r.message = f"already so ({desired.summary}): nothing changed, nothing restarted"
            return True
        if stale:
            # The manifest is as wanted but a policy (or webhook config) file it names was replaced or
            # removed: put the right content back. No restart: the manifest does not change.
            desired.summary = f"re-upload {', '.join(stale)} (replaced or removed by someone else)"
            desired.op = "repair"
        r.diff = unified_diff(facts.manifest, desired.manifest, facts.manifest_path, color=False)
        self.would = f"would {desired.summary}"
        return False

    def ask(self) -> None:
        assert self.desired is not None and self.result.diff is not None
        if self.shown != self.desired.manifest and not self.confirm(self.t.name, self.result.diff):
            raise NodeError("not confirmed: nothing changed" + (
                f" since the take-over restored backup {self.took_over}" if self.took_over else ""), node=self.t.name)

    def write(self) -> None:
        r, facts, before, desired = self.result, self.facts, self.before, self.desired
        assert facts is not None and before is not None and desired is not None
        backup_id = datetime.fromtimestamp(facts.now, timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{desired.op}"
        backup_id += "-" + secrets.token_hex(2)
        r.backup = backup_id
        self.applied_at, self.changed_uptime = self.apply(facts, before, desired, backup_id)
        r.changed = True

    def restarts(self) -> bool:
        """Whether the written manifest declares another pod: the kubelet starts a new instance."""
        assert self.before is not None and self.desired is not None
        return not same_pod(self.before, self.desired.after)

    def await_new(self) -> None:
        r, desired = self.result, self.desired
        assert desired is not None and r.backup is not None
        marker = r.backup if self.options.verify and desired.op != "disable" else None
        ready = self.await_instance(self.changed_uptime, desired.after, verify_marker=marker)
        if not isinstance(ready, dict):
            why = f"no healthy new kube-apiserver within {self.options.timeout:g} s ({ready[0] if ready else '?'})"
            raise NotHealthy(why, ready[1:])
        r.new_instance_pid = int(ready["pid"])
        r.ready_seconds = round(float(ready["ready_at"]) - self.applied_at, 3)
        if marker:
            r.verify = self.verify_result(desired.after, ready.get("verify", ""))

    def confirm_written(self) -> bool:
        r, facts, before, desired = self.result, self.facts, self.before, self.desired
        assert facts is not None and before is not None and desired is not None and r.backup is not None
        self.confirm_change(facts, r.backup, desired)
        r.ok, r.exit_code = True, EXIT_OK
        r.caveat, r.permanent = self._caveat(self.flavor, before.info, desired)
        if r.new_instance_pid is None:  # the same pod: nothing restarted
            r.action, r.message = desired.op, f"{desired.summary} (no restart needed)"
            if self.stale:
                r.action = "repaired"
                r.message = f"{desired.summary}; the manifest is unchanged, nothing restarted"
                r.message += _stale_note(facts, self.stale)
            return True
        r.action = DONE.get(desired.op, desired.op)
        r.message = f"{desired.summary}: new kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} s " \
                    f"after the change"
        return True

    # -- the whole operation --------------------------------------------------------------------
    def run(self) -> NodeResult:
        """The phases in order (PHASES); returns the result and never raises for node problems."""
        result: NodeResult = workflow.execute(self, PHASES)
        return result


def _same_pod_bytes(a: bytes, b: Manifest) -> bool:
    """same_pod for a manifest read back from the node as bytes: one that does not parse is never the same."""
    from installer.manifest.parse import ManifestError

    try:
        return same_pod(_load(a), b)
    except ManifestError:
        return False


def _pending(c: NodeChange) -> bool:
    return c.facts is not None and c.facts.guard_pid is not None


# The phases of a change, in order: the one list the runner executes and README's "How a change runs"
# shows (tests/e2e/test_phases.py keeps the two equal).
PHASES: tuple[Phase[NodeChange], ...] = (
    Phase("preflight", "one remote command reads the node: static pod path, manifest, free disk, API server "
          "processes, clock, a held lock or an armed guard; the manifest is parsed once",
          NodeChange.read_node, pure=True),
    Phase("plan the take-over", "an earlier run's change is unconfirmed (its guard waits): plan against it, "
          "is it what this run asks for?", NodeChange.plan_take_over, run_if=_pending, pure=True, timed=False),
    Phase("take over", "under the lock, re-arm the guard for this run, then confirm that change once healthy or "
          "restore its backup at once, and read the node again", NodeChange.take_over, run_if=_pending,
          timed=False),
    Phase("plan", "render, validate and lint the policy for the node's Kubernetes version; patch and validate the "
          "manifest; nothing on the node yet", NodeChange.plan, pure=True),
    Phase("ask", "show the diff and ask (unless --yes, or the take-over already asked)", NodeChange.ask,
          timed=False),
    Phase("lock", "an flock held by a process on the node for as long as the connection lives",
          NodeChange.take_lock, run_if=lambda c: c.lock is None),
    Phase("apply", "one remote command: journal entry, backup, content-addressed policy upload, arm the guard, "
          "write the manifest after re-checking it is unchanged", NodeChange.write),
    Phase("await", "one remote command waits for an API server started after the write, with the expected flags, "
          "ready and up 0.5 s, and looks for a test request's event in the audit log; a timeout or a crash-loop "
          "restores the backup", NodeChange.await_new, run_if=NodeChange.restarts, restores=True),
    Phase("confirm", "the guard stands down, the journal records it, old backups and unreferenced policies go",
          NodeChange.confirm_written),
)
