"""Is a manifest still a Pod the kubelet accepts? Checked before a patched manifest is returned.

Schema: kubernetes-validate's strict (no unknown fields) JSON schema of a chosen Kubernetes
version, imported lazily. Scalars are read as YAML 1.1, as the kubelet's decoder reads them.
A manifest that already failed before kaudit touched it is not refused for that: the patcher
refuses only problems its own edit introduced.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from installer.manifest.parse import ManifestError, Node, compose, decode, to_python
from installer.manifest.read import Manifest

if TYPE_CHECKING:
    from installer.manifest.patch import AuditConfig

DEFAULT_VERSION = (1, 34)


# The two caches below hold what the installed kubernetes-validate ships (a schema validator per
# version, never mutated after it is built; referencing's Registry is immutable): shared read-only by
# --parallel threads, not state. Building a validator costs about 0.3 s.
@functools.lru_cache(maxsize=8)
def _validator(version: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    versions = [v for v in utils.all_versions() if utils.major_minor(v) <= version] or utils.all_versions()[:1]
    chosen = versions[-1]
    schema_dir = f"kubernetes-json-schema/v{chosen}-local-strict"
    schema = utils.schema_contents(f"{schema_dir}/pod-v1.json", chosen)
    defs = utils.schema_contents(f"{schema_dir}/_definitions.json", chosen)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _where(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


@functools.lru_cache(maxsize=16)  # kubernetes_validate lists its schema directory on every call
def _version_key(version: tuple[int, int] | None) -> str:
    from kubernetes_validate import utils

    major, minor = version or DEFAULT_VERSION
    latest = utils.latest_version()
    wanted = f"{major}.{minor}"
    # schemas exist for a range of versions: clamp to it (old clusters get the oldest shipped schema)
    if (major, minor) > tuple(int(x) for x in latest.split(".")):
        return str(latest)
    return wanted


def _duplicates(pod: dict[str, Any]) -> list[str]:
    out = []
    spec: dict[str, Any] = pod["spec"] if isinstance(pod.get("spec"), dict) else {}
    vols = spec.get("volumes") or []
    names = [str(v.get("name")) for v in vols if isinstance(v, dict)]
    out += [f"spec.volumes: duplicate volume name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            paths = [str(m.get("mountPath")) for m in c.get("volumeMounts") or [] if isinstance(m, dict)]
            for p in sorted({p for p in paths if paths.count(p) > 1}):
                out.append(f"container {c.get('name')!r}: duplicate mountPath {p!r}")
            for m in c.get("volumeMounts") or []:
                if isinstance(m, dict) and str(m.get("name")) not in names:
                    out.append(f"container {c.get('name')!r}: volumeMount {m.get('name')!r} has no volume")
    return out


def validate_pod(data: bytes | Manifest, kubernetes_version: tuple[int, int] | None = None) -> list[str]:
    """Problems the kubelet would have decoding `data` as a v1 Pod; empty means OK.

    A parsed Manifest is checked once per Kubernetes version: the findings stay on the value."""
    if isinstance(data, Manifest):
        if kubernetes_version not in data.checked:
            data.checked[kubernetes_version] = _problems(data.located.root, kubernetes_version)
        return list(data.checked[kubernetes_version])
    try:
        node = compose(decode(data))
    except ManifestError as e:
        return [str(e)]
    return _problems(node, kubernetes_version)


def _problems(node: Node, kubernetes_version: tuple[int, int] | None) -> list[str]:
    problems: list[str] = []
    pod = to_python(node, problems)
    if not isinstance(pod, dict):
        return [*problems, "not a mapping"]
    if pod.get("apiVersion") != "v1" or pod.get("kind") != "Pod":
        return [*problems, f"not a v1 Pod (apiVersion {pod.get('apiVersion')!r}, kind {pod.get('kind')!r})"]
    validator = _validator(_version_key(kubernetes_version))
    for err in sorted(validator.iter_errors(pod), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(f"{_where(err.absolute_path)}: {err.message}")
    return problems + _duplicates(pod)


def check_patch(before: Manifest, after: Manifest, config: AuditConfig) -> None:
    """Refuse a patch result that broke something: only NEW problems count."""
    info = after.info
    problems: list[str] = []
    want = dict(config.flags())
    for k, v in want.items():
        if info.flags.get(k) != v:
            problems.append(f"flag {k} reads back as {info.flags.get(k)!r}, not {v!r}")
    for pc in info.audit.paths:
        if pc.host_path is None:
            problems.append(f"{pc.flag} {pc.container_path} is not reachable through a hostPath mount")
        elif pc.host_path != pc.container_path:
            problems.append(f"{pc.flag} {pc.container_path} would be read from {pc.host_path} on the node")
        if pc.flag == "--audit-log-path" and (pc.mount_is_directory is not True or pc.read_only):
            problems.append(f"the audit log {pc.container_path} must be in a read-write directory mount")
    version = info.kubernetes_version
    old = set(validate_pod(before, version))
    problems += [p for p in validate_pod(after, version) if p not in old]
    if problems:
        raise ManifestError("the patched manifest would be invalid: " + "; ".join(problems))

