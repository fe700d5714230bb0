"""Controller-side helpers shared by the kaudit.audit action plugins.

Nothing here imports kaudit's Python package: kaudit is driven as a command (`--output json`,
schema in kaudit's docs/output.md). The host's own Ansible connection variables are turned into
kaudit targets: an ssh_config file written for the run (one `Host` block per inventory host,
with Port, User, IdentityFile, ProxyJump and UserKnownHostsFile where the inventory sets them; the
user's ~/.ssh/config is included after them), `local`, or `kind://CLUSTER/CONTAINER` for
`ansible_connection: docker`.

Ansible's own ssh connection runs `ssh ... ADDRESS` (ansible_host), so the user's ssh_config applies
to the address; kaudit gets the same: a node's block is `Host ADDRESS`, without HostName, so the
user's `Host ADDRESS` settings (and HostName, for a name) still apply after the inventory's own.
Only nodes of one run that share an address (ports forwarded to one host) get a block named after
the inventory host, with `HostName ADDRESS`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

SSH_CONNECTIONS = ("ssh", "paramiko", "paramiko_ssh", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh",
                   "ansible.legacy.ssh", "ansible.legacy.paramiko_ssh", "smart")
DOCKER_CONNECTIONS = ("docker", "community.docker.docker", "community.docker.docker_api")
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")
BECOME_PASSWORD_VARS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
                        "ansible_sudo_password")
_ALIAS_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_KIND_NODE = re.compile(r"^(?P<cluster>.+)-control-plane\d*$")


class KauditError(Exception):
    """A problem before kaudit could run (bad connection variables, kaudit not found)."""


# -- finding kaudit ------------------------------------------------------------------------------
def find_kaudit(explicit: Any = None) -> list[str]:
    """The kaudit command line: `explicit` (a path or an argv list), else `python -m installer` of the
    interpreter Ansible runs with when kube-audit-installer is installed there, else `kaudit` on PATH."""
    if explicit:
        argv = list(explicit) if isinstance(explicit, (list, tuple)) else shlex.split(str(explicit))
        argv[0] = os.path.expanduser(argv[0])
        if shutil.which(argv[0]) is None:
            raise KauditError(f"kaudit_command {argv[0]} is not an executable")
        return argv
    try:
        dist = importlib.metadata.distribution("kube-audit-installer")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        # `installer` is also the name of another PyPI package: use it only when it is kaudit's.
        files = [str(f) for f in (dist.files or [])]
        editable = any(f.endswith(".pth") for f in files)
        if editable or any(f.replace("\\", "/") == "installer/__main__.py" for f in files):
            return [sys.executable, "-m", "installer"]
    found = shutil.which("kaudit")
    if found:
        return [found]
    raise KauditError(
        "kaudit was not found: install kube-audit-installer into the Python Ansible runs with on the controller "
        f"({sys.executable} -m pip install kube-audit-installer, see the collection's requirements.txt), put "
        "kaudit on PATH, or set kaudit_command"
    )


# -- connection variables -> kaudit targets --------------------------------------------------------
@dataclass
class Node:
    """One inventory host as kaudit reaches it."""

    name: str  # inventory_hostname
    kind: str  # ssh, local, kind
    target: str  # what kaudit is given
    config_block: str = ""  # ssh_config lines for ssh targets, the block named after the inventory host
    sudo_password: str | None = None
    accept_new_host_key: bool = False
    notes: list[str] = field(default_factory=list)
    address: str = ""  # ssh: where Ansible's ssh would connect (ansible_host, else the inventory name)
    settings: list[str] = field(default_factory=list)  # ssh: the block's lines after Host and HostName


def _parse_ssh_args(text: str | None) -> dict[str, str]:
    """The -o / -J options of ansible_ssh_common_args / ansible_ssh_extra_args that decide where and how
    kaudit connects. ProxyCommand cannot be followed (kaudit speaks SSH itself): refused, naming it."""
    out: dict[str, str] = {}
    if not text:
        return out
    words = shlex.split(str(text))
    i = 0
    while i < len(words):
        w = words[i]
        value: str | None = None
        if w == "-J" or w.startswith("-J"):
            value = w[2:] or (words[i + 1] if i + 1 < len(words) else "")
            i += 1 if w[2:] else 2
            out["proxyjump"] = value
            continue
        if w == "-o" or w.startswith("-o"):
            value = w[2:] or (words[i + 1] if i + 1 < len(words) else "")
            i += 1 if w[2:] else 2
            key, _, val = value.partition("=")
            if not _:
                key, _, val = value.partition(" ")
            out[key.strip().lower()] = val.strip()
            continue
        i += 1
    if "proxycommand" in out and out["proxycommand"].lower() != "none":
        raise KauditError(
            "ansible_ssh_common_args sets ProxyCommand, which kaudit cannot follow (it speaks SSH itself): "
            "use ProxyJump (-J user@bastion or -o ProxyJump=user@bastion) instead"
        )
    return out


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def kind_cluster_of(container: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    m = _KIND_NODE.match(container)
    if m is None:
        raise KauditError(
            f"ansible_connection docker: container {container} is not named like a kind control-plane node "
            "(CLUSTER-control-plane[N]); set kaudit_kind_cluster to its kind cluster"
        )
    return m.group("cluster")


def make_node(name: str, connection: str, opts: dict[str, Any], hostvars: dict[str, Any], *,
              host_key_checking: bool, scratch: str, index: int, known_hosts: str | None = None,
              become_password: str | None = None, kind_cluster: str | None = None) -> Node:
    """`opts`: the connection plugin's resolved options (host, port, remote_user, private_key_file,
    ssh_common_args, ssh_extra_args); `hostvars`: the host's variables (for what plugins do not resolve)."""
    conn = (connection or "ssh").strip()
    if conn in LOCAL_CONNECTIONS:
        return Node(name, "local", "local", sudo_password=become_password)
    if conn in DOCKER_CONNECTIONS:
        container = str(opts.get("host") or opts.get("remote_addr") or hostvars.get("ansible_docker_host")
                        or hostvars.get("ansible_host") or name)
        cluster = kind_cluster_of(container, kind_cluster or hostvars.get("kaudit_kind_cluster"))
        return Node(name, "kind", f"kind://{cluster}/{container}")
    if conn not in SSH_CONNECTIONS:
        raise KauditError(
            f"ansible_connection {conn} is not one kaudit can follow (ssh, paramiko, docker for kind nodes, local)"
        )
    host = str(opts.get("host") or opts.get("remote_addr") or hostvars.get("ansible_host") or name)
    port = opts.get("port") or hostvars.get("ansible_port")
    user = opts.get("remote_user") or hostvars.get("ansible_user")
    key = opts.get("private_key_file") or hostvars.get("ansible_ssh_private_key_file") \
        or hostvars.get("ansible_private_key_file")
    args = _parse_ssh_args(opts.get("ssh_common_args") or hostvars.get("ansible_ssh_common_args"))
    args.update(_parse_ssh_args(opts.get("ssh_extra_args") or hostvars.get("ansible_ssh_extra_args")))
    strict = args.get("stricthostkeychecking", "").lower()
    checking = host_key_checking and strict not in ("no", "off", "false")
    accept_new = strict == "accept-new"
    # known_hosts as OpenSSH would take it: the task's option, -o UserKnownHostsFile, else the user's
    # ssh_config (kaudit's default, ~/.ssh/known_hosts, when that sets none)
    known = known_hosts or args.get("userknownhostsfile")
    if not checking:
        # Ansible's host_key_checking=False: any key is accepted, into a throwaway known_hosts file,
        # so the user's own file is neither trusted nor changed.
        known = os.path.join(scratch, f"known_hosts-{index}")
        accept_new = True
    alias = name if _ALIAS_OK.match(name) and len(name) < 200 else f"kaudit-host-{index}"
    lines: list[str] = []
    if port:
        lines.append(f"  Port {int(port)}")
    if user:
        lines.append(f"  User {user}")
    if key:
        lines.append(f"  IdentityFile {os.path.expanduser(str(key))}")
    if args.get("proxyjump") and args["proxyjump"].lower() != "none":
        lines.append(f"  ProxyJump {args['proxyjump']}")
    if known:
        lines.append(f"  UserKnownHostsFile {os.path.expanduser(known.split()[0])}")
    block = "\n".join([f"Host {alias}", f"  HostName {host}", *lines]) + "\n"
    return Node(name, "ssh", alias, block, sudo_password=become_password, accept_new_host_key=accept_new,
                address=host, settings=lines)


