"""The Ansible collection (ansible/, kaudit.audit): built and installed with ansible-galaxy, documented for
ansible-doc, and driven by real `ansible-playbook` runs against test nodes over real SSH, with the node
(manifest bytes, the running instance) checked after each run, not only Ansible's report (issue 15)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NodeFactory
from tests.kaudit_cli import on
from tests.node import SUDO_PASSWORD
from tests.node.node import TestNode
from tests.paths import ROOT
from tests.userinstall import bindir

BIN = Path(sys.executable).parent
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
FAST = {"timeout": 10, "guard_grace": 3}  # as tests/kaudit_cli.py change()


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built with `ansible-galaxy collection build` and installed from the tarball into a
    temporary collections path (returned)."""
    out = tmp_path_factory.mktemp("collection")
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT / "ansible"),
                            "--output-path", str(out)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    [tarball] = out.glob("kaudit-audit-*.tar.gz")
    path = out / "path"
    inst = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path)],
                          capture_output=True, text=True, check=False)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (path / "ansible_collections/kaudit/audit/plugins/action/audit.py").is_file()
    return path


@dataclass
class Play:
    code: int
    out: str
    err: str
    results: dict[str, dict[str, Any]]  # host -> the last task's result (the tree callback)


class Controller:
    """An Ansible controller for one test: its own HOME (~/.ssh/config, caches), config and inventory."""

    def __init__(self, base: Path, collections: Path) -> None:
        self.base = base
        self.home = base / "home"
        (self.home / ".ssh").mkdir(parents=True, exist_ok=True)
        self.collections = collections
        self.cfg = base / "ansible.cfg"
        self.cfg.write_text("[defaults]\nhost_key_checking = True\ngathering = explicit\nretry_files_enabled = False\n"
                            "forks = 10\n")

    def inventory(self, clusters: dict[str, list[tuple[str, TestNode, dict[str, Any]]]],
                  extra_vars: dict[str, Any] | None = None) -> Path:
        """{group: [(host name, node, host vars)]}; every host reaches its node by ansible_host/port/user/key and
        the node's known_hosts through ansible_ssh_common_args, as an operator's inventory would."""
        children: dict[str, Any] = {}
        for group, hosts in clusters.items():
            children[group] = {"hosts": {}}
            for name, node, hv in hosts:
                children[group]["hosts"][name] = {
                    "ansible_host": node.host, "ansible_port": node.ssh_port, "ansible_user": "kadmin",
                    "ansible_ssh_private_key_file": str(node.key_path),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={node.known_hosts}", **hv,
                }
        doc = {"all": {"vars": {"kaudit_command": str(bindir() / "kaudit"), **(extra_vars or {})},
                       "children": children}}
        path = self.base / "inventory.yml"
        path.write_text(json.dumps(doc, indent=1))  # JSON is YAML
        return path

    def playbook(self, name: str, tasks: list[dict[str, Any]], hosts: str = "all", **play: Any) -> Path:
        path = self.base / f"{name}.yml"
        path.write_text(json.dumps([{"name": name, "hosts": hosts, "gather_facts": False, **play,
                                     "tasks": tasks}], indent=1))
        return path

    def run(self, playbook: Path | str, *args: str, timeout: float = 240) -> Play:
        tree = self.base / "tree"
        if tree.exists():
            for f in tree.iterdir():
                f.unlink()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
        env.update(HOME=str(self.home), ANSIBLE_CONFIG=str(self.cfg), ANSIBLE_COLLECTIONS_PATH=str(self.collections),
                   ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree", ANSIBLE_CALLBACK_TREE_DIR=str(tree),
                   ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_LOCAL_TEMP=str(self.base / "tmp"), ANSIBLE_PYTHON_INTERPRETER=sys.executable)
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(self.base / "inventory.yml"), str(playbook),
                               *args], capture_output=True, text=True, env=env, timeout=timeout, check=False,
                              cwd=self.base, stdin=subprocess.DEVNULL)
        results = {f.name: json.loads(f.read_text()) for f in tree.iterdir()} if tree.exists() else {}
        return Play(proc.returncode, proc.stdout, proc.stderr, results)


