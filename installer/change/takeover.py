"""Taking over an earlier run's unconfirmed change: phases of the runner's list (phases.PHASES), each
run only while such a change is pending, timed and under the runner's rollback policy like the others.

An earlier run wrote a change and lost the node before confirming it; its guard still waits. Rather than
make the operator wait for the guard, a re-run plans against the node as that change left it: nothing to
do means the change is wanted. Under the lock it re-arms the guard for itself, then confirms the change
once its new instance is healthy, or restores its backup at once (not wanted, or not healthy); then it reads
the node again and carries on as any run.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import replace

from installer.change import remote
from installer.change.data import (
    DONE,
    Desired,
    Pending,
    Ready,
    RunData,
    TakenOver,
    same_pod_bytes,
    stale_files,
)
from installer.change.noderun import NodeRun
from installer.change.workflow import PhaseError
from installer.errors import EXIT_OK, NodeError
from installer.node import facts as nodefacts


def is_pending(run: NodeRun, data: RunData) -> bool:
    """An armed guard found by preflight: a change written and not confirmed."""
    return data.found is not None and data.found.facts.guard_pid is not None


def cannot_take_over(run: NodeRun, data: RunData, why: str) -> NodeError:
    return NodeError(f"preflight: a kaudit guard (pid {data.node().facts.guard_pid}) waits on this node for a change "
                     f"this run cannot take over ({why}); it restores that change's backup when its time is up: "
                     "wait for it and re-run", node=run.name)


def plan(run: NodeRun, data: RunData) -> RunData:
    """What this run would do to the node as the unconfirmed change left it: nothing means it is wanted."""
    from installer.manifest.diff import unified_diff

    r, found = run.result, data.node()
    facts = found.facts
    last = facts.last_begin or {}
    ident, op = str(last.get("id") or ""), str(last.get("op") or "")
    what = str(last.get("summary") or op or "a change")
    if not ident or last.get("after") != hashlib.sha256(found.manifest).hexdigest():
        raise cannot_take_over(run, data, "the manifest is not what kaudit's last change wrote")
    desired: Desired | None = None
    why = ""
    try:
        desired = run.planner(facts, found.before, run.plan_input)
    except NodeError as exc:  # an error in the user's input (InputError) refuses before anything
        why = f"this run cannot start from it: {exc.message}"
    if desired is not None:
        stale = stale_files(facts, desired)
        if desired.manifest != found.manifest:
            why = "it is not what this run asks for"
        elif stale:
            why = f"{', '.join(stale)} no longer hold{'s' if len(stale) == 1 else ''} what it wrote"
        r.profile, r.notes = desired.profile, [*desired.notes]
        r.policy_file = desired.policy[0] if desired.policy else None
        r.policy_sha256 = desired.policy_sha256
    if why and desired is not None:
        r.diff = unified_diff(found.manifest, desired.manifest, facts.manifest_path, color=False)
    if not why:
        then = "confirm it once its new kube-apiserver is healthy (it is what this run asks for)"
    else:
        then = f"restore its backup now ({why}), then plan again"
        then += f" ({desired.summary})" if desired is not None else ""
    return replace(data, pending=Pending(ident, op, what, desired, why),
                   would=f"would take over the unconfirmed change {ident} ({what}) and {then}")


def asks(run: NodeRun, data: RunData) -> bool:
    """The take-over restores the change to apply something else: the user says yes to that diff first."""
    return is_pending(run, data) and bool(data.take_over().why) and data.take_over().desired is not None


def ask(run: NodeRun, data: RunData) -> RunData:
    pending = data.take_over()
    assert pending.desired is not None and run.result.diff is not None  # asks() said so
    if not run.ask(run.result.diff):
        raise NodeError(f"not confirmed: nothing changed (the unconfirmed change {pending.ident} is left to its "
                        "guard)", node=run.name)
    return replace(data, shown=pending.desired.manifest)


def take_over(run: NodeRun, data: RunData) -> RunData:
    """takeover.sh under the lock: the guard is re-armed for this run; or the change is gone, or not ours."""
    r, found, pending = run.result, data.node(), data.take_over()
    run.report(f"taking over the unconfirmed change {pending.ident} ({pending.what})")
    # From here on, a lost node is the guard's again (the old one or the one re-armed below).
    r.backup, r.changed, run.guard_since = pending.ident, True, found.facts.now
    values = remote.take_over(run.transport, run.node_layout, found.facts.manifest_path, pending.ident,
                              found.manifest, guard_secs=run.options.guard_secs)
    state = values["state"]
    if state != "pending":
        r.backup, r.changed = None, False
        if state != "gone":
            reasons = {"other": "the guard is not waiting for kaudit's last change",
                       "nobackup": f"its backup {pending.ident} is missing",
                       "changed": "the manifest was changed since"}
            raise cannot_take_over(run, data, reasons.get(state) or state)
        # The guard finished between the preflight and the lock: nothing left to take over.
        end = "restored by the node's guard" if values.get("restored") else "ended"
        r.notes.append(f"the unconfirmed change {pending.ident} was {end} before this run could take it over")
        return replace(data, reread=True)
    run.guard_since = float(values["armed"])
    applied_at, applied_uptime = (float(v) for v in values["applied"].split()[:2])
    return replace(data, taken=TakenOver(applied_at, applied_uptime, base64.b64decode(values.get("before", ""))))


def awaits(run: NodeRun, data: RunData) -> bool:
    return data.taken is not None and not data.take_over().why


def await_instance(run: NodeRun, data: RunData) -> RunData:
    """The taken-over change is wanted: wait for its new instance. Not healthy in time: restore it (next)."""
    found, pending, taken = data.node(), data.take_over(), data.taken_over()
    # A change that declared the same pod restarted nothing: any instance of it will do.
    since = 0.0 if same_pod_bytes(taken.earlier, found.before) else taken.applied_uptime
    marker = f"{pending.ident}-{secrets.token_hex(2)}" if run.options.verify and pending.op != "disable" else None
    ready = run.await_instance(since, found.before, verify_marker=marker)
    if isinstance(ready, Ready):
        return replace(data, taken_ready=ready)
    run.result.log_lines = ready.log_lines
    why = f"its new kube-apiserver was not healthy within {run.options.timeout:g} s ({ready.state or '?'})"
    return replace(data, pending=replace(pending, why=why))


def confirms(run: NodeRun, data: RunData) -> bool:
    return data.taken_ready is not None


def confirm(run: NodeRun, data: RunData) -> RunData:
    """confirm.sh for the taken-over change; this run is then done."""
    r, found, pending, taken, ready = run.result, data.node(), data.take_over(), data.taken_over(), data.taken_ready
    assert ready is not None and pending.desired is not None  # confirms() and awaits() said so
    info = found.before.info
    done = Desired(op=pending.op or pending.desired.op, after=found.before, summary=pending.what,
                   profile=info.audit.profile)
    remote.confirm(run.transport, run.node_layout, found.facts.manifest_path, pending.ident, done,
                   {"takenOver": True})
    r.ok, r.exit_code, r.action = True, EXIT_OK, DONE.get(done.op, done.op)
    r.new_instance_pid = ready.pid
    r.ready_seconds = round(ready.ready_at - taken.applied_at, 3)
    if run.options.verify and pending.op != "disable":
        r.verify = remote.verify_result(found.before, ready.verify)
    r.caveat, r.permanent = run.caveat(info, pending.desired)
    r.notes.append(f"took over the unconfirmed change {pending.ident}: confirmed")
    r.message = (f"{pending.what}: took over the unconfirmed change {pending.ident} (its kaudit run lost the node) "
                 f"and confirmed it: kube-apiserver (pid {r.new_instance_pid}) ready {r.ready_seconds:.1f} s after "
                 "the change")
    return replace(data, done=True)


def restores(run: NodeRun, data: RunData) -> bool:
    return data.taken is not None and bool(data.take_over().why)


def restore(run: NodeRun, data: RunData) -> RunData:
    """Not wanted, or not healthy: restore its backup now rather than at the guard's deadline."""
    pending, taken = data.take_over(), data.taken_over()
    run.result.changed = False
    run.put_back(data, taken.earlier, pending.ident, {
        "id": pending.ident, "state": "rolled-back", "at": time.time(),
        "why": f"taken over by a re-run: {pending.why}", "takenOver": True, "by": remote.operator()},
        f"the unconfirmed change {pending.ident}: {pending.why}")
    run.took_over = pending.ident
    run.result.notes.append(f"took over the unconfirmed change {pending.ident}: restored ({pending.why})")
    return replace(data, reread=True)


def rereads(run: NodeRun, data: RunData) -> bool:
    return data.reread


def read_again(run: NodeRun, data: RunData) -> RunData:
    """The node again, under this run's own lock (which gather reports as held), to plan against."""
    facts = nodefacts.gather(run.transport, run.node_layout)
    if facts.manifest is None:
        raise PhaseError(f"{facts.manifest_problem}", phase="preflight", node=run.name)
    return replace(data, found=run.read_manifest(facts, facts.manifest), pending=None, taken=None, taken_ready=None,
                   reread=False)
