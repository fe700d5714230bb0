"""`kaudit export`: the declarative equivalent of kaudit's live edit, per flavor. Pure.

A live edit of the static pod manifest lasts until the flavor's own tool rewrites the manifest
(see flavors.py). What survives is the tool's own configuration:

- kubeadm: ClusterConfiguration `apiServer.extraArgs` + `apiServer.extraVolumes`. kubeadm's
  v1beta3 API (kubeadm 1.22-1.30) takes extraArgs as a map of flag name to string value;
  v1beta4 (introduced and made the default in kubeadm 1.31) as a list of `{name, value}`
  pairs. extraVolumes (HostPathMount: name, hostPath, mountPath, readOnly, pathType) is the
  same in both. (v1beta2, kubeadm 1.15-1.21, has v1beta3's shape.)
- minikube: `minikube start --extra-config=apiserver.<flag>=<value>`. --extra-config cannot add
  volumes, so the policy goes where the API server already looks: minikube's file sync copies
  `~/.minikube/files/<path>` to `/<path>` on the node at every start, and kubeadm mounts the
  node's /etc/ssl/certs (read-only) into the API server. No writable host directory is mounted,
  so the log goes to the API server's standard output (`--audit-log-path=-`), read with
  `kubectl -n kube-system logs kube-apiserver-<node>`.
- kind: kind-config `kubeadmConfigPatches` (a ClusterConfiguration merge patch) and
  `extraMounts` (host directories into the node container). kind generates kubeadm v1beta3
  configuration up to Kubernetes 1.35 and v1beta4 from 1.36 (kind PR 4173); a patch that names
  its apiVersion applies only to documents of that version, so both versions are exported and
  the cluster uses whichever matches.

The flags and mounts are those of installer/manifest/settings.py's table, as kaudit's patch writes them
(a test checks every combination of enable's options); a webhook kubeconfig is placed beside the policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from installer.errors import InputError
from installer.manifest import settings as table
from installer.node import layout

Format = Literal["kubeadm", "minikube", "kind"]
FORMATS: tuple[Format, ...] = ("kubeadm", "minikube", "kind")

V1BETA4_SINCE = (1, 31)  # kubeadm 1.31 introduced v1beta4 and made it the default
V1BETA3_SINCE = (1, 22)
KIND_V1BETA4_SINCE = (1, 36)  # kind PR 4173: v1beta4 kubeadm config for Kubernetes 1.36.0+
MINIKUBE_POLICY_DIR = "/etc/ssl/certs"  # kubeadm's "ca-certs" volume: mounted read-only into the API server
KIND_POLICY_HOST_DIR = "kaudit-policy"
KIND_LOG_HOST_DIR = "kind-audit-logs"


@dataclass(frozen=True)
class Settings:
    """What to export: the policy, and a value for each setting of installer/manifest/settings.py's table."""

    policy: str  # the rendered, validated policy text
    profile: str | None = None
    kubernetes_version: tuple[int, int] | None = None
    log_path: str | None = None  # None: the flavor's default
    maxage: int | None = table.ROTATION_DEFAULTS[0]
    maxbackup: int | None = table.ROTATION_DEFAULTS[1]
    maxsize: int | None = table.ROTATION_DEFAULTS[2]
    log_format: str | None = None
    log_compress: bool | None = None
    webhook: str | None = None  # the webhook kubeconfig's text, placed beside the policy
    webhook_mode: str | None = None

    def values(self, policy_file: str, log_path: str, webhook_file: str | None) -> dict[str, table.Value]:
        """The table's values with these node paths for the files."""
        return {"policy_file": policy_file, "log_path": log_path, "maxage": self.maxage,
                "maxbackup": self.maxbackup, "maxsize": self.maxsize, "log_format": self.log_format,
                "log_compress": self.log_compress, "webhook_config": webhook_file,
                "webhook_mode": self.webhook_mode}


