"""`kube://CONTEXT`: a cluster's control-plane nodes as its own API lists them (issue 15 item 7).

    kubectl --context CONTEXT get nodes -l node-role.kubernetes.io/control-plane -o json

Each node's first InternalIP address, else its first Hostname address, becomes a plain ssh
target: the user's ssh_config (User, Port, IdentityFile, ProxyJump), `-F`, `-i`, known_hosts and
the sudo options apply exactly as for `kaudit enable 10.0.0.11 10.0.0.12` typed by hand. The
nodes of one context are one cluster: changed one at a time behind the health gate, like an
inventory group. kubectl is the only thing asked (it reads $KUBECONFIG as it always does); a
failure before any node is reached changes nothing.

Pure, and tested without kubectl: `parse_nodes` (kubectl's JSON to `KubeNode`s), `kubectl_failure`
(kubectl's exit and stderr to one line), `inventory_text` (the Ansible YAML inventory
`kaudit inventory CONTEXT...` prints). `list_control_plane` is the one subprocess call.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from installer.errors import InputError, KauditError, NodeError
from installer.targets.parse import KUBE_SCHEME as SCHEME
from installer.targets.parse import Target, parse_target

CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
COMMAND_TIMEOUT = 60.0

# kubectl's client-go logs (klog) before its own message: `E0703 08:28:16.306732  191762 memcache.go:265] ...`
_KLOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w.-]+:\d+\] ")
# client-go's errContextNotFound, as kubectl prints it: `Error in configuration: context was not found for
# specified context: NAME` (kubectl 1.x: several validation errors are joined as `[..., ...]`)
_NO_CONTEXT = "context was not found for specified context"
# kubectl's messages for a server it cannot reach (refused, timed out, no route, no such host, TLS handshake)
_UNREACHABLE = (
    "The connection to the server", "Unable to connect to the server", "dial tcp", "i/o timeout",
    "connection refused", "no such host", "no route to host", "TLS handshake timeout", "context deadline exceeded",
)
_MAX_MESSAGE = 240

# (argv) -> (exit code, stdout, stderr); the default runs the real kubectl
Runner = Callable[[Sequence[str]], tuple[int, str, str]]


@dataclass(frozen=True)
class KubeNode:
    """One control-plane node from the API: its name, the address kaudit connects to and where it came from."""

    name: str
    address: str
    address_type: str  # InternalIP or Hostname

    @property
    def target(self) -> Target:
        """The ssh target the user would have typed for this node."""
        raw = f"[{self.address}]" if ":" in self.address else self.address
        return Target(raw=raw, kind="ssh", host=self.address)


def kubectl_argv(context: str) -> list[str]:
    return ["kubectl", "--context", context, "get", "nodes", "-l", CONTROL_PLANE_LABEL, "-o", "json"]


def _shorten(text: str) -> str:
    text = text.strip()
    for prefix in ("error: ", "Error: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    text = text.replace(" - did you specify the right host or port?", "")
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def kubectl_message(stderr: str, stdout: str = "") -> str:
    """kubectl's own error, one line: its last line that is not a client-go log line (a log line's `err=`
    text when there is nothing else)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    own = [ln for ln in lines if not _KLOG.match(ln)]
    if own:
        return _shorten(own[-1])
    if lines:
        last = _KLOG.sub("", lines[-1])
        m = re.search(r'err="((?:[^"\\]|\\.)*)"', last)
        return _shorten(m.group(1).replace('\\"', '"') if m else last)
    out = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    return _shorten(out[-1]) if out else ""


def kubectl_failure(context: str, code: int, stderr: str, stdout: str = "") -> KauditError:
    """What a failed `kubectl get nodes` means, as one line: an unknown context (InputError), an API server
    that does not answer, or kubectl's own message (NodeError). Exit code 2 either way."""
    where = f"{SCHEME}{context}"
    message = kubectl_message(stderr, stdout) or f"exit code {code}"
    if _NO_CONTEXT in stderr:
        return InputError(f"no context {context!r} in the kubeconfig (`kubectl config get-contexts` lists them)",
                          node=where)
    if any(marker in stderr for marker in _UNREACHABLE):
        return NodeError(f"kubectl cannot reach the cluster's API server, so its control-plane nodes cannot be "
                         f"listed (kubectl: {message})", node=where)
    return NodeError(f"`kubectl --context {context} get nodes` failed: {message}", node=where)


def _address(node: dict[str, Any]) -> tuple[str, str] | None:
    status = node.get("status")
    addresses = status.get("addresses") if isinstance(status, dict) else None
    if not isinstance(addresses, list):
        return None
    for kind in ("InternalIP", "Hostname"):
        for entry in addresses:
            if isinstance(entry, dict) and entry.get("type") == kind and isinstance(entry.get("address"), str):
                value = entry["address"].strip()
                if value:
                    return value, kind
    return None


