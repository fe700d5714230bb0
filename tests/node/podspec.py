"""Static pod manifests read the way the kubelet reads them (used by the simulator and its instances).

Independent of `installer`: this stands in for the kubelet and must not share kaudit's code.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

# kube-apiserver boolean flags: `--flag value` only takes the next token when the flag is not boolean.
BOOL_FLAGS = {
    "allow-privileged", "anonymous-auth", "enable-bootstrap-token-auth", "profiling", "also-stdout",
    "audit-log-compress", "audit-log-truncate-enabled", "audit-webhook-truncate-enabled",
    "audit-log-batch-throttle-enable", "audit-webhook-batch-throttle-enable", "enable-aggregator-routing",
    "enable-priority-and-fairness", "enable-logs-handler", "logtostderr", "alsologtostderr",
    "enable-garbage-collector", "enable-swagger-ui", "insecure-skip-tls-verify", "help", "version",
    "audit-dynamic-configuration", "experimental-encryption-provider-config-automatic-reload",
}

SHELL_STOP = (";", "&&", "||", "|", "&")


class ManifestError(ValueError):
    """The file is not a usable Pod: the kubelet drops it."""


def load_doc(data: bytes) -> Any:
    """YAML 1.1 like the kubelet (sigs.k8s.io/yaml); first document only; JSON is YAML too."""
    y = YAML(typ="safe", pure=True)
    y.version = (1, 1)
    try:
        for doc in y.load_all(data):
            return doc
        return None
    except Exception as e:
        try:
            return json.loads(data)
        except Exception:
            raise ManifestError(f"cannot parse: {e}") from e


def canonical_hash(doc: Any) -> str:
    """What decides a restart: the parsed content, not the bytes (a comment edit changes nothing)."""
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()


@dataclass
class Mount:
    mount_path: str
    host_path: str | None  # None: not a hostPath volume (emptyDir, secret...): nothing on the host
    read_only: bool
    volume_type: str = ""


@dataclass
class Pod:
    file: str
    doc: dict[str, Any]
    namespace: str
    name: str
    content_hash: str
    container_name: str
    argv: list[str]
    mounts: list[Mount] = field(default_factory=list)
    image: str = ""
    is_apiserver: bool = True

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def uid(self) -> str:
        # The kubelet derives a static pod's UID from a hash of its content.
        return self.content_hash[:32]

    def resolve(self, container_path: str) -> Mount | None:
        """The host side of a container path: through the longest mountPath prefix, else None."""
        return resolve(self.mounts, container_path)

    def host_path(self, container_path: str) -> str | None:
        m = self.resolve(container_path)
        if m is None or m.host_path is None:
            return None
        p = _norm(container_path)
        rest = p[len(_norm(m.mount_path)):].lstrip("/")
        return posixpath.join(m.host_path, rest) if rest else m.host_path


def _norm(p: str) -> str:
    return posixpath.normpath("/" + p.lstrip("/")) if p else "/"


def resolve(mounts: list[Mount], container_path: str) -> Mount | None:
    p = _norm(container_path)
    best: Mount | None = None
    for m in mounts:
        mp = _norm(m.mount_path)
        if (p == mp or p.startswith(mp.rstrip("/") + "/")) and (
            best is None or len(mp) > len(_norm(best.mount_path))
        ):
            best = m
    return best


def _is_apiserver(c: dict[str, Any]) -> bool:
    words = [str(w) for w in (c.get("command") or []) + (c.get("args") or [])]
    return c.get("name") == "kube-apiserver" or any("kube-apiserver" in w for w in words)


def parse_pod(file: str, data: bytes) -> Pod:
    doc = load_doc(data)
    if not isinstance(doc, dict):
        raise ManifestError("not a mapping")
    if doc.get("kind") != "Pod":
        raise ManifestError(f"kind is {doc.get('kind')!r}, not Pod")
    if doc.get("apiVersion") not in ("v1", None):
        raise ManifestError(f"apiVersion {doc.get('apiVersion')!r}")
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        raise ManifestError("metadata/spec not mappings")
    name = meta.get("name")
    if not name or not isinstance(name, str):
        raise ManifestError("metadata.name missing")
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise ManifestError("spec.containers missing or empty")
    container = next((c for c in containers if _is_apiserver(c)), containers[0])
    cmd = container.get("command") or []
    args = container.get("args") or []
    if not isinstance(cmd, list) or not isinstance(args, list):
        raise ManifestError("command/args are not lists")
    argv = [_str(w) for w in cmd + args]
    if not cmd:  # the image's entrypoint
        argv = ["kube-apiserver", *argv]
    volumes: dict[str, dict[str, Any]] = {}
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and v.get("name"):
            volumes[str(v["name"])] = v
    mounts = []
    for vm in container.get("volumeMounts") or []:
        if not isinstance(vm, dict) or "mountPath" not in vm:
            raise ManifestError("volumeMount without mountPath")
        vol = volumes.get(str(vm.get("name")))
        if vol is None:
            raise ManifestError(f"volumeMount {vm.get('name')!r} has no volume")
        hp = vol.get("hostPath") if isinstance(vol.get("hostPath"), dict) else None
        host = str(hp["path"]) if hp and hp.get("path") else None
        if host and vm.get("subPath"):
            host = posixpath.join(host, str(vm["subPath"]))
        mounts.append(Mount(str(vm["mountPath"]), host, vm.get("readOnly") is True, str((hp or {}).get("type") or "")))
    return Pod(
        file=file, doc=doc, namespace=str(meta.get("namespace") or "default"), name=name,
        content_hash=canonical_hash(doc), container_name=str(container.get("name") or "kube-apiserver"),
        argv=argv, mounts=mounts, image=str(container.get("image") or ""), is_apiserver=_is_apiserver(container),
    )


def _str(w: Any) -> str:
    # YAML 1.1 may have turned a value into a bool/int; the kubelet would refuse it, we keep it readable.
    if isinstance(w, bool):
        return "true" if w else "false"
    return str(w)


def apiserver_words(argv: list[str]) -> list[str]:
    """The words after the kube-apiserver binary: behind go-runner, or inside a `sh -c` string."""
    words = list(argv)
    if len(words) >= 3 and posixpath.basename(words[0]) in ("sh", "bash") and words[1] == "-c":
        try:
            words = shlex.split(words[2])
        except ValueError:
            words = words[2].split()
        cut = []
        for w in words:
            if w in SHELL_STOP or w[:1] in "<>" or (w[:1].isdigit() and ">" in w):
                break
            cut.append(w)
        words = cut
    for i, w in enumerate(words):
        if posixpath.basename(w) == "kube-apiserver":
            return words[i + 1:]
    return words[1:]


def parse_flags(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """pflag-like: `--a=b`, `--a b`, bare booleans; last one wins. Returns (flags, order of names)."""
    words = apiserver_words(argv)
    flags: dict[str, str] = {}
    order: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        i += 1
        if not w.startswith("-") or w in ("-", "--"):
            continue
        name, eq, value = w.lstrip("-").partition("=")
        if not eq:
            if name in BOOL_FLAGS or i >= len(words) or words[i].startswith("--"):
                value = "true"
            else:
                value = words[i]
                i += 1
        flags[name] = value
        order.append(name)
    return flags, order


def image_version(image: str) -> tuple[int, int]:
    """`registry.k8s.io/kube-apiserver:v1.30.4` -> (1, 30); unknown -> a recent one."""
    tag = image.rpartition(":")[2].lstrip("v")
    parts = tag.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return (1, 34)
