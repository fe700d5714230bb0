"""Read side of the manifest module: what a kube-apiserver static pod manifest says.

Pure functions of bytes. Flags are keyed by their full name including the dashes
(`"--secure-port"`), values as the API server would see them.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from installer.manifest.parse import (
    ManifestError,
    Node,
    compose,
    decode,
    get,
    has_anchors,
    is_map,
    is_scalar,
    is_seq,
    items,
    odd_line_breaks,
    resolve11,
    text,
)

ANNOTATION = "kaudit.dev/audit"
AUDIT_PATH_FLAGS = ("--audit-policy-file", "--audit-log-path", "--audit-webhook-config-file")
_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "busybox"})
_SHELL_STOP = frozenset({";", "&&", "||", "|", "&"})


@dataclass(frozen=True)
class Probe:
    scheme: str
    host: str
    port: int
    path: str
    source: str  # "readinessProbe", "startupProbe", "livenessProbe" or "flags"
    # The probe asks the API server itself (HTTPS, its secure port, one of its own addresses): only then may
    # the node's admin credentials go with it. A probe pointed elsewhere never gets them.
    to_itself: bool = True

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme.lower()}://{host}:{self.port}{self.path}"


@dataclass(frozen=True)
class PathCheck:
    flag: str
    container_path: str
    host_path: str | None  # None: not reachable through a hostPath mount
    mount_is_directory: bool | None  # False: the file itself is mounted (breaks log rotation)
    read_only: bool | None


@dataclass(frozen=True)
class AuditInfo:
    flags: dict[str, str]
    managed: bool
    profile: str | None
    policy_sha12: str | None
    paths: list[PathCheck]
    foreign: list[str]
    record: dict[str, Any] = field(default_factory=dict, repr=False)  # kaudit's annotation, parsed

    @property
    def configured(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class Mount:
    name: str
    mount_path: str
    read_only: bool
    sub_path: str


@dataclass(frozen=True)
class Volume:
    name: str
    host_path: str | None  # None: not a hostPath volume
    type: str


@dataclass(frozen=True)
class ManifestInfo:
    pod_name: str
    namespace: str
    container: str
    image: str
    kubernetes_version: tuple[int, int] | None
    argv: list[str]
    flags: dict[str, str]
    probe: Probe
    audit: AuditInfo
    unsafe: str | None = None  # why patch() would refuse this manifest; None when it can be patched
    mounts: tuple[Mount, ...] = field(default=(), repr=False)
    volumes: tuple[Volume, ...] = field(default=(), repr=False)

    def mount_for(self, container_path: str) -> Mount | None:
        """The mount that serves `container_path` (the deepest mount point above it)."""
        path = posixpath.normpath(container_path)
        best: Mount | None = None
        for m in self.mounts:
            mp = posixpath.normpath(m.mount_path)
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (
                best is None or len(mp) > len(posixpath.normpath(best.mount_path))
            ):
                best = m
        return best

    def host_path(self, container_path: str) -> str | None:
        """Where `container_path` lives on the node, or None when no hostPath mount reaches it."""
        if not container_path.startswith("/"):
            return None
        m = self.mount_for(container_path)
        if m is None:
            return None
        vol = next((v for v in self.volumes if v.name == m.name), None)
        if vol is None or vol.host_path is None:
            return None
        rest = posixpath.relpath(posixpath.normpath(container_path), posixpath.normpath(m.mount_path))
        base = posixpath.join(vol.host_path, m.sub_path) if m.sub_path else vol.host_path
        return posixpath.normpath(base if rest == "." else posixpath.join(base, rest))


# --- argv -------------------------------------------------------------------------------------


def binary_index(argv: list[str]) -> int | None:
    """Index of the first flag of kube-apiserver in argv (also behind go-runner or hyperkube)."""
    for i, tok in enumerate(argv):
        base = tok.rsplit("/", 1)[-1]
        if base == "kube-apiserver":
            return i + 1
        if base == "hyperkube" and i + 1 < len(argv) and argv[i + 1] in ("apiserver", "kube-apiserver"):
            return i + 2
    return None


def parse_flags(tokens: list[str]) -> dict[str, str]:
    """`--f=v` and `--f v` forms; a bare flag reads "true" (pflag's reading of a bool)."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and tok not in ("-", "--"):
            name = "--" + tok.lstrip("-")
            if "=" in tok:
                name, value = "--" + tok.split("=", 1)[0].lstrip("-"), tok.split("=", 1)[1]
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                value = tokens[i + 1]
                i += 1
            else:
                value = "true"
            flags[name] = value
        i += 1
    return flags


def _shell_flags(script: str) -> list[str]:
    """Best-effort flags of kube-apiserver inside a shell string (read side only)."""
    try:
        tokens = shlex.split(script, comments=True)
    except ValueError:
        tokens = script.split()
    start = binary_index(tokens)
    if start is None:
        return []
    out = []
    for tok in tokens[start:]:
        if tok in _SHELL_STOP or re.match(r"^\d*[<>]", tok):
            break
        out.append(tok)
    return out


@dataclass
class Located:
    """Where the interesting parts of the Pod are, as nodes (for the patcher)."""

    text: str
    root: Node
    metadata: Node  # or None
    spec: Node
    container: Node
    command: Node  # or None
    args: Node  # or None
    unsafe: str | None
    flag_nodes: list[Node]  # the scalar nodes holding kube-apiserver's flags, in argv order


def _container_argv(c: Node) -> tuple[Node | None, Node | None, list[Node]]:
    command, args = get(c, "command"), get(c, "args")
    nodes: list[Node] = []
    for seq in (command, args):
        if seq is None or (text(seq) is None and is_scalar(seq)):
            continue
        if not is_seq(seq):
            raise ManifestError(f"container {text(get(c, 'name'))!r}: command/args is not a list")
        nodes.extend(seq.value)
    return command, args, nodes


def locate(data: bytes) -> Located:
    src = decode(data)
    root = compose(src)
    if not is_map(root):
        raise ManifestError("not a Kubernetes object: the document is not a mapping")
    kind, api = text(get(root, "kind")), text(get(root, "apiVersion"))
    if kind != "Pod" or api != "v1":
        raise ManifestError(f"not a v1 Pod (apiVersion {api!r}, kind {kind!r})")
    spec = get(root, "spec")
    if spec is None or not is_map(spec):
        raise ManifestError("the Pod has no spec")
    direct: list[tuple[Node, Node | None, Node | None, list[Node], int]] = []
    shell: list[tuple[Node, Node | None, Node | None, list[Node]]] = []
    for c in items(get(spec, "containers")):
        if not is_map(c):
            continue
        command, args, nodes = _container_argv(c)
        argv = [str(n.value) if is_scalar(n) else "" for n in nodes]
        start = binary_index(argv)
        if start is not None:
            direct.append((c, command, args, nodes, start))
        elif any(re.search(r"(^|[\s/])(kube-apiserver|hyperkube)\s", a) for a in argv):
            shell.append((c, command, args, nodes))
    names = [text(get(c[0], "name")) or "?" for c in (*direct, *shell)]
    if len(names) > 1:
        raise ManifestError(
            f"several kube-apiserver containers ({', '.join(names)}); kaudit will not guess which to edit"
        )
    if not names:
        raise ManifestError("no container runs kube-apiserver (looked at each container's command and args)")
    unsafe: str | None = None
    if direct:
        c, command, args, nodes, start = direct[0]
        flag_nodes = nodes[start:]
        if any(not is_scalar(n) for n in nodes):
            unsafe = "the kube-apiserver command holds something other than strings"
    else:
        c, command, args, nodes = shell[0]
        first = str(nodes[0].value).rsplit("/", 1)[-1] if nodes else ""
        how = f"`{first} -c`" if first in _SHELLS else "a wrapper"
        unsafe = (
            f"kube-apiserver is started through {how} with its flags inside one string; "
            "kaudit cannot edit that safely (edit the manifest by hand, or use a plain command list)"
        )
        flag_nodes = []
    if unsafe is None:
        if getattr(root, "flow_style", False) or src.lstrip().startswith(("{", "[")):
            unsafe = "the manifest is a JSON (flow-style) document; kaudit edits only block-style YAML"
        elif has_anchors(root):
            unsafe = "the manifest uses YAML anchors or aliases; an edit could change more than one place"
        elif odd_line_breaks(src):
            unsafe = "the manifest has line breaks other than LF or CRLF"
        else:
            for n in (command, args):
                if n is not None and is_seq(n) and n.flow_style and n.value:
                    unsafe = "the kube-apiserver command is a flow-style list ([...]); kaudit edits block lists"
    return Located(src, root, get(root, "metadata"), spec, c, command, args, unsafe, flag_nodes)


# --- mounts, volumes, probes ------------------------------------------------------------------


def _bool(node: Node | None) -> bool:
    v = text(node)
    return bool(resolve11(v)) if v is not None and node is not None and node.style is None else v == "true"


def mounts_of(container: Node) -> tuple[Mount, ...]:
    out = []
    for m in items(get(container, "volumeMounts")):
        out.append(
            Mount(
                name=text(get(m, "name")) or "",
                mount_path=text(get(m, "mountPath")) or "",
                read_only=_bool(get(m, "readOnly")),
                sub_path=text(get(m, "subPath")) or "",
            )
        )
    return tuple(out)


def volumes_of(spec: Node) -> tuple[Volume, ...]:
    out = []
    for v in items(get(spec, "volumes")):
        hp = get(v, "hostPath")
        out.append(
            Volume(
                name=text(get(v, "name")) or "",
                host_path=text(get(hp, "path")) if hp is not None and is_map(hp) else None,
                type=(text(get(hp, "type")) or "") if hp is not None and is_map(hp) else "",
            )
        )
    return tuple(out)


def _probe(container: Node, flags: dict[str, str]) -> Probe:
    bind = flags.get("--bind-address", "")
    local = "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind  # noqa: S104 (wildcard means any)
    port_flag = flags.get("--secure-port", "6443")  # 6443 is only the flag's default
    secure_port = int(port_flag) if port_flag.isdigit() else 6443
    own_hosts = {local, flags.get("--advertise-address", "")} - {""}
    if bind in ("", "0.0.0.0", "::"):  # noqa: S104 (listening everywhere: loopback too)
        own_hosts |= {"127.0.0.1", "localhost", "::1"}
    for source in ("readinessProbe", "startupProbe", "livenessProbe"):
        http = get(get(container, source), "httpGet")
        if http is None or not is_map(http):
            continue
        port_text = text(get(http, "port")) or ""
        port: int | None = int(port_text) if port_text.isdigit() else None
        if port is None:  # a named port: the container's ports list says which number
            for p in items(get(container, "ports")):
                if text(get(p, "name")) == port_text and (text(get(p, "containerPort")) or "").isdigit():
                    port = int(text(get(p, "containerPort")) or "0")
        if port is None:
            continue
        scheme = (text(get(http, "scheme")) or "HTTP").upper()
        host = text(get(http, "host")) or local
        return Probe(
            scheme=scheme,
            host=host,
            port=port,
            path="/" + (text(get(http, "path")) or "").lstrip("/"),
            source=source,
            to_itself=scheme == "HTTPS" and port == secure_port and host in own_hosts,
        )
    return Probe("HTTPS", local, secure_port, "/readyz", "flags")


def _version(image: str) -> tuple[int, int] | None:
    m = re.search(r":v(\d+)\.(\d+)(?:[.\-+]|$)", image.split("@", 1)[0].rsplit("/", 1)[-1])
    return (int(m.group(1)), int(m.group(2))) if m else None


# --- audit ------------------------------------------------------------------------------------


def _path_checks(info: ManifestInfo, flags: dict[str, str]) -> list[PathCheck]:
    out = []
    for flag in AUDIT_PATH_FLAGS:
        value = flags.get(flag)
        if not value or value == "-":  # "-" is stdout: nothing to mount
            continue
        m = info.mount_for(value) if value.startswith("/") else None
        is_dir = None if m is None else posixpath.normpath(m.mount_path) != posixpath.normpath(value)
        out.append(PathCheck(flag, value, info.host_path(value), is_dir, None if m is None else m.read_only))
    return out


def audit_mounts(info: ManifestInfo, flags: dict[str, str]) -> list[Mount]:
    """Mounts that exist for auditing only, which --adopt replaces: an audit path in the mount
    path or host path, or serving an audit flag's path under an audit-like name; and serving no
    other flag's path. A name alone does not count (unrelated volumes may be called anything)."""
    other_paths = [v for k, v in flags.items() if not k.startswith("--audit-") and v.startswith("/")]
    audit_paths = [flags[f] for f in AUDIT_PATH_FLAGS if flags.get(f, "").startswith("/")]
    out = []
    for m in info.mounts:
        vol = next((v for v in info.volumes if v.name == m.name), None)
        by_path = "audit" in (m.mount_path + ((vol.host_path or "") if vol else "")).lower()
        serves = any(info.mount_for(p) is m for p in audit_paths)
        if not (by_path or (serves and "audit" in m.name.lower())):
            continue
        if not any(info.mount_for(p) is m for p in other_paths):
            out.append(m)
    return out


def describe_mount(m: Mount, vols: tuple[Volume, ...]) -> str:
    v = next((v for v in vols if v.name == m.name), None)
    src = f"hostPath {v.host_path}" if v and v.host_path else "not a hostPath"
    kind = f", type {v.type}" if v and v.type else ""
    return f"volumeMount {m.name!r} at {m.mount_path} ({'read-only' if m.read_only else 'read-write'}; {src}{kind})"


def _audit(info: ManifestInfo, loc: Located) -> AuditInfo:
    flags = {k: v for k, v in info.flags.items() if k.startswith("--audit-")}
    record: dict[str, Any] = {}
    raw = text(get(get(loc.metadata, "annotations"), ANNOTATION))
    if raw is not None:
        try:
            parsed = json.loads(raw)
            record = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            record = {}
    managed = bool(record)
    ours_flags = set(record.get("flags", []))
    ours_vols = set(record.get("volumes", []))
    foreign = [f"flag {k}={v}" for k, v in flags.items() if k not in ours_flags]
    for m in audit_mounts(info, info.flags):
        if m.name not in ours_vols:
            foreign.append(describe_mount(m, info.volumes))
    used = {m.name for m in info.mounts}
    for v in info.volumes:
        if v.name not in used and v.name not in ours_vols and "audit" in (v.host_path or "").lower():
            foreign.append(f"volume {v.name!r} (hostPath {v.host_path}), mounted nowhere in kube-apiserver")
    return AuditInfo(
        flags=flags,
        managed=managed,
        profile=record.get("profile"),
        policy_sha12=record.get("policy"),
        paths=_path_checks(info, flags),
        foreign=foreign,
        record=record,
    )


def info_from(loc: Located) -> ManifestInfo:
    c = loc.container
    argv = [str(n.value) for n in items(loc.command) + items(loc.args) if is_scalar(n)]
    if loc.flag_nodes:
        tokens = [str(n.value) for n in loc.flag_nodes if is_scalar(n)]
    else:
        tokens = next((t for a in argv if (t := _shell_flags(a))), [])
    flags = parse_flags(tokens)
    image = text(get(c, "image")) or ""
    info = ManifestInfo(
        pod_name=text(get(loc.metadata, "name")) or "",
        namespace=text(get(loc.metadata, "namespace")) or "default",
        container=text(get(c, "name")) or "",
        image=image,
        kubernetes_version=_version(image),
        argv=argv,
        flags=flags,
        probe=_probe(c, flags),
        audit=AuditInfo({}, False, None, None, [], []),
        unsafe=loc.unsafe,
        mounts=mounts_of(c),
        volumes=volumes_of(loc.spec),
    )
    object.__setattr__(info, "audit", _audit(info, loc))
    return info


@dataclass(frozen=True, eq=False)
class Manifest:
    """One version of a manifest, parsed once: its bytes, where things are, and what it says.

    Every step that asks about these bytes asks this value; nothing parses them again."""

    data: bytes
    located: Located
    info: ManifestInfo
    # validate_pod's findings per Kubernetes version, filled once by manifest.validate.validate_pod
    checked: dict[tuple[int, int] | None, list[str]] = field(default_factory=dict, repr=False)


def load(data: bytes) -> Manifest:
    """Parse a kube-apiserver static pod manifest once; ManifestError when it is not one."""
    loc = locate(data)
    return Manifest(data, loc, info_from(loc))


def read(data: bytes) -> ManifestInfo:
    """Read a kube-apiserver static pod manifest; ManifestError when it is not one."""
    return load(data).info


inspect = read
