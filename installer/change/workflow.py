"""Phases as data, after kubeadm's cmd/kubeadm/app/cmd/phases/workflow: a phase is a value (a name and a
run function), one runner executes the ordered list.

A phase's run function takes the run's context (`Context`: the node, the options, the result) and the phase
data (kubeadm's RunData: here a frozen value), and returns the data the next phase reads. The runner owns
what every phase shares: a progress line as each phase starts, the timing recorded in the result's
`steps`, the phase's name before its error ("preflight: ..."), `--dry-run` (stop before the first phase
that changes the node), and the rollback policy: a phase with a `rollback` that fails (NotHealthy) or is
interrupted after the manifest was written runs it; any other failure after the write leaves the change
to the node's guard. Imports nothing from the rest of `change`; tests/unit/change/test_workflow.py runs it
with fake phases.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from installer.errors import (
    EXIT_FAILED_RESTORED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RESTORED,
    EXIT_OK,
    KauditError,
    NodeError,
    OperationFailed,
    RestoreFailed,
)


class Data(Protocol):
    """What the runner reads of the phase data: whether the change is complete."""

    @property
    def done(self) -> bool: ...


class Context(Protocol):
    """What the runner needs from one node's run (noderun.NodeRun); `data` is the latest phase data."""

    @property
    def result(self) -> Any: ...  # data.NodeResult: ok, exit_code, action, message, changed, steps, log_lines

    @property
    def name(self) -> str: ...

    @property
    def dry_run(self) -> bool: ...

    def report(self, message: str) -> None: ...  # one progress line for this node

    def would(self, data: Any) -> str: ...  # what a dry run would do, from the pure phases' data

    def guard_pending(self, data: Any, exc: NodeError) -> RestoreFailed: ...  # written, then lost: the guard's

    def interrupted(self, data: Any) -> str: ...  # the final message of an interrupted run

    def finish(self, data: Any) -> None: ...  # release what the run holds (the lock)


C = TypeVar("C", bound=Context)
D = TypeVar("D", bound=Data)


@dataclass(frozen=True)
class Phase(Generic[C, D]):
    """One named step of a change.

    `run` returns the next phase data (with `done` set when nothing after it should run). `run_if`
    skips the phase when false. `pure` phases change nothing on the node: `--dry-run` runs them and stops
    before the first one that is not. A `timed` phase's time is recorded in the result's steps under
    `step` (its name when empty: several phases may share a step name, as docs/output.md lists them).
    `rollback(ctx, data, why, log_lines)` undoes the phase's change: the runner calls it when the phase
    raises NotHealthy, or is interrupted while the result says the node is changed."""

    name: str
    short: str
    run: Callable[[C, D], D]
    run_if: Callable[[C, D], bool] | None = None
    pure: bool = False
    timed: bool = True
    step: str = ""
    rollback: Callable[[C, D, str, list[str]], None] | None = None

    @property
    def step_name(self) -> str:
        return self.step or self.name


class PhaseError(NodeError):
    """A phase's failure: the runner puts the phase's name before the reason (or `phase`, when given)."""

    def __init__(self, reason: str, *, phase: str | None = None, node: str | None = None) -> None:
        super().__init__(f"{phase}: {reason}" if phase else reason, node=node)
        self.reason = reason
        self.phase = phase


class NotHealthy(Exception):
    """The new configuration did not become healthy: the runner calls the phase's rollback."""

    def __init__(self, why: str, log_lines: list[str]) -> None:
        super().__init__(why)
        self.why = why
        self.log_lines = log_lines


def _run_phase(ctx: C, phase: Phase[C, D], data: D) -> D | None:
    """The phase's next data; None when it stops the run (rolled back)."""
    started = time.monotonic()
    try:
        try:
            return phase.run(ctx, data)
        finally:  # the phase's own time, not its rollback's
            if phase.timed:
                ctx.result.steps.append({"name": phase.step_name, "seconds": round(time.monotonic() - started, 3)})
    except PhaseError as exc:
        if exc.phase is None:
            raise PhaseError(exc.reason, phase=phase.name, node=exc.node or ctx.name) from None
        raise
    except NotHealthy as exc:
        if phase.rollback is None:
            raise
        r = ctx.result
        r.log_lines, r.changed = exc.log_lines, False
        phase.rollback(ctx, data, exc.why, exc.log_lines)
        return None
    except KeyboardInterrupt:
        if phase.rollback is not None and ctx.result.changed:
            with contextlib.suppress(OperationFailed):
                phase.rollback(ctx, data, "interrupted", [])
            ctx.result.changed = False
        raise


def execute(ctx: C, phases: Sequence[Phase[C, D]], data: D) -> Any:
    """Run the phases in order on one node from `data`; returns its result and never raises for node problems."""
    r = ctx.result
    try:
        for phase in phases:
            if phase.run_if is not None and not phase.run_if(ctx, data):
                continue
            if ctx.dry_run and not phase.pure:
                r.ok, r.exit_code, r.action, r.message = True, EXIT_OK, "dry-run", ctx.would(data)
                break
            ctx.report(phase.name)
            after = _run_phase(ctx, phase, data)
            if after is None or after.done:
                data = after or data
                break
            data = after
    except KeyboardInterrupt:
        r.exit_code, r.action = EXIT_INTERRUPTED, "interrupted"
        r.message = ctx.interrupted(data)  # where the rollback got, if any, and what to do next
    except KauditError as exc:
        if isinstance(exc, NodeError) and r.changed:  # written, not confirmed: the guard decides
            exc = ctx.guard_pending(data, exc)
        r.exit_code, r.message = exc.exit_code, exc.message
        r.action = {EXIT_FAILED_RESTORED: "failed-restored", EXIT_NOT_RESTORED: "NOT-RESTORED"}.get(
            exc.exit_code, "refused")
    finally:
        ctx.finish(data)
    return r
