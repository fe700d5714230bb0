"""enable / switch / disable / rollback over real SSH against test nodes (issue 5, item 10)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import NodeFactory
from tests.kaudit_cli import change, kaudit, on, ssh_args
from tests.node.node import SUDO_PASSWORD, TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
WEBHOOK_WITHOUT_SERVER = """\
apiVersion: v1
kind: Config
clusters:
- name: falco
  cluster:
    insecure-skip-tls-verify: true
contexts:
- name: default
  context: {cluster: falco, user: ""}
current-context: default
"""


def manifest_bytes(node: TestNode) -> bytes:
    return node.path(MANIFEST).read_bytes()


def rendered(profile: str) -> bytes:
    from installer.policy.profiles import render

    return render(profile).text.encode()


def manifests_dir_listing(node: TestNode) -> list[str]:
    return sorted(p.name for p in node.path("/etc/kubernetes/manifests").iterdir())


def test_enable_writes_flags_and_events(node_factory: NodeFactory) -> None:
    node = node_factory()
    old = node.current_instance()
    assert old is not None
    run = change(node, "enable", "--profile", "minimal")
    assert run.code == 0, run.err + run.out
    result = run.node
    assert result["action"] == "enabled" and result["changed"] is True
    new = node.current_instance()
    assert new is not None and new["pid"] != old["pid"]
    assert result["new_instance_pid"] == new["pid"]
    policy = rendered("minimal")
    policy_path = f"/etc/kubernetes/audit/policy-{hashlib.sha256(policy).hexdigest()[:12]}.yaml"
    assert f"--audit-policy-file={policy_path}" in new["argv"]
    assert new["policy_sha256"] == hashlib.sha256(policy).hexdigest()
    # The policy on the node: content-addressed, 0600, root-owned.
    st = node.path(policy_path).stat()
    assert oct(st.st_mode & 0o777) == "0o600" and st.st_uid == 0
    assert oct(node.path("/var/lib/kaudit").stat().st_mode & 0o777) == "0o700"
    # Events reach the log: kaudit's own verification request, and one of ours.
    assert result["verify"]["verified"] is True
    node.request("/api/v1/namespaces/default/pods?marker=ours", user="alice")
    events = node.wait_for(lambda: [e for e in node.audit_events() if "marker=ours" in e["requestURI"]], 5)
    assert events[0]["level"] == "Metadata"
    assert manifests_dir_listing(node) == ["kube-apiserver.yaml"]


def test_enable_twice_changes_nothing(node_factory: NodeFactory) -> None:
    node = node_factory()
    assert change(node, "enable", "--profile", "recommended").code == 0
    before = manifest_bytes(node)
    inst = node.current_instance()
    backups = sorted(p.name for p in node.path("/var/lib/kaudit/backups").iterdir())
    run = change(node, "enable", "--profile", "recommended")
    assert run.code == 0
    assert run.node["action"] == "unchanged" and run.node["changed"] is False
    assert "nothing changed" in run.node["message"]
    assert manifest_bytes(node) == before
    time.sleep(0.5)
    assert node.current_instance()["pid"] == inst["pid"]  # type: ignore[index]
    assert sorted(p.name for p in node.path("/var/lib/kaudit/backups").iterdir()) == backups


def test_switch_restarts_with_the_new_policy_and_disable_gives_back_the_original(node_factory: NodeFactory) -> None:
    node = node_factory()
    original = manifest_bytes(node)
    assert change(node, "switch", "--profile", "cis").code == 2  # auditing is off: switch refuses
    assert manifest_bytes(node) == original
    assert change(node, "enable", "--profile", "minimal").code == 0
    first = node.current_instance()
    run = change(node, "switch", "--profile", "cis")
    assert run.code == 0, run.out
    assert run.node["action"] == "switched" and "from minimal" in run.node["message"]
    now = node.current_instance()
    assert now["pid"] != first["pid"]  # type: ignore[index]
    assert now["policy_sha256"] == hashlib.sha256(rendered("cis")).hexdigest()  # type: ignore[index]
    assert "--audit-log-maxage=30" in now["argv"]  # type: ignore[index]
    run = change(node, "disable")
    assert run.code == 0 and run.node["action"] == "disabled"
    assert run.node["caveat"] is None  # nothing left on for a later `kubeadm upgrade` to undo
    assert manifest_bytes(node) == original
    assert not any(a.startswith("--audit-") for a in node.current_instance()["argv"])  # type: ignore[index]
    # Policies and logs are kept after disable (the backups still refer to the policies).
    assert list(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    assert node.path("/var/log/kubernetes/audit/audit.log").exists()


def test_failed_switch_brings_back_the_old_policy(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    assert change(node, "enable", "--profile", "minimal").code == 0
    before = manifest_bytes(node)
    minimal_sha = hashlib.sha256(rendered("minimal")).hexdigest()
    webhook = tmp_path / "falco.kubeconfig"
    webhook.write_text(WEBHOOK_WITHOUT_SERVER)
    run = change(node, "switch", "--profile", "cis", "--webhook-config", str(webhook), timeout=3)
    assert run.code == 1, run.out
    assert run.node["action"] == "failed-restored"
    assert "restored" in run.node["message"]
    assert manifest_bytes(node) == before
    running = node.wait_ready(10)
    assert running["policy_sha256"] == minimal_sha




def test_configuration_the_api_server_rejects_is_rolled_back(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    original = manifest_bytes(node)
    old_pid = node.current_instance()["pid"]  # type: ignore[index]
    webhook = tmp_path / "falco.kubeconfig"
    webhook.write_text(WEBHOOK_WITHOUT_SERVER)  # a kubeconfig whose cluster has no server: kube-apiserver exits
    run = change(node, "enable", "--profile", "minimal", "--webhook-config", str(webhook), timeout=3)
    assert run.code == 1, run.out
    assert "restored" in run.node["message"]
    assert any("audit webhook" in line for line in run.node["log_lines"]), run.node["log_lines"]
    # The messages, not the CRI log file's "<time> stderr F " prefixes.
    assert not any(re.match(r"\d{4}-\d\d-\d\dT", line) for line in run.node["log_lines"]), run.node["log_lines"]
    assert manifest_bytes(node) == original
    ready = node.wait_ready(10)
    assert ready["pid"] != old_pid and not any(a.startswith("--audit-") for a in ready["argv"])
    assert manifests_dir_listing(node) == ["kube-apiserver.yaml"]


def test_the_api_servers_last_words_come_from_crictl_where_it_is_installed(
        node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory(crictl=True)
    webhook = tmp_path / "falco.kubeconfig"
    webhook.write_text(WEBHOOK_WITHOUT_SERVER)
    run = change(node, "enable", "--profile", "minimal", "--webhook-config", str(webhook), timeout=3)
    assert run.code == 1, run.out
    calls = node.path("/var/log/crictl.calls").read_text().splitlines()
    assert calls[0] == "ps -a -l --name ^kube-apiserver$ -q"
    assert re.fullmatch(r"logs --tail 5 [0-9a-f]{13}", calls[1]), calls
    lines = run.node["log_lines"]
    assert 0 < len(lines) <= 5 and any("audit webhook" in line for line in lines), lines
    assert not any(re.match(r"\d{4}-\d\d-\d\dT", line) for line in lines), lines


def test_rollback_undoes_the_last_operation_and_to_a_chosen_backup(node_factory: NodeFactory) -> None:
    node = node_factory()
    original = manifest_bytes(node)
    assert change(node, "enable", "--profile", "minimal").code == 0
    after_minimal = manifest_bytes(node)
    assert change(node, "switch", "--profile", "security").code == 0
    run = change(node, "rollback")
    assert run.code == 0, run.out
    assert manifest_bytes(node) == after_minimal
    assert node.current_instance()["policy_sha256"] == hashlib.sha256(rendered("minimal")).hexdigest()  # type: ignore[index]
    listing = on(node, "backups", "--output", "json")
    ids = [b["id"] for b in listing.node["backups"]]
    assert "original" in ids
    run = change(node, "rollback", "--to", "original")
    assert run.code == 0, run.out
    assert manifest_bytes(node) == original
    bad = change(node, "rollback", "--to", "20200101T000000Z-nope")
    assert bad.code == 2 and "no backup" in bad.node["message"]


def test_lingering_old_instance_is_not_mistaken_for_the_new_one(node_factory: NodeFactory) -> None:
    node = node_factory(linger=5.0)
    old = node.current_instance()
    started = time.time()
    run = change(node, "enable", "--profile", "minimal", timeout=20)
    reported = time.time()
    assert run.code == 0, run.out
    new = next(i for i in node.instances() if i["pid"] == run.node["new_instance_pid"])
    assert new["pid"] != old["pid"]  # type: ignore[index]
    assert new["ready_at"] is not None and new["ready_at"] <= reported
    assert reported - started >= 5.0


def test_three_nodes_in_order_the_second_failing_leaves_the_third_untouched(node_factory: NodeFactory) -> None:
    nodes = [node_factory() for _ in range(3)]
    _one_key_for_all(nodes)
    originals = [manifest_bytes(n) for n in nodes]
    # The second node's new instance fails to start, and the kubelet backs off past the timeout.
    nodes[1].configure(fail_next_start=True, crash_backoff=5)
    run = kaudit("enable", *[n.target() for n in nodes], "--profile", "minimal", "--yes", "--output", "json",
                 "--timeout", "3", "--guard-grace", "3", "-i", str(nodes[0].key_path),
                 "--known-hosts", str(_merged_known_hosts(nodes)), timeout=120)
    results = run.json()["nodes"]
    assert [r["action"] for r in results] == ["enabled", "failed-restored", "not-changed"], results
    assert run.code == 4  # the cluster is mixed: its rollout stopped part-way (issue 24 item 6)
    assert run.json()["stopped"][0]["changed"] == [nodes[0].target()]
    assert manifest_bytes(nodes[0]) != originals[0]
    assert manifest_bytes(nodes[1]) == originals[1]
    assert manifest_bytes(nodes[2]) == originals[2]
    assert not nodes[2].path("/var/lib/kaudit/backups").exists()


def _commands(node: TestNode) -> list[str]:
    """The remote commands this node's sshd started, in order (its log at LogLevel VERBOSE)."""
    return re.findall(r"Starting session: (command|subsystem)", node.sshd_log())


