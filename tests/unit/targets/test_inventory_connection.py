"""How kaudit reaches an inventory host (installer/targets/inventory.py): ansible_connection, the ssh options
of ansible_ssh_common_args/ansible_ssh_extra_args, host key checking, and the ssh options a host's settings
give (its ProxyJump and known_hosts in an ssh_config that includes the user's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.errors import InputError
from installer.targets.inventory import InventoryTarget, expand_targets, parse_inventory
from installer.transport import sshconfig
from installer.transport.ssh import SSHOptions


def one(host_vars: str, group_vars: str = "{}") -> InventoryTarget:
    [cluster] = parse_inventory(f"prod:\n  vars: {group_vars}\n  hosts:\n    cp1: {host_vars}\n", "inv.yml")
    [target] = cluster.nodes
    assert isinstance(target, InventoryTarget)
    return target


def test_connections() -> None:
    assert one("{ansible_connection: ansible.builtin.local}").kind == "local"
    t = one("{ansible_connection: docker}", "{kaudit_kind_cluster: dev}")
    assert (t.kind, t.raw, t.display) == ("kind", "kind://dev/cp1", "cp1")
    assert one("{ansible_connection: docker, ansible_docker_host: k-control-plane3}").raw == \
        "kind://k/k-control-plane3"
    assert one("{ansible_connection: paramiko, ansible_host: 10.0.0.1}").kind == "ssh"
    with pytest.raises(InputError, match=r"inv\.yml: prod\.hosts\.cp1: ansible_connection winrm is not one"):
        one("{ansible_connection: winrm}")
    with pytest.raises(InputError, match="CLUSTER-control-plane"):
        one("{ansible_connection: docker}")


def test_ssh_args_and_host_key_checking() -> None:
    t = one("{ansible_host: 10.0.0.5, ansible_ssh_extra_args: '-o UserKnownHostsFile=\"/k h\"'}",
            "{ansible_ssh_common_args: -Jops@bastion -o StrictHostKeyChecking=accept-new}")
    assert (t.proxy_jump, t.known_hosts, t.accept_new_host_key, t.host_key_checking) == (
        "ops@bastion", "/k", True, True)
    assert not one("{ansible_host_key_checking: 'False'}").host_key_checking
    assert not one("{ansible_ssh_common_args: -o StrictHostKeyChecking=no}").host_key_checking
    assert one("{ansible_ssh_common_args: -o ProxyJump=none}").proxy_jump is None
    with pytest.raises(InputError, match=r"prod\.hosts\.cp1: ansible_ssh_common_args sets ProxyCommand"):
        one("{ansible_ssh_common_args: -o 'ProxyCommand=ssh -W %h:%p b'}")
    with pytest.raises(InputError, match="ansible_ssh_extra_args must be a string"):
        one("{ansible_ssh_extra_args: [a]}")
    with pytest.raises(InputError, match="No closing quotation"):
        one("{ansible_ssh_extra_args: \"-o 'x\"}")


def test_ssh_options_apply_the_hosts_settings_before_the_users_config(tmp_path: Path) -> None:
    user_config = tmp_path / "config"
    user_config.write_text("Host bastion\n  HostName 192.0.2.9\n  User jump\n\nHost 10.0.0.5\n  Port 2200\n"
                           "  UserKnownHostsFile /users\n")
    base = SSHOptions(config_file=str(user_config), identity_file="/cli-key", known_hosts="/cli-known")
    t = one("{ansible_host: 10.0.0.5, ansible_ssh_private_key_file: /inv-key, "
            "ansible_ssh_common_args: -J bastion -o UserKnownHostsFile=/inv-known}")
    opts = t.ssh_options(base, str(tmp_path))
    assert opts.identity_file == "/inv-key" and opts.known_hosts is None and not opts.accept_new_host_key
    config = sshconfig.load(opts.config_file)
    node = sshconfig.lookup(config, "10.0.0.5")
    assert (node.proxy_jump, node.known_hosts_files, node.port) == ("bastion", ["/inv-known"], 2200)
    jump = sshconfig.lookup(config, "bastion")  # the jump host keeps its own settings
    assert (jump.hostname, jump.user, jump.known_hosts_files) == ("192.0.2.9", "jump", [])
    # nothing of the host's own: the run's options as they are
    assert one("{ansible_host: 10.0.0.5}").ssh_options(base, str(tmp_path)) == base
    # host key checking off: a throwaway known_hosts file, any key accepted
    off = one("{ansible_host: 10.0.0.5, ansible_host_key_checking: false}").ssh_options(base, str(tmp_path))
    known = sshconfig.lookup(sshconfig.load(off.config_file), "10.0.0.5").known_hosts_files
    assert off.accept_new_host_key and known[0].startswith(str(tmp_path)) and off.known_hosts is None


def test_a_json_inventory_is_read_as_the_yaml_one(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text('{"all": {"children": {"prod": {"hosts": {"cp1": {"ansible_host": "10.0.0.5", '
                    '"ansible_port": 2222}}}}}}')
    [cluster] = expand_targets([str(path)])
    [t] = cluster.nodes
    assert (cluster.name, t.display, t.host, t.port) == ("prod", "cp1", "10.0.0.5", 2222)
