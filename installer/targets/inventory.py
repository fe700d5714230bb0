"""Fleets: an Ansible YAML inventory as a target. Each group that lists hosts is one cluster,
its hosts that cluster's control-plane nodes (changed one at a time; clusters may run in parallel).

The subset of Ansible's YAML inventory format understood here:

    all:                          # optional; other top-level groups are read the same way
      vars: {ansible_user: admin}
      children:
        prod:                     # a cluster
          hosts:
            cp1: {ansible_host: 10.0.0.11}
            cp[2:3]:              # Ansible host ranges: [1:3], [01:10], [a:c]
          vars: {ansible_port: 2222}
        staging:
          hosts:
            cp-staging: {ansible_host: 10.1.0.5, ansible_ssh_private_key_file: ~/.ssh/staging}

The same structure written as JSON (a `.json` file) is read the same way: it is the form the
kaudit.audit Ansible collection hands kaudit, one host's connection variables as Ansible resolved
them, so that a playbook and `kaudit enable INVENTORY` read an inventory in one way (this module).

Variables: `ansible_host`, `ansible_port`, `ansible_user` (or `ansible_ssh_user`,
`ansible_ssh_host`, `ansible_ssh_port`), `ansible_ssh_private_key_file` (or
`ansible_private_key_file`), `ansible_connection` (ssh, paramiko or smart; `local`; `docker` for a
kind node: `kind://CLUSTER/CONTAINER`, the container `ansible_docker_host` else `ansible_host` else
the host's name, the cluster `kaudit_kind_cluster` else the name `CLUSTER-control-plane[N]`; any
other connection is refused), `ansible_ssh_common_args` / `ansible_ssh_extra_args` (`-J HOST` or
`-o ProxyJump=HOST`, `-o UserKnownHostsFile=FILE`, `-o StrictHostKeyChecking=accept-new|no`; other
options are not kaudit's business; `ProxyCommand` is refused: kaudit speaks SSH itself) and
`ansible_host_key_checking` (false: any host key is accepted into a throwaway known_hosts file).
Precedence as in Ansible: `all` vars, then parent groups, then the group, then the host. Passwords
in an inventory (`ansible_password`, `ansible_become_password`) are refused: kaudit takes the sudo
password on stdin only. A group with neither hosts nor children, a host listed directly in two
groups, unknown group keys (a typo such as `host:`) and malformed values are errors naming the file
and the place.

An inventory host is reached as `ssh ADDRESS` reaches it (ADDRESS is `ansible_host`): the user's
ssh_config for that address applies (`-F`, else `~/.ssh/config`: HostName, ProxyJump, ...), after the
inventory's own settings, which win.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import string
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from installer.errors import InputError
from installer.targets.parse import Cluster, Target, group_targets, parse_target

if TYPE_CHECKING:
    from installer.transport.ssh import SSHOptions

INVENTORY_SUFFIXES = (".yml", ".yaml", ".json")
SSH_CONNECTIONS = ("ssh", "paramiko", "paramiko_ssh", "smart", "ansible.builtin.ssh", "ansible.builtin.paramiko_ssh",
                   "ansible.legacy.ssh", "ansible.legacy.paramiko_ssh")
DOCKER_CONNECTIONS = ("docker", "community.docker.docker", "community.docker.docker_api")
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local", "ansible.legacy.local")
_KIND_NODE = re.compile(r"^(?P<cluster>.+)-control-plane\d*$")
GROUP_KEYS = {"hosts", "children", "vars"}
_REFUSED = (
    "ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
)
_ALIASES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_port": "ansible_port", "ansible_ssh_user": "ansible_user",
            "ansible_private_key_file": "ansible_ssh_private_key_file"}
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")


@dataclass(frozen=True)
class InventoryTarget(Target):
    """A host from an inventory: an ssh (or local) target that also names its key and inventory name."""

    identity_file: str | None = None
    inventory_name: str = ""
    source: str = ""  # the inventory file
    proxy_jump: str | None = None  # -J / -o ProxyJump= in ansible_ssh_common_args / ansible_ssh_extra_args
    known_hosts: str | None = None  # -o UserKnownHostsFile=
    accept_new_host_key: bool = False  # -o StrictHostKeyChecking=accept-new
    host_key_checking: bool = True  # false: ansible_host_key_checking false, or StrictHostKeyChecking=no

    @property
    def display(self) -> str:
        return self.inventory_name or super().display

    def ssh_options(self, base: SSHOptions, scratch: str) -> SSHOptions:
        """The run's ssh options for this host: its key replaces `-i`; its ProxyJump and known_hosts file go
        into an ssh_config written under `scratch`, a `Host ADDRESS` block followed by the run's own
        configuration (`-F`, else ~/.ssh/config), so a jump host keeps its own settings from there, as
        with OpenSSH. Host key checking off: any key is accepted into a throwaway known_hosts file."""
        options = replace(base, identity_file=self.identity_file) if self.identity_file else base
        known = self.known_hosts
        if not self.host_key_checking:
            known = os.path.join(scratch, f"known_hosts-{_digest(self.inventory_name, self.source)}")
        if self.accept_new_host_key or not self.host_key_checking:
            options = replace(options, accept_new_host_key=True)
        if not (self.proxy_jump or known):
            return options
        lines = [f"Host {self.host}"]
        if self.proxy_jump:
            lines.append(f"  ProxyJump {self.proxy_jump}")
        if known:
            lines.append(f"  UserKnownHostsFile {known}")
        user_config = os.path.expanduser(base.config_file or "~/.ssh/config")
        if os.path.isfile(user_config):
            lines += ["", f"Include {os.path.abspath(user_config)}"]
        path = os.path.join(scratch, f"ssh_config-{_digest(self.inventory_name, self.source)}")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
        # the host's own known_hosts file wins over --known-hosts, as its key wins over -i
        return replace(options, config_file=path, known_hosts=None if known else options.known_hosts)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def is_inventory(raw: str) -> bool:
    return raw.endswith(INVENTORY_SUFFIXES) and os.path.isfile(raw)


def expand_host_pattern(pattern: str) -> list[str]:
    """Ansible host ranges: `cp[1:3]` -> cp1 cp2 cp3, `cp[01:03]` keeps the width, `n[a:c]` letters."""
    m = _RANGE.search(pattern)
    if m is None:
        return [pattern]
    start, end, step_text = m.group(1), m.group(2), m.group(3)
    step = int(step_text) if step_text else 1
    if step < 1:
        raise ValueError(f"host range {m.group(0)}: the step must be at least 1")
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    elif len(start) == 1 and len(end) == 1 and start in string.ascii_letters and end in string.ascii_letters:
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        raise ValueError(f"host range {m.group(0)} is neither numeric nor single letters")
    if not values:
        raise ValueError(f"host range {m.group(0)} is empty")
    out: list[str] = []
    for v in values:
        out.extend(expand_host_pattern(pattern[: m.start()] + v + pattern[m.end() :]))
    return out


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path
        self.clusters: dict[str, list[InventoryTarget]] = {}
        self.owner: dict[str, str] = {}  # host -> group listing it directly

    def fail(self, where: str, message: str) -> InputError:
        return InputError(f"inventory {self.path}: {where}: {message}")

    def group(self, name: str, body: Any, inherited: dict[str, Any], where: str, depth: int = 0) -> None:
        if depth > 20:
            raise self.fail(where, "groups nested more than 20 deep (a cycle?)")
        if body is None:
            return  # an empty group: Ansible allows it; it contributes no nodes
        if not isinstance(body, dict):
            raise self.fail(where, f"a group must be a mapping with hosts, children or vars, not {_kind(body)}")
        unknown = sorted(str(k) for k in body if k not in GROUP_KEYS)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (a group has hosts, children and vars)")
        group_vars = body.get("vars") or {}
        if not isinstance(group_vars, dict):
            raise self.fail(f"{where}.vars", f"must be a mapping, not {_kind(group_vars)}")
        variables = {**inherited, **_normalize(group_vars)}
        hosts = body.get("hosts")
        if hosts is not None:
            if not isinstance(hosts, dict):
                raise self.fail(f"{where}.hosts", f"must be a mapping of host names, not {_kind(hosts)}")
            for pattern, host_vars in hosts.items():
                self.hosts(name, str(pattern), host_vars, variables, f"{where}.hosts.{pattern}")
        children = body.get("children")
        if children is not None:
            if not isinstance(children, dict):
                raise self.fail(f"{where}.children", f"must be a mapping of groups, not {_kind(children)}")
            for child, child_body in children.items():
                self.group(str(child), child_body, variables, f"{where}.children.{child}", depth + 1)

    def hosts(self, group: str, pattern: str, host_vars: Any, inherited: dict[str, Any], where: str) -> None:
        if host_vars is not None and not isinstance(host_vars, dict):
            raise self.fail(where, f"host variables must be a mapping, not {_kind(host_vars)}")
        try:
            names = expand_host_pattern(pattern)
        except ValueError as exc:
            raise self.fail(where, str(exc)) from None
        for name in names:
            owner = self.owner.get(name)
            if owner is not None and owner != group:
                raise self.fail(
                    where, f"host {name} is listed in groups {owner} and {group}: a node belongs to one cluster"
                )
            self.owner[name] = group
            nodes = self.clusters.setdefault(group, [])
            if any(n.inventory_name == name for n in nodes):
                continue
            nodes.append(self.target(name, {**inherited, **_normalize(host_vars or {})}, where))

    def target(self, name: str, v: dict[str, Any], where: str) -> InventoryTarget:
        refused = [k for k in _REFUSED if k in v]
        if refused:
            raise self.fail(
                where, f"{refused[0]} is refused: kaudit never reads passwords from files (use --sudo-password-stdin)"
            )
        connection = str(v.get("ansible_connection") or "ssh").strip()
        if connection in LOCAL_CONNECTIONS:
            return InventoryTarget(raw=name, kind="local", inventory_name=name, source=self.path)
        if connection in DOCKER_CONNECTIONS:
            return self.kind_target(name, v, where)
        if connection not in SSH_CONNECTIONS:
            raise self.fail(where, f"ansible_connection {connection} is not one kaudit can follow "
                                   "(ssh, paramiko, smart, local, or docker for kind nodes)")
        host = v.get("ansible_host", name)
        user = v.get("ansible_user")
        port = v.get("ansible_port")
        key = v.get("ansible_ssh_private_key_file")
        if not isinstance(host, str) or not host.strip():
            raise self.fail(where, f"ansible_host must be a host name or address, not {host!r}")
        if user is not None and not isinstance(user, str):
            raise self.fail(where, f"ansible_user must be a string, not {user!r}")
        if port is not None:
            if isinstance(port, str) and port.isdigit():
                port = int(port)
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                raise self.fail(where, f"ansible_port must be a port number 1-65535, not {port!r}")
        if key is not None and not isinstance(key, str):
            raise self.fail(where, f"ansible_ssh_private_key_file must be a path, not {key!r}")
        host = host.strip().strip("[]")
        try:
            parse_target(f"[{host}]" if ":" in host else host)  # the same host syntax as a command-line target
        except InputError:
            raise self.fail(where, f"{host!r} is not a valid host name or address") from None
        if key is not None:
            key = os.path.expanduser(key)  # relative paths stay relative to the working directory, as in Ansible
        args = self.ssh_args(v, "ansible_ssh_common_args", where)
        args.update(self.ssh_args(v, "ansible_ssh_extra_args", where))
        jump = args.get("proxyjump")
        strict = args.get("stricthostkeychecking", "").lower()
        checking = _flag(v.get("ansible_host_key_checking", True)) and strict not in ("no", "off", "false")
        known = args.get("userknownhostsfile", "").split()
        return InventoryTarget(
            raw=name, kind="ssh", host=host, user=user, port=port, identity_file=key, inventory_name=name,
            source=self.path, proxy_jump=jump if jump and jump.lower() != "none" else None,
            known_hosts=os.path.expanduser(known[0]) if known else None, accept_new_host_key=strict == "accept-new",
            host_key_checking=checking,
        )

    def kind_target(self, name: str, v: dict[str, Any], where: str) -> InventoryTarget:
        container = str(v.get("ansible_docker_host") or v.get("ansible_host") or name).strip()
        cluster = v.get("kaudit_kind_cluster")
        if not cluster:
            m = _KIND_NODE.match(container)
            if m is None:
                raise self.fail(where, f"ansible_connection docker: container {container} is not named like a kind "
                                       "control-plane node (CLUSTER-control-plane[N]); set kaudit_kind_cluster to "
                                       "its kind cluster")
            cluster = m.group("cluster")
        raw = f"kind://{cluster}/{container}"
        try:
            parsed = parse_target(raw)
        except InputError as exc:
            raise self.fail(where, str(exc)) from None
        return InventoryTarget(raw=raw, kind="kind", cluster=parsed.cluster, node=parsed.node, inventory_name=name,
                               source=self.path)

    def ssh_args(self, v: dict[str, Any], var: str, where: str) -> dict[str, str]:
        """The -o / -J options of an ansible_ssh_*_args variable that decide where and how kaudit connects,
        keys lower-cased. ProxyCommand cannot be followed (kaudit speaks SSH itself): refused, naming it."""
        text = v.get(var)
        out: dict[str, str] = {}
        if text is None or text == "":
            return out
        if not isinstance(text, str):
            raise self.fail(where, f"{var} must be a string of ssh options, not {_kind(text)}")
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise self.fail(where, f"{var}: {exc}") from None
        i = 0
        while i < len(words):
            w = words[i]
            if w.startswith(("-J", "-o")):
                value = w[2:] or (words[i + 1] if i + 1 < len(words) else "")
                i += 1 if w[2:] else 2
                if w.startswith("-J"):
                    out["proxyjump"] = value
                    continue
                key, sep, val = value.partition("=")
                if not sep:
                    key, _, val = value.strip().partition(" ")
                out[key.strip().lower()] = val.strip()
                continue
            i += 1
        command = out.get("proxycommand")
        if command and command.lower() != "none":
            raise self.fail(where, f"{var} sets ProxyCommand, which kaudit cannot follow (it speaks SSH itself): use "
                                   "ProxyJump (-J user@bastion or -o ProxyJump=user@bastion) instead")
        return out


def _normalize(variables: dict[Any, Any]) -> dict[str, Any]:
    """Ansible's old ansible_ssh_* names are aliases: at one level, either spelling sets the variable."""
    return {_ALIASES.get(str(k), str(k)): v for k, v in variables.items()}


