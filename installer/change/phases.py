"""Changing one node: the phases of a change and their ordered list (PHASES, kubeadm's workflow.Phase is the
model), run by installer.change.workflow.

preflight → [the take-over of an earlier run's unconfirmed change: takeover.py] → plan (render + validate +
lint, read + patch + validate) → ask → lock → apply (journal, backup, upload policy, arm the guard, write
manifest: one atomic remote command) → await the new instance (and verify) → confirm. A failure while
awaiting restores the backup; a lost connection after the write leaves it to the node-side guard.

Each phase is a function of the run's context (noderun.NodeRun: the node, the options, the result) and the
phase data (data.RunData, frozen), returning the next data. Each manifest version is parsed once
(manifest.read.load) and travels through the phases as a value: `found.before` and `desired.after`. What
runs on the node is in remote.py, one function per node script.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from installer.change import remote, takeover
from installer.change.data import (
    DONE,
    Confirm,
    Desired,
    NodeResult,
    Options,
    Planner,
    Progress,
    Ready,
    RunData,
    Written,
    same_pod,
    stale_files,
)
from installer.change.noderun import NodeRun
from installer.change.remote import audit_tokens
from installer.change.workflow import NotHealthy, Phase, PhaseError, execute
from installer.errors import EXIT_OK, NodeError
from installer.node import facts as nodefacts
from installer.node import layout
from installer.transport import Transport

if TYPE_CHECKING:
    from installer.targets.flavors import Flavor

__all__ = ["PHASES", "Confirm", "Desired", "NodeResult", "Options", "Planner", "Progress", "audit_tokens",
           "run_change"]

MIN_FREE_KB = 10 * 1024


def _stale_note(facts: nodefacts.NodeFacts, stale: tuple[str, ...]) -> str:
    """Whether the running API server read the right file: it reads its policy only when it starts."""
    proc = facts.newest_process()
    replaced = [facts.audit_files[p][1] for p in stale if p in facts.audit_files]
    if proc is None or not replaced:  # none running, or the file is missing (no server starts without it)
        return ""
    if max(replaced) >= int(proc.started_at):
        return " (the running kube-apiserver started before the file was replaced: it uses the right policy)"
    return ("; WARNING: the running kube-apiserver started after the file was replaced and may be using the "
            "replaced content: restart it (e.g. `kaudit disable`, then `kaudit enable`)")


def preflight(run: NodeRun, data: RunData) -> RunData:
    """gather.sh: the node in one command; refuse what kaudit must not touch; parse the manifest once."""
    facts = nodefacts.gather(run.transport, run.node_layout)
    if facts.manifest is None:
        raise PhaseError(f"{facts.manifest_problem}", node=run.name)
    if facts.state_problem:
        raise PhaseError(f"kaudit's state: {facts.state_problem}; nothing was changed. Check it and "
                         "remove or fix it by hand", node=run.name)
    if facts.free_kb is not None and facts.free_kb < MIN_FREE_KB:
        raise PhaseError(f"only {facts.free_kb} KiB free on {facts.static_pod_path}", node=run.name)
    if facts.lock_holder and not run.options.break_lock:
        raise remote.lock_error(run.name, facts.lock_holder)
    # An armed guard (a change written and not confirmed) is taken over once the lock is held (takeover.py).
    found = run.read_manifest(facts, facts.manifest)
    run.result.flavor = run.flavor.name
    return replace(data, found=found)


def plan(run: NodeRun, data: RunData) -> RunData:
    """The planner's Desired for the node as found; done when the node is already so."""
    from installer.manifest.diff import unified_diff

    r, found = run.result, data.node()
    desired = run.planner(found.facts, found.before, run.plan_input)
    r.profile = desired.profile
    r.notes = [*r.notes, *desired.notes]
    r.warnings = desired.warnings
    r.policy_file = desired.policy[0] if desired.policy else None
    r.policy_sha256 = desired.policy_sha256
    as_wanted = desired.manifest == found.manifest
    stale = tuple(stale_files(found.facts, desired)) if as_wanted else ()
    data = replace(data, desired=desired, stale=stale, plan_notes=tuple(desired.notes))
    if as_wanted and not stale:
        r.ok, r.exit_code = True, EXIT_OK
        if run.took_over:  # the take-over's restore is all this run asks for
            r.action, r.backup = DONE.get(desired.op, desired.op), run.took_over
            r.message = (f"took over the unconfirmed change {run.took_over} and restored its backup; the node "
                         f"is as asked ({desired.summary}) and the API server is healthy")
            r.caveat, r.permanent = run.caveat(found.before.info, desired)
        else:
            r.action = "unchanged"
            r.message = f"already so ({desired.summary}): nothing changed, nothing restarted"
        return replace(data, done=True)
    if stale:
        # The manifest is as wanted but a policy (or webhook config) file it names was replaced or
        # removed: put the right content back. No restart: the manifest does not change.
        desired.summary = f"re-upload {', '.join(stale)} (replaced or removed by someone else)"
        desired.op = "repair"
    r.diff = unified_diff(found.manifest, desired.manifest, found.facts.manifest_path, color=False)
    return replace(data, would=f"would {desired.summary}")


