"""Fleets: the kaudit.audit collection under `ansible-playbook --forks 10` vs `kaudit enable INVENTORY --parallel 10`
(issue 15 item 8; issue 21 item 4: the collection's one kaudit per play against one kaudit per host). Not a
test: figures for bench/README.md.

    sudo .venv/bin/python -m bench.fleet [--clusters 30] [--forks 10] [--reps 1] [--restart-delay 3] [--linger 1]
                                         [--tools kaudit,ansible,ansible-per-host]

Tools: `kaudit` (the CLI), `ansible` (the kaudit.audit.fleet playbook: one kaudit for the play's hosts),
`ansible-per-host` (the same playbook with -e kaudit_batch=false: one kaudit per host, the collection before
issue 21).

Both tools get the same Ansible YAML inventory (one single-node cluster per test node, tests/node) and the same
kaudit (.venv/bin/kaudit: the collection's `kaudit_command`), enable the `minimal` profile and must leave every
node with a new, ready, audited API server. Each tool runs on its own fresh set of nodes, started just before
and stopped just after it (two fresh sets per repetition, not a reset: a reset would leave kaudit's journal and
backups behind for the second tool); the order alternates between repetitions.

Per run: wall time; CPU time of the tool's whole process tree (user + sys from os.wait4, which includes every
reaped descendant: Ansible's forks and the kaudit processes they start); the machine's busy share; and what
each node's sshd saw (connections, remote commands). Baselines in the same run: `ansible-playbook` over the
same inventory with a task that never leaves the controller (Ansible's own per-host cost), and one
`kaudit enable` of one node (what the collection starts per host).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.nodes import nodes, sshd_counts
from bench.run import cpu_stat

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# PYTHONDONTWRITEBYTECODE (set on this machine) would make every kaudit start compile every module
# again (~1.3 s of CPU): a user's pip install leaves bytecode. main() writes it once, untimed.
NOT_PASSED = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
KAUDIT = str(VENV_BIN / "kaudit")


def log(msg: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    wall: float
    cpu: float  # user + sys of the process and all its reaped descendants
    busy: float  # the machine's busy share during the run (2 cores: 1.0 = both busy)
    rc: int
    out: str
    err: str


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> Measured:
    """Run argv to completion; its process tree's CPU time from os.wait4."""
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        b0, t0 = cpu_stat()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        b1, t1 = cpu_stat()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, usage.ru_utime + usage.ru_stime, (b1 - b0) / max(t1 - t0, 1.0), proc.returncode,
                    out_path.read_text(), err_path.read_text())


def write_inventory(path: Path, fleet: list[Any]) -> Path:
    """One group (cluster) per node; a combined known_hosts beside it, named for Ansible in each host's
    ansible_ssh_common_args and given to kaudit as --known-hosts."""
    known = path.parent / "known_hosts"
    known.write_text("".join(Path(n.known_hosts).read_text() for n in fleet))
    children = {
        f"c{i + 1:02d}": {"hosts": {f"c{i + 1:02d}-cp": {
            "ansible_host": n.host, "ansible_port": n.ssh_port, "ansible_user": "kadmin",
            "ansible_ssh_private_key_file": str(n.key_path),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}"}}}
        for i, n in enumerate(fleet)
    }
    path.write_text(json.dumps({"all": {"vars": {"kaudit_command": KAUDIT}, "children": children}}, indent=1))
    return known


def build_collection(work: Path) -> Path:
    out = work / "collection"
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", str(ROOT / "ansible"), "--output-path",
                    str(out)], check=True, capture_output=True)
    [tarball] = out.glob("kaudit-audit-*.tar.gz")
    path = out / "path"
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", str(tarball), "-p", str(path)],
                   check=True, capture_output=True)
    return path