def failed(play: Play, host: str) -> bool:
    """The host failed, from the play recap (the tree callback drops the `failed` key)."""
    m = re.search(rf"^{re.escape(host)}\s+: ok=\d+\s+changed=\d+\s+unreachable=\d+\s+failed=(\d+)", play.out, re.M)
    assert m, play.out
    return int(m.group(1)) > 0


def audit(**args: Any) -> dict[str, Any]:
    return {"name": "audit", "kaudit.audit.audit": args, "register": "r"}


def manifest(node: TestNode) -> bytes:
    return node.path(MANIFEST).read_bytes()


def instance(node: TestNode) -> dict[str, Any]:
    node.wait_ready(15)
    current = node.current_instance()
    assert current is not None
    return current


def audit_argv(node: TestNode) -> list[str]:
    return [a for a in instance(node)["argv"] if a.startswith("--audit-")]


@pytest.fixture
def controller(tmp_path: Path, collection: Path) -> Iterator[Controller]:
    yield Controller(tmp_path, collection)


# -- the collection itself -----------------------------------------------------------------------------
def test_collection_builds_installs_and_every_plugin_renders_in_ansible_doc(collection: Path, tmp_path: Path) -> None:
    [tarball] = collection.parent.glob("kaudit-audit-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest_json = json.load(tar.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert {"meta/runtime.yml", "meta/execution-environment.yml", "README.md", "playbooks/rollout.yml",
            "playbooks/fleet.yml", "plugins/action/audit.py", "plugins/action/audit_info.py"} <= names
    assert manifest_json["collection_info"]["namespace"] == "kaudit"
    assert "kube-audit-installer" in requirements.split()
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(collection), "HOME": str(tmp_path), "ANSIBLE_NOCOLOR": "1"}
    listing = subprocess.run([str(BIN / "ansible-doc"), "-l", "kaudit.audit", "--json"], capture_output=True,
                             text=True, env=env, check=True)
    assert set(json.loads(listing.stdout)) == {"kaudit.audit.audit", "kaudit.audit.audit_info"}
    for plugin in ("kaudit.audit.audit", "kaudit.audit.audit_info"):
        doc = subprocess.run([str(BIN / "ansible-doc"), plugin, "--json"], capture_output=True, text=True,
                             env=env, check=False)
        assert doc.returncode == 0 and not doc.stderr.strip(), doc.stderr
        entry = json.loads(doc.stdout)[plugin]
        assert entry["doc"]["options"] and entry["examples"].strip() and entry["return"], plugin
        text = subprocess.run([str(BIN / "ansible-doc"), plugin], capture_output=True, text=True, env=env,
                              check=False)
        assert text.returncode == 0 and not text.stderr.strip(), text.stderr
        assert "EXAMPLES:" in text.stdout and "RETURN VALUES:" in text.stdout
    opts = json.loads(subprocess.run([str(BIN / "ansible-doc"), "kaudit.audit.audit", "--json"], capture_output=True,
                                     text=True, env=env, check=True).stdout)["kaudit.audit.audit"]["doc"]["options"]
    assert {"state", "profile", "vars", "policy_file", "log_path", "log_maxage", "log_maxbackup", "log_maxsize",
            "log_format", "log_compress", "webhook_config", "webhook_mode", "adopt", "timeout", "backup",
            "group"} <= set(opts)
    assert opts["state"]["choices"] == ["enabled", "disabled", "rolled_back"]
    assert opts["vars"]["type"] == "dict"


