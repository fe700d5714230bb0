"""Every final message states what the node was left with and the one thing to do next; the wait line shows the
time waited and the limit; the live-edit note comes once per run and can be quieted (issue 24 item 8, small)."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import NodeFactory
from tests.fleetfiles import inventory_file, known_hosts_file
from tests.kaudit_cli import kaudit, on, ssh_args
from tests.node.node import TestNode
from tests.userinstall import kaudit_argv, user_env

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"


def _enable_in_background(node: TestNode, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*kaudit_argv(), "enable", node.target(), *ssh_args(node), "--profile", "minimal", "--yes",
         "--timeout", "30", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=user_env(env))


def test_one_ctrl_c_says_it_once_and_no_budget_of_the_undone_change(node_factory: NodeFactory) -> None:
    node = node_factory(linger=3.0)
    before = node.path(MANIFEST).read_bytes()
    proc = _enable_in_background(node)
    node.wait_for(lambda: node.path(MANIFEST).read_bytes() != before, 20, what="the manifest to change")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    line = next(ln for ln in out.splitlines() if ln.startswith(node.target()))
    assert "interrupted: interrupted" not in line, line
    assert "the previous manifest was put back" in line and "healthy" in line, line
    assert "audit log:" not in out, out  # the disk budget of a change that did not stand
    assert node.path(MANIFEST).read_bytes() == before


def test_two_ctrl_c_after_the_restore_say_the_backup_is_back(node_factory: NodeFactory) -> None:
    node = node_factory(linger=3.0)
    before = node.path(MANIFEST).read_bytes()
    node.configure(start_delay=6.0)  # the restored configuration's instance takes a while to come up
    proc = _enable_in_background(node)
    node.wait_for(lambda: node.path(MANIFEST).read_bytes() != before, 20, what="the manifest to change")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    node.wait_for(lambda: node.path(MANIFEST).read_bytes() == before, 20, what="the backup to be put back")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    line = next(ln for ln in out.splitlines() if ln.startswith(node.target()))
    assert "the previous manifest is back on the node" in line and "kaudit status" in line, line
    assert "guard restores" not in line and "not confirmed" not in line, line
    assert node.path(MANIFEST).read_bytes() == before


def test_a_restore_whose_api_server_stays_down_says_so_and_what_to_look_at(node_factory: NodeFactory) -> None:
    node = node_factory()
    before = node.path(MANIFEST).read_bytes()
    node.configure(never_ready=True)  # instances started from now on never answer ready: new and restored
    run = on(node, "enable", "--profile", "minimal", "--yes", "--timeout", "3", "--guard-grace", "3", timeout=180)
    assert run.code == 3, run.out + run.err
    line = next(ln for ln in run.out.splitlines() if ln.startswith(node.target()))
    assert "FAILED, RESTORED BUT NOT HEALTHY" in line and "NOT RESTORED" not in line.replace("RESTORED BUT", ""), line
    assert "the previous manifest was put back" in line and "kube-apiserver's own log" in line, line
    assert "THE CONTROL PLANE WAS NOT RESTORED" not in run.err
    assert node.path(MANIFEST).read_bytes() == before


def test_the_wait_line_shows_the_time_waited_and_the_limit(node_factory: NodeFactory) -> None:
    node = node_factory(linger=1.0)
    node.configure(start_delay=4.0)
    run = on(node, "enable", "--profile", "minimal", "--yes", "--timeout", "20")
    assert run.code == 0, run.out + run.err
    env_run = kaudit("disable", node.target(), *ssh_args(node), "--yes", "--timeout", "20",
                     env={"KAUDIT_PROGRESS": "1"})
    assert env_run.code == 0, env_run.out + env_run.err
    waits = re.findall(r"waiting for a new kube-apiserver instance \((\d+) s of 20 s\)", env_run.err)
    assert waits, env_run.err
    quiet = kaudit("enable", node.target(), *ssh_args(node), "--profile", "minimal", "--yes", "--timeout", "20",
                   "-q", env={"KAUDIT_PROGRESS": "1"})
    assert quiet.code == 0 and "waiting" not in quiet.err, quiet.err


def test_the_live_edit_note_comes_once_per_run_and_q_leaves_it_out(node_factory: NodeFactory, tmp_path: Path
                                                                    ) -> None:
    n1, n2 = node_factory(), node_factory()
    inv = inventory_file(tmp_path / "two.yml", {"east": [n1], "west": [n2]})
    known = known_hosts_file(tmp_path / "known_hosts", [n1, n2])
    run = kaudit("enable", str(inv), "--profile", "cis", "--yes", "--timeout", "10", "--known-hosts", str(known),
                 timeout=120)
    assert run.code == 0, run.out + run.err
    assert run.out.count("kubeadm upgrade") == 1, run.out
    note = run.out[run.out.index("note: "):].splitlines()[:2]
    assert "kaudit export --profile cis --format kubeadm --kubernetes-version 1.30" in note[0]
    assert "-q" in note[1]
    quiet = kaudit("disable", str(inv), "--yes", "--timeout", "10", "--known-hosts", str(known), timeout=120)
    again = kaudit("enable", str(inv), "--profile", "cis", "--yes", "--timeout", "10", "--known-hosts", str(known),
                   "--quiet", timeout=120)
    assert quiet.code == 0 and again.code == 0, again.out + again.err
    assert "note:" not in again.out and "kubeadm upgrade" not in again.out