def ansible_env(run_dir: Path, collections: Path) -> dict[str, str]:
    cfg = run_dir / "ansible.cfg"
    cfg.write_text("[defaults]\nhost_key_checking = True\ngathering = explicit\nretry_files_enabled = False\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k not in NOT_PASSED}
    env.update(HOME=str(run_dir / "home"), SSH_AUTH_SOCK="", ANSIBLE_CONFIG=str(cfg),
               ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOME=str(run_dir / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(run_dir / "tmp"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
               ANSIBLE_CALLBACK_TREE_DIR=str(run_dir / "tree"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_PYTHON_INTERPRETER=str(VENV_BIN / "python"), LC_ALL="C.UTF-8", LANG="C.UTF-8",
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    (run_dir / "home").mkdir(exist_ok=True)
    return env


@dataclass
class Run:
    tool: str
    clusters: int
    m: Measured
    ok_nodes: int
    connections: list[int]
    commands: list[int]
    subsystems: list[int]
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"tool": self.tool, "clusters": self.clusters, "wall_s": round(self.m.wall, 2),
                "cpu_s": round(self.m.cpu, 2), "cpu_per_node_s": round(self.m.cpu / self.clusters, 3),
                "busy": round(self.m.busy, 2), "rc": self.m.rc, "ok_nodes": self.ok_nodes,
                "connections_per_node": sorted(set(self.connections)), "commands_per_node": sorted(set(self.commands)),
                "sftp_per_node": sorted(set(self.subsystems)), **self.detail}


def step_seconds(result: dict[str, Any], name: str) -> float:
    """A step's duration from kaudit's JSON result (`steps`: a list of {name, seconds})."""
    return float(next(s["seconds"] for s in result["steps"] if s["name"] == name))


def audited_and_ready(node: Any) -> bool:
    return any(i.get("ready_at") and i.get("stopped_at") is None and any(
        a.startswith("--audit-policy-file=") for a in i["argv"]) for i in node.instances())


def run_tool(tool: str, work: Path, clusters: int, forks: int, knobs: dict[str, float], collections: Path) -> Run:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=work))
    log(f"{tool}: starting {clusters} fresh nodes")
    with nodes(work, clusters, **knobs) as fleet:
        inv = run_dir / "fleet.yml"
        known = write_inventory(inv, fleet)
        before = [sshd_counts(n) for n in fleet]
        time.sleep(1.0)
        if tool.startswith("ansible"):
            argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), "kaudit.audit.fleet", "-f", str(forks),
                    "-e", "kaudit_profile=minimal", "-e", "kaudit_timeout=120"]
            if tool == "ansible-per-host":
                argv += ["-e", "kaudit_batch=false"]
            env = ansible_env(run_dir, collections)
        else:
            argv = [KAUDIT, "enable", str(inv), "--parallel", str(forks), "--profile", "minimal", "--yes",
                    "--output", "json", "--timeout", "120", "--known-hosts", str(known)]
            env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
            env.update(HOME=str(run_dir / "home"), SSH_AUTH_SOCK="")
            (run_dir / "home").mkdir()
        log(f"{tool}: running")
        m = measure(argv, env, run_dir)
        after = [sshd_counts(n) for n in fleet]
        ok_nodes = sum(1 for n in fleet if audited_and_ready(n))
        detail: dict[str, Any] = {}
        if tool == "kaudit":
            try:
                results = json.loads(m.out)["nodes"]
                detail["actions"] = sorted({r["action"] for r in results})
                detail["await_median_s"] = round(statistics.median(step_seconds(r, "await") for r in results), 2)
            except (ValueError, KeyError, TypeError, StopIteration):
                detail["stdout"] = m.out[-800:]
        else:
            tree = run_dir / "tree"
            results = [json.loads(f.read_text()) for f in tree.iterdir()] if tree.exists() else []
            detail["actions"] = sorted({str(r.get("action")) for r in results})
            detail["kaudit_runs"] = sorted({(r.get("batch") or {}).get("kaudit_runs", "per host") for r in results},
                                           key=str)
            seconds = [r.get("kaudit_seconds") for r in results if r.get("kaudit_seconds") is not None]
            detail["kaudit_wall_median_s"] = round(statistics.median(seconds), 2) if seconds else None
            with contextlib.suppress(KeyError, TypeError, StopIteration, statistics.StatisticsError):
                detail["await_median_s"] = round(statistics.median(step_seconds(r["kaudit"], "await")
                                                                   for r in results), 2)
        if m.rc != 0 or ok_nodes != clusters:
            detail["stderr"] = (m.err or m.out)[-1500:]
            log(f"{tool}: FAILED rc={m.rc} ok={ok_nodes}/{clusters}: {detail['stderr']}")
        pairs = list(zip(after, before, strict=True))
        run = Run(tool, clusters, m, ok_nodes, [a.connections - b.connections for a, b in pairs],
                  [a.commands - b.commands for a, b in pairs], [a.subsystems - b.subsystems for a, b in pairs], detail)
        log(f"{tool}: {json.dumps(run.row())}")
        return run