@dataclass(frozen=True)
class ExportFile:
    path: str  # relative to --out-dir
    text: str
    about: str
    mode: int = 0o644
    yaml: bool = True  # False: a shell script, which the stream carries as YAML comments


POLICY_MODE = 0o600  # like the policy kaudit writes on a node
SCRIPT_MODE = 0o755


@dataclass(frozen=True)
class Export:
    format: Format
    files: list[ExportFile]  # the configuration first, then the policy
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        """Everything on standard output as ONE YAML stream: each file under a comment naming it, a YAML
        file verbatim as its own document, a shell script as comments (every line prefixed with "# ")."""
        parts: list[str] = []
        open_document = False  # a document precedes: the next one needs `---` (or `...` before directives)
        for f in self.files:
            header = f"# ===== {f.path}: {f.about} =====\n"
            if not f.yaml:
                header += '# (a shell script, not YAML: its lines follow as comments after "# "; --out-dir writes it)\n'
                parts.append(header + commented(f.text))
                continue
            text = f.text.removeprefix("\ufeff")  # a byte order mark is allowed only at the start of the stream
            if not text.endswith("\n"):
                text += "\n"
            start = _document_start(text)
            if open_document and start == "directives":
                parts.append("...\n" + header + text)
            elif open_document and start == "implicit":
                parts.append("---\n" + header + text)
            else:
                parts.append(header + text)
            open_document = True
        return "".join(parts)

    def write(self, out_dir: str) -> list[str]:
        """Write every file under out_dir, each atomically (dotfile temp beside it, fsync, rename, fsync the
        directory) with its mode; the paths written. A problem with out_dir is an InputError."""
        _prepare_out_dir(out_dir)
        written: list[str] = []
        for f in self.files:
            path = os.path.join(out_dir, *f.path.split("/"))
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                _write_atomically(path, f.text.encode("utf-8"), f.mode)
            except OSError as exc:
                done = f" (already written: {', '.join(written)})" if written else ""
                raise InputError(f"--out-dir: cannot write {path}: {exc.strerror or exc}{done}") from None
            written.append(path)
        return written

    def directories(self, out_dir: str) -> list[str]:
        """Directories the configuration expects beside its files (kind: the host side of the log mount)."""
        if self.format != "kind" or "./" + KIND_LOG_HOST_DIR not in self.files[0].text:
            return []
        path = os.path.join(out_dir, KIND_LOG_HOST_DIR)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out-dir: cannot create {path}: {exc.strerror or exc}") from None
        return [path]


def commented(text: str) -> str:
    """Text as YAML comments: "# " before every line, "#" alone for an empty one."""
    return "".join(f"# {line}\n" if line else "#\n" for line in text.splitlines())


def _document_start(text: str) -> Literal["implicit", "explicit", "directives"]:
    """How a YAML file's first document begins: bare content, `---`, or directives (`%YAML`) and `---`."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line.startswith("%"):
            return "directives"
        if line == "---" or line.startswith(("--- ", "---\t")):
            return "explicit"
        return "implicit"
    return "implicit"


def _prepare_out_dir(out_dir: str) -> None:
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"--out-dir {out_dir} exists and is not a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out-dir {out_dir}: cannot create it: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise InputError(f"--out-dir {out_dir} is not writable")


def _write_atomically(path: str, data: bytes, mode: int) -> None:
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")  # 0600, a dotfile
    try:
        try:
            os.fchmod(fd, mode)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- shared pieces -------------------------------------------------------------------------------


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid ones): values are always strings."""
    return json.dumps(value, ensure_ascii=False)


def kubeadm_api_version(version: tuple[int, int] | None) -> str:
    if version is None or version >= V1BETA4_SINCE:
        return "kubeadm.k8s.io/v1beta4"
    if version >= V1BETA3_SINCE:
        return "kubeadm.k8s.io/v1beta3"
    if version >= (1, 15):
        return "kubeadm.k8s.io/v1beta2"
    raise InputError(f"kubeadm {version[0]}.{version[1]} is older than any kubeadm API kaudit exports (1.15+)")


