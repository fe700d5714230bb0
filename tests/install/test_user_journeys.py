"""Whole journeys, as a user runs them, from the wheel installed WITHOUT extras (tests/userinstall.py).

Each command's result is checked on the node, not only in kaudit's output: the manifest bytes, the
flags of the kube-apiserver instance that runs, the policy that instance loaded, and the files in
kaudit's state directory. Flavors: kubeadm over SSH through ~/.ssh/config, minikube and kind through
their stand-ins (tests/fakes/), `local` as root on the node, and a fleet of two clusters from an
Ansible inventory.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from installer.manifest.read import read
from tests.conftest import NodeFactory
from tests.corpus_files import MANIFESTS as CORPUS
from tests.kaudit_cli import Run, kaudit
from tests.node.node import TestNode
from tests.standins import FAKES, minikube_env
from tests.userinstall import ROOT, bindir, build_wheel, user_env

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
STATE = "/var/lib/kaudit"
MINIKUBE_STATE = "/var/lib/minikube/kaudit"
CHANGE = ("--yes", "--output", "json", "--timeout", "15", "--guard-grace", "5")

Cli = Callable[..., Run]


# --- what a user would check on the node ---------------------------------------------------------

def _flag(argv: list[str], name: str) -> str | None:
    for i, tok in enumerate(argv):
        if tok.startswith(name + "="):
            return tok.split("=", 1)[1]
        if tok == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _journal(node: TestNode, state: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in node.path(f"{state}/journal").read_text().splitlines() if line.strip()]


def check_audited(node: TestNode, state: str, profile: str, result: dict[str, Any]) -> str:
    """Auditing is on with `profile`: in the manifest, in the running instance, in the policy it loaded,
    and in the state directory. Returns the policy path."""
    manifest = node.path(MANIFEST).read_bytes()
    inst = node.current_instance()
    assert inst is not None, "no kube-apiserver runs"
    policy = _flag(inst["argv"], "--audit-policy-file")
    assert policy is not None and f"--audit-policy-file={policy}".encode() in manifest
    assert result["policy_file"] == policy and inst["pid"] == result["new_instance_pid"]
    loaded = node.path(policy).read_bytes()
    assert inst["policy_sha256"] == hashlib.sha256(loaded).hexdigest(), "the instance loaded another policy"
    assert Path(policy).name == f"policy-{hashlib.sha256(loaded).hexdigest()[:12]}.yaml"
    assert node.path(policy).stat().st_mode & 0o077 == 0
    rendered = kaudit("render", profile)
    assert rendered.code == 0 and loaded == rendered.out.encode(), f"the node's policy is not profile {profile}"
    assert _flag(inst["argv"], "--audit-log-path") == "/var/log/kubernetes/audit/audit.log"
    assert read(manifest).audit.profile == profile  # kaudit's own mark on the Pod names the profile
    # The state directory: the backup of what was there before, and the journal's confirmation.
    backup = node.path(f"{state}/backups/{result['backup']}")
    assert (backup / "manifest").is_file() and (backup / "meta.json").is_file()
    assert {"id": result["backup"], "state": "confirmed"}.items() <= _journal(node, state)[-1].items()
    assert node.path(state).stat().st_mode & 0o777 == 0o700
    return policy


def check_off(node: TestNode, state: str, original: bytes) -> None:
    assert node.path(MANIFEST).read_bytes() == original
    inst = node.current_instance()
    assert inst is not None and _flag(inst["argv"], "--audit-policy-file") is None
    assert (node.path(f"{state}/backups/original/manifest")).read_bytes() == original


def one(run: Run) -> dict[str, Any]:
    assert run.code == 0, run.out + run.err
    [node] = run.json()["nodes"]
    return dict(node)


def journey(cli: Cli, target: str, node: TestNode, state: str, flavor: str) -> None:
    """enable → status → switch → backups → rollback → disable → rollback --to original."""
    original = node.path(MANIFEST).read_bytes()
    assert not node.path(f"{state}/journal").exists()

    enabled = one(cli("enable", target, "--profile", "minimal", *CHANGE))
    assert enabled["action"] == "enabled" and enabled["flavor"] == flavor, enabled
    minimal_policy = check_audited(node, state, "minimal", enabled)
    assert node.path(f"{state}/backups/{enabled['backup']}/manifest").read_bytes() == original
    after_enable = node.path(MANIFEST).read_bytes()

    [status] = json.loads(cli("status", target, "--output", "json").out)["nodes"]
    assert status["ok"] and status["profile"] == "minimal" and status["managed_by_kaudit"]
    assert status["last_change"]["id"] == enabled["backup"]

    switched = one(cli("switch", target, "--profile", "recommended", *CHANGE))
    assert switched["action"] == "switched", switched
    recommended_policy = check_audited(node, state, "recommended", switched)
    assert recommended_policy != minimal_policy and node.path(minimal_policy).exists()  # a backup refers to it
    assert node.path(f"{state}/backups/{switched['backup']}/manifest").read_bytes() == after_enable

    listed = cli("backups", target, "--output", "json")
    assert listed.code == 0, listed.out + listed.err
    ids = [b["id"] for b in listed.json()["nodes"][0]["backups"]]
    assert set(ids) == {"original", enabled["backup"], switched["backup"]}, ids
    text = cli("backups", target)
    assert "(the manifest before kaudit first changed the node, pinned)" in text.out and switched["backup"] in text.out

    undone = one(cli("rollback", target, *CHANGE))
    assert undone["action"] == "rolled-back", undone
    assert node.path(MANIFEST).read_bytes() == after_enable
    inst = node.current_instance()
    assert inst is not None and _flag(inst["argv"], "--audit-policy-file") == minimal_policy
    assert inst["policy_sha256"] == hashlib.sha256(node.path(minimal_policy).read_bytes()).hexdigest()

    disabled = one(cli("disable", target, *CHANGE))
    assert disabled["action"] == "disabled", disabled
    check_off(node, state, original)

    restored = one(cli("rollback", target, "--to", "original", *CHANGE))
    assert restored["action"] in ("unchanged", "rolled-back"), restored
    check_off(node, state, original)
    [status] = json.loads(cli("status", target, "--output", "json").out)["nodes"]
    assert status["ok"] and not status["managed_by_kaudit"]


# --- the flavors ---------------------------------------------------------------------------------

def test_kubeadm_over_ssh_through_ssh_config(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(node.key_path, home / ".ssh" / "id_cp1")
    (home / ".ssh" / "id_cp1").chmod(0o600)
    shutil.copy(node.known_hosts, home / ".ssh" / "known_hosts")
    (home / ".ssh" / "config").write_text(
        f"Host cp1\n  HostName {node.host}\n  Port {node.ssh_port}\n  User kadmin\n  IdentityFile ~/.ssh/id_cp1\n")
    env = {"HOME": str(home), "SSH_AUTH_SOCK": ""}

    def cli(*args: str) -> Run:
        return kaudit(*args, env=env)

    journey(cli, "cp1", node, STATE, "kubeadm")
    assert "Accepted publickey for kadmin" in node.sshd_log()


def test_minikube_through_the_stand_ins(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory((CORPUS / "009-minikube-v1.32-port-8443.yaml").read_bytes())
    env = minikube_env(node, tmp_path)

    def cli(*args: str) -> Run:
        return kaudit(*args, env=env)

    journey(cli, "minikube://", node, MINIKUBE_STATE, "minikube")
    assert not node.path(f"{STATE}/journal").exists(), "minikube's state belongs in /var/lib/minikube/kaudit"


def test_kind_through_the_stand_ins(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = node_factory()
    state = tmp_path / "docker-state.json"
    state.write_text(json.dumps([
        {"name": "kaudit-control-plane", "status": "Up 5 minutes", "ports": {}, "nsenter_pid": node.init_pid,
         "labels": {"io.x-k8s.kind.cluster": "kaudit", "io.x-k8s.kind.role": "control-plane"}},
        {"name": "kaudit-worker", "status": "Up 5 minutes", "ports": {},
         "labels": {"io.x-k8s.kind.cluster": "kaudit", "io.x-k8s.kind.role": "worker"}},
    ]))
    env = {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_DOCKER_STATE": str(state)}

    def cli(*args: str) -> Run:
        return kaudit(*args, env=env)

    journey(cli, "kind://kaudit", node, STATE, "kind")


def test_local_as_root_on_the_node(node_factory: NodeFactory) -> None:
    node = node_factory()
    original = node.path(MANIFEST).read_bytes()
    cmd = shlex.quote(str(bindir() / "kaudit"))

    def cli(*args: str) -> Run:
        proc = node.run(f"cd / && env -u PYTHONPATH {cmd} {shlex.join(args)} </dev/null", check=False, timeout=90)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    enabled = one(cli("enable", "local", "--profile", "minimal", *CHANGE))
    assert enabled["node"] == "local" and enabled["action"] == "enabled", enabled
    check_audited(node, STATE, "minimal", enabled)
    assert enabled["verify"]["verified"] is True
    disabled = one(cli("disable", "local", *CHANGE))
    assert disabled["action"] == "disabled"
    check_off(node, STATE, original)


def test_an_inventory_of_two_clusters_in_parallel(node_factory: NodeFactory, tmp_path: Path) -> None:
    clusters = {"alpha": [node_factory(), node_factory()], "beta": [node_factory()]}
    nodes = [n for ns in clusters.values() for n in ns]
    originals = [n.path(MANIFEST).read_bytes() for n in nodes]
    lines = ["all:", "  children:"]
    for name, members in clusters.items():
        lines += [f"    {name}:", "      hosts:"]
        for i, n in enumerate(members):
            lines += [f"        {name}-cp{i}:", f"          ansible_host: {n.host}",
                      f"          ansible_port: {n.ssh_port}", "          ansible_user: kadmin",
                      f"          ansible_ssh_private_key_file: {n.key_path}"]
    inv = tmp_path / "fleet.yml"
    inv.write_text("\n".join(lines) + "\n")
    known = tmp_path / "known_hosts"
    known.write_text("".join(n.known_hosts.read_text() for n in nodes))
    ssh = ("--known-hosts", str(known))

    run = kaudit("enable", str(inv), "--profile", "minimal", "--parallel", "2", *CHANGE, *ssh, timeout=240)
    assert run.code == 0, run.out + run.err
    results = run.json()["nodes"]
    assert sorted((r["cluster"], r["node"]) for r in results) == [
        ("alpha", "alpha-cp0"), ("alpha", "alpha-cp1"), ("beta", "beta-cp0")]
    by_node = {r["node"]: r for r in results}
    for name, n in zip(("alpha-cp0", "alpha-cp1", "beta-cp0"), nodes, strict=True):
        assert by_node[name]["action"] == "enabled"
        check_audited(n, STATE, "minimal", by_node[name])

    off = kaudit("disable", str(inv), "--parallel", "2", *CHANGE, *ssh, timeout=240)
    assert off.code == 0, off.out + off.err
    assert {r["action"] for r in off.json()["nodes"]} == {"disabled"}
    for n, original in zip(nodes, originals, strict=True):
        check_off(n, STATE, original)


# --- the install itself --------------------------------------------------------------------------

def _imported_distributions() -> set[str]:
    """Top-level modules installer/ imports anywhere (lazily inside functions too), outside the stdlib."""
    names: set[str] = set()
    for path in (ROOT / "installer").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "installer"}


def test_every_module_kaudit_imports_is_installed_without_extras() -> None:
    """What `pip install .` brings is what kaudit imports: an import whose package lives only in an extra
    (kubernetes_validate did) cannot be found in the user's venv."""
    wanted = sorted(_imported_distributions())
    assert "kubernetes_validate" in wanted and "paramiko" in wanted  # the scan sees lazy imports
    code = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None])"
    proc = subprocess.run([str(bindir() / "python"), "-c", code, *wanted], capture_output=True, text=True,
                          env=user_env(), cwd="/", check=True)
    assert proc.stdout.strip() == "[]", f"imported by kaudit but not installed by its wheel: {proc.stdout}"


def test_a_pipx_install_runs_a_dry_run(node_factory: NodeFactory, tmp_path: Path) -> None:
    pipx = shutil.which("pipx") or str(Path(sys.executable).with_name("pipx"))
    if not Path(pipx).exists():
        pytest.skip("pipx is not installed (it comes with the test extra)")
    wheel = build_wheel(tmp_path / "dist")
    env = user_env({"PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
                    "PIPX_MAN_DIR": str(tmp_path / "man"), "HOME": str(tmp_path)})
    proc = subprocess.run([pipx, "install", str(wheel)], capture_output=True, text=True, env=env, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    node = node_factory()
    before = node.path(MANIFEST).read_bytes()
    run = subprocess.run([str(tmp_path / "bin" / "kaudit"), "enable", node.target(), "-i", str(node.key_path),
                          "--known-hosts", str(node.known_hosts), "--profile", "recommended", "--dry-run",
                          "--output", "json"], capture_output=True, text=True, env=env, cwd="/", check=False,
                         stdin=subprocess.DEVNULL, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    [result] = json.loads(run.stdout)["nodes"]
    assert result["action"] == "dry-run" and "+    - --audit-policy-file=" in result["diff"]
    assert node.path(MANIFEST).read_bytes() == before