def test_the_health_gate_asks_the_others_from_the_node_about_to_change(node_factory: NodeFactory) -> None:
    """HA in linear time: before each node changes, the other API servers are asked from that node in one
    remote command, so every node of a healthy 3-node cluster sees the same number of commands (a gather
    and a probe of every other node at each step made the first nodes pay for the later ones)."""
    nodes = [node_factory() for _ in range(3)]
    _one_key_for_all(nodes)
    before = [len(_commands(n)) for n in nodes]
    run = kaudit("enable", *[n.target() for n in nodes], "--profile", "minimal", "--yes", "--output", "json",
                 "--timeout", "30", "-i", str(nodes[0].key_path), "--known-hosts", str(_merged_known_hosts(nodes)),
                 timeout=180)
    assert run.code == 0, run.out
    assert [r["action"] for r in run.json()["nodes"]] == ["enabled"] * 3
    per_node = [len(_commands(n)) - b for n, b in zip(nodes, before, strict=True)]
    assert len(set(per_node)) == 1, per_node


def test_a_sick_peer_stops_the_rollout_before_anything_changes(node_factory: NodeFactory) -> None:
    nodes = [node_factory() for _ in range(3)]
    _one_key_for_all(nodes)
    originals = [manifest_bytes(n) for n in nodes]
    # The third node's API server restarts and never becomes ready (answers /readyz with 500).
    sick = nodes[2]
    sick.configure(never_ready=True, crash_backoff=0.1)
    pid = sick.current_instance()["pid"]
    sick.run(f"kill -9 {pid}")
    sick.wait_for(lambda: (i := sick.current_instance()) is not None and i["pid"] != pid, 20, what="a restart")
    run = kaudit("enable", *[n.target() for n in nodes], "--profile", "minimal", "--yes", "--output", "json",
                 "--timeout", "5", "-i", str(nodes[0].key_path), "--known-hosts", str(_merged_known_hosts(nodes)),
                 timeout=120)
    results = run.json()["nodes"]
    assert [r["action"] for r in results] == ["not-changed"] * 3, results
    assert f"{sick.target()} is not healthy" in results[0]["message"] and "answers 500" in results[0]["message"]
    assert [manifest_bytes(n) for n in nodes] == originals
    assert run.code == 2