def audit_flags(s: Settings, policy_file: str, log_path: str, webhook_file: str | None = None) -> list[tuple[str, str]]:
    """The API server flags without dashes, in the table's order (as kaudit's patch writes them)."""
    values = s.values(policy_file, log_path, webhook_file)
    return [(name.removeprefix("--"), value) for name, value in table.flags(values)]


@dataclass(frozen=True)
class HostPathMount:
    name: str
    host_path: str
    mount_path: str
    read_only: bool
    path_type: str = "DirectoryOrCreate"


def volumes(s: Settings, policy_file: str, log_path: str, webhook_file: str | None = None) -> list[HostPathMount]:
    """The directories the patch would mount (the table's `mounts`), as kubeadm HostPathMounts."""
    return [HostPathMount(m.volume, m.path, m.path, m.read_only)
            for m in table.mounts(s.values(policy_file, log_path, webhook_file))]


def cluster_configuration_lines(
    api_version: str, flags: list[tuple[str, str]], mounts: list[HostPathMount], indent: str = ""
) -> list[str]:
    """A ClusterConfiguration carrying only apiServer.extraArgs and apiServer.extraVolumes."""
    lines = [f"apiVersion: {api_version}", "kind: ClusterConfiguration", "apiServer:", "  extraArgs:"]
    if api_version.endswith("v1beta4"):
        for name, value in flags:
            lines += [f"  - name: {name}", f"    value: {_q(value)}"]
    else:
        lines += [f"    {name}: {_q(value)}" for name, value in flags]
    lines.append("  extraVolumes:")
    for m in mounts:
        lines += [
            f"  - name: {m.name}",
            f"    hostPath: {_q(m.host_path)}",
            f"    mountPath: {_q(m.mount_path)}",
            f"    readOnly: {'true' if m.read_only else 'false'}",
            f"    pathType: {m.path_type}",
        ]
    return [indent + line for line in lines]


def _comment(lines: Iterable[str]) -> list[str]:
    return [f"# {line}".rstrip() for line in lines]


def _webhook(s: Settings, node_path: str | None, where: str, about: str) -> list[ExportFile]:
    """The webhook kubeconfig as a file (mode 0600: it can hold credentials), or nothing."""
    if s.webhook is None or node_path is None:
        return []
    return [ExportFile(where + posixpath.basename(node_path), s.webhook, f"the webhook kubeconfig: {about}",
                       POLICY_MODE)]


def _title(s: Settings, what: str) -> str:
    source = f"profile {s.profile}" if s.profile else "the given policy"
    return f"kaudit export: {source} for {what}"


# --- kubeadm -------------------------------------------------------------------------------------


def export_kubeadm(s: Settings) -> Export:
    policy_file = layout.exported_policy_path(s.policy.encode())
    webhook_file = layout.exported_webhook_config_path(s.webhook.encode()) if s.webhook is not None else None
    log_path = s.log_path or layout.LOG_PATH
    flags, mounts = audit_flags(s, policy_file, log_path, webhook_file), volumes(s, policy_file, log_path, webhook_file)
    api = kubeadm_api_version(s.kubernetes_version)
    form = "a list of name/value pairs" if api.endswith("v1beta4") else "a map of flag to string"
    version = f"Kubernetes {s.kubernetes_version[0]}.{s.kubernetes_version[1]}" if s.kubernetes_version else (
        "Kubernetes 1.31+ (no --kubernetes-version given; use it for older clusters)"
    )
    policy_name = posixpath.basename(policy_file)
    head = _comment([
        _title(s, f"kubeadm ({api}, {version}; extraArgs is {form})"),
        "",
        f"1. On every control-plane node, place {policy_name} (printed below) at",
        f"   {policy_file} (owner root, mode 0600).",
        *([f"   Place {posixpath.basename(webhook_file)} (the webhook kubeconfig, printed below) at",
           f"   {webhook_file} (owner root, mode 0600)."] if webhook_file else []),
        "2. Merge apiServer.extraArgs and apiServer.extraVolumes into the ClusterConfiguration:",
        "   - a running cluster: `kubectl -n kube-system edit configmap kubeadm-config` (key ClusterConfiguration),",
        "     so that `kubeadm upgrade` regenerates the manifest with auditing on; then apply it to each",
        "     control-plane node with `kaudit enable`, or `kubeadm upgrade node` / `kubeadm init phase",
        "     control-plane apiserver --config FILE`;",
        "   - a new cluster: add these fields to the ClusterConfiguration given to `kubeadm init --config`.",
    ])
    body = cluster_configuration_lines(api, flags, mounts)
    config = "\n".join([*head, *body]) + "\n"
    return Export(
        "kubeadm",
        [
            ExportFile("kubeadm-audit.yaml", config, "merge into the ClusterConfiguration"),
            ExportFile(policy_name, s.policy, f"place at {policy_file} on every control-plane node", POLICY_MODE),
            *_webhook(s, webhook_file, "", f"place at {webhook_file} on every control-plane node"),
        ],
    )


