"""Phases as data, after kubeadm's cmd/kubeadm/app/cmd/phases/workflow: a phase is a value, one runner
executes the ordered list.

The runner owns what every phase shares: a progress line as each phase starts, the timing recorded
in the result's `steps`, the phase's name before its error ("preflight: ..."), `--dry-run` (stop
before the first phase that changes the node), and the rollback-on-failure policy: a phase that
`restores` and fails (or is interrupted) after the manifest was written puts the backup back; any
other failure after the write leaves the change to the node's guard. Imports nothing from the rest
of `change` (phases.py imports this).
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

T = TypeVar("T")


class Context(Protocol):
    """What the runner needs from one node's change (phases.NodeChange)."""

    @property
    def result(self) -> Any: ...  # phases.NodeResult

    @property
    def name(self) -> str: ...

    @property
    def dry_run(self) -> bool: ...

    would: str  # what a dry run would do, set by the pure phases

    def roll_back(self, why: str, log_lines: list[str]) -> None: ...  # restore the backup; raises

    def guard_pending(self, exc: NodeError) -> RestoreFailed: ...

    def interrupted(self) -> str: ...  # the final message of an interrupted run: the node's state, what to do

    def finish(self) -> None: ...  # release what the run holds (the lock)

    def report(self, message: str) -> None: ...  # one progress line for this node


C = TypeVar("C", bound=Context)


@dataclass(frozen=True)
class Phase(Generic[C]):
    """One named step of a change.

    `run` returns True when the change is complete (nothing after it runs). `run_if` skips the phase
    when false. `pure` phases change nothing on the node: `--dry-run` runs them and stops before the
    first one that is not. `timed` phases are recorded in the result's steps under their name (an
    untimed phase records its own steps with `step`). A `restores` phase runs after the manifest is
    written: its failure (NotHealthy) or an interrupt during it restores the backup."""

    name: str
    short: str
    run: Callable[[C], bool | None]
    run_if: Callable[[C], bool] | None = None
    pure: bool = False
    timed: bool = True
    restores: bool = False


class PhaseError(NodeError):
    """A phase's failure: the runner puts the phase's name before the reason (or `phase`, when given)."""

    def __init__(self, reason: str, *, phase: str | None = None, node: str | None = None) -> None:
        super().__init__(f"{phase}: {reason}" if phase else reason, node=node)
        self.reason = reason
        self.phase = phase


class NotHealthy(Exception):
    """The new configuration did not become healthy: the runner restores the backup."""

    def __init__(self, why: str, log_lines: list[str]) -> None:
        super().__init__(why)
        self.why = why
        self.log_lines = log_lines


def step(ctx: Context, name: str, fn: Callable[[], T]) -> T:
    """Run `fn`, recording its time in the result's steps as `name`."""
    started = time.monotonic()
    try:
        return fn()
    finally:
        ctx.result.steps.append({"name": name, "seconds": round(time.monotonic() - started, 3)})


def _run_phase(ctx: C, phase: Phase[C]) -> bool | None:
    try:
        if phase.timed:
            return step(ctx, phase.name, lambda: phase.run(ctx))
        return phase.run(ctx)
    except PhaseError as exc:
        if exc.phase is None:
            raise PhaseError(exc.reason, phase=phase.name, node=exc.node or ctx.name) from None
        raise
    except NotHealthy as exc:
        r = ctx.result
        r.log_lines = exc.log_lines
        r.changed = False
        ctx.roll_back(exc.why, exc.log_lines)
        return True
    except KeyboardInterrupt:
        if phase.restores and ctx.result.changed:
            with contextlib.suppress(OperationFailed):
                ctx.roll_back("interrupted", [])
            ctx.result.changed = False
        raise


def execute(ctx: C, phases: Sequence[Phase[C]]) -> Any:
    """Run the phases in order on one node; returns its result and never raises for node problems."""
    r = ctx.result
    try:
        for phase in phases:
            if phase.run_if is not None and not phase.run_if(ctx):
                continue
            if ctx.dry_run and not phase.pure:
                r.ok, r.exit_code, r.action, r.message = True, EXIT_OK, "dry-run", ctx.would
                break
            ctx.report(phase.name)
            if _run_phase(ctx, phase):
                break
    except KeyboardInterrupt:
        r.exit_code, r.action = EXIT_INTERRUPTED, "interrupted"
        r.message = ctx.interrupted()  # where the rollback got, if any, and what to do next
    except KauditError as exc:
        if isinstance(exc, NodeError) and r.changed:  # written, not confirmed: the guard decides
            exc = ctx.guard_pending(exc)
        r.exit_code, r.message = exc.exit_code, exc.message
        r.action = {EXIT_FAILED_RESTORED: "failed-restored", EXIT_NOT_RESTORED: "NOT-RESTORED"}.get(
            exc.exit_code, "refused")
    finally:
        ctx.finish()
    return r
