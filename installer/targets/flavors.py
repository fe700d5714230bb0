"""kubeadm, minikube and kind: node layout, discovery, and what undoes a live edit later.

Discovery turns `kind://cluster[/node]` and `minikube://profile[/node]` into the control-plane
nodes of that cluster (NodeSpec), using only what the tools themselves use:

- kind: its node containers carry the labels `io.x-k8s.kind.cluster=<cluster>` and
  `io.x-k8s.kind.role=control-plane` (that is how `kind get nodes` finds them), so one
  `docker ps` lists every control-plane node; kind nodes run no sshd, so commands go through
  `docker exec` as the container's root. The engine is `docker`, or the provider named by
  `KIND_EXPERIMENTAL_PROVIDER`; the kind binary itself is not needed.
- minikube: `minikube profile list -o json` gives the driver and every node (with its
  ControlPlane flag, so HA profiles yield all their control planes), `minikube -p P ip -n NODE`
  and `minikube -p P ssh-key -n NODE` the address and key, and the login user is `docker`.
  With the docker and podman drivers minikube itself connects to 127.0.0.1 on the host port
  published for the container's port 22 (`docker port NODE 22/tcp`); kaudit does the same,
  which also works where the container network is not routable from the host (Docker Desktop).
  With the `none` driver the node is this machine (`local`).

Host keys of minikube nodes: minikube generates the node and its key pair and connects with host
key checking off (StrictHostKeyChecking=no, known hosts /dev/null). kaudit does the same for
minikube:// targets only: it accepts the key the node offers into a throwaway known_hosts file,
because the address is a loopback port or a host-only VM address that minikube reassigns when a
profile is recreated, so a pinned key would be refused on the next `minikube start`. Every
other target keeps kaudit's strict host-key checking.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Literal

from installer.errors import InputError, NodeError
from installer.manifest.export import Format
from installer.node import layout
from installer.targets.parse import Cluster, Target

if TYPE_CHECKING:
    from installer.node.facts import Opening
    from installer.transport import Transport

FlavorName = Format  # one flavor per `kaudit export` format: the names are written once, there

KIND_CLUSTER_LABEL = "io.x-k8s.kind.cluster"
KIND_ROLE_LABEL = "io.x-k8s.kind.role"
MINIKUBE_USER = "docker"
KIC_DRIVERS = ("docker", "podman")  # minikube's container drivers: SSH through a published port
COMMAND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Flavor:
    name: FlavorName
    layout: layout.NodeLayout
    undone_by: str  # what rewrites the manifest later and drops a live edit
    make_permanent: str  # the declarative equivalent, via `kaudit export`
    rewritten_by: str  # short name of the tool, for `status`

    def caveat(self, export_args: str | None = None, version: tuple[int, int] | None = None) -> str:
        """The paragraph printed after a change that turns auditing on; with the policy's source
        (`--profile NAME [--set ...]` or `--policy-file PATH`) and the Kubernetes version filled into
        the `kaudit export` command when they are known."""
        text = f"{self.undone_by} {self.make_permanent}"
        if export_args:
            text = text.replace("--profile P ", f"{export_args} ")
        if version:
            text = text.replace("--kubernetes-version X.Y", f"--kubernetes-version {version[0]}.{version[1]}")
        return text

    def reverted_message(self) -> str:
        """For `status`: kaudit's journal says auditing is on, the manifest no longer has it."""
        return (
            f"kaudit enabled auditing here, but the manifest no longer carries kaudit's audit configuration: "
            f"{self.rewritten_by} most likely rewrote it. Re-run `kaudit enable`, and make it permanent with "
            f"`kaudit export --format {self.name}`."
        )


KUBEADM = Flavor(
    name="kubeadm",
    layout=layout.KUBEADM,
    undone_by=(
        "A later `kubeadm upgrade apply` / `kubeadm upgrade node` regenerates "
        "/etc/kubernetes/manifests/kube-apiserver.yaml from the ClusterConfiguration kept in the "
        "kube-system/kubeadm-config ConfigMap (so do `kubeadm init phase control-plane apiserver` and a "
        "control plane re-joined with `kubeadm join --control-plane`): the audit flags and mounts kaudit added "
        "are dropped and the API server restarts without auditing; the policy files stay in /etc/kubernetes/audit."
    ),
    make_permanent=(
        "To make it permanent, put the same settings into the ClusterConfiguration: "
        "`kaudit export --profile P --format kubeadm --kubernetes-version X.Y` prints the apiServer.extraArgs "
        "and extraVolumes to merge into kubeadm-config (`kubectl -n kube-system edit configmap kubeadm-config`, "
        "or your `kubeadm init --config` file) and the policy file to place on every control-plane node."
    ),
    rewritten_by="`kubeadm upgrade` (which regenerates the manifest from the kubeadm-config ClusterConfiguration)",
)

