"""The collection's mapping of Ansible connection variables to kaudit targets (ansible/plugins/plugin_utils),
without nodes: the kind (docker) and local connections, ProxyJump/-J, host_key_checking, ProxyCommand refused."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

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


def node(conn: str, opts: dict, hv: dict | None = None, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("host_key_checking", True)
    return U.make_node("cp1", conn, opts, hv or {}, scratch="/tmp/s", index=0, **kw)


def test_docker_connection_is_a_kind_node() -> None:
    assert node("docker", {"remote_addr": "dev-control-plane2"}).target == "kind://dev/dev-control-plane2"
    assert node("community.docker.docker", {}, {"ansible_host": "kaudit-control-plane"}).target == \
        "kind://kaudit/kaudit-control-plane"
    assert node("docker", {"remote_addr": "box"}, kind_cluster="c1").target == "kind://c1/box"
    with pytest.raises(U.KauditError, match="kaudit_kind_cluster"):
        node("docker", {"remote_addr": "box"})


def test_local_and_unknown_connections() -> None:
    n = node("local", {}, become_password="pw")
    assert (n.kind, n.target, n.sudo_password) == ("local", "local", "pw")
    with pytest.raises(U.KauditError, match="winrm"):
        node("winrm", {})


def test_ssh_block_proxyjump_and_known_hosts() -> None:
    n = node("ssh", {"host": "10.0.0.5", "port": 2222, "remote_user": "admin", "private_key_file": "/k",
                     "ssh_common_args": "-J ops@bastion:2200 -o UserKnownHostsFile=/kh -o ControlMaster=auto"})
    assert n.target == "cp1" and not n.accept_new_host_key
    assert n.config_block.splitlines() == ["Host cp1", "  HostName 10.0.0.5", "  Port 2222", "  User admin",
                                           "  IdentityFile /k", "  ProxyJump ops@bastion:2200",
                                           "  UserKnownHostsFile /kh"]
    assert "ProxyJump jump" in node("ssh", {"host": "h", "ssh_extra_args": "-o ProxyJump=jump"}).config_block
    assert node("ssh", {"host": "h", "ssh_common_args": "-o StrictHostKeyChecking=accept-new"}).accept_new_host_key


def test_host_key_checking_off_uses_a_throwaway_known_hosts() -> None:
    n = node("ssh", {"host": "h"}, host_key_checking=False)
    assert n.accept_new_host_key and "UserKnownHostsFile /tmp/s/known_hosts-0" in n.config_block
    n = node("ssh", {"host": "h", "ssh_common_args": "-o StrictHostKeyChecking=no"})
    assert n.accept_new_host_key and "/tmp/s/known_hosts-0" in n.config_block


def test_proxycommand_is_refused_with_the_way_out() -> None:
    with pytest.raises(U.KauditError, match="ProxyJump"):
        node("ssh", {"host": "h", "ssh_common_args": "-o ProxyCommand='ssh -W %h:%p bastion'"})


def test_known_hosts_left_to_the_users_ssh_config_unless_the_inventory_names_one() -> None:
    assert "UserKnownHostsFile" not in node("ssh", {"host": "10.0.0.5"}).config_block


def test_the_users_ssh_config_applies_to_the_address_as_with_ansibles_ssh() -> None:
    """Ansible's ssh connection runs `ssh ADDRESS`: the user's `Host ADDRESS` block applies, so kaudit's target
    is the address, its block without HostName (a user's HostName for a name still applies); nodes of one run
    sharing an address keep blocks named after their inventory hosts, with HostName."""
    a = U.make_node("cp1", "ssh", {"host": "10.0.0.5", "port": 2222}, {}, host_key_checking=True, scratch="/s",
                    index=0)
    b = U.make_node("cp2", "ssh", {}, {"ansible_host": "cp2.lan"}, host_key_checking=True, scratch="/s", index=1)
    v6 = U.make_node("cp3", "ssh", {"host": "fd00::3"}, {}, host_key_checking=True, scratch="/s", index=2)
    assert U.ssh_targets([a, b, v6]) == [("10.0.0.5", "Host 10.0.0.5\n  Port 2222\n"), ("cp2.lan", "Host cp2.lan\n"),
                                         ("cp3", "Host cp3\n  HostName fd00::3\n")]
    shared = [U.make_node(f"n{i}", "ssh", {"host": "127.0.0.1", "port": 2200 + i}, {}, host_key_checking=True,
                          scratch="/s", index=i) for i in range(2)]
    assert U.ssh_targets(shared) == [("n0", "Host n0\n  HostName 127.0.0.1\n  Port 2200\n"),
                                     ("n1", "Host n1\n  HostName 127.0.0.1\n  Port 2201\n")]
    local = node("local", {})
    assert U.ssh_targets([local, a]) == [("local", ""), ("10.0.0.5", "Host 10.0.0.5\n  Port 2222\n")]
