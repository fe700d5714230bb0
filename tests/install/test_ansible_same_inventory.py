"""One inventory, read the same way by `kaudit ... INVENTORY` and by the kaudit.audit collection (issue 20
item 8): the collection hands kaudit each host's connection variables and kaudit's inventory reader decides
how the host is reached, so a host key checking switch, a known_hosts file and a ProxyJump in
`ansible_ssh_common_args` apply under both, and what one run does the other sees done."""

from __future__ import annotations

from tests.conftest import NodeFactory
from tests.install.test_ansible_collection import (  # noqa: F401 - the fixtures
    FAST,
    Controller,
    audit,
    audit_argv,
    collection,
    controller,
)
from tests.kaudit_cli import kaudit
from tests.userinstall import bindir


def test_one_inventory_through_kaudit_and_the_playbook(node_factory: NodeFactory,
                                                        controller: Controller) -> None:  # noqa: F811
    a1, b1 = node_factory(), node_factory()
    empty = controller.base / "empty_known_hosts"
    empty.write_text("")
    # b1 through a jump host named in ~/.ssh/config (the node itself: the test nodes share 127.0.0.1)
    (controller.home / ".ssh/config").write_text(
        f"Host bastion\n  HostName {b1.host}\n  Port {b1.ssh_port}\n  User kadmin\n  IdentityFile {b1.key_path}\n"
        f"  UserKnownHostsFile {b1.known_hosts}\n")
    inventory = controller.base / "inventory.yml"  # where Controller.run points ansible-playbook
    inventory.write_text(f"""\
all:
  vars:
    ansible_user: kadmin
    kaudit_command: {bindir() / 'kaudit'}
  children:
    alpha:
      hosts:
        a1:
          ansible_host: {a1.host}
          ansible_port: {a1.ssh_port}
          ansible_ssh_private_key_file: {a1.key_path}
          ansible_host_key_checking: false
          ansible_ssh_common_args: -o UserKnownHostsFile={empty}
    beta:
      vars:
        ansible_ssh_common_args: -o UserKnownHostsFile={b1.known_hosts} -J bastion
      hosts:
        b1:
          ansible_host: {b1.host}
          ansible_port: {b1.ssh_port}
          ansible_ssh_private_key_file: {b1.key_path}
""")
    home = {"HOME": str(controller.home)}

    def logins() -> tuple[int, int]:
        return a1.sshd_log().count("Accepted publickey"), b1.sshd_log().count("Accepted publickey")

    # status: the same nodes, read the same, reached the same way (b1 twice: the jump host, then the node)
    before = logins()
    status = kaudit("status", str(inventory), "--output", "json", env=home)
    assert status.code == 0, status.out + status.err
    by_kaudit = {n["node"]: (n["cluster"], n["ok"], n["audit_enabled"]) for n in status.json()["nodes"]}
    assert by_kaudit == {"a1": ("alpha", True, False), "b1": ("beta", True, False)}
    after_kaudit = logins()
    info = controller.run(controller.playbook("info", [{"kaudit.audit.audit_info": {}}]))
    assert info.code == 0, info.out + info.err
    by_ansible = {h: (r["status"]["cluster"], r["status"]["ok"], r["status"]["audit_enabled"])
                  for h, r in info.results.items()}
    assert by_ansible == by_kaudit
    after_ansible = logins()
    assert [k - b for k, b in zip(after_kaudit, before, strict=True)] == [1, 2]
    assert [p - k for p, k in zip(after_ansible, after_kaudit, strict=True)] == [1, 2]
    assert empty.read_text() == ""  # host key checking off: the host's file is neither trusted nor written

    # kaudit enables the fleet; the same task in the playbook finds nothing to do on either host
    run = kaudit("enable", str(inventory), "--profile", "minimal", "--yes", "--output", "json", "--timeout", "10",
                 "--guard-grace", "3", env=home, timeout=180)
    assert run.code == 0, run.out + run.err
    applied = {n["node"]: n["policy_file"] for n in run.json()["nodes"]}
    assert set(applied) == {"a1", "b1"} and all(audit_argv(n) for n in (a1, b1))
    play = controller.run(controller.playbook("enable", [audit(profile="minimal", **FAST)]))
    assert play.code == 0, play.out + play.err
    assert {h: (r["changed"], r["action"], r["kaudit"]["policy_file"]) for h, r in play.results.items()} == {
        h: (False, "unchanged", p) for h, p in applied.items()}

    # the playbook turns it off; kaudit reads both hosts off
    play = controller.run(controller.playbook("disable", [audit(state="disabled", **FAST)]))
    assert play.code == 0, play.out + play.err
    assert {h: r["action"] for h, r in play.results.items()} == {"a1": "disabled", "b1": "disabled"}
    status = kaudit("status", str(inventory), "--output", "json", env=home)
    assert status.code == 0 and {n["node"]: n["audit_enabled"] for n in status.json()["nodes"]} == {
        "a1": False, "b1": False}
    assert audit_argv(a1) == [] and audit_argv(b1) == []