def ssh_targets(nodes: list[Node]) -> list[tuple[str, str]]:
    """(kaudit target, ssh_config block) for each node of one kaudit run, in order: `Host ADDRESS` (no HostName)
    when the address is a plain name or IPv4 address no other node of the run has, as Ansible's `ssh ADDRESS`
    would look it up; else the block named after the inventory host, with `HostName ADDRESS`."""
    count: dict[str, int] = {}
    for n in nodes:
        if n.kind == "ssh":
            count[n.address] = count.get(n.address, 0) + 1
    out: list[tuple[str, str]] = []
    for n in nodes:
        if n.kind != "ssh":
            out.append((n.target, ""))
        elif n.address and count[n.address] == 1 and _ALIAS_OK.match(n.address) and len(n.address) < 200:
            out.append((n.address, "\n".join([f"Host {n.address}", *n.settings]) + "\n"))
        else:
            out.append((n.target, n.config_block))
    return out


def write_ssh_config(scratch: str, nodes: list[Node]) -> str | None:
    blocks = [block for _, block in ssh_targets(nodes) if block]
    if not blocks:
        return None
    user_config = os.path.expanduser("~/.ssh/config")
    text = "\n".join(blocks)
    if os.path.isfile(user_config):
        text += f"\n# the user's own configuration (jump hosts, defaults)\nInclude {user_config}\n"
    path = os.path.join(scratch, "ssh_config")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return path