# -- one node through its life ---------------------------------------------------------------------------
def test_check_diff_enable_idempotent_info_rejected_restored(node_factory: NodeFactory,
                                                                       controller: Controller) -> None:
    node = node_factory()
    original = manifest(node)
    first = instance(node)
    controller.inventory({"prod": [("cp1", node, {})]})

    # --check --diff: nothing changes on the node, changed says a real run would, both diffs are shown.
    pb = controller.playbook("enable", [audit(profile="minimal", **FAST)], hosts="cp1")
    play = controller.run(pb, "--check", "--diff")
    assert play.code == 0, play.out + play.err
    res = play.results["cp1"]
    assert res["changed"] is True and res["action"] == "dry-run" and res["kaudit"]["changed"] is False
    assert manifest(node) == original and instance(node)["seq"] == first["seq"]
    assert "+    - --audit-policy-file=/etc/kubernetes/audit/policy-" in play.out
    policy_file = res["kaudit"]["policy_file"]
    assert "--- before: audit policy: none (auditing off)" in play.out, play.out
    assert f"+++ after: audit policy {policy_file}" in play.out and "+kind: Policy" in play.out

    # The real run: the node's manifest and its running API server have the flags; then the same task again
    # is changed: false and restarts nothing.
    play = controller.run(controller.playbook("enable2", [audit(profile="minimal", **FAST), {
        "name": "again", "kaudit.audit.audit": {"profile": "minimal", **FAST}, "register": "again"}, {
        "ansible.builtin.assert": {"that": ["r.changed", "not again.changed", "again.action == 'unchanged'"]}}],
        hosts="cp1"), "--diff")
    assert play.code == 0, play.out + play.err
    enabled = manifest(node)
    assert f"--audit-policy-file={policy_file}".encode() in enabled
    assert f"--audit-policy-file={policy_file}" in audit_argv(node)
    after_enable = instance(node)
    assert after_enable["seq"] > first["seq"]
    assert len([i for i in node.instances() if i["seq"] > first["seq"]]) == 1  # one restart for two tasks

    # audit_info: kaudit status as facts.
    info = controller.run(controller.playbook("info", [{"kaudit.audit.audit_info": {}}], hosts="cp1"))
    assert info.code == 0, info.out
    facts = info.results["cp1"]["ansible_facts"]["kaudit_status"]
    assert facts["audit_enabled"] is True and facts["profile"] == "minimal"
    assert facts["api_server"]["pid"] == after_enable["pid"]

    # A rejected configuration: the new API server never comes up; failed, kaudit's message and exit code,
    # the node restored (manifest bytes and flags of the running server as before).
    node.configure(fail_next_start=True, crash_backoff=5)
    play = controller.run(controller.playbook("switch-bad", [audit(profile="recommended", timeout=3, guard_grace=3)],
                                              hosts="cp1"))
    assert play.code == 2, play.out
    res = play.results["cp1"]
    assert failed(play, "cp1") and res["exit_code"] == 1 and res["restored"] is True
    assert res["action"] == "failed-restored" and "restored" in res["msg"] and "kaudit exit 1" in res["msg"]
    assert res["kaudit"]["message"] in res["msg"]
    assert manifest(node) == enabled and f"--audit-policy-file={policy_file}" in audit_argv(node)



