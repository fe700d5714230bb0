"""One node's run of the phases: what it was given (the node's transport and layout, the options, the planner
and its input, the question and the progress line) and its record of what it did to the node (the result,
the lock it holds, when the guard was armed, how far a rollback got), which the runner's rollback policy and
the final messages read. The phases' hand-offs are not here: they are `data.RunData` values.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from installer.change import remote
from installer.change.data import (
    Confirm,
    Desired,
    Found,
    NodeResult,
    Options,
    Planner,
    Progress,
    Ready,
    RunData,
    TimedOut,
)
from installer.change.workflow import PhaseError
from installer.errors import EXIT_REFUSED, KauditError, NodeError, OperationFailed, RestoreFailed
from installer.node import facts as nodefacts
from installer.node import layout
from installer.transport import Session, Transport

if TYPE_CHECKING:
    from installer.manifest.read import Manifest
    from installer.targets.flavors import Flavor

RESTORE_WAIT = 60.0


class Rollback(IntEnum):
    """How far a rollback got, for a final message that says where it stopped."""

    NONE = 0
    STARTED = 1  # the restore command was started
    PUT_BACK = 2  # the backup is back on the node (the guard stood down)
    HEALTHY = 3  # and the API server is healthy with it


@dataclass
class NodeRun:
    """The runner's context for one node (workflow.Context)."""

    transport: Transport
    planner: Planner
    plan_input: Any
    options: Options
    ask_user: Confirm
    progress: Progress
    flavor: Flavor  # decided once per node when it was opened (targets.connect)
    node_layout: layout.NodeLayout  # the flavor's, with the node's own kubelet staticPodPath
    result: NodeResult = field(init=False)
    lock: Session | None = None
    guard_since: float = 0.0  # node clock, epoch: when the guard now waiting was armed (its deadline follows)
    took_over: str | None = None  # the unconfirmed change this run took over and restored
    rollback: Rollback = Rollback.NONE

    def __post_init__(self) -> None:
        self.result = NodeResult(node=self.transport.name, ok=False, exit_code=EXIT_REFUSED, action="refused",
                                 message="")

    # -- what the runner needs ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def report(self, message: str) -> None:
        self.progress(self.transport.name, message)

    def would(self, data: RunData) -> str:
        return data.would

    def finish(self, data: RunData) -> None:
        if self.lock is not None:
            self.lock.close()
        if self.took_over:  # the manifest is no longer the unconfirmed change's, whatever came after
            self.result.changed = True
        if not self.result.ok and data.plan_notes:  # a change that did not stand has no disk budget
            self.result.notes = [n for n in self.result.notes if n not in data.plan_notes]

    def guard_deadline(self, data: RunData) -> str:
        start = self.guard_since or (data.found.facts.now if data.found else time.time())
        return datetime.fromtimestamp(start + self.options.guard_secs, timezone.utc).strftime("%H:%M:%SZ")

    def guard_pending(self, data: RunData, exc: NodeError) -> RestoreFailed:
        """The manifest was written but kaudit lost the node before confirming: the guard decides now."""
        when = datetime.fromtimestamp(self.guard_since + self.options.guard_secs, timezone.utc).strftime("%H:%M:%SZ")
        return RestoreFailed(f"{exc.message}. The new manifest was written and is not confirmed: the node's guard "
                             f"restores backup {self.result.backup} at {when} (node clock) unless it was confirmed; "
                             "check with `kaudit status` after that time", node=self.name)

    def interrupted(self, data: RunData) -> str:
        """The final message of an interrupted run: what the node is left with, and the one thing to do next."""
        r, status = self.result, f"`kaudit status {self.name}`"
        if self.rollback == Rollback.HEALTHY:
            return (f"the previous manifest was put back (backup {r.backup}) and the API server is healthy with it; "
                    "nothing else changed. Re-run the command to try again")
        if self.rollback == Rollback.PUT_BACK:
            return (f"the previous manifest is back on the node (backup {r.backup}, the guard stood down), but its "
                    f"kube-apiserver was not yet seen healthy when kaudit stopped. Check it with {status}")
        if self.rollback == Rollback.STARTED:
            return (f"kaudit stopped during the rollback and cannot tell whether the previous manifest was put back; "
                    f"if not, the node's guard restores backup {r.backup} at {self.guard_deadline(data)} (node "
                    f"clock). Check with {status} after that time")
        if r.changed:
            return (f"the new manifest was written and is not confirmed: the node's guard "
                    f"restores backup {r.backup} at {self.guard_deadline(data)} (node clock). Check with {status} "
                    "after that time, or re-run the same command now to take the change over")
        if r.backup:  # interrupted while the write itself was under way
            return (f"kaudit stopped while writing the change: if the new manifest was written, the node's guard "
                    f"restores backup {r.backup} at {self.guard_deadline(data)} (node clock). Check with {status}")
        return "before anything changed; nothing to undo"

    # -- shared by the phases -----------------------------------------------------------------------
    def read_manifest(self, facts: nodefacts.NodeFacts, manifest: bytes) -> Found:
        """The node's manifest, parsed: once per version, every later phase asks this value."""
        from installer.manifest.parse import ManifestError
        from installer.manifest.read import load

        try:
            return Found(facts, manifest, load(manifest))
        except ManifestError as exc:
            raise PhaseError(f"{facts.manifest_path}: {exc.message}", phase="read manifest", node=self.name) from None

    def ask(self, diff: str) -> bool:
        return self.ask_user(self.name, diff)

    def await_instance(self, since_uptime: float, manifest: bytes | Manifest, timeout: float | None = None,
                       verify_marker: str | None = None) -> Ready | TimedOut:
        return remote.await_instance(self.transport, self.node_layout, since_uptime, manifest,
                                     timeout=timeout or self.options.timeout, settle=self.options.settle,
                                     verify_marker=verify_marker, progress=self.report)

    def put_back(self, data: RunData, before: bytes | Manifest, backup_id: str, record: dict[str, Any],
                 why: str) -> None:
        """Restore the backup (`before` is its manifest) and wait for it to be healthy; RestoreFailed if not."""
        manifest_path = data.node().facts.manifest_path
        self.report(f"rolling back: {why}")
        backup = f"{self.node_layout.backups_dir}/{backup_id}"
        self.rollback = Rollback.STARTED
        try:
            failed = remote.restore(self.transport, self.node_layout, manifest_path, backup_id, record)
            if failed is not None:
                self.result.changed = True  # the manifest is still the new one
                raise RestoreFailed(
                    f"ROLLBACK FAILED ({failed}): the node still has the new manifest, and its API server is not "
                    f"healthy. Put the backup back by hand now: `sudo cp {backup}/manifest {manifest_path}` (the "
                    f"node's guard also tries at {self.guard_deadline(data)})", node=self.name)
            self.rollback, self.result.changed = Rollback.PUT_BACK, False
            # Any instance with the old configuration will do, even one that never stopped: when the
            # manifest is put back before the kubelet replaced the old instance, it just keeps running.
            # The API server may be down: give it time, the kubelet may be backing off.
            back = self.await_instance(0.0, before, max(self.options.timeout, RESTORE_WAIT))
        except NodeError as exc:
            if self.rollback == Rollback.PUT_BACK:
                raise RestoreFailed(
                    f"the previous manifest was put back (backup {backup_id}), then kaudit lost the node "
                    f"({exc.message}) before its API server was seen healthy. Check it with `kaudit status "
                    f"{self.name}`", node=self.name) from None
            self.result.changed = True  # not known to be restored
            raise RestoreFailed(
                f"ROLLBACK FAILED ({exc.message}): kaudit lost the node while restoring; if the manifest is still the "
                f"new one, the node's guard restores {backup} at {self.guard_deadline(data)} (node clock). Check "
                f"with `kaudit status {self.name}` after that time", node=self.name) from None
        if isinstance(back, TimedOut):
            raise RestoreFailed(
                f"the previous manifest was put back (backup {backup_id}), but the API server is not healthy with it "
                f"either ({back.state or 'no answer'}), so the cause is not kaudit's change alone. Look at "
                "the kube-apiserver's own log on the node now (`crictl logs` of its container, or "
                "/var/log/pods/kube-system_kube-apiserver-*)", node=self.name)
        self.rollback = Rollback.HEALTHY

    def restore_written(self, data: RunData, why: str, log_lines: list[str]) -> None:
        """The rollback of this run's own change (a phase's `rollback`): put the backup back; always raises."""
        found, written = data.node(), data.write()
        self.put_back(data, found.before, written.backup,
                      {"id": written.backup, "state": "rolled-back", "at": time.time(), "why": why}, why)
        detail = f" (kube-apiserver said: {log_lines[-1]})" if log_lines else ""
        if why == "interrupted":
            raise OperationFailed("interrupted: the previous manifest was restored and the API server is healthy",
                                  node=self.name)
        raise OperationFailed(f"{why}{detail}; the previous manifest was restored and the API server is healthy "
                              "with it. Fix the cause (the kube-apiserver's log lines, `kaudit validate` for the "
                              "policy) and re-run", node=self.name)

    def put_back_taken_over(self, data: RunData, why: str, log_lines: list[str]) -> None:
        """The rollback of a taken-over change while its new instance is awaited (a phase's `rollback`, on an
        interrupt): its backup goes back now, as far as it can; the interrupt goes on."""
        pending, taken = data.take_over(), data.taken_over()
        self.result.changed, self.took_over = False, pending.ident
        with contextlib.suppress(KauditError):
            self.put_back(data, taken.earlier, pending.ident, {
                "id": pending.ident, "state": "rolled-back", "at": time.time(), "why": why, "takenOver": True,
                "by": remote.operator()}, why)

    def caveat(self, info: Any, desired: Desired) -> tuple[str | None, str | None]:
        """What will undo a change that leaves auditing on, and how to make it permanent, and the `kaudit
        export` command that does; (None, None) when the change turned auditing off (nothing for a later
        tool to undo)."""
        after = desired.after.info.audit
        if not after.managed or self.flavor is None:
            return None, None
        # A rollback knows the restored profile's name (from kaudit's annotation), not its variables.
        args = desired.export_args or (f"--profile {after.profile}" if after.profile else None)
        version = info.kubernetes_version
        export = f"kaudit export {args or '--profile P'} --format {self.flavor.name}"
        if self.flavor.name == "kubeadm":
            export += f" --kubernetes-version {version[0]}.{version[1]}" if version else " --kubernetes-version X.Y"
        return str(self.flavor.caveat(args, version)), export
