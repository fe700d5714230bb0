"""The audit backend settings, one table: every fact about a kube-apiserver audit flag kaudit sets.

Each `Setting` is one row: its name (the key of the values handed to the helpers below), the
kube-apiserver flag, its backend, the option `enable`/`switch`/`export` take for it, the Ansible
module option, the default, and the validation. Everything else is made from the table or
checked against it by a test (tests/unit/manifest/test_settings.py):

- the manifest patch (`patch.AuditConfig.flags`, `patch._wanted_mounts`) and `export` (kubeadm
  `extraArgs`/`extraVolumes`, kind's patches and `extraMounts`, minikube's `--extra-config`) call
  `flags` and `mounts`;
- enable's, switch's and export's typer options (`commands/backend_options.py`) and their checks
  (`check`); the `kaudit export` arguments that "make it permanent" (`export_args`);
- the rotation defaults (`ROTATION_DEFAULTS`) of `policy.source`, `kaudit simulate` and `kaudit tune`;
- docs/output.md's rotation default and the Ansible action's `ARGUMENT_SPEC` (checked by the test).

The export form of a setting follows from its kind: a "file" (the policy, the webhook kubeconfig)
is a file the operator places on every control-plane node (`export` names it `exported-…`, a name
kaudit never writes, so no change collects it), its directory mounted read-only; every other value
is the flag's value, as kubeadm `extraArgs` (`audit-log-maxage: "30"`, or `{name, value}` pairs in
v1beta4), the same inside kind's `kubeadmConfigPatches`, and minikube's
`--extra-config=apiserver.audit-log-maxage=30`. A "path" (the log) is a file in a directory mounted
read-write, or `-` (the API server's standard output: no mount, no rotation).

Pure; imports installer.errors and installer.node.layout only (`policy.source` reads the defaults).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from installer.errors import InputError
from installer.node import layout

Backend = Literal["policy", "log", "webhook"]
Kind = Literal["file", "path", "int", "choice", "bool"]
Value = str | int | bool | None


@dataclass(frozen=True)
class Setting:
    name: str  # the key in the values the helpers take (and enable's/export's parameter name, less `log_`)
    flag: str  # the kube-apiserver flag
    backend: Backend  # "log" settings need a log path, "webhook" ones a webhook config
    kind: Kind
    option: str | None  # enable's, switch's and export's option (a bool: `--x/--no-x`); None: policy.source's
    ansible: str | None  # the kaudit.audit.audit module option
    default: int | str | None = None  # None: the flag is left out (the API server's own default) unless given
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    file_only: bool = False  # only for a log file: left out with --log-path - (standard output)
    metavar: str | None = None
    help: str = ""

    @property
    def extra_arg(self) -> str:
        """The name in kubeadm's extraArgs, kind's patches and minikube's --extra-config=apiserver.NAME."""
        return self.flag.removeprefix("--")

    @property
    def option_names(self) -> tuple[str, ...]:
        """The option as typer declares it: `--log-compress/--no-log-compress` for a bool."""
        if self.option is None:
            return ()
        return (f"{self.option}/--no-{self.option.removeprefix('--')}",) if self.kind == "bool" else (self.option,)

    def render(self, value: str | int | bool) -> str:
        """The flag's value as the manifest (and every export form) writes it."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("policy_file", "--audit-policy-file", "policy", "file", None, "policy_file",
            help="the policy: from --profile (and --set) or --policy-file (policy.source); a content-addressed "
            "file on the node"),
    Setting("log_path", "--audit-log-path", "log", "path", "--log-path", "log_path", default=layout.LOG_PATH,
            metavar="PATH", help="audit log path on the node, or - for the API server's standard output."),
    Setting("maxage", "--audit-log-maxage", "log", "int", "--log-maxage", "log_maxage", default=30, minimum=0,
            file_only=True, metavar="DAYS", help="days to keep rotated logs (default: the profile's)."),
    Setting("maxbackup", "--audit-log-maxbackup", "log", "int", "--log-maxbackup", "log_maxbackup", default=10,
            minimum=0, file_only=True, metavar="N", help="rotated files to keep (default: the profile's)."),
    Setting("maxsize", "--audit-log-maxsize", "log", "int", "--log-maxsize", "log_maxsize", default=100, minimum=0,
            file_only=True, metavar="MB", help="MB before rotation (default: the profile's)."),
    Setting("log_format", "--audit-log-format", "log", "choice", "--log-format", "log_format",
            choices=("json", "legacy"), metavar="[json|legacy]",
            help="audit log line format (the API server's default: json)."),
    Setting("log_compress", "--audit-log-compress", "log", "bool", "--log-compress", "log_compress",
            file_only=True, help="gzip rotated logs."),
    Setting("webhook_config", "--audit-webhook-config-file", "webhook", "file", "--webhook-config",
            "webhook_config", metavar="FILE", help="kubeconfig of an audit webhook receiver (e.g. Falco)."),
    Setting("webhook_mode", "--audit-webhook-mode", "webhook", "choice", "--webhook-mode", "webhook_mode",
            choices=("batch", "blocking", "blocking-strict"), metavar="[batch|blocking|blocking-strict]",
            help="how events reach the webhook (the API server's default: batch)."),
)
BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
ROTATION = ("maxage", "maxbackup", "maxsize")


def _int_default(name: str) -> int:
    default = BY_NAME[name].default
    if not isinstance(default, int):
        raise TypeError(f"{name}: an int default")
    return default


# What an audit log file keeps when neither the profile nor the user says (the API server has no rotation
# defaults worth having: maxsize 0 means "never rotate"); CIS 1.2.16-1.2.18, the recommended profile's too.
ROTATION_DEFAULTS: tuple[int, int, int] = (_int_default("maxage"), _int_default("maxbackup"), _int_default("maxsize"))
# The volume (and volumeMount) each mounted directory gets: kaudit's patch and every export use these names.
POLICY_VOLUME, WEBHOOK_VOLUME, LOG_VOLUME = "kaudit-policy", "kaudit-webhook", "kaudit-log"


def rotation_text(rotation: tuple[int, int, int] = ROTATION_DEFAULTS) -> str:
    """`30/10/100`: maxage/maxbackup/maxsize as the docs and `kaudit tune` write them."""
    return "/".join(map(str, rotation))


def _to_file(values: Mapping[str, Value]) -> bool:
    log_path = values.get("log_path")
    return isinstance(log_path, str) and log_path != "-"


def applies(setting: Setting, values: Mapping[str, Value]) -> bool:
    """Whether `setting` has a flag with these values: a log setting needs a log (a file, for rotation and
    compression), a webhook setting a webhook config."""
    if setting.backend == "log" and values.get("log_path") is None:
        return False
    if setting.file_only and not _to_file(values):
        return False
    return not (setting.backend == "webhook" and values.get("webhook_config") is None)


def flags(values: Mapping[str, Value]) -> list[tuple[str, str]]:
    """The kube-apiserver flags (with their dashes) for chosen values, in the table's order. `values` holds
    node paths for the files; a setting whose value is None or that does not apply is left out."""
    out: list[tuple[str, str]] = []
    for s in SETTINGS:
        value = values.get(s.name)
        if value is not None and applies(s, values):
            out.append((s.flag, s.render(value)))
    return out


@dataclass(frozen=True)
class Mount:
    volume: str  # the volume's (and its mount's) name; the patch picks another when the manifest has it
    path: str  # a directory, the same path on the node and in the container
    read_only: bool


# The log's directory is mounted read-write into the API server: never a directory that holds the host's
# system, Kubernetes' own configuration and state, or kaudit's (a writable / or /etc/kubernetes/manifests
# in the API server's container is a way onto the node), nor a shared one such as /var/log.
_NEVER_LOG_DIRS = ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
                   "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",
                   "/var/log", "/var/run", "/var/tmp")
_NEVER_UNDER = ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/lib/minikube", layout.STATE_DIR,
                "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/root", "/run")


def log_path_problem(log_path: str, static_pod_path: str = layout.MANIFESTS_DIR) -> str | None:
    """Why the audit log may not live at `log_path` (its directory is mounted read-write), or None."""
    if log_path == "-":
        return None
    if not log_path.startswith("/"):
        return f"the audit log path must be absolute (or - for stdout), not {log_path!r}"
    normal = posixpath.normpath(log_path)
    log_dir = posixpath.dirname(normal)
    if normal == "/" or log_path.endswith("/"):
        return f"the audit log path {log_path!r} names a directory, not a file"
    under = [d for d in (static_pod_path.rstrip("/") or "/", *_NEVER_UNDER)
             if log_dir == d or log_dir.startswith(d + "/")]
    if log_dir in _NEVER_LOG_DIRS or under:
        return (f"the audit log {log_path} would mount {log_dir} read-write into the API server: give it a "
                "directory of its own (for example /var/log/kubernetes/audit/audit.log)")
    return None


def mounts(values: Mapping[str, Value], error: type[InputError] = InputError) -> list[Mount]:
    """The directories the API server needs for these values (node paths): the policy's and the webhook
    config's read-only (one mount when they share a directory), the log's read-write. Directories, never
    files: a mounted log file breaks rotation, a mounted policy file pins one policy. `error`: the class
    of the one precise message a bad path gets."""
    policy_file = values.get("policy_file")
    if not isinstance(policy_file, str) or not policy_file.startswith("/"):
        raise error(f"the policy file must be an absolute path, not {policy_file!r}")
    policy_dir = posixpath.dirname(posixpath.normpath(policy_file))
    out = [Mount(POLICY_VOLUME, policy_dir, True)]
    webhook = values.get("webhook_config")
    if isinstance(webhook, str) and webhook:
        wdir = posixpath.dirname(posixpath.normpath(webhook))
        if wdir != policy_dir:
            out.append(Mount(WEBHOOK_VOLUME, wdir, True))
    log_path = values.get("log_path")
    if isinstance(log_path, str) and log_path != "-":
        if not log_path.startswith("/"):
            raise error(f"the audit log path must be absolute, not {log_path!r}")
        log_dir = posixpath.dirname(posixpath.normpath(log_path))
        if any(m.path == log_dir for m in out):
            raise error(f"the audit log directory {log_dir} is also a configuration directory that is mounted "
                        "read-only")
        problem = log_path_problem(log_path)
        if problem:
            raise error(problem)
        out.append(Mount(LOG_VOLUME, log_dir, False))
    return out


def check(values: Mapping[str, Value]) -> None:
    """The options as the user gave them (files as the user's paths): one precise InputError, or nothing.
    The same checks for enable, switch and export, before any file is read or node reached."""
    for s in SETTINGS:
        value = values.get(s.name)
        if value is None or s.option is None:
            continue
        if s.minimum is not None and isinstance(value, int) and value < s.minimum:
            raise InputError(f"{s.option} must be {s.minimum} or more, not {value}")
        if s.choices and value not in s.choices:
            raise InputError(f"{s.option} must be one of {', '.join(s.choices)}, not {value!r}")
    if values.get("webhook_mode") and not values.get("webhook_config"):
        raise InputError(f"{BY_NAME['webhook_mode'].option} needs {BY_NAME['webhook_config'].option}")
    log_path = values.get("log_path")
    if isinstance(log_path, str):
        problem = log_path_problem(log_path)
        if problem:
            raise InputError(f"--log-path: {problem}")


def export_args(values: Mapping[str, Value]) -> list[str]:
    """The `kaudit export` options that ask for these values (files as the user's paths); a log path equal
    to the default is left out, as is every value not given."""
    out: list[str] = []
    for s in SETTINGS:
        value = values.get(s.name)
        if s.option is None or value is None or (s.name == "log_path" and value == s.default):
            continue
        if s.kind == "bool":
            out.append(s.option if value else f"--no-{s.option.removeprefix('--')}")
        else:
            out += [s.option, str(value)]
    return out