def test_switch_with_become_password_disable_rollback_to_original(node_factory: NodeFactory,
                                                                   controller: Controller) -> None:
    node = node_factory()
    original = manifest(node)
    controller.inventory({"prod": [("cp1", node, {}), ("cp1pw", node, {
        "ansible_user": "kpw", "ansible_become_password": SUDO_PASSWORD}), ]})
    play = controller.run(controller.playbook("enable", [audit(profile="minimal", **FAST)], hosts="cp1"))
    assert play.code == 0, play.out + play.err
    policy_file = play.results["cp1"]["kaudit"]["policy_file"]
    # Switch, through sudo with the password from ansible_become_password (user kpw): the policy diff shows
    # both policies with their headers.
    play = controller.run(controller.playbook("switch", [audit(profile="recommended", **FAST)], hosts="cp1pw"),
                          "--diff")
    assert play.code == 0, play.out + play.err
    res = play.results["cp1pw"]
    assert res["changed"] is True and res["action"] == "switched", res
    new_policy = res["kaudit"]["policy_file"]
    assert new_policy != policy_file and f"--audit-policy-file={new_policy}" in audit_argv(node)
    assert f"--- before: audit policy {policy_file}\n" in play.out
    assert f"+++ after: audit policy {new_policy}\n" in play.out
    assert SUDO_PASSWORD not in play.out + play.err + json.dumps(res)
    assert SUDO_PASSWORD not in " ".join(" ".join(i["argv"]) for i in node.instances())
    # Without the password, kaudit's own message.
    controller.inventory({"prod": [("cp1pw", node, {"ansible_user": "kpw"})]})
    play = controller.run(controller.playbook("nopw", [{"kaudit.audit.audit_info": {}}], hosts="cp1pw"))
    assert play.code == 2 and "wants a password" in play.results["cp1pw"]["msg"]
    controller.inventory({"prod": [("cp1", node, {})]})

    # Disable: no audit flag in the manifest nor in the running server.
    play = controller.run(controller.playbook("disable", [audit(state="disabled", **FAST)], hosts="cp1"), "--diff")
    assert play.code == 0, play.out + play.err
    assert play.results["cp1"]["action"] == "disabled" and play.results["cp1"]["changed"] is True
    assert b"--audit-" not in manifest(node) and audit_argv(node) == []
    assert "+++ after: audit policy: none" in play.out

    # Roll back to the original: byte for byte; a second run is changed: false.
    pb = controller.playbook("rollback", [audit(state="rolled_back", backup="original", **FAST)], hosts="cp1")
    play = controller.run(pb)
    assert play.code == 0, play.out + play.err
    assert manifest(node) == original
    play = controller.run(pb)
    assert play.code == 0 and play.results["cp1"]["changed"] is False and play.results["cp1"]["action"] == "unchanged"