def ansible_noop(work: Path, clusters: int, forks: int, collections: Path) -> Measured:
    """Ansible's own cost for the same inventory, forks and a task per host that never leaves the controller."""
    run_dir = Path(tempfile.mkdtemp(prefix="ansible-noop-", dir=work))
    inv = run_dir / "fleet.yml"
    fake = [type("N", (), {"host": "127.0.0.1", "ssh_port": 1, "key_path": "/nonexistent", "known_hosts": os.devnull})()
            for _ in range(clusters)]
    write_inventory(inv, fake)
    play = run_dir / "noop.yml"
    play.write_text(json.dumps([{"name": "noop", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "controller only", "ansible.builtin.set_fact": {"kaudit_noop": "{{ inventory_hostname }}"}}]}]))
    return measure([str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(play), "-f", str(forks)],
                   ansible_env(run_dir, collections), run_dir)


def kaudit_single(work: Path, knobs: dict[str, float]) -> Measured:
    """One `kaudit enable` of one node: what the collection starts for each host."""
    run_dir = Path(tempfile.mkdtemp(prefix="kaudit-one-", dir=work))
    with nodes(work, 1, **knobs) as [node]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
        env.update(HOME=str(run_dir), SSH_AUTH_SOCK="")
        return measure([KAUDIT, "enable", node.target("kadmin"), "-i", str(node.key_path), "--known-hosts",
                        str(node.known_hosts), "--profile", "minimal", "--yes", "--output", "json", "--timeout", "120"],
                       env, run_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clusters", type=int, default=30, help="single-node clusters (test nodes)")
    ap.add_argument("--forks", type=int, default=10, help="ansible-playbook --forks and kaudit --parallel")
    ap.add_argument("--reps", type=int, default=1, help="repetitions (each: both tools, order alternating)")
    ap.add_argument("--restart-delay", type=float, default=3.0, help="simulated kubelet restart delay, s")
    ap.add_argument("--linger", type=float, default=1.0, help="old API server serving after a change, s")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--tools", default="kaudit,ansible,ansible-per-host",
                    help="comma-separated: kaudit, ansible (one kaudit per play), ansible-per-host")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="kaudit-bench-fleet-"))
    knobs = {"restart_delay": args.restart_delay, "linger": args.linger}
    collections = build_collection(work)
    warm = {k: v for k, v in os.environ.items() if k not in NOT_PASSED}
    subprocess.run([KAUDIT, "profiles"], env=warm, check=True, capture_output=True)  # writes the bytecode, untimed
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q", str(ROOT / "installer")], env=warm,
                   check=True, capture_output=True)
    tools = [t for t in args.tools.split(",") if t]
    runs: list[Run] = []
    for rep in range(args.reps):
        order = tools if rep % 2 == 0 else tools[::-1]
        for tool in order:
            runs.append(run_tool(tool, work, args.clusters, args.forks, knobs, collections))
    noop = ansible_noop(work, args.clusters, args.forks, collections)
    log(f"ansible no-op: wall {noop.wall:.2f} s cpu {noop.cpu:.2f} s rc={noop.rc}")
    one = kaudit_single(work, knobs)
    log(f"one kaudit enable: wall {one.wall:.2f} s cpu {one.cpu:.2f} s rc={one.rc}")

    def med(tool: str, key: str) -> float:
        return statistics.median(float(r.row()[key]) for r in runs if r.tool == tool)

    summary = {
        "clusters": args.clusters, "forks": args.forks, "reps": args.reps, "knobs": knobs,
        "runs": [r.row() for r in runs],
        "ansible_noop": {"wall_s": round(noop.wall, 2), "cpu_s": round(noop.cpu, 2), "rc": noop.rc},
        "kaudit_one_node": {"wall_s": round(one.wall, 2), "cpu_s": round(one.cpu, 2), "rc": one.rc},
        "median": {t: {k: med(t, k) for k in ("wall_s", "cpu_s", "cpu_per_node_s")} for t in tools},
    }
    if "kaudit" in tools:
        k = summary["median"]["kaudit"]
        summary["ratio_to_cli"] = {t: {"cpu_per_node": round(m["cpu_per_node_s"] / k["cpu_per_node_s"], 2),
                                       "wall": round(m["wall_s"] / k["wall_s"], 2)}
                                   for t, m in summary["median"].items() if t != "kaudit"}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    shutil.rmtree(work, ignore_errors=True)  # the nodes are stopped
    return 0 if all(r.m.rc == 0 and r.ok_nodes == r.clusters for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
