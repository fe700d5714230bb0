"""Controller-side helpers shared by the kaudit.audit action plugins.

Nothing here imports kaudit's Python package: kaudit is driven as a command (`--output json`,
schema in kaudit's docs/output.md). A host's connection variables, as Ansible resolved them, are handed
to kaudit in kaudit's JSON inventory form (a file written for the run, read by the same code as
`kaudit enable INVENTORY`), so kaudit alone decides how an inventory host is reached: ssh with the
user's ssh_config for `ansible_host`, ProxyJump, known_hosts, host key checking, `local`, or
`kind://CLUSTER/CONTAINER` for `ansible_connection: docker`.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

DOCKER_CONNECTIONS = ("docker", "community.docker.docker", "community.docker.docker_api")
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")
BECOME_PASSWORD_VARS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
                        "ansible_sudo_password")


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


# -- connection variables -> kaudit's inventory form ----------------------------------------------
@dataclass
class Host:
    """One inventory host, as its connection variables reach kaudit."""

    name: str  # inventory_hostname
    variables: dict[str, Any]  # the connection variables Ansible resolved, under their inventory names
    sudo_password: str | None = field(default=None, repr=False)


def _plain(value: Any) -> Any:
    """A resolved option as JSON: numbers and booleans stay, anything else (Ansible's string types) is a str."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def host_variables(name: str, connection: str, opts: dict[str, Any], hostvars: dict[str, Any], *,
                   host_key_checking: bool, kind_cluster: str | None = None,
                   known_hosts: str | None = None) -> dict[str, Any]:
    """The host's connection variables, with the values Ansible resolved for them, under the names kaudit's
    inventory reader takes (kaudit's installer/targets/inventory.py; the same reader as `kaudit enable
    INVENTORY`). `opts`: the connection plugin's resolved options (host, remote_addr, port, remote_user,
    private_key_file, ssh_common_args, ssh_extra_args); `hostvars`: the host's variables, for what the plugin
    does not resolve. Nothing is interpreted here: kaudit does that, and refuses what it cannot follow."""
    conn = (connection or "ssh").strip()
    out: dict[str, Any] = {"ansible_connection": conn}
    address = opts.get("host") or opts.get("remote_addr")
    if conn in DOCKER_CONNECTIONS:
        out["ansible_host"] = address or hostvars.get("ansible_docker_host") or hostvars.get("ansible_host") or name
        cluster = kind_cluster or hostvars.get("kaudit_kind_cluster")
        if cluster:
            out["kaudit_kind_cluster"] = cluster
    elif conn not in LOCAL_CONNECTIONS:
        pairs = (
            ("ansible_host", address or hostvars.get("ansible_host")),
            ("ansible_port", opts.get("port") or hostvars.get("ansible_port")),
            ("ansible_user", opts.get("remote_user") or hostvars.get("ansible_user")),
            ("ansible_ssh_private_key_file", opts.get("private_key_file")
             or hostvars.get("ansible_ssh_private_key_file") or hostvars.get("ansible_private_key_file")),
            ("ansible_ssh_common_args", opts.get("ssh_common_args") or hostvars.get("ansible_ssh_common_args")),
            ("ansible_ssh_extra_args", opts.get("ssh_extra_args") or hostvars.get("ansible_ssh_extra_args")),
        )
        out.update((k, v) for k, v in pairs if v not in (None, ""))
        if known_hosts:  # the task's known_hosts option: after the host's own arguments, so it wins
            option = f"-o UserKnownHostsFile={shlex.quote(os.path.expanduser(str(known_hosts)))}"
            out["ansible_ssh_extra_args"] = f"{out.get('ansible_ssh_extra_args') or ''} {option}".strip()
        out["ansible_host_key_checking"] = bool(host_key_checking)
    return {k: _plain(v) for k, v in out.items()}


def write_inventory(scratch: str, groups: dict[str, list[Host]]) -> str:
    """kaudit's JSON inventory form: one group per cluster, its hosts in order with their connection
    variables. Passwords are never written (the become password goes to kaudit's standard input)."""
    doc = {"all": {"children": {g: {"hosts": {h.name: h.variables for h in hosts}} for g, hosts in groups.items()}}}
    path = os.path.join(scratch, "inventory.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
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


def run_kaudit(kaudit: list[str], args: list[str], hosts: list[Host], scratch: str, timeout: float,
               group: str = "cluster", groups: dict[str, list[Host]] | None = None) -> Run:
    """One kaudit invocation for `hosts` (one cluster, in order), or for `groups` (several clusters: kaudit
    changes the nodes of one group one at a time behind its health gate, the groups in parallel up to its
    --parallel), given as kaudit's JSON inventory."""
    if groups is not None:
        hosts = [h for members in groups.values() for h in members]
    conn: list[str] = []
    passwords = {h.sudo_password for h in hosts if h.sudo_password is not None}
    if len(passwords) > 1:
        raise KauditError("the hosts of one kaudit run have different become passwords")
    stdin = None
    if passwords:
        conn.append("--sudo-password-stdin")
        stdin = next(iter(passwords)) + "\n"
    inventory = write_inventory(scratch, groups if groups is not None else {group: hosts})
    argv = [*kaudit, args[0], inventory, *args[1:], *conn]
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
    """None when kaudit calls the node healthy, else why not (one line): `kaudit status`'s `healthy` and `health`,
    the verdict of kaudit's own rollout health gate (its docs/output.md), never a rule of this collection's."""
    if status.get("healthy") is True:
        return None
    why = status.get("health")
    if isinstance(why, str) and why:
        return why
    if not status.get("ok"):  # kaudit could not report on the node at all (no JSON for it)
        return f"cannot be read: {status.get('error')}"
    return "kaudit's status has no health verdict for it (a kaudit older than this collection?)"
