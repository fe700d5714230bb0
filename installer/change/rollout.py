"""Rolling a change out: clusters in parallel, the nodes of one cluster one at a time.

Within a cluster, every node is reached before any is changed; a node is started only while
the other API servers are healthy; the first failure stops that cluster's rollout and leaves
the nodes after it untouched. One failing cluster never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from installer.change.phases import Confirm, NodeChange, NodeResult, Options, Planner, Progress
from installer.errors import EXIT_OK, EXIT_REFUSED, KauditError
from installer.node import facts as nodefacts
from installer.node import health
from installer.targets.connect import NodeContext, node_context
from installer.targets.parse import Cluster, Target
from installer.transport import Transport

PlanInput = Callable[[NodeContext], Any]  # e.g. rollback reads its backup from the node's own state directory
Connect = Callable[[Target], Transport]


@dataclass(frozen=True)
class Rollout:
    """What to do on every node: how to reach it, what to plan from what input, and how to ask and tell.
    What each node is (flavor, layout) is decided once, by connect.node_context, right after `connect`."""

    connect: Connect
    planner: Planner
    plan_input: PlanInput
    options: Options
    confirm: Confirm
    progress: Progress


def worst_exit(results: list[NodeResult]) -> int:
    """3 (not restored) > 130 (interrupted) > 1 (failed, restored) > 2 (refused) > 0."""
    codes = {r.exit_code for r in results}
    for code in (3, 130, 1, 2):
        if code in codes:
            return code
    return EXIT_OK


def _probe_url(node: NodeContext) -> str:
    """Where the kubelet probes this node's API server (its manifest's probe): read once per rollout."""
    from installer.manifest.read import read

    facts = nodefacts.gather(node.transport, node.layout)
    if facts.manifest is None:
        raise KauditError(facts.manifest_problem or "no kube-apiserver manifest", node=node.name)
    return read(facts.manifest).probe.url


def _healthy(node: NodeContext, urls: dict[str, str]) -> str | None:
    """None when this node's API server answers ready, else why not. One probe per call: the probe's
    address is read from the manifest once per rollout (kaudit's change never touches the probe), so
    the health gate costs one remote command per other node per step, not a gather and a probe."""
    if node.name not in urls:
        try:
            urls[node.name] = _probe_url(node)
        except KauditError as exc:
            return exc.message
    result = health.probe(node.transport, urls[node.name])
    return None if result.ready else result.describe()


def _not_changed(name: str, cluster: str, why: str) -> NodeResult:
    return NodeResult(node=name, ok=False, exit_code=EXIT_REFUSED, action="not-changed", message=why,
                      cluster=cluster)


def run_cluster(cluster: Cluster, job: Rollout) -> list[NodeResult]:
    """One cluster's nodes, one at a time."""
    from installer.targets import flavors

    results: list[NodeResult] = []
    nodes: list[NodeContext] = []
    name = cluster.name
    try:
        try:
            cluster = flavors.expand_cluster(cluster)
        except KauditError as exc:
            return [NodeResult(node=exc.node or name, ok=False, exit_code=exc.exit_code, action="refused",
                               message=exc.message, cluster=name)]
        # Reach every node before changing any: an unreachable node refuses the whole cluster.
        for target in cluster.nodes:
            try:
                nodes.append(node_context(target, job.connect(target)))
            except KauditError as exc:
                results.append(NodeResult(node=exc.node or target.display, ok=False, exit_code=exc.exit_code,
                                          action="refused", message=exc.message, cluster=name))
        if results:
            return results + [_not_changed(n.name, name, "not changed: another node of this cluster cannot be "
                                           "reached") for n in nodes]
        urls: dict[str, str] = {}
        for i, node in enumerate(nodes):
            rest = [o.name for o in nodes[i + 1:]]
            sick = [(o.name, why) for o in nodes if o is not node and (why := _healthy(o, urls)) is not None]
            if sick and not job.options.dry_run:
                results.append(_not_changed(node.name, name, f"not changed: {sick[0][0]} is not healthy "
                                                             f"({sick[0][1]})"))
                results += [_not_changed(n, name, f"not changed: the rollout stopped at {node.name}") for n in rest]
                break
            try:
                inp = job.plan_input(node)
            except KauditError as exc:
                results.append(NodeResult(node=node.name, ok=False, exit_code=exc.exit_code, action="refused",
                                          message=exc.message, cluster=name))
                results += [_not_changed(n, name, f"not changed: the rollout stopped at {node.name}") for n in rest]
                break
            change = NodeChange(node.transport, job.planner, inp, job.options, job.confirm, job.progress,
                                node.layout)
            change.flavor = node.flavor
            result = change.run()
            result.cluster = name
            results.append(result)
            if not result.ok:
                results += [_not_changed(n, name, f"not changed: the rollout stopped at {node.name}") for n in rest]
                break
        return results
    finally:
        for node in nodes:
            node.close()


def run_fleet(clusters: list[Cluster], job: Rollout, parallel: int = 1) -> list[NodeResult]:
    """Every cluster, `parallel` at a time; results in the clusters' order."""

    def one(cluster: Cluster) -> list[NodeResult]:
        return run_cluster(cluster, job)

    if parallel <= 1 or len(clusters) <= 1:
        return [r for c in clusters for r in one(c)]
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="kaudit-cluster") as pool:
        return [r for rs in pool.map(one, clusters) for r in rs]


def run_rollout(raw_targets: list[str], job: Rollout, parallel: int = 1) -> list[NodeResult]:
    """Targets as typed (inventory files included) to results, one per node."""
    from installer.targets.inventory import expand_targets

    try:
        clusters = expand_targets(raw_targets)
    except KauditError as exc:
        return [NodeResult(node=exc.node or " ".join(raw_targets), ok=False, exit_code=exc.exit_code,
                           action="refused", message=exc.message)]
    return run_fleet(clusters, job, parallel)
