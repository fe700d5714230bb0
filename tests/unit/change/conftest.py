"""Shared helpers for the change workflow's unit tests: a fake node with the test node's manifest, and one
change run on it in process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from installer.change import phases
from installer.change.data import NodeResult, Options
from installer.change.plans import EnableInput, plan_disable, plan_enable
from installer.node import layout
from installer.policy.source import PolicySource
from installer.targets import flavors
from tests.node.seed import DEFAULT_MANIFEST
from tests.unit.change.fake_node import FakeNode

__all__ = ["DEFAULT_MANIFEST", "FakeNode", "enable", "plan_disable", "run"]


def enable(profile: str = "minimal") -> EnableInput:
    return EnableInput(PolicySource.of_profile(profile))


def run(node: FakeNode, planner: Any = plan_enable, plan_input: Any = None, *, answer: bool = True,
        progress: list[str] | None = None, **options: Any) -> NodeResult:
    """One change of `node` in this process, as rollout runs it; `answer` is the user's to the diff."""
    seen = progress if progress is not None else []
    ask: Callable[[str, str], bool] = lambda _node, _diff: answer  # noqa: E731
    inp = enable() if plan_input is None and planner is plan_enable else plan_input
    return phases.run_change(node, planner, inp, Options(**{"timeout": 5.0, **options}), ask,
                             lambda _n, m: seen.append(m), layout.KUBEADM, flavors.KUBEADM)


@pytest.fixture
def node() -> FakeNode:
    return FakeNode(DEFAULT_MANIFEST.encode())
