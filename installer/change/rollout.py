"""Rolling a change out: clusters in parallel, the nodes of one cluster one at a time.

Within a cluster, every node is reached before any is changed; a node is started only while
the other API servers are healthy; the first failure stops that cluster's rollout and leaves
the nodes after it untouched. One failing cluster never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from installer.change.phases import Confirm, NodeResult, Options, Planner, Progress, run_change
from installer.errors import (
    EXIT_FAILED_RESTORED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RESTORED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_STOPPED,
    KauditError,
)
from installer.node import facts as nodefacts
from installer.node import health
from installer.targets.connect import NodeContext, Unreachable, open_cluster
from installer.targets.parse import Cluster, Target
from installer.transport import Transport

if TYPE_CHECKING:
    from installer.manifest.read import Probe

PlanInput = Callable[[NodeContext], Any]  # e.g. rollback reads its backup from the node's own state directory
Connect = Callable[[Target], Transport]


@dataclass(frozen=True)
class Planned:
    """One node of a cluster as its dry run found it, for the one question asked per cluster."""

    node: str
    diff: str  # empty: nothing to change
    would: str  # what the change would do there ("would enable auditing with profile minimal")


# (cluster name, its nodes in rollout order) -> go ahead with all of them?
ConfirmCluster = Callable[[str, list[Planned]], bool]


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
    # Asked once per cluster with every node's diff before any node changes (None: each node is asked,
    # or nobody with --yes). A node whose diff is not the one approved (the node changed since) is asked again.
    confirm_cluster: ConfirmCluster | None = None


def worst_exit(results: list[NodeResult]) -> int:
    """3 (not restored) > 130 (interrupted) > 4 (a cluster's rollout stopped part-way) > 1 (failed, restored)
    > 2 (refused) > 0."""
    codes = {r.exit_code for r in results}
    for code in (EXIT_NOT_RESTORED, EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_FAILED_RESTORED, EXIT_REFUSED):
        if code in codes:
            return code
    return EXIT_OK


def changed_nodes(results: list[NodeResult]) -> list[str]:
    """The nodes whose manifest this run changed (and left so)."""
    return [r.node for r in results if r.ok and r.changed and r.action not in ("unchanged", "dry-run")]


def mark_stopped(results: list[NodeResult]) -> list[str]:
    """A cluster's rollout that stopped after some of its nodes changed leaves it mixed: each node left as it was
    gets exit status 4 (EXIT_STOPPED; a node not restored or interrupted keeps its own) and `stopped_at`. Returns
    the nodes left as they were (empty: the cluster is not mixed)."""
    changed = changed_nodes(results)
    left = [r for r in results if not r.ok and not r.changed]
    if not changed or not left:
        return []
    at = left[0].node
    for r in left:
        r.stopped_at = at
        if r.exit_code in (EXIT_REFUSED, EXIT_FAILED_RESTORED):
            r.exit_code = EXIT_STOPPED
    return [r.node for r in left]


def _probe(node: NodeContext) -> Probe:
    """Where the kubelet probes this node's API server (its manifest's probe)."""
    from installer.manifest.read import read

    facts = nodefacts.gather(node.transport, node.layout)
    if facts.manifest is None:
        raise KauditError(facts.manifest_problem or "no kube-apiserver manifest", node=node.name)
    return read(facts.manifest).probe


_LOOPBACK = ("127.", "localhost", "::1")


@dataclass
class HealthGate:
    """Before each node of a cluster changes, are the other API servers ready?

    The node about to change asks them all in one remote command, and each node's probe address is read
    from its manifest once per rollout (kaudit's change never touches the probe), so the gate costs
    each node a constant number of commands whatever the cluster's size. A peer that does not answer
    200 that way (a firewall, other admin credentials, a loopback probe address) is asked through its
    own connection before it counts as sick."""

    hosts: dict[str, str]  # node name -> where kaudit reached it (Transport.address)
    urls: dict[str, str] = field(default_factory=dict)
    anonymous: set[str] = field(default_factory=set)  # probe URLs that are not an API server's own address
    problems: dict[str, str] = field(default_factory=dict)  # node name -> why its probe address is unknown

    def _url(self, node: NodeContext) -> str | None:
        if node.name not in self.urls and node.name not in self.problems:
            try:
                probe = _probe(node)
                self.urls[node.name] = probe.url
                if not probe.to_itself:
                    self.anonymous.add(probe.url)
            except KauditError as exc:
                self.problems[node.name] = exc.message
        return self.urls.get(node.name)

    def _askable_from(self, node: NodeContext, peer: NodeContext, url: str) -> bool:
        """A loopback probe address is the peer's own host: the same from `node` only when both are reached
        at the same address (one network stack)."""
        from urllib.parse import urlsplit

        host = urlsplit(url).hostname or ""
        return bool(host) and (not host.startswith(_LOOPBACK) or self.hosts.get(peer.name) == self.hosts.get(node.name))

    def own_answer(self, peer: NodeContext) -> str | None:
        """None when the peer's API server answers ready through the peer's own connection, else why not."""
        url = self._url(peer)
        if url is None:
            return self.problems[peer.name]
        result = health.probe(peer.transport, url, "" if url in self.anonymous else peer.layout.admin_kubeconfig)
        return result.gate_answer()

    def sick(self, node: NodeContext, peers: list[NodeContext]) -> list[tuple[str, str]]:
        asked = [(p, url) for p in peers if (url := self._url(p)) and self._askable_from(node, p, url)]
        answers = (health.probe_from(node.transport, [url for _, url in asked], node.layout.admin_kubeconfig,
                                     anonymous=frozenset(self.anonymous))
                   if asked else [])
        ready = {p.name for (p, _), answer in zip(asked, answers, strict=True) if answer.ready}
        return [(p.name, why) for p in peers if p.name not in ready and (why := self.own_answer(p)) is not None]


def _not_changed(name: str, cluster: str, why: str) -> NodeResult:
    return NodeResult(node=name, ok=False, exit_code=EXIT_REFUSED, action="not-changed", message=why,
                      cluster=cluster)


def run_cluster(cluster: Cluster, job: Rollout) -> list[NodeResult]:
    """One cluster's nodes, one at a time."""
    results: list[NodeResult] = []
    nodes: list[NodeContext] = []
    name = cluster.name
    try:
        # Reach every node before changing any: an unreachable node refuses the whole cluster.
        for opened in open_cluster(cluster, job.connect):
            if isinstance(opened, Unreachable):
                results.append(NodeResult(node=opened.name, ok=False, exit_code=opened.error.exit_code,
                                          action="refused", message=opened.error.message, cluster=name))
            else:
                nodes.append(opened)
        if results:
            return results + [_not_changed(n.name, name, "not changed: another node of this cluster cannot be "
                                           "reached") for n in nodes]
        confirm = job.confirm
        if job.confirm_cluster is not None and not job.options.dry_run:
            asked = _ask_cluster(name, nodes, job)
            if isinstance(asked, list):
                return asked
            confirm = asked
        gate = HealthGate({n.name: n.transport.address or n.name for n in nodes})
        for i, node in enumerate(nodes):
            rest = [o.name for o in nodes[i + 1:]]
            sick = gate.sick(node, [o for o in nodes if o is not node])
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
            result = run_change(node.transport, job.planner, inp, job.options, confirm, job.progress, node.layout,
                                node.flavor)
            result.cluster = name
            results.append(result)
            if not result.ok:
                results += [_not_changed(n, name, f"not changed: the rollout stopped at {node.name}") for n in rest]
                break
        mark_stopped(results)
        return results
    finally:
        for node in nodes:
            node.close()


def _ask_cluster(name: str, nodes: list[NodeContext], job: Rollout) -> Confirm | list[NodeResult]:
    """Plan every node of the cluster (a dry run each: nothing on the nodes) and ask once. Returns the confirm
    the rollout then uses (yes for a node whose diff is the approved one), or the cluster's results when it
    ends here: a node that cannot be planned, or the answer no."""
    planned: list[Planned] = []
    dry = replace(job.options, dry_run=True)
    for i, node in enumerate(nodes):
        rest = [n.name for n in nodes[i + 1:]]
        done = [n.name for n in nodes[:i]]
        try:
            inp = job.plan_input(node)
            result = run_change(node.transport, job.planner, inp, dry, job.confirm, lambda _n, _m: None, node.layout,
                                node.flavor)
        except KauditError as exc:
            result = NodeResult(node=node.name, ok=False, exit_code=exc.exit_code, action="refused",
                                message=exc.message)
        if not result.ok:
            result.cluster = name
            return ([_not_changed(n, name, f"not changed: {node.name} cannot be changed") for n in done]
                    + [result] + [_not_changed(n, name, f"not changed: {node.name} cannot be changed") for n in rest])
        planned.append(Planned(node.name, result.diff or "", result.message))
    if not any(p.diff for p in planned):
        return job.confirm  # nothing to change anywhere: each node says so
    assert job.confirm_cluster is not None
    try:
        yes = job.confirm_cluster(name, planned)
        why = "not confirmed: nothing changed"
    except KauditError as exc:  # no terminal to ask on
        yes, why = False, exc.message
    except KeyboardInterrupt:  # Ctrl-C at the question
        return [NodeResult(node=p.node, ok=False, exit_code=EXIT_INTERRUPTED, action="interrupted", cluster=name,
                           message="before anything changed; nothing to undo") for p in planned]
    if not yes:
        return [NodeResult(node=p.node, ok=False, exit_code=EXIT_REFUSED, action="refused", cluster=name,
                           message=why) for p in planned]
    approved = {p.node: p.diff for p in planned}

    def confirm(node: str, diff: str) -> bool:
        return approved.get(node) == diff or job.confirm(node, diff)

    return confirm


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