def _one_key_for_all(nodes: list[TestNode]) -> None:
    """An operator uses one key for every control-plane node: authorize nodes[0]'s key everywhere."""
    pub = Path(str(nodes[0].key_path) + ".pub").read_text()
    for n in nodes[1:]:
        with n.path("/home/.ssh-keys/kadmin").open("a") as f:
            f.write(pub)


def _merged_known_hosts(nodes: list[TestNode]) -> Path:
    path = nodes[0].known_hosts.parent / "known_hosts.all"
    path.write_text("".join(n.known_hosts.read_text() for n in nodes))
    return path


def test_concurrent_enable_is_refused_by_the_lock(node_factory: NodeFactory) -> None:
    # The first run holds the lock while its new API server takes start_delay to become ready: long
    # enough for the second kaudit to start, connect and plan even on a loaded machine.
    node = node_factory(linger=3.0)
    node.configure(start_delay=8.0)
    first: dict[str, object] = {}
    thread = threading.Thread(target=lambda: first.update(run=change(node, "enable", "--profile", "minimal",
                                                                      timeout=20)))
    thread.start()
    node.wait_for(lambda: node.path("/var/lib/kaudit/lock.holder").exists(), 20, what="the first run's lock")
    second = change(node, "enable", "--profile", "cis")
    thread.join()
    assert second.code == 2
    assert "holds the node's lock" in second.node["message"] and "kaudit by" in second.node["message"]
    assert first["run"].code == 0  # type: ignore[attr-defined]
    # The lock is free again once the first run's connection is gone.
    node.configure(start_delay=0.1)
    assert change(node, "switch", "--profile", "cis").code == 0


