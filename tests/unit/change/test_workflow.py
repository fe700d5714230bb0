"""The runner with fake phases (kubeadm's workflow tests are the model): order, run_if, dry-run, timing under
step names, the phase's name before its error, and the rollback policy on NotHealthy and on an interrupt."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from installer.change.data import NodeResult
from installer.change.workflow import NotHealthy, Phase, PhaseError, execute
from installer.errors import (
    EXIT_FAILED_RESTORED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RESTORED,
    NodeError,
    OperationFailed,
    RestoreFailed,
)


@dataclass(frozen=True)
class Data:
    seen: tuple[str, ...] = ()
    done: bool = False


@dataclass
class Ctx:
    dry_run: bool = False
    name: str = "n1"
    result: NodeResult = field(default_factory=lambda: NodeResult("n1", False, 2, "refused", ""))
    reported: list[str] = field(default_factory=list)
    rolled_back: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    finished: list[Data] = field(default_factory=list)

    def report(self, message: str) -> None:
        self.reported.append(message)

    def would(self, data: Any) -> str:
        return f"would do after {','.join(data.seen)}"

    def guard_pending(self, data: Any, exc: NodeError) -> RestoreFailed:
        return RestoreFailed(f"{exc.message}; the guard decides", node=self.name)

    def interrupted(self, data: Any) -> str:
        return f"stopped after {','.join(data.seen)}"

    def finish(self, data: Any) -> None:
        self.finished.append(data)


def mark(name: str, done: bool = False) -> Any:
    def run(ctx: Ctx, data: Data) -> Data:
        return replace(data, seen=(*data.seen, name), done=done)
    return run


def raising(exc: BaseException, changed: bool = False) -> Any:
    def run(ctx: Ctx, data: Data) -> Data:
        ctx.result.changed = changed or ctx.result.changed
        raise exc
    return run


def rollback(ctx: Ctx, data: Data, why: str, lines: list[str]) -> None:
    ctx.rolled_back.append((why, data.seen))
    raise OperationFailed(f"{why}; restored", node=ctx.name)


P = Phase[Ctx, Data]


def test_phases_run_in_order_and_hand_on_their_data() -> None:
    ctx = Ctx()
    execute(ctx, [P("a", "", mark("a")), P("b", "", mark("b")), P("c", "", mark("c"))], Data())
    assert ctx.finished == [Data(("a", "b", "c"))]
    assert ctx.reported == ["a", "b", "c"]


def test_run_if_skips_and_done_stops() -> None:
    ctx = Ctx()
    execute(ctx, [P("a", "", mark("a"), run_if=lambda c, d: False), P("b", "", mark("b", done=True)),
                  P("c", "", mark("c"))], Data())
    assert ctx.finished[0].seen == ("b",) and ctx.reported == ["b"]


def test_dry_run_stops_before_the_first_phase_that_is_not_pure() -> None:
    ctx = Ctx(dry_run=True)
    r = execute(ctx, [P("plan", "", mark("plan"), pure=True), P("write", "", mark("write"))], Data())
    assert (r.ok, r.action, r.message) == (True, "dry-run", "would do after plan")
    assert ctx.finished[0].seen == ("plan",)


def test_timed_phases_are_recorded_under_their_step_name() -> None:
    ctx = Ctx()
    execute(ctx, [P("a", "", mark("a")), P("ask", "", mark("ask"), timed=False),
                  P("await the other one", "", mark("x"), step="await")], Data())
    assert [s["name"] for s in ctx.result.steps] == ["a", "await"]
    assert all(isinstance(s["seconds"], float) for s in ctx.result.steps)


def test_a_phase_error_carries_the_phase_name() -> None:
    r = execute(Ctx(), [P("preflight", "", raising(PhaseError("no manifest")))], Data())
    assert (r.exit_code, r.action, r.message) == (2, "refused", "preflight: no manifest")
    r = execute(Ctx(), [P("x", "", raising(PhaseError("lost", phase="await")))], Data())
    assert r.message == "await: lost"


def test_not_healthy_runs_the_phase_rollback_with_the_data_it_was_given() -> None:
    ctx = Ctx()
    r = execute(ctx, [P("a", "", mark("a")),
                      P("await", "", raising(NotHealthy("crash-looping", ["log line"]), changed=True),
                        rollback=rollback),
                      P("confirm", "", mark("confirm"))], Data())
    assert ctx.rolled_back == [("crash-looping", ("a",))]
    assert (r.exit_code, r.action, r.changed, r.log_lines) == (EXIT_FAILED_RESTORED, "failed-restored", False,
                                                               ["log line"])
    assert ctx.reported == ["a", "await"] and r.steps[-1]["name"] == "await"


def test_an_interrupt_in_a_phase_with_a_rollback_after_the_write_rolls_back() -> None:
    ctx = Ctx()
    r = execute(ctx, [P("apply", "", mark("apply")),
                      P("await", "", raising(KeyboardInterrupt(), changed=True), rollback=rollback)], Data())
    assert ctx.rolled_back == [("interrupted", ("apply",))]
    assert (r.exit_code, r.action, r.changed, r.message) == (EXIT_INTERRUPTED, "interrupted", False,
                                                             "stopped after apply")


@pytest.mark.parametrize("changed", [False, True])
def test_an_interrupt_elsewhere_only_reports(changed: bool) -> None:
    ctx = Ctx()
    r = execute(ctx, [P("a", "", mark("a")), P("confirm", "", raising(KeyboardInterrupt(), changed=changed))],
                Data())
    assert ctx.rolled_back == [] and (r.exit_code, r.changed) == (EXIT_INTERRUPTED, changed)
    assert ctx.finished == [Data(("a",))]


def test_a_node_error_after_the_write_is_left_to_the_guard() -> None:
    r = execute(Ctx(), [P("confirm", "", raising(NodeError("connection lost"), changed=True))], Data())
    assert (r.exit_code, r.action, r.message) == (EXIT_NOT_RESTORED, "NOT-RESTORED",
                                                  "connection lost; the guard decides")


def test_finish_runs_whatever_happens() -> None:
    ctx = Ctx()
    with pytest.raises(RuntimeError):
        execute(ctx, [P("a", "", raising(RuntimeError("bug")))], Data())
    assert ctx.finished == [Data()]