# -- running kaudit --------------------------------------------------------------------------------
@dataclass
class Run:
    argv: list[str]  # without secrets (there are none on the command line: the password goes on stdin)
    rc: int
    doc: dict[str, Any] | None
    stderr: str
    seconds: float

    def nodes(self) -> list[dict[str, Any]]:
        return list((self.doc or {}).get("nodes") or [])


def run_kaudit(kaudit: list[str], args: list[str], nodes: list[Node], scratch: str, timeout: float) -> Run:
    """One kaudit invocation for `nodes` (one cluster, in order); connection options from the nodes."""
    conn: list[str] = []
    config = write_ssh_config(scratch, nodes)
    if config:
        conn += ["--ssh-config", config]
    if any(n.accept_new_host_key for n in nodes):
        conn.append("--accept-new-host-key")
    passwords = {n.sudo_password for n in nodes if n.sudo_password is not None}
    if len(passwords) > 1:
        raise KauditError("the hosts of one kaudit run have different become passwords")
    stdin = None
    if passwords:
        conn.append("--sudo-password-stdin")
        stdin = next(iter(passwords)) + "\n"
    argv = [*kaudit, args[0], *[target for target, _ in ssh_targets(nodes)], *args[1:], *conn]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False, stdin=None if stdin is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise KauditError(f"kaudit did not finish within {timeout:.0f} s: {shlex.join(argv)}") from None
    except OSError as exc:
        raise KauditError(f"cannot run kaudit ({argv[0]}): {exc.strerror}") from None
    doc: dict[str, Any] | None = None
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    return Run(argv, proc.returncode, doc, proc.stderr.strip(), round(time.monotonic() - started, 3))


def first_error_line(run: Run) -> str:
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or lines or [f"kaudit exited {run.rc} without output"])[-1].strip()


# -- one node of a group at a time, inside one task -------------------------------------------------
class GroupGate:
    """Serialises the nodes of one group within one task across Ansible's forks (a file lock on the
    controller), and remembers a failed node so the group's later nodes are refused: a play without
    `serial` still changes a cluster's nodes one at a time and stops that cluster at its first
    failure, while other clusters go on in other forks."""

    def __init__(self, task_uuid: str, group: str) -> None:
        base = os.path.join(tempfile.gettempdir(), f"kaudit-ansible-{os.getuid()}")
        os.makedirs(base, mode=0o700, exist_ok=True)
        key = hashlib.sha256(f"{os.getppid()}\0{task_uuid}\0{group}".encode()).hexdigest()[:24]
        self.lock_path = os.path.join(base, f"{key}.lock")
        self.failed_path = os.path.join(base, f"{key}.failed")
        self._fh: Any = None

    def __enter__(self) -> GroupGate:
        self._fh = open(self.lock_path, "a+")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    def failed_before(self) -> str | None:
        try:
            with open(self.failed_path, encoding="utf-8") as fh:
                return fh.read().strip() or None
        except OSError:
            return None

    def record_failure(self, host: str) -> None:
        with open(self.failed_path, "a", encoding="utf-8") as fh:
            fh.write(host + "\n")


def node_health(status: dict[str, Any]) -> str | None:
    """None when the node's API server is running and ready, else why not (one line)."""
    if not status.get("ok"):
        return f"cannot be read: {status.get('error')}"
    api = status.get("api_server") or {}
    ready = status.get("readyz") or {}
    if not api.get("running"):
        return "no kube-apiserver is running"
    if not ready.get("ready"):
        return f"kube-apiserver is not ready ({ready.get('url')} answered {ready.get('code')})"
    return None