MINIKUBE = Flavor(
    name="minikube",
    layout=layout.MINIKUBE,
    undone_by=(
        "`minikube start` on this profile (after `minikube stop`, a reboot or a driver restart) re-runs "
        "kubeadm's control-plane phase and rewrites the manifests from minikube's own cluster configuration, "
        "dropping kaudit's flags; on VM drivers only a few directories survive a restart (kaudit keeps its "
        "journal and backups in /var/lib/minikube/kaudit, which does), and `minikube delete` removes everything."
    ),
    make_permanent=(
        "To make it permanent, `kaudit export --profile P --format minikube` prints the "
        "`minikube start --extra-config=apiserver.audit-...` flags and the policy file to put under "
        "~/.minikube/files/, which minikube copies onto the node at every start into a directory the API server "
        "already mounts (--extra-config cannot add volumes)."
    ),
    rewritten_by="`minikube start` (which rewrites the manifests from minikube's cluster configuration)",
)

KIND = Flavor(
    name="kind",
    layout=layout.KUBEADM,  # kind's nodes are made by kubeadm
    undone_by=(
        "A kind node keeps this change for as long as its container exists (it survives `docker restart`), "
        "but a cluster recreated with `kind delete cluster` / `kind create cluster` starts clean from kind's "
        "generated kubeadm configuration, without auditing."
    ),
    make_permanent=(
        "To create clusters with auditing on, `kaudit export --profile P --format kind` prints the kind-config "
        "`kubeadmConfigPatches` and `extraMounts` and the policy file to place beside the config."
    ),
    rewritten_by="a recreated kind cluster (which starts from kind's generated configuration)",
)

FLAVORS: dict[str, Flavor] = {f.name: f for f in (KUBEADM, MINIKUBE, KIND)}  # one per export format


def get(name: str) -> Flavor:
    try:
        return FLAVORS[name]
    except KeyError:
        raise InputError(f"unknown flavor {name!r} ({', '.join(FLAVORS)})") from None


def flavor_of_target(target: Target) -> Flavor:
    """What the target's form says; ssh and local targets are kubeadm until the node says otherwise."""
    if target.kind == "kind":
        return KIND
    if target.kind == "minikube":
        return MINIKUBE
    return KUBEADM


# --- detection from the node --------------------------------------------------------------------

# Paths whose presence tells the flavor, each put there by the flavor itself: kind node images carry
# /kind/version; minikube copies the cluster's certificates to /var/lib/minikube/certs (its kubeadm
# certificatesDir) and the Kubernetes binaries to /var/lib/minikube/binaries at every start. An empty
# /var/lib/minikube is no evidence (a leftover, a mount point), and neither is a host name such as
# `k8s-control-plane`: kubeadm control planes are often named so, and kind nodes run no sshd.
KIND_HINTS = ("/kind/version",)
MINIKUBE_HINTS = ("/var/lib/minikube/certs", "/var/lib/minikube/binaries")
HINT_PATHS = (*KIND_HINTS, *MINIKUBE_HINTS)


@dataclass(frozen=True)
class NodeHints:
    hostname: str | None = None
    paths: frozenset[str] = field(default_factory=frozenset)


def gather_hints(transport: Transport) -> tuple[NodeHints, Opening]:
    """One round trip, the node's first: its host name, which of HINT_PATHS exist, and its facts
    (node.facts.gather_opening: gather.sh told each mark's state directory, in the order
    flavor_evidence decides, so that the facts are read with the layout the marks give)."""
    from installer.node import facts

    marks = [*((path, KIND.layout.state_dir) for path in KIND_HINTS),
             *((path, MINIKUBE.layout.state_dir) for path in MINIKUBE_HINTS)]
    opening = facts.gather_opening(transport, KUBEADM.layout, marks)
    return NodeHints(opening.hostname, opening.paths), opening


def flavor_evidence(hints: NodeHints) -> tuple[Flavor, str]:
    """The flavor of a node, and the evidence for it, from node facts: kind by /kind/version on the
    node, minikube by /var/lib/minikube/certs or /var/lib/minikube/binaries; anything else is kubeadm.
    Decided when the node is opened (targets.connect), before its manifest is read: the layout (where
    the manifest and kaudit's state are) follows from it."""
    for path in KIND_HINTS:
        if path in hints.paths:
            return KIND, f"{path} exists on the node"
    for path in MINIKUBE_HINTS:
        if path in hints.paths:
            return MINIKUBE, f"{path} exists on the node"
    return KUBEADM, "no kind or minikube marks"