def _flag(value: Any) -> bool:
    """An Ansible boolean: true/yes/on/1 (any case), or a YAML boolean."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return type(value).__name__


def load_inventory(path: str) -> list[Cluster]:
    """Read an Ansible YAML inventory: one Cluster per group that lists hosts, in file order."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(f"cannot read inventory {path}: {exc.strerror}") from None
    return parse_inventory(text, path)


def parse_inventory(text: str, path: str = "inventory") -> list[Cluster]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        data = yaml.load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"inventory {path}: {where}: {problem}") from None
    if data is None:
        raise InputError(f"inventory {path} is empty")
    if not isinstance(data, dict):
        raise InputError(f"inventory {path}: the top level must be a mapping of groups (e.g. all:), not {_kind(data)}")
    reader = _Reader(path)
    all_group = data.get("all")
    all_vars: dict[str, Any] = {}
    if isinstance(all_group, dict) and isinstance(all_group.get("vars"), dict):
        all_vars = _normalize(all_group["vars"])
    ungrouped: Any = None
    for name, body in data.items():
        name = str(name)
        if name == "all" and isinstance(body, dict) and body.get("hosts") is not None:
            ungrouped = body["hosts"]
            body = {k: v for k, v in body.items() if k != "hosts"}
        reader.group(name, body, {} if name == "all" else all_vars, name)
    if ungrouped is not None:
        # Hosts only under `all` are Ansible's implicit `ungrouped` group: one cluster of their own.
        if not isinstance(ungrouped, dict):
            raise reader.fail("all.hosts", f"must be a mapping of host names, not {_kind(ungrouped)}")
        for pattern, host_vars in ungrouped.items():
            try:
                names = expand_host_pattern(str(pattern))
            except ValueError as exc:
                raise reader.fail(f"all.hosts.{pattern}", str(exc)) from None
            if any(n not in reader.owner for n in names):
                reader.hosts("ungrouped", str(pattern), host_vars, all_vars, f"all.hosts.{pattern}")
    clusters = [Cluster(name=name, nodes=list(nodes)) for name, nodes in reader.clusters.items() if nodes]
    if not clusters:
        raise InputError(f"inventory {path} lists no hosts")
    return clusters


def expand_targets(raw: list[str]) -> list[Cluster]:
    """Command-line targets to clusters: each inventory file (an existing *.yml/*.yaml file) gives its
    groups; the other targets are grouped as before (ssh/local together, each kind/minikube alone).
    Cluster names are unique: a repeated name gets its source appended."""
    clusters: list[Cluster] = []
    direct: list[Target] = []
    for item in raw:
        if is_inventory(item):
            clusters.extend(load_inventory(item))
        elif item.endswith(INVENTORY_SUFFIXES) and ("/" in item or os.sep in item):
            raise InputError(f"inventory {item} does not exist")
        else:
            direct.append(parse_target(item))
    clusters.extend(group_targets(direct))
    seen: dict[str, int] = {}
    out: list[Cluster] = []
    for c in clusters:
        n = seen.get(c.name, 0)
        seen[c.name] = n + 1
        out.append(c if n == 0 else Cluster(name=f"{c.name}#{n + 1}", nodes=c.nodes))
    return out
