"""Ansible YAML inventories as targets: each group listing hosts is one cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import InputError
from installer.targets.inventory import InventoryTarget, expand_host_pattern, expand_targets, parse_inventory

INVENTORY = """\
all:
  vars:
    ansible_user: admin
  hosts:
    lonely: {ansible_host: 10.9.9.9}
    cp1:                       # also in prod: not ungrouped
  children:
    prod:
      vars: {ansible_port: 2222}
      hosts:
        cp1: {ansible_host: 10.0.0.11, ansible_ssh_private_key_file: ~/.ssh/prod}
        cp[2:3]:
        v6: {ansible_host: "fd00::1", ansible_port: "22", ansible_ssh_user: root}
    staging:
      children:
        staging_cp:
          hosts:
            st-[a:b]:
    onbox:
      hosts:
        me: {ansible_connection: local}
"""


def test_groups_are_clusters_with_ansible_precedence() -> None:
    clusters = parse_inventory(INVENTORY, "inv.yaml")
    assert [c.name for c in clusters] == ["prod", "staging_cp", "onbox", "ungrouped"]
    prod = clusters[0].nodes
    assert all(isinstance(t, InventoryTarget) for t in prod)
    rows = [(t.display, t.kind, t.host, t.port, t.user) for t in prod]
    assert rows == [
        ("cp1", "ssh", "10.0.0.11", 2222, "admin"),
        ("cp2", "ssh", "cp2", 2222, "admin"),
        ("cp3", "ssh", "cp3", 2222, "admin"),
        ("v6", "ssh", "fd00::1", 22, "root"),
    ]
    assert isinstance(prod[0], InventoryTarget) and prod[0].identity_file == str(Path("~/.ssh/prod").expanduser())
    assert [t.host for t in clusters[1].nodes] == ["st-a", "st-b"]
    assert clusters[2].nodes[0].kind == "local"
    assert [(t.display, t.host) for t in clusters[3].nodes] == [("lonely", "10.9.9.9")]


def test_host_ranges() -> None:
    assert expand_host_pattern("cp[01:03].example") == ["cp01.example", "cp02.example", "cp03.example"]
    assert expand_host_pattern("n[0:6:3]") == ["n0", "n3", "n6"]
    assert expand_host_pattern("r[a:b]n[1:2]") == ["ran1", "ran2", "rbn1", "rbn2"]
    with pytest.raises(ValueError, match="empty"):
        expand_host_pattern("x[5:1]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("all:\n  children:\n    prod:\n      host:\n        cp1:\n", r"all.children.prod: unknown key 'host'"),
        ("prod:\n  hosts: [cp1, cp2]\n", r"prod.hosts: must be a mapping of host names, not a list"),
        ("prod:\n  hosts:\n    cp1: {ansible_port: 70000}\n", "ansible_port must be a port number"),
        ("prod:\n  hosts:\n    cp1: {ansible_port: true}\n", "ansible_port must be a port number"),
        ("prod:\n  hosts:\n    cp1: {ansible_host: 'bad host'}\n", "not a valid host name"),
        ("prod:\n  hosts:\n    cp1: {ansible_become_password: x}\n", "never reads passwords"),
        ("a:\n  hosts: {cp1: }\nb:\n  hosts: {cp1: }\n", "host cp1 is listed in groups a and b"),
        ("prod:\n  hosts:\n    cp1: 3\n", "host variables must be a mapping"),
        ("prod:\n  hosts:\n    cp1:\n    cp1:\n", "line 4"),
        ("prod:\n  hosts: {cp1: }\n  vars: [1]\n", r"prod.vars: must be a mapping"),
        ("prod:\n  children:\n    empty:\n", "lists no hosts"),
        ("prod: [\n", "line"),
    ],
)
def test_malformed_inventories_say_where(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as exc:
        parse_inventory(text, "inv.yaml")
    assert str(exc.value).startswith("inventory inv.yaml")
    assert "\n" not in str(exc.value)


def test_expand_targets_mixes_inventories_and_targets(tmp_path: Path) -> None:
    inv = tmp_path / "fleet.yml"
    inv.write_text("prod:\n  hosts: {cp1: , cp2: }\nkind:\n  hosts: {k1: }\n")
    clusters = expand_targets([str(inv), "admin@10.0.0.5", "root@10.0.0.6", "kind://dev", "minikube://"])
    assert [c.name for c in clusters] == ["prod", "kind", "cluster", "kind://dev", "minikube://"]
    assert [t.display for t in clusters[2].nodes] == ["admin@10.0.0.5", "root@10.0.0.6"]
    clusters = expand_targets([str(inv), str(inv)])
    assert [c.name for c in clusters] == ["prod", "kind", "prod#2", "kind#2"]
    with pytest.raises(InputError, match="does not exist"):
        expand_targets([str(tmp_path / "missing.yaml")])
    assert expand_targets(["cp1.yaml"])[0].nodes[0].host == "cp1.yaml"  # a host name, not a file here
