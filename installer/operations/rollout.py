"""Changing the control-plane nodes of one cluster: one at a time, each healthy before the next.

Every node is reached before any is changed; a node is started only while the other API servers
are healthy; the first failure stops the rollout, and the nodes after it are left untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from installer import health, nodefacts
from installer.errors import EXIT_OK, EXIT_REFUSED, KauditError
from installer.operations.change import Confirm, NodeChange, NodeResult, Options, Planner, Progress
from installer.transport import Transport

PlanInput = Callable[[Transport], Any]


def worst_exit(results: list[NodeResult]) -> int:
    """3 (not restored) > 130 (interrupted) > 1 (failed, restored) > 2 (refused) > 0."""
    codes = {r.exit_code for r in results}
    for code in (3, 130, 1, 2):
        if code in codes:
            return code
    return EXIT_OK


def _healthy(transport: Transport) -> str | None:
    """None when this node's API server answers ready, else why not."""
    from installer import manifest

    facts = nodefacts.gather(transport)
    if facts.manifest is None:
        return facts.manifest_problem
    probe = manifest.read(facts.manifest).probe
    result = health.probe(transport, probe.url)
    return None if result.ready else result.describe()


def run_rollout(
    raw_targets: list[str],
    connect: Callable[[Any], Transport],
    planner: Planner,
    plan_input: PlanInput,
    options: Options,
    confirm: Confirm,
    progress: Progress,
) -> list[NodeResult]:
    from installer.targets import parse_target

    results: list[NodeResult] = []
    transports: list[Transport] = []
    try:
        # Reach every node before changing any: an unreachable node refuses the whole rollout.
        for raw in raw_targets:
            try:
                transports.append(connect(parse_target(raw)))
            except KauditError as exc:
                results.append(NodeResult(node=exc.node or raw, ok=False, exit_code=exc.exit_code,
                                          action="refused", message=exc.message))
        if results:
            for t in transports:
                results.append(NodeResult(node=t.name, ok=False, exit_code=EXIT_REFUSED, action="not-changed",
                                          message="not changed: another node of this cluster cannot be reached"))
            return results
        for i, t in enumerate(transports):
            sick = [(o.name, why) for o in transports if o is not t and (why := _healthy(o)) is not None]
            if sick and not options.dry_run:
                results.append(NodeResult(node=t.name, ok=False, exit_code=EXIT_REFUSED, action="not-changed",
                                          message=f"not changed: {sick[0][0]} is not healthy ({sick[0][1]})"))
                _skip_rest(results, transports[i + 1:], t.name)
                break
            try:
                inp = plan_input(t)
            except KauditError as exc:
                results.append(NodeResult(node=t.name, ok=False, exit_code=exc.exit_code, action="refused",
                                          message=exc.message))
                _skip_rest(results, transports[i + 1:], t.name)
                break
            result = NodeChange(t, planner, inp, options, confirm, progress).run()
            results.append(result)
            if not result.ok:
                _skip_rest(results, transports[i + 1:], t.name)
                break
        return results
    finally:
        for t in transports:
            t.close()


def _skip_rest(results: list[NodeResult], rest: list[Transport], failed: str) -> None:
    for t in rest:
        results.append(NodeResult(node=t.name, ok=False, exit_code=EXIT_REFUSED, action="not-changed",
                                  message=f"not changed: the rollout stopped at {failed}"))