def test_host_keys_follow_host_key_checking_and_proxyjump(node_factory: NodeFactory, controller: Controller) -> None:
    node = node_factory()
    original = manifest(node)
    empty = controller.base / "empty_known_hosts"
    empty.write_text("")
    controller.inventory({"prod": [("cp1", node, {"ansible_ssh_common_args": f"-o UserKnownHostsFile={empty}"})]})
    pb = controller.playbook("enable", [audit(profile="minimal", **FAST)], hosts="cp1")
    play = controller.run(pb)
    assert play.code == 2, play.out
    res = play.results["cp1"]
    assert failed(play, "cp1") and "unknown host key" in res["msg"], res
    assert empty.read_text() == "" and manifest(node) == original
    # host_key_checking = False: accepted, without writing the user's file.
    info = controller.playbook("info", [{"kaudit.audit.audit_info": {}}], hosts="cp1")
    env_cfg = controller.cfg.read_text().replace("host_key_checking = True", "host_key_checking = False")
    controller.cfg.write_text(env_cfg)
    play = controller.run(info)
    assert play.code == 0, play.out
    assert play.results["cp1"]["status"]["ok"] is True and empty.read_text() == ""
    controller.cfg.write_text(env_cfg.replace("host_key_checking = False", "host_key_checking = True"))
    # ProxyJump from ansible_ssh_common_args: the jump host's key and known_hosts come from ~/.ssh/config,
    # as with OpenSSH. The jump host is the node itself (the test nodes share 127.0.0.1).
    (controller.home / ".ssh/config").write_text(
        f"Host bastion\n  HostName {node.host}\n  Port {node.ssh_port}\n  User kadmin\n"
        f"  IdentityFile {node.key_path}\n  UserKnownHostsFile {node.known_hosts}\n")
    controller.inventory({"prod": [("cp1", node, {
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={node.known_hosts} -o ProxyJump=bastion"})]})
    logins = node.sshd_log().count("Accepted publickey")
    play = controller.run(info)
    assert play.code == 0, play.out
    assert play.results["cp1"]["status"]["ok"] is True
    # Two logins for one kaudit run: the jump host's, and the node's through the forwarded channel.
    assert node.sshd_log().count("Accepted publickey") == logins + 2


# -- HA and fleets ------------------------------------------------------------------------------------------
def test_three_nodes_serial_one_middle_fails_third_untouched(node_factory: NodeFactory,
                                                             controller: Controller) -> None:
    n1, n2, n3 = (node_factory() for _ in range(3))
    originals = [manifest(n) for n in (n1, n2, n3)]
    third = instance(n3)
    n2.configure(fail_next_start=True, crash_backoff=5)
    controller.inventory({"ha": [("cp1", n1, {}), ("cp2", n2, {}), ("cp3", n3, {})]})
    play = controller.run("kaudit.audit.rollout", "-e", "kaudit_hosts=ha", "-e", "kaudit_profile=minimal",
                          "-e", "kaudit_timeout=3", "-e", "kaudit_guard_grace=3")
    assert play.code == 2, play.out
    assert re.search(r"cp1\s+: ok=1\s+changed=1\s+unreachable=0\s+failed=0", play.out), play.out
    assert re.search(r"cp2\s+: ok=0\s+changed=0\s+unreachable=0\s+failed=1", play.out), play.out
    assert "cp3" not in play.results and not re.search(r"^cp3\s+:", play.out, re.M)
    assert b"--audit-policy-file" in manifest(n1) and audit_argv(n1)
    assert play.results["cp2"]["restored"] is True and manifest(n2) == originals[1] and audit_argv(n2) == []
    assert manifest(n3) == originals[2] and instance(n3)["seq"] == third["seq"]


def test_health_gate_refuses_a_node_while_a_peer_is_unhealthy(node_factory: NodeFactory,
                                                               controller: Controller) -> None:
    n1, n2 = node_factory(), node_factory()
    original1 = manifest(n1)
    before1 = instance(n1)
    # n2's API server restarts (a parsed change of its manifest) into an instance that never gets ready.
    n2.configure(never_ready=True)
    n2.path(MANIFEST).write_bytes(manifest(n2).replace(b"  labels:\n", b"  labels:\n    touched: 'yes'\n", 1))
    n2.wait_for(lambda: any(i["seq"] > 1 and i["ready_at"] is None and i["stopped_at"] is None
                            for i in n2.instances()), 15)
    controller.inventory({"ha": [("cp1", n1, {}), ("cp2", n2, {})]})
    play = controller.run("kaudit.audit.rollout", "-e", "kaudit_hosts=ha", "-e", "kaudit_profile=minimal",
                          "-e", "kaudit_timeout=3", "-e", "kaudit_guard_grace=3")
    assert play.code == 2, play.out
    res = play.results["cp1"]
    assert res["refused"] is True and res["changed"] is False and "cp2" in res["msg"], res
    # The plugin's gate is kaudit's: it refuses for the reason `kaudit status` gives for cp2 (its `health`).
    sick = on(n2, "status", "--output", "json").node
    assert sick["healthy"] is False and res["unhealthy"] == [f"cp2: {sick['health']}"], (res, sick)
    assert sick["health"] in res["msg"]
    assert manifest(n1) == original1 and instance(n1)["seq"] == before1["seq"]
    assert "cp2" not in play.results  # max_fail_percentage: 0 ended the run


def test_fleet_two_clusters_one_failing_the_other_completes(node_factory: NodeFactory,
                                                             controller: Controller) -> None:
    a1, b1, b2 = (node_factory() for _ in range(3))
    original_a = manifest(a1)
    a1.configure(fail_next_start=True, crash_backoff=5)
    controller.inventory({"alpha": [("a1", a1, {})], "beta": [("b1", b1, {}), ("b2", b2, {})]})
    play = controller.run("kaudit.audit.fleet", "-e", "kaudit_profile=minimal", "-e", "kaudit_timeout=3",
                          "-e", "kaudit_guard_grace=3")
    assert play.code == 2, play.out
    assert failed(play, "a1") and play.results["a1"]["restored"] is True, play.out
    assert manifest(a1) == original_a
    for name, n in (("b1", b1), ("b2", b2)):
        assert not failed(play, name) and play.results[name]["changed"] is True
        assert play.results[name]["action"] == "enabled"
        assert b"--audit-policy-file" in manifest(n) and audit_argv(n)
    # beta's two nodes changed one at a time: b2's new instance started after b1's was ready, or the reverse.
    new = sorted((i for n in (b1, b2) for i in n.instances()[-1:]), key=lambda i: i["started_at"])
    assert new[1]["started_at"] >= new[0]["ready_at"]


# -- clusters from kube contexts (issue 15 item 7) ---------------------------------------------------------
def test_kaudit_inventory_from_kube_contexts_drives_the_fleet_playbook(node_factory: NodeFactory,
                                                                       controller: Controller) -> None:
    """`kaudit inventory` with the kubectl stand-in, used as it is by kaudit.audit.fleet: the operator's
    ~/.ssh/config is keyed by the addresses the API reports (an InternalIP, a Hostname), as for `ssh ADDRESS`,
    and the inventory carries nothing else; check mode, then the real run, one group per context."""
    from tests.kaudit_cli import kaudit
    from tests.standins import kube_node, kubectl_env

    a, b = node_factory(), node_factory()
    originals = {n.ssh_port: manifest(n) for n in (a, b)}
    (controller.home / ".ssh/config").write_text(
        f"Host {a.host}\n  Port {a.ssh_port}\n  User kadmin\n  IdentityFile {a.key_path}\n"
        f"  UserKnownHostsFile {a.known_hosts}\n\n"
        f"Host cp-b\n  HostName {b.host}\n  Port {b.ssh_port}\n  User kadmin\n  IdentityFile {b.key_path}\n"
        f"  UserKnownHostsFile {b.known_hosts}\n")
    env = kubectl_env(controller.base, {"dev": {"nodes": [kube_node("cp-a", a.host, "cp-a")]},
                                        "staging": {"nodes": [kube_node("cp-b", None, "cp-b")]}})
    inv = kaudit("inventory", "dev", "staging", env=env)
    assert inv.code == 0, inv.err
    (controller.base / "inventory.yml").write_text(inv.out)
    extra = ("-e", f"kaudit_command={bindir() / 'kaudit'}", "-e", "kaudit_profile=minimal", "-e", "kaudit_timeout=10")

    check = controller.run("kaudit.audit.fleet", "--check", *extra)
    assert check.code == 0, check.out + check.err
    assert {h: (r["changed"], r["action"]) for h, r in check.results.items()} == {
        "cp-a": (True, "dry-run"), "cp-b": (True, "dry-run")}
    assert all(manifest(n) == originals[n.ssh_port] for n in (a, b))

    play = controller.run("kaudit.audit.fleet", *extra)
    assert play.code == 0, play.out + play.err
    assert {h: r["action"] for h, r in play.results.items()} == {"cp-a": "enabled", "cp-b": "enabled"}
    for n in (a, b):
        assert audit_argv(n) and "Accepted publickey for kadmin" in n.sshd_log()  # ssh_config's User
        assert "Accepted publickey for root" not in n.sshd_log()


def test_diff_shows_the_nodes_own_policy_as_before(node_factory: NodeFactory, controller: Controller) -> None:
    """A policy this controller never applied and cannot render (kaudit run by hand, with a variable): the
    diff's "before" side is the node's own file, as the task's one `kaudit status` read it."""
    from tests.kaudit_cli import change

    node = node_factory()
    by_hand = change(node, "enable", "--profile", "minimal", "--set", "exclude_namespaces=ci-only-by-hand")
    assert by_hand.code == 0, by_hand.out + by_hand.err
    before_path = by_hand.node["policy_file"]
    before_text = node.path(before_path).read_text()
    assert "ci-only-by-hand" in before_text
    controller.inventory({"prod": [("cp1", node, {})]})
    play = controller.run(controller.playbook("switch", [audit(profile="minimal", **FAST)], hosts="cp1"), "--diff")
    assert play.code == 0, play.out + play.err
    assert play.results["cp1"]["action"] == "switched"
    assert f"--- before: audit policy {before_path}\n" in play.out, play.out  # no "content unknown"
    assert re.search(r"^-.*ci-only-by-hand", play.out, re.M), play.out  # the node's text, removed
    assert "content unknown" not in play.out
