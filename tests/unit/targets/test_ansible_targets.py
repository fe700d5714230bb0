"""The collection's hand-over of a host's connection variables to kaudit (ansible/plugins/plugin_utils): the
values Ansible resolved, under their inventory names, read back by kaudit's own inventory reader
(installer/targets/inventory.py, as `kaudit enable INVENTORY` reads a file), so both interpret one form."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from installer.errors import InputError
from installer.targets.inventory import InventoryTarget, load_inventory
from tests.paths import ROOT


def _utils() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kaudit_collection_utils",
                                                  ROOT / "ansible/plugins/plugin_utils/kaudit.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


U = _utils()


def through_kaudit(tmp_path: Path, conn: str, opts: dict, hv: dict | None = None,  # type: ignore[type-arg]
                   **kw: object) -> InventoryTarget:
    """The host as the plugin hands it over and kaudit reads it."""
    kw.setdefault("host_key_checking", True)
    host = U.Host("cp1", U.host_variables("cp1", conn, opts, hv or {}, **kw), sudo_password="pw")
    path = U.write_inventory(str(tmp_path), {"prod": [host]})
    assert "pw" not in Path(path).read_text()  # the become password goes to stdin, never into the file
    [cluster] = load_inventory(path)
    assert cluster.name == "prod"
    [target] = cluster.nodes
    assert isinstance(target, InventoryTarget)
    return target


def test_docker_connection_is_a_kind_node(tmp_path: Path) -> None:
    t = through_kaudit(tmp_path, "docker", {"remote_addr": "dev-control-plane2"})
    assert (t.kind, t.cluster, t.node, t.display) == ("kind", "dev", "dev-control-plane2", "cp1")
    t = through_kaudit(tmp_path, "community.docker.docker", {}, {"ansible_host": "kaudit-control-plane"})
    assert t.raw == "kind://kaudit/kaudit-control-plane"
    assert through_kaudit(tmp_path, "docker", {"remote_addr": "box"}, kind_cluster="c1").raw == "kind://c1/box"
    with pytest.raises(InputError, match="kaudit_kind_cluster"):
        through_kaudit(tmp_path, "docker", {"remote_addr": "box"})


def test_local_and_unknown_connections(tmp_path: Path) -> None:
    assert through_kaudit(tmp_path, "local", {"remote_addr": "ignored"}).kind == "local"
    with pytest.raises(InputError, match=r"hosts\.cp1: ansible_connection winrm is not one kaudit can follow"):
        through_kaudit(tmp_path, "winrm", {})


def test_ssh_options_proxyjump_and_known_hosts(tmp_path: Path) -> None:
    t = through_kaudit(tmp_path, "ssh", {
        "host": "10.0.0.5", "port": 2222, "remote_user": "admin", "private_key_file": "/k",
        "ssh_common_args": "-J ops@bastion:2200 -o UserKnownHostsFile=/kh -o ControlMaster=auto"})
    assert (t.host, t.port, t.user, t.identity_file, t.proxy_jump, t.known_hosts) == (
        "10.0.0.5", 2222, "admin", "/k", "ops@bastion:2200", "/kh")
    assert t.host_key_checking and not t.accept_new_host_key
    assert through_kaudit(tmp_path, "ssh", {"host": "h", "ssh_extra_args": "-o ProxyJump=jump"}).proxy_jump == "jump"
    assert through_kaudit(tmp_path, "ssh", {"host": "h", "ssh_common_args": "-o StrictHostKeyChecking=accept-new"}
                          ).accept_new_host_key
    # unset options fall back to the host's variables, as the connection plugin would
    t = through_kaudit(tmp_path, "smart", {}, {"ansible_host": "cp1.lan", "ansible_port": "2200",
                                               "ansible_private_key_file": "~/k"})
    assert (t.host, t.port, t.identity_file) == ("cp1.lan", 2200, str(Path("~/k").expanduser()))


def test_the_tasks_known_hosts_option_wins_over_the_hosts_own(tmp_path: Path) -> None:
    t = through_kaudit(tmp_path, "ssh", {"host": "h", "ssh_extra_args": "-o UserKnownHostsFile=/host"},
                       known_hosts="/task")
    assert t.known_hosts == "/task"


def test_host_key_checking_off(tmp_path: Path) -> None:
    assert not through_kaudit(tmp_path, "ssh", {"host": "h"}, host_key_checking=False).host_key_checking
    assert not through_kaudit(tmp_path, "ssh", {"host": "h", "ssh_common_args": "-o StrictHostKeyChecking=no"}
                              ).host_key_checking


def test_proxycommand_is_refused_with_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ProxyJump"):
        through_kaudit(tmp_path, "ssh", {"host": "h", "ssh_common_args": "-o ProxyCommand='ssh -W %h:%p bastion'"})


def test_the_hand_over_is_plain_json(tmp_path: Path) -> None:
    host = U.Host("cp1", U.host_variables("cp1", "ssh", {"host": "10.0.0.5", "port": 22}, {},
                                          host_key_checking=True))
    doc = json.loads(Path(U.write_inventory(str(tmp_path), {"prod": [host]})).read_text())
    assert doc == {"all": {"children": {"prod": {"hosts": {"cp1": {
        "ansible_connection": "ssh", "ansible_host": "10.0.0.5", "ansible_port": 22,
        "ansible_host_key_checking": True}}}}}}