def ask(run: NodeRun, data: RunData) -> RunData:
    """The user says yes to the diff (unless --yes, or the take-over already asked about this one)."""
    desired = data.plan()
    if data.shown != desired.manifest and not run.ask(run.result.diff or ""):
        raise NodeError("not confirmed: nothing changed" + (
            f" since the take-over restored backup {run.took_over}" if run.took_over else ""), node=run.name)
    return data


def unlocked(run: NodeRun, data: RunData) -> bool:
    return run.lock is None


def lock(run: NodeRun, data: RunData) -> RunData:
    """lock.sh: held until the run ends (finish closes the session)."""
    run.lock = remote.lock(run.transport, run.node_layout, break_lock=run.options.break_lock)
    return data


def apply(run: NodeRun, data: RunData) -> RunData:
    """apply.sh: the change written, its backup taken and the guard armed, in one command."""
    r, found, desired = run.result, data.node(), data.plan()
    backup_id = datetime.fromtimestamp(found.facts.now, timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{desired.op}"
    backup_id += "-" + secrets.token_hex(2)
    r.backup = backup_id  # from here on, an interrupt may leave a written change: its message names the backup
    applied_at, applied_uptime = remote.apply(run.transport, run.node_layout, found.facts, found.manifest,
                                              found.before, desired, backup_id, guard_secs=run.options.guard_secs,
                                              repaired=list(data.stale))
    r.changed, run.guard_since = True, applied_at
    return replace(data, written=Written(backup_id, applied_at, applied_uptime))


def restarts(run: NodeRun, data: RunData) -> bool:
    """Whether the written manifest declares another pod: the kubelet starts a new instance."""
    return not same_pod(data.node().before, data.plan().after)


def await_instance(run: NodeRun, data: RunData) -> RunData:
    """await.sh: a new instance with the new flags, ready and settled; NotHealthy (the runner rolls back) if not."""
    r, desired, written = run.result, data.plan(), data.write()
    marker = written.backup if run.options.verify and desired.op != "disable" else None
    ready = run.await_instance(written.applied_uptime, desired.after, verify_marker=marker)
    if not isinstance(ready, Ready):
        raise NotHealthy(f"no healthy new kube-apiserver within {run.options.timeout:g} s ({ready.state or '?'})",
                         ready.log_lines)
    r.new_instance_pid = ready.pid
    r.ready_seconds = round(ready.ready_at - written.applied_at, 3)
    if marker:
        r.verify = remote.verify_result(desired.after, ready.verify)
    return replace(data, ready=ready)


def confirm(run: NodeRun, data: RunData) -> RunData:
    """confirm.sh: the guard stands down and the journal records the change; the result says what it did."""
    r, found, desired, written = run.result, data.node(), data.plan(), data.write()
    try:
        remote.confirm(run.transport, run.node_layout, found.facts.manifest_path, written.backup, desired)
    except remote.GuardRestored:
        r.changed = False
        raise
    r.ok, r.exit_code = True, EXIT_OK
    r.caveat, r.permanent = run.caveat(found.before.info, desired)
    if r.new_instance_pid is None:  # the same pod: nothing restarted
        r.action, r.message = desired.op, f"{desired.summary} (no restart needed)"
        if data.stale:
            r.action = "repaired"
            r.message = f"{desired.summary}; the manifest is unchanged, nothing restarted"
            r.message += _stale_note(found.facts, data.stale)
    else:
        r.action = DONE.get(desired.op, desired.op)
        r.message = (f"{desired.summary}: new kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} "
                     "s after the change")
    return replace(data, done=True)


def _pending_unlocked(run: NodeRun, data: RunData) -> bool:
    return takeover.is_pending(run, data) and run.lock is None


P = Phase[NodeRun, RunData]

# The phases of a change, in order: the one list the runner executes and README's "How a change runs"
# shows (tests/e2e/test_phases.py keeps the two equal). `step` names the result's steps as docs/output.md
# lists them: the take-over's await, confirm, restore and re-read are recorded as await, confirm, restore,
# preflight.
PHASES: tuple[P, ...] = (
    P("preflight", "one remote command reads the node: static pod path, manifest, free disk, API server "
      "processes, clock, a held lock or an armed guard; the manifest is parsed once", preflight, pure=True),
    P("plan the take-over", "an earlier run's change is unconfirmed (its guard waits): plan against it, "
      "is it what this run asks for?", takeover.plan, run_if=takeover.is_pending, pure=True, step="plan"),
    P("ask before the take-over", "when the take-over restores that change to apply another, show that diff and "
      "ask", takeover.ask, run_if=takeover.asks, timed=False),
    P("lock for the take-over", "the node's lock, as below", lock, run_if=_pending_unlocked, step="lock"),
    P("take over", "re-arm the guard for this run (one remote command)", takeover.take_over,
      run_if=takeover.is_pending),
    P("await the taken-over change", "when it is what this run asks for: its new API server, as **await** "
      "below; not healthy in time: restore it", takeover.await_instance, run_if=takeover.awaits, step="await",
      rollback=NodeRun.put_back_taken_over),
    P("confirm the taken-over change", "as **confirm** below; this run is then done", takeover.confirm,
      run_if=takeover.confirms, step="confirm"),
    P("restore the taken-over change", "not wanted, or not healthy: put its backup back at once and wait for "
      "the API server", takeover.restore, run_if=takeover.restores, step="restore"),
    P("read the node again", "after the take-over, as **preflight**, to plan against", takeover.read_again,
      run_if=takeover.rereads, step="preflight"),
    P("plan", "render, validate and lint the policy for the node's Kubernetes version; patch and validate the "
      "manifest; nothing on the node yet", plan, pure=True),
    P("ask", "show the diff and ask (unless --yes, or the take-over already asked)", ask, timed=False),
    P("lock", "an flock held by a process on the node for as long as the connection lives", lock,
      run_if=unlocked),
    P("apply", "one remote command: journal entry, backup, content-addressed policy upload, arm the guard, "
      "write the manifest after re-checking it is unchanged", apply),
    P("await", "one remote command waits for an API server started after the write, with the expected flags, "
      "ready and up 0.5 s, and looks for a test request's event in the audit log; a timeout or a crash-loop "
      "restores the backup", await_instance, run_if=restarts, rollback=NodeRun.restore_written),
    P("confirm", "the guard stands down, the journal records it, old backups and unreferenced policies go",
      confirm),
)


def run_change(transport: Transport, planner: Planner, plan_input: Any, options: Options, ask_user: Confirm,
               progress: Progress, node_layout: layout.NodeLayout, flavor: Flavor) -> NodeResult:
    """One node's change: the phases in order; returns its result and never raises for node problems.
    `flavor` when the target says (kind://, minikube://); else preflight detects it."""
    run = NodeRun(transport, planner, plan_input, options, ask_user, progress, flavor, node_layout)
    result: NodeResult = execute(run, PHASES, RunData())
    return result