def parse_nodes(text: str, context: str) -> list[KubeNode]:
    """kubectl's `-o json` node list to the control-plane nodes, in kubectl's order. An empty list is the
    managed-cluster error; output that is not a node list, or a node without a usable address, is an error
    naming what is wrong."""
    where = f"{SCHEME}{context}"
    shown = f"`kubectl --context {context} get nodes -l {CONTROL_PLANE_LABEL} -o json`"
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        first = text.strip().splitlines()[0][:80] if text.strip() else "nothing"
        raise NodeError(f"{shown} did not print JSON ({exc.msg} at line {exc.lineno}; it began {first!r})",
                        node=where) from None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list) or doc.get("kind") not in ("List", "NodeList"):
        what = f"kind {doc.get('kind')!r}" if isinstance(doc, dict) else type(doc).__name__
        raise NodeError(f"{shown} did not print a node list (a {what} without items)", node=where)
    nodes: list[KubeNode] = []
    for i, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(item, dict) or item.get("kind", "Node") != "Node" or not isinstance(name, str) or not name:
            raise NodeError(f"{shown}: item {i} is not a Node with a name", node=where)
        found = _address(item)
        if found is None:
            raise NodeError(f"control-plane node {name} reports neither an InternalIP nor a Hostname address "
                            "(status.addresses); name it by hand", node=where)
        address, kind = found
        try:
            parse_target(f"[{address}]" if ":" in address else address)  # the syntax of a typed target
        except InputError:
            raise NodeError(f"control-plane node {name}: its {kind} {address!r} is not a host name or address",
                            node=where) from None
        nodes.append(KubeNode(name, address, kind))
    if not nodes:
        raise NodeError(
            f"the API lists no node labelled {CONTROL_PLANE_LABEL}: a managed cluster (EKS, GKE, AKS and the like) "
            "runs its control plane out of sight, where kaudit cannot change it; if this cluster's control-plane "
            "nodes carry another label, name them by hand",
            node=where,
        )
    return nodes


def run_kubectl(argv: Sequence[str]) -> tuple[int, str, str]:
    """The real kubectl; a missing binary or a kubectl that does not answer in time is a KauditError."""
    binary = shutil.which(argv[0])
    if binary is None:
        raise InputError("the kubectl command is not installed or not on PATH (kube:// targets list their "
                         "control-plane nodes with kubectl)")
    try:
        proc = subprocess.run([binary, *argv[1:]], capture_output=True, timeout=COMMAND_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise NodeError(f"`{' '.join(argv)}` did not answer within {COMMAND_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise InputError(f"cannot run kubectl ({binary}): {exc.strerror}") from None
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def list_control_plane(context: str, run: Runner | None = None) -> list[KubeNode]:
    """The control-plane nodes of one kube context (the one kubectl call; `run` stands in for kubectl)."""
    try:
        code, out, err = (run or run_kubectl)(kubectl_argv(context))
    except KauditError as exc:
        exc.node = exc.node or f"{SCHEME}{context}"
        raise
    if code != 0:
        raise kubectl_failure(context, code, err, out)
    return parse_nodes(out, context)


def node_targets(target: Target, run: Runner | None = None) -> list[Target]:
    """A kube:// target's nodes as the ssh targets the user would have typed, in kubectl's order."""
    assert target.kind == "kube" and target.cluster is not None
    return [n.target for n in list_control_plane(target.cluster, run)]


# -- `kaudit inventory` -------------------------------------------------------------------------------
PARENT_GROUP = "control_plane"  # kaudit.audit.rollout's default hosts
_RESERVED_GROUPS = ("all", "ungrouped", PARENT_GROUP)


def group_name(context: str, taken: set[str]) -> str:
    """An Ansible group name for a context: letters, digits and `_` (Ansible warns about any other character
    and cannot use such a name as a variable), not starting with a digit, unique among `taken`."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", context).strip("_") or "context"
    if name[0].isdigit() or name in _RESERVED_GROUPS:
        name = f"kube_{name}"
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}_{n}", n + 1
    taken.add(unique)
    return unique


def inventory_document(found: list[tuple[str, list[KubeNode]]]) -> dict[str, Any]:
    """{context: nodes} to an Ansible YAML inventory: a group per context (its hosts the nodes, by node name,
    `ansible_host` the address kube:// connects to; `kaudit_cluster` names the group for the collection's
    health gate), all children of `control_plane`. A node name found in two contexts is qualified by the
    group, so no host lands in two clusters."""
    counts: dict[str, int] = {}
    for _, nodes in found:
        for n in nodes:
            counts[n.name] = counts.get(n.name, 0) + 1
    taken: set[str] = set()
    children: dict[str, Any] = {}
    for context, nodes in found:
        group = group_name(context, taken)
        hosts = {(n.name if counts[n.name] == 1 else f"{group}-{n.name}"): {"ansible_host": n.address} for n in nodes}
        children[group] = {"hosts": hosts, "vars": {"kaudit_cluster": group, "kaudit_kube_context": context}}
    return {"all": {"children": {PARENT_GROUP: {"children": children}}}}


def inventory_text(found: list[tuple[str, list[KubeNode]]]) -> str:
    """The YAML `kaudit inventory` prints: a comment saying where it came from, then the inventory."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(inventory_document(found), out)
    contexts = " ".join(c for c, _ in found)
    header = (
        f"# kaudit inventory {contexts}\n"
        f"# The control-plane nodes of each kube context, as kube://CONTEXT finds them (kubectl get nodes -l\n"
        f"# {CONTROL_PLANE_LABEL}: InternalIP, else Hostname): one group per context, each a cluster\n"
        f"# whose nodes change one at a time, all in the group {PARENT_GROUP}. User, port, key and jump host\n"
        "# come from your ssh_config for each address, as they do for kube://CONTEXT.\n"
    )
    return header + out.getvalue()