# --- discovery ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeSpec:
    """One control-plane node found by discovery, and how to reach it."""

    target: Target  # node-level target, e.g. kind://dev/dev-control-plane
    flavor: FlavorName
    via: Literal["docker", "ssh", "local"]
    container: str | None = None  # docker: the node container
    engine: str | None = None  # docker: docker / podman / nerdctl
    host: str | None = None  # ssh
    port: int | None = None
    user: str | None = None
    key_file: str | None = None

    @property
    def name(self) -> str:
        return self.target.raw

    @property
    def layout(self) -> layout.NodeLayout:
        return FLAVORS[self.flavor].layout


@dataclass(frozen=True)
class DiscoveredTarget(Target):
    """A node-level target found by discovery, with how to reach it: opened without discovering again."""

    spec: NodeSpec | None = None

    @classmethod
    def of(cls, spec: NodeSpec) -> DiscoveredTarget:
        return cls(**{f.name: getattr(spec.target, f.name) for f in fields(Target)}, spec=spec)


def run_tool(argv: Sequence[str], why: str, *, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a local helper command (kind's engine, minikube); one-line errors naming the command."""
    binary = shutil.which(argv[0])
    if binary is None:
        raise InputError(f"the {argv[0]} command is not installed or not on PATH ({why})")
    try:
        proc = subprocess.run([binary, *argv[1:]], capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise NodeError(f"`{' '.join(argv)}` did not answer within {timeout:.0f} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip() or proc.stdout.decode("utf-8", "replace").strip()
        first = err.splitlines()[-1] if err else f"exit code {proc.returncode}"
        raise NodeError(f"`{' '.join(argv)}` failed: {first}")
    return proc.stdout.decode("utf-8", "replace")


def _natural(name: str) -> tuple[str, int]:
    m = re.match(r"^(.*?)(\d*)$", name)
    assert m is not None
    return m.group(1), int(m.group(2) or 0)


def _choose(target: Target, names: list[str], others: set[str], aliases: dict[str, str] | None = None) -> list[str]:
    """All control-plane node names, or the one `/node` names (aliases: minikube's m02 for <profile>-m02)."""
    if target.node is None:
        return names
    wanted = (aliases or {}).get(target.node, target.node)
    if wanted in names:
        return [wanted]
    if target.node in others or wanted in others:
        raise InputError(f"target {target.raw}: {target.node} is not a control-plane node of {target.cluster}")
    raise InputError(
        f"target {target.raw}: no node {target.node} in {target.cluster} (control-plane nodes: {', '.join(names)})"
    )


def discover_kind(target: Target) -> list[NodeSpec]:
    from installer.transport.docker import engine_binary

    cluster = target.cluster or "kind"
    engine = engine_binary()
    why = "kind:// targets are reached through the kind node containers"
    fmt = "{{.Names}}\t{{.Status}}"
    base = [engine, "ps", "-a", "--filter", f"label={KIND_CLUSTER_LABEL}={cluster}"]
    cp_out = run_tool([*base, "--filter", f"label={KIND_ROLE_LABEL}=control-plane", "--format", fmt], why)
    rows = [line.split("\t", 1) for line in cp_out.splitlines() if line.strip()]
    all_names = {line.split("\t", 1)[0] for line in run_tool([*base, "--format", fmt], why).splitlines() if line}
    if not rows:
        if not all_names:
            raise InputError(
                f"target {target.raw}: no kind cluster named {cluster} ({engine} has no container labelled "
                f"{KIND_CLUSTER_LABEL}={cluster}; `kind get clusters` lists the clusters)"
            )
        raise InputError(f"target {target.raw}: kind cluster {cluster} has no control-plane node")
    status = {r[0]: (r[1] if len(r) > 1 else "") for r in rows}
    names = sorted(status, key=_natural)
    chosen = _choose(target, names, all_names - set(names))
    for name in chosen:
        if status[name] and not status[name].startswith("Up"):
            raise NodeError(f"kind node {name} is not running ({status[name]}); start it with `{engine} start {name}`")
    return [
        NodeSpec(
            Target(raw=f"kind://{cluster}/{name}", kind="kind", cluster=cluster, node=name),
            "kind", "docker", container=name, engine=engine,
        )
        for name in chosen
    ]


def _minikube_profile(profile: str, raw: str) -> dict[str, object]:
    out = run_tool(["minikube", "profile", "list", "-o", "json"], "minikube:// targets are found with minikube")
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        raise NodeError("`minikube profile list -o json` did not print JSON") from None
    valid = data.get("valid") or [] if isinstance(data, dict) else []
    invalid = data.get("invalid") or [] if isinstance(data, dict) else []
    for entry in valid:
        if isinstance(entry, dict) and entry.get("Name") == profile:
            return entry
    if any(isinstance(e, dict) and e.get("Name") == profile for e in invalid):
        raise InputError(f"target {raw}: minikube profile {profile} is invalid (see `minikube profile list`)")
    known = ", ".join(str(e.get("Name")) for e in valid if isinstance(e, dict)) or "none"
    raise InputError(f"target {raw}: no minikube profile named {profile} (profiles: {known})")


def machine_name(profile: str, node_name: str) -> str:
    """minikube's machine (and container) name of a node: the profile, or `<profile>-<node>` (m02, m03...)."""
    return profile if not node_name or node_name == profile else f"{profile}-{node_name}"


def _published_ssh_port(driver: str, machine: str) -> int:
    out = run_tool([driver, "port", machine, "22/tcp"], f"the minikube {driver} driver publishes the node's SSH port")
    for line in out.splitlines():
        _, _, port = line.strip().rpartition(":")
        if port.isdigit():
            return int(port)
    raise NodeError(f"`{driver} port {machine} 22/tcp` printed no port: {out.strip() or 'nothing'}")


def discover_minikube(target: Target) -> list[NodeSpec]:
    profile = target.cluster or "minikube"
    entry = _minikube_profile(profile, target.raw)
    config = entry.get("Config")
    if not isinstance(config, dict):
        raise NodeError(f"minikube profile {profile} has no cluster configuration")
    status = str(entry.get("Status") or "")
    if status in ("Stopped", "Paused"):
        raise NodeError(f"minikube profile {profile} is {status.lower()}: run `minikube start -p {profile}` first")
    driver = str(config.get("Driver") or "")
    raw_nodes = [n for n in config.get("Nodes") or [] if isinstance(n, dict)]
    control = [n for n in raw_nodes if n.get("ControlPlane")]
    if not control:
        raise NodeError(f"minikube profile {profile} lists no control-plane node")
    workers = {machine_name(profile, str(n.get("Name") or "")) for n in raw_nodes if not n.get("ControlPlane")}
    workers |= {str(n.get("Name")) for n in raw_nodes if not n.get("ControlPlane") and n.get("Name")}
    aliases = {str(n.get("Name")): machine_name(profile, str(n.get("Name") or "")) for n in control if n.get("Name")}
    machines = [machine_name(profile, str(n.get("Name") or "")) for n in control]
    return [_minikube_node(profile, m, driver) for m in _choose(target, machines, workers, aliases)]


def _minikube_node(profile: str, machine: str, driver: str) -> NodeSpec:
    node_target = Target(raw=f"minikube://{profile}/{machine}", kind="minikube", cluster=profile, node=machine)
    if driver == "none":
        return NodeSpec(node_target, "minikube", "local")
    why = "minikube:// targets are reached with minikube's own address and key"
    key = run_tool(["minikube", "-p", profile, "ssh-key", "-n", machine], why).strip()
    if driver in KIC_DRIVERS:
        host, port = "127.0.0.1", _published_ssh_port(driver, machine)
    else:
        host, port = run_tool(["minikube", "-p", profile, "ip", "-n", machine], why).strip(), 22
    if not host:
        raise NodeError(f"`minikube -p {profile} ip -n {machine}` printed no address")
    return NodeSpec(node_target, "minikube", "ssh", host=host, port=port, user=MINIKUBE_USER, key_file=key)


def discover(target: Target) -> list[NodeSpec]:
    """The control-plane nodes a kind:// or minikube:// target stands for (one when /node is given)."""
    if target.kind == "kind":
        return discover_kind(target)
    if target.kind == "minikube":
        return discover_minikube(target)
    raise InputError(f"target {target.raw}: only kind:// and minikube:// targets are discovered here "
                     "(kube:// targets are expanded to their nodes by expand_cluster)")


def expand_cluster(cluster: Cluster) -> Cluster:
    """Replace kind:// and minikube:// targets by one node-level target per control-plane node, and
    kube:// targets by the plain ssh targets of their control-plane nodes (targets.kube).

    Runs the discovery commands: call it per cluster, where one cluster's failure is reported
    without stopping the others. A discovered node keeps what discovery found (DiscoveredTarget), so
    connect.open_transport reaches it without running discovery again.
    """
    nodes: list[Target] = []
    for t in cluster.nodes:
        if t.kind in ("kind", "minikube"):
            nodes.extend(DiscoveredTarget.of(spec) for spec in discover(t))
        elif t.kind == "kube":
            from installer.targets import kube

            nodes.extend(kube.node_targets(t))
        else:
            nodes.append(t)
    return replace(cluster, nodes=nodes)


def resolve_node(target: Target) -> NodeSpec:
    """The one node a kind:// or minikube:// target names; refuses a multi-node target without /node."""
    specs = discover(target)
    if len(specs) != 1:
        names = ", ".join(s.target.node or "" for s in specs)
        raise InputError(
            f"target {target.raw} has {len(specs)} control-plane nodes ({names}): expand the cluster first, "
            f"or name one as {target.kind}://{target.cluster}/NODE"
        )
    return specs[0]