@pytest.mark.parametrize("user", ["root", "kadmin", "kpw", "ktty"])
def test_enable_as_each_kind_of_user(node_factory: NodeFactory, user: str) -> None:
    node = node_factory()
    stdin = SUDO_PASSWORD + "\n" if user == "kpw" else None
    extra = ["--sudo-password-stdin"] if user == "kpw" else []
    run = change(node, "enable", "--profile", "minimal", *extra, user=user, stdin=stdin)
    assert run.code == 0, run.out + run.err
    assert run.node["action"] == "enabled"
    assert SUDO_PASSWORD not in run.out + run.err


def test_user_without_sudo_is_refused_and_nothing_changes(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = manifest_bytes(node)
    run = change(node, "enable", "--profile", "minimal", user="knosudo")
    assert run.code == 2
    assert "may not use sudo" in run.node["message"]
    run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="knosudo", stdin="guess\n")
    assert run.code == 2 and "incorrect password" in run.node["message"], run.node["message"]
    run = change(node, "enable", "--profile", "minimal", user="kpw")
    assert run.code == 2 and "--sudo-password-stdin" in run.node["message"]
    assert manifest_bytes(node) == before


def test_without_a_terminal_a_change_needs_yes(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = manifest_bytes(node)
    run = kaudit("enable", node.target(), *ssh_args(node), "--profile", "minimal", "--output", "json")
    assert run.code == 2 and "--yes" in run.node["message"]
    assert manifest_bytes(node) == before


def test_dry_run_prints_policy_and_diff_and_changes_nothing(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = manifest_bytes(node)
    run = on(node, "enable", "--profile", "cis", "--dry-run")
    assert run.code == 0, run.err
    assert "kind: Policy" in run.out
    assert "+    - --audit-policy-file=/etc/kubernetes/audit/policy-" in run.out
    assert manifest_bytes(node) == before
    assert not node.path("/var/lib/kaudit/backups").exists()


def test_a_rollback_that_cannot_be_written_is_the_loudest_error(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    before = manifest_bytes(node)
    webhook = tmp_path / "falco.kubeconfig"
    webhook.write_text(WEBHOOK_WITHOUT_SERVER)  # the new API server will crash-loop
    node.run("mount --bind /etc/kubernetes/manifests /etc/kubernetes/manifests")
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(run=change(
        node, "enable", "--profile", "minimal", "--webhook-config", str(webhook), timeout=4)))
    thread.start()
    node.wait_for(lambda: manifest_bytes(node) != before, 20, what="the new manifest")
    # The disk under the manifests goes read-only while kaudit waits: its rollback cannot be written.
    node.run("mount -o remount,bind,ro /etc/kubernetes/manifests")
    thread.join()
    node.run("mount -o remount,bind,rw /etc/kubernetes/manifests")
    run = result["run"]
    assert run.code == 3, run.out  # type: ignore[attr-defined]
    assert run.node["action"] == "NOT-RESTORED"  # type: ignore[attr-defined]
    assert "ROLLBACK FAILED" in run.node["message"] and "by hand" in run.node["message"]  # type: ignore[attr-defined]
    assert "THE CONTROL PLANE WAS NOT RESTORED" in run.err  # type: ignore[attr-defined]


def test_the_caveats_export_command_reproduces_what_was_enabled(node_factory: NodeFactory, tmp_path: Path) -> None:
    """The `kaudit export` command printed after a change makes exactly that change permanent."""
    import shlex

    node = node_factory()
    run = change(node, "enable", "--profile", "minimal", "--set", "exclude_namespaces=ci,staging",
                 "--log-maxage", "7")
    assert run.code == 0, run.out + run.err
    caveat = run.node["caveat"]
    command = caveat[caveat.index("`kaudit export ") + 1:]
    command = command[:command.index("`")]
    assert "--format kubeadm --kubernetes-version 1.30" in command
    exported = kaudit(*shlex.split(command)[1:], "--out", str(tmp_path))
    assert exported.code == 0, exported.err
    on_node = list(node.path("/etc/kubernetes/audit").glob("policy-*.yaml"))
    assert len(on_node) == 1
    # the same policy, under the name export gives it (one kaudit never collects: exported-policy-<sha12>)
    assert (tmp_path / f"exported-{on_node[0].name}").read_bytes() == on_node[0].read_bytes()
    assert 'audit-log-maxage: "7"' in (tmp_path / "kubeadm-audit.yaml").read_text()
    # A rollback to that state knows the restored profile by name.
    assert change(node, "switch", "--profile", "cis").code == 0
    back = change(node, "rollback")
    assert back.code == 0, back.out
    assert "kaudit export --profile minimal --format kubeadm" in back.node["caveat"]
