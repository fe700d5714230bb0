"""Reaching nodes: the nodes a list of targets stands for, the right transport for each, and the one
decision of what each node is.

`open_targets` (every cluster of a target list) and `open_cluster` (one cluster) are the one way the
commands get from targets to open nodes: inventories expanded, kind/minikube/kube clusters discovered
once (a discovered node is opened with what discovery found), each node opened in turn.
`node_context` is the only place that decides a node's flavor and layout (state directory, audit
directory): from the target's form (kind://, minikube://) or, for ssh and local targets, from node
facts gathered in one round trip (flavors.gather_hints: gather.sh, which also reads the node's facts
with the layout its marks give, so the command's first gather costs no round trip of its own). Every
command reads and changes the node through the NodeContext it returns, so no command can use
another's layout.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from installer.errors import KauditError
from installer.targets.parse import Cluster, Target
from installer.transport import Transport
from installer.transport.ssh import SSHOptions

if TYPE_CHECKING:
    from installer.node import layout
    from installer.targets.flavors import Flavor, NodeHints, NodeSpec

R = TypeVar("R")


@dataclass(frozen=True)
class NodeContext:
    """One connected node and what it is: how to reach it, its flavor, where kaudit keeps its files there."""

    transport: Transport
    flavor: Flavor
    layout: layout.NodeLayout
    hints: NodeHints | None  # None when the target's form decided (kind://, minikube://)
    evidence: str  # why this flavor, for people

    @property
    def name(self) -> str:
        return self.transport.name

    def close(self) -> None:
        self.transport.close()


def node_context(target: Target, transport: Transport) -> NodeContext:
    """Decide what the node behind an open transport is: from the target's form, else from the node's
    own marks (one round trip, which also reads the node's facts for its first gather: node.facts.keep).
    The transport is closed when that round trip fails."""
    from installer.targets import flavors

    if target.kind in ("kind", "minikube"):
        flavor = flavors.flavor_of_target(target)
        return NodeContext(transport, flavor, flavor.layout, None, f"the target is {target.kind}://")
    try:
        hints, opening = flavors.gather_hints(transport)
    except BaseException:
        transport.close()
        raise
    flavor, evidence = flavors.flavor_evidence(hints)
    if opening.layout == flavor.layout:  # the command's first read of the node needs no round trip of its own
        from installer.node import facts

        facts.keep(transport, opening)
    return NodeContext(transport, flavor, flavor.layout, hints, evidence)


@dataclass(frozen=True)
class Unreachable:
    """A cluster whose nodes could not be listed, or a node that could not be opened."""

    name: str  # the node, else the cluster
    error: KauditError


def open_cluster(cluster: Cluster, connect: Callable[[Target], Transport]) -> Iterator[NodeContext | Unreachable]:
    """The nodes of one cluster (kind, minikube and kube targets discovered), each opened with `connect`
    and its flavor decided, in order, when the iteration reaches it; an Unreachable for a cluster that
    cannot be listed (then nothing else) or a node that cannot be opened. Each yielded node is the caller's
    to close."""
    from installer.targets import flavors

    try:
        targets = flavors.expand_cluster(cluster).nodes
    except KauditError as exc:
        yield Unreachable(exc.node or cluster.name, exc)
        return
    for target in targets:
        try:
            yield node_context(target, connect(target))
        except KauditError as exc:
            yield Unreachable(exc.node or target.display, exc)


def open_targets(raw_targets: list[str], ssh: SSHOptions) -> Iterator[tuple[str, NodeContext | Unreachable]]:
    """(cluster name, node) for every node the targets stand for (inventory files included), as open_cluster
    opens them. A target list that cannot be read raises its InputError here, before any node is opened."""
    from installer.targets.inventory import expand_targets

    clusters = expand_targets(raw_targets)

    def nodes() -> Iterator[tuple[str, NodeContext | Unreachable]]:
        for cluster in clusters:
            for node in open_cluster(cluster, lambda target: open_transport(target, ssh)):
                yield cluster.name, node

    return nodes()


def visit_nodes(raw_targets: list[str], ssh: SSHOptions, read: Callable[[NodeContext, str], R],
                failed: Callable[[str, str | None, str], R]) -> list[R]:
    """`read(node, cluster)` on every node the targets stand for, one at a time (open_targets);
    `failed(node, cluster, message)` for a target list, cluster or node that cannot be read. For the
    read-only commands (status, backups)."""
    try:
        opened = open_targets(raw_targets, ssh)
    except KauditError as exc:
        return [failed(exc.node or " ".join(raw_targets), None, exc.message)]
    out: list[R] = []
    for cluster, node in opened:
        if isinstance(node, Unreachable):
            out.append(failed(node.name, cluster, node.error.message))
            continue
        try:
            out.append(read(node, cluster))
        except KauditError as exc:
            out.append(failed(exc.node or node.name, cluster, exc.message))
        finally:
            node.close()
    return out


def open_transport(target: Target, ssh: SSHOptions) -> Transport:
    """A connected transport (sudo already checked), or a NodeError naming the node and the cause.
    Commands use `open_cluster`/`open_targets`, which also decide what the node is.

    A node found by `flavors.expand_cluster` is opened with what discovery found; any other kind:// or
    minikube:// target is discovered here and must name one node (or stand for a cluster with a single
    control plane).
    """
    if target.kind == "local":
        from installer.transport.local import LocalTransport

        return LocalTransport()
    if target.kind == "ssh":
        from installer.targets.inventory import InventoryTarget
        from installer.transport.ssh import SSHTransport

        # inventory hosts carry their own key, jump host and known_hosts (targets.inventory)
        options = target.ssh_options(ssh, _scratch_dir()) if isinstance(target, InventoryTarget) else ssh
        transport = SSHTransport(target, options)
        transport.connect()
        return transport
    from installer.targets import flavors

    if isinstance(target, flavors.DiscoveredTarget) and target.spec is not None:
        return open_discovered(target.spec, ssh)
    return open_discovered(flavors.resolve_node(target), ssh)


def open_discovered(spec: NodeSpec, ssh: SSHOptions) -> Transport:
    """Open a node found by discovery."""
    if spec.via == "local":
        from installer.transport.local import LocalTransport

        local = LocalTransport()
        local.name = spec.name
        return local
    if spec.via == "docker":
        from installer.transport.docker import DockerExecTransport

        assert spec.container is not None
        return DockerExecTransport(spec.container, engine=spec.engine, display=spec.name)
    from installer.transport.ssh import SSHTransport

    # minikube's own host-key handling (no checking): see the flavors module docstring. The key
    # the node offers is accepted into a throwaway known_hosts file; the user's ~/.ssh/config is
    # not consulted (the address and key come from minikube), so the empty config is os.devnull.
    node = Target(raw=spec.name, kind="ssh", host=spec.host, user=spec.user, port=spec.port)
    options = replace(
        ssh,
        config_file=os.devnull,
        identity_file=spec.key_file,
        known_hosts=os.path.join(_scratch_dir(), "known_hosts"),
        accept_new_host_key=True,
    )
    transport = SSHTransport(node, options)
    transport.name = spec.name
    transport.connect()
    return transport


_SCRATCH: list[str] = []


def _scratch_dir() -> str:
    if not _SCRATCH:
        path = tempfile.mkdtemp(prefix="kaudit-ssh-")
        _SCRATCH.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _SCRATCH[0]