# --- minikube ------------------------------------------------------------------------------------


def minikube_files_dir() -> str:
    """Where minikube's file sync reads from, for a shell: $MINIKUBE_HOME(/.minikube)/files or $HOME/.minikube/files."""
    home = os.environ.get("MINIKUBE_HOME")
    if not home:
        return "$HOME/.minikube/files"
    base = home if os.path.basename(home.rstrip("/")) == ".minikube" else os.path.join(home, ".minikube")
    return os.path.join(base, "files")


def export_minikube(s: Settings) -> Export:
    log_path = s.log_path or "-"
    if log_path != "-":
        raise InputError(
            "minikube's API server mounts no writable host directory and --extra-config cannot add one, so an "
            f"audit log file at {log_path} would be lost: use --log-path - (events go to the API server's log), "
            "or turn auditing on live with `kaudit enable minikube://PROFILE`"
        )
    policy_name = f"kaudit-policy-{layout.sha12(s.policy.encode())}.yaml"
    policy_file = posixpath.join(MINIKUBE_POLICY_DIR, policy_name)
    webhook_name = f"kaudit-webhook-{layout.sha12(s.webhook.encode())}.kubeconfig" if s.webhook is not None else None
    webhook_file = posixpath.join(MINIKUBE_POLICY_DIR, webhook_name) if webhook_name else None
    sync_dir = minikube_files_dir()
    synced = f"{sync_dir}/{MINIKUBE_POLICY_DIR.lstrip('/')}"
    flags = audit_flags(s, policy_file, log_path, webhook_file)
    lines = [
        "#!/bin/sh",
        *_comment([
            _title(s, "minikube"),
            "",
            "minikube copies every file under its files directory onto the node at each start, to the same",
            f"path below /; {MINIKUBE_POLICY_DIR} is already mounted (read-only) into the API server, and",
            "--extra-config cannot add volumes. Audit events go to the API server's standard output:",
            "  kubectl -n kube-system logs kube-apiserver-minikube | grep audit.k8s.io",
            "Add -p PROFILE for another profile; every `minikube start` of the profile needs the same flags",
            "(or set them once: they are kept in the profile's configuration after the first start).",
            *(["The webhook kubeconfig goes the same way (minikube's file sync keeps each file's mode)."]
              if webhook_name else []),
        ]),
        "set -eu",
        f'mkdir -p "{synced}"',
        f'cp {policy_name} "{synced}/{policy_name}"',
        *([f'cp {webhook_name} "{synced}/{webhook_name}"'] if webhook_name else []),
        "minikube start \\",
        *[f"  --extra-config=apiserver.{name}={value} \\" for name, value in flags[:-1]],
        f"  --extra-config=apiserver.{flags[-1][0]}={flags[-1][1]}",
    ]
    return Export(
        "minikube",
        [
            ExportFile("minikube-audit.sh", "\n".join(lines) + "\n", "run from the directory holding the policy",
                       SCRIPT_MODE, yaml=False),
            ExportFile(policy_name, s.policy, f"copied to {synced}/ and by minikube to {policy_file}", POLICY_MODE),
            *([ExportFile(webhook_name, s.webhook, f"the webhook kubeconfig: copied to {synced}/ and by minikube to "
                          f"{webhook_file}", POLICY_MODE)] if webhook_name and s.webhook is not None else []),
        ],
    )


