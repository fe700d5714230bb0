"""Phases as data: README's list is the code's list, and one enable parses each manifest version once."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import pytest

from installer.change.phases import PHASES
from installer.change.plans import EnableInput, plan_disable, plan_enable
from installer.manifest import parse, read, validate
from installer.policy.source import PolicySource
from tests.conftest import NodeFactory
from tests.faults import rollout
from tests.paths import ROOT

README = ROOT / "README.md"


def _readme_phases() -> list[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- phases: begin -->", 1)[1].split("<!-- phases: end -->", 1)[0]
    return re.findall(r"^\d+\. \*\*(.+?)\*\*: (.+)$", block, re.M)


def test_readme_lists_the_phases_of_the_code_in_order() -> None:
    assert _readme_phases() == [(p.name, p.short) for p in PHASES]


def test_phase_names_are_unique_and_the_steps_keep_their_names() -> None:
    names = [p.name for p in PHASES]
    assert len(set(names)) == len(names)
    main = [p.step_name for p in PHASES[PHASES.index(next(p for p in PHASES if p.name == "plan")):] if p.timed]
    assert main == ["plan", "lock", "apply", "await", "confirm"]  # docs/output.md's step names
    steps = {p.step_name for p in PHASES if p.timed}  # the take-over's phases record the same names, and two more
    assert steps == {"preflight", "plan", "lock", "apply", "await", "confirm", "take over", "restore"}


class _Counts:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.composed: Counter[str] = Counter()
        self.validated: Counter[str] = Counter()
        compose, problems = parse.compose, validate._problems

        def counting_compose(text: str) -> Any:
            self.composed[hashlib.sha256(text.encode()).hexdigest()] += 1
            return compose(text)

        def counting_problems(node: Any, version: Any) -> list[str]:
            self.validated[repr(parse.to_python(node))] += 1
            return problems(node, version)

        for module in (parse, read, validate):  # every module that holds a reference to compose
            monkeypatch.setattr(module, "compose", counting_compose)
        monkeypatch.setattr(validate, "_problems", counting_problems)


@pytest.mark.parametrize("op", ["enable", "switch", "disable"])
def test_one_parse_per_manifest_version(node_factory: NodeFactory, monkeypatch: pytest.MonkeyPatch, op: str
                                        ) -> None:
    """A real change against a test node, in process: each manifest version (the node's, the unpatched
    base of a switch, the result) is composed once and validated once, whatever the phases ask."""
    node = node_factory(linger=0.1, restart_delay=0.1)
    if op in ("switch", "disable"):
        first, _ = rollout(node, plan_enable, lambda _n: EnableInput(PolicySource.of_profile("minimal")), timeout=20)
        assert first.ok, first.message
    counts = _Counts(monkeypatch)
    planner, inp = ((plan_disable, None) if op == "disable" else
                    (plan_enable, EnableInput(PolicySource.of_profile("cis" if op == "switch" else "minimal"))))
    result, _ = rollout(node, planner, lambda _n: inp, timeout=20)
    assert result.ok and result.changed, result.message
    assert [s["name"] for s in result.steps] == ["preflight", "plan", "lock", "apply", "await", "confirm"]
    assert counts.composed, "the counter saw no parse: it wraps the wrong function"
    assert max(counts.composed.values()) == 1, counts.composed
    assert len(counts.composed) <= (3 if op == "switch" else 2), counts.composed  # before, [base,] after
    assert not counts.validated or max(counts.validated.values()) == 1, counts.validated
