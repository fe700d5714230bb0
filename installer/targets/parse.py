"""Targets as users type them, and the model they expand to: clusters of control-plane nodes.

Forms (docs/design.md section 5): `user@host[:port]`, `ssh://[user@]host[:port]`, an `~/.ssh/config`
alias (any bare host name), `[::1]:22` for IPv6, `local`, `kind://[cluster][/node]`,
`minikube://[profile][/node]` and `kube://CONTEXT` (a kubeconfig context: its control-plane nodes as
the API lists them). Parsing is pure; discovery of kind and minikube nodes lives in the flavors, of
a kube context's nodes in targets.kube.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from installer.errors import InputError

Kind = Literal["ssh", "local", "kind", "minikube", "kube"]

_USER = r"[A-Za-z0-9_.][A-Za-z0-9_.-]*"
_HOSTNAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_SSH_RE = re.compile(
    rf"^(?:(?P<user>{_USER})@)?(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>{_HOSTNAME}))(?::(?P<port>[0-9]+))?$"
)
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Target:
    """One parsed target. For ssh: user/host/port (None = from ~/.ssh/config or defaults)."""

    raw: str
    kind: Kind
    host: str | None = None
    user: str | None = None
    port: int | None = None
    cluster: str | None = None  # kind cluster / minikube profile / kube context
    node: str | None = None  # one node of that cluster, None = every control-plane node

    @property
    def display(self) -> str:
        if self.kind == "ssh":
            user = f"{self.user}@" if self.user else ""
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            port = f":{self.port}" if self.port else ""
            return f"{user}{host}{port}"
        return self.raw


def _parse_cluster_url(raw: str, scheme: Kind, default: str) -> Target:
    rest = raw[len(scheme) + 3 :]
    cluster, _, node = rest.partition("/")
    cluster = cluster or default
    for part, what in ((cluster, "cluster"), (node, "node")):
        if part and not _NAME_RE.match(part):
            raise InputError(f"target {raw!r}: {what} name {part!r} is not a valid name")
    return Target(raw=raw, kind=scheme, cluster=cluster, node=node or None)


KUBE_SCHEME = "kube://"


def context_of(raw: str) -> str:
    """`kube://CONTEXT` or a bare CONTEXT (as `kaudit inventory` takes it) to the context name."""
    text = raw.strip()
    context = text[len(KUBE_SCHEME):] if text.startswith(KUBE_SCHEME) else text
    if not context:
        raise InputError(f"target {raw!r} names no kube context (kube://CONTEXT; `kubectl config get-contexts` "
                         "lists them)")
    if any(ord(c) < 0x20 or c == "\x7f" for c in context):
        raise InputError(f"target {raw!r}: the context name contains control characters")
    return context


def parse_target(raw: str) -> Target:
    """Parse one target; an InputError says what is wrong with it."""
    text = raw.strip()
    if not text:
        raise InputError("empty target")
    if text == "local":
        return Target(raw=text, kind="local")
    if text.startswith("kind://"):
        return _parse_cluster_url(text, "kind", "kind")
    if text.startswith("minikube://"):
        return _parse_cluster_url(text, "minikube", "minikube")
    if text.startswith("kube://"):
        return Target(raw=text, kind="kube", cluster=context_of(text))
    if text.startswith("ssh://"):
        text = text[len("ssh://") :].rstrip("/")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise InputError(
            f"target {raw!r}: unknown scheme {scheme!r} (use ssh://, kind://, minikube://, kube:// or local)"
        )
    m = _SSH_RE.match(text)
    if not m:
        raise InputError(
            f"target {raw!r} is not user@host[:port], ssh://user@host:port, an ssh config alias, "
            "kind://cluster, minikube://profile, kube://context or local"
        )
    port = int(m["port"]) if m["port"] else None
    if port is not None and not 1 <= port <= 65535:
        raise InputError(f"target {raw!r}: port {port} is out of range 1-65535")
    return Target(raw=raw, kind="ssh", user=m["user"], host=m["ipv6"] or m["host"], port=port)


@dataclass
class Cluster:
    """Control-plane nodes of one cluster: changed one at a time, never in parallel."""

    name: str
    nodes: list[Target] = field(default_factory=list)


def group_targets(targets: list[Target]) -> list[Cluster]:
    """Targets named together on one command line are the control-plane nodes of one cluster.

    kind, minikube and kube targets are clusters of their own; their nodes are discovered when the
    cluster is rolled out (flavors.expand_cluster).
    """
    direct = [t for t in targets if t.kind in ("ssh", "local")]
    clusters: list[Cluster] = []
    if direct:
        clusters.append(Cluster(name=direct[0].display if len(direct) == 1 else "cluster", nodes=direct))
    for t in targets:
        if t.kind in ("kind", "minikube", "kube"):
            clusters.append(Cluster(name=t.raw, nodes=[t]))
    return clusters
