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

Variables: `ansible_host`, `ansible_port`, `ansible_user` (or `ansible_ssh_user`,
`ansible_ssh_host`, `ansible_ssh_port`), `ansible_ssh_private_key_file`, and
`ansible_connection: local`. Precedence as in Ansible: `all` vars, then parent groups, then the
group, then the host. Passwords in an inventory (`ansible_password`, `ansible_become_password`)
are refused: kaudit takes the sudo password on stdin only. A group with neither hosts nor
children, a host listed directly in two groups, unknown group keys (a typo such as `host:`) and
malformed values are errors naming the file and the place.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from typing import Any

from installer.errors import InputError
from installer.targets.parse import Cluster, Target, group_targets, parse_target

INVENTORY_SUFFIXES = (".yml", ".yaml")
GROUP_KEYS = {"hosts", "children", "vars"}
_REFUSED = (
    "ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass", "ansible_sudo_pass",
)
_ALIASES = {"ansible_ssh_host": "ansible_host", "ansible_ssh_port": "ansible_port", "ansible_ssh_user": "ansible_user"}
_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")


@dataclass(frozen=True)
class InventoryTarget(Target):
    """A host from an inventory: an ssh (or local) target that also names its key and inventory name."""

    identity_file: str | None = None
    inventory_name: str = ""
    source: str = ""  # the inventory file

    @property
    def display(self) -> str:
        return self.inventory_name or super().display


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
        if str(v.get("ansible_connection", "ssh")) == "local":
            return InventoryTarget(raw=name, kind="local", inventory_name=name, source=self.path)
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
        return InventoryTarget(
            raw=name, kind="ssh", host=host, user=user, port=port, identity_file=key, inventory_name=name,
            source=self.path,
        )


def _normalize(variables: dict[Any, Any]) -> dict[str, Any]:
    """Ansible's old ansible_ssh_* names are aliases: at one level, either spelling sets the variable."""
    return {_ALIASES.get(str(k), str(k)): v for k, v in variables.items()}


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