# --- kind ----------------------------------------------------------------------------------------


def export_kind(s: Settings) -> Export:
    policy_file = layout.exported_policy_path(s.policy.encode())
    policy_name = posixpath.basename(policy_file)
    webhook_file = layout.exported_webhook_config_path(s.webhook.encode()) if s.webhook is not None else None
    log_path = s.log_path or layout.LOG_PATH
    flags = audit_flags(s, policy_file, log_path, webhook_file)
    mounts = volumes(s, policy_file, log_path, webhook_file)
    if s.kubernetes_version is None:
        versions = ["kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4"]
    elif s.kubernetes_version < V1BETA3_SINCE:
        raise InputError("kind exports need Kubernetes 1.22 or newer (kubeadm v1beta3 or v1beta4)")
    else:
        # kind releases before PR 4173 keep v1beta3 even for 1.36+: export both from 1.36 on.
        versions = ["kubeadm.k8s.io/v1beta3"]
        if s.kubernetes_version >= KIND_V1BETA4_SINCE:
            versions.append("kubeadm.k8s.io/v1beta4")
    lines = _comment([
        _title(s, "kind"),
        "",
        "  kind create cluster --config kind-config.yaml    (run it in this directory: kind resolves",
        "                                                   relative hostPath values against it)",
        f"The policy{' and the webhook kubeconfig' if webhook_file else ''} sit{'' if webhook_file else 's'} in "
        f"./{KIND_POLICY_HOST_DIR}/ (the node's {posixpath.dirname(policy_file)});",
        f"audit events appear on this host in ./{KIND_LOG_HOST_DIR}/ (the node's {posixpath.dirname(log_path)})."
        if log_path != "-" else "Audit events go to the API server's log (`kubectl -n kube-system logs ...`).",
        "Each patch names its kubeadm apiVersion and applies only to the configuration kind generates in",
        "that version (v1beta3 up to Kubernetes 1.35, v1beta4 from 1.36): the extraArgs shapes differ.",
        "With several control-plane nodes, give each the same extraMounts.",
    ])
    lines += ["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "kubeadmConfigPatches:"]
    for api in versions:
        body = cluster_configuration_lines(api, flags, mounts, indent="    ")
        lines += ["- |", *body]
    lines += [
        "nodes:",
        "- role: control-plane",
        "  extraMounts:",
        f"  - hostPath: ./{KIND_POLICY_HOST_DIR}",
        f"    containerPath: {posixpath.dirname(policy_file)}",
        "    readOnly: false  # the API server mounts it read-only; writable here so `kaudit switch` can add policies",
    ]
    if log_path != "-":
        lines += [f"  - hostPath: ./{KIND_LOG_HOST_DIR}", f"    containerPath: {posixpath.dirname(log_path)}"]
    return Export(
        "kind",
        [
            ExportFile("kind-config.yaml", "\n".join(lines) + "\n", "kind create cluster --config kind-config.yaml"),
            ExportFile(f"{KIND_POLICY_HOST_DIR}/{policy_name}", s.policy, f"mounted at {policy_file}", POLICY_MODE),
            *_webhook(s, webhook_file, f"{KIND_POLICY_HOST_DIR}/", f"mounted at {webhook_file}"),
        ],
    )


def export(fmt: str, settings: Settings) -> Export:
    if fmt == "kubeadm":
        return export_kubeadm(settings)
    if fmt == "minikube":
        return export_minikube(settings)
    if fmt == "kind":
        return export_kind(settings)
    raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
