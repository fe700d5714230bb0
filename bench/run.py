"""kaudit benchmarks (issue 8, docs/design.md section 7): ratios against baselines measured in the same run.

    sudo .venv/bin/python -m bench [--reps 5] [--help-runs 20] [--fleet 1,3,10,30] [--only enable,help,fleet]

Starts test nodes (tests/node, needs root), runs each measurement, prints a table and writes it to
bench/results/latest.md (and the raw numbers to bench/results/latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = ROOT / ".venv" / "bin"
KAUDIT = str(VENV_BIN / "kaudit")
PYTHON = str(VENV_BIN / "python")
PLAYBOOK = BENCH / "ansible" / "enable-audit.yml"
ANSIBLE_CONFIGS = {"ansible (pipelining)": BENCH / "ansible" / "ansible.cfg",
                   "ansible (defaults)": BENCH / "ansible" / "ansible-defaults.cfg"}
HEAVY = ("paramiko", "ruamel", "jinja2", "rich", "cryptography", "yaml", "typer", "click")
TARGETS = {
    "enable": 5.0,  # playbook / kaudit >= 5
    "connections": 1,
    "commands": 8,
    "ready_to_exit": 1.0,
    "help": 3.0,
    "fleet30": 4.0,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cpu_stat() -> tuple[float, float]:
    """Machine-wide (busy, total) jiffies from /proc/stat."""
    with open("/proc/stat", encoding="utf-8") as f:
        vals = [float(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Usage:
    """CPU used by the tool (its process tree, once reaped) and by the whole machine during a run."""

    def __enter__(self) -> Usage:
        self.c0, (self.b0, self.t0) = children_cpu(), cpu_stat()
        return self

    def __exit__(self, *exc: object) -> None:
        b1, t1 = cpu_stat()
        self.tool_cpu = children_cpu() - self.c0
        self.machine_busy = (b1 - self.b0) / max(t1 - self.t0, 1.0)


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# -- one kaudit enable, one playbook run ---------------------------------------------------------
@dataclass
class Run:
    tool: str
    ok: bool
    wall: float
    connections: int
    commands: int
    subsystems: int
    ready_to_exit: float | None  # simulator's ready_at of the new instance -> process exit
    detail: dict[str, Any] = field(default_factory=dict)


def new_audited_instance(node: Any, pid: int | None = None) -> dict[str, Any] | None:
    """The instance started with audit flags (the one with `pid` when given) that became ready."""
    for inst in reversed(node.instances()):
        if pid is not None and inst["pid"] != pid:
            continue
        if inst.get("ready_at") and any(a.startswith("--audit-policy-file") for a in inst["argv"]):
            return inst
    return None


def kaudit_enable(node: Any, extra: list[str] | None = None) -> Run:
    from bench.nodes import sshd_counts

    argv = [KAUDIT, "enable", node.target("kadmin"), "--profile", "minimal", "--yes", "--output", "json",
            "-i", str(node.key_path), "--known-hosts", str(node.known_hosts), "--timeout", "60", *(extra or [])]
    with Usage() as usage:
        start = time.time()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        end = time.time()
    detail: dict[str, Any] = {"rc": proc.returncode, "cpu": usage.tool_cpu, "busy": usage.machine_busy}
    ok = proc.returncode == 0
    pid = None
    try:
        doc = json.loads(proc.stdout)
        result = doc["nodes"][0]
        detail.update(steps=result["steps"], ready_seconds=result["ready_seconds"], message=result["message"])
        pid = result.get("new_instance_pid")
        ok = ok and result["ok"]
    except (ValueError, KeyError, IndexError):
        detail["stdout"] = proc.stdout[-2000:]
    if not ok:
        detail["stderr"] = proc.stderr[-2000:]
        log(f"kaudit enable FAILED: {detail}")
    inst = new_audited_instance(node, pid)
    counts = sshd_counts(node)
    return Run("kaudit", ok and inst is not None, end - start, counts.connections, counts.commands, counts.subsystems,
               end - inst["ready_at"] if inst else None, detail)


def ansible_playbook(node: Any, tool: str, config: Path, workdir: Path) -> Run:
    from bench.nodes import sshd_counts

    run_dir = Path(tempfile.mkdtemp(prefix="ansible-", dir=workdir))
    cp_dir = run_dir / "cp"
    cp_dir.mkdir()
    inventory = {"all": {"hosts": {"node": {
        "ansible_host": node.host, "ansible_port": node.ssh_port, "ansible_user": "kadmin",
        "ansible_ssh_private_key_file": str(node.key_path),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={node.known_hosts} -o StrictHostKeyChecking=yes",
        "api_port": node.api_port,
    }}}}
    inv = run_dir / "inventory.yml"
    inv.write_text(json.dumps(inventory))  # JSON is YAML
    env = {**os.environ, "ANSIBLE_CONFIG": str(config), "ANSIBLE_HOME": str(run_dir / "home"),
           "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(cp_dir),
           "ANSIBLE_NOCOLOR": "1", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    with Usage() as usage:
        start = time.time()
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(PLAYBOOK)],
                              capture_output=True, text=True, env=env, check=False, cwd=run_dir)
        end = time.time()
    # End the ControlPersist master (its connection was already counted at the sshd).
    for sock in cp_dir.iterdir():
        subprocess.run(["ssh", "-O", "exit", "-S", str(sock), "node"], capture_output=True, check=False)
    inst = new_audited_instance(node)
    counts = sshd_counts(node)
    ok = proc.returncode == 0 and inst is not None
    detail: dict[str, Any] = {"rc": proc.returncode, "cpu": usage.tool_cpu, "busy": usage.machine_busy}
    if not ok:
        detail["output"] = (proc.stdout + proc.stderr)[-3000:]
        log(f"{tool} FAILED: {detail['output']}")
    return Run(tool, ok, end - start, counts.connections, counts.commands, counts.subsystems,
               end - inst["ready_at"] if inst else None, detail)


def bench_enable(workdir: Path, reps: int, warmup: bool) -> dict[str, list[Run]]:
    """Measurements 1-3: each repetition on fresh nodes, restart delay and linger 0, tools interleaved."""
    from bench.nodes import nodes

    knobs = {"linger": 0.0, "restart_delay": 0.0}
    tools = ["kaudit", *ANSIBLE_CONFIGS]
    runs: dict[str, list[Run]] = {t: [] for t in tools}
    for rep in range(-1 if warmup else 0, reps):
        for tool in tools:
            with nodes(workdir, 1, **knobs) as (node,):
                time.sleep(0.3)  # let the node's first instance settle
                r = kaudit_enable(node) if tool == "kaudit" else ansible_playbook(node, tool, ANSIBLE_CONFIGS[tool],
                                                                                   workdir)
            if rep >= 0:
                runs[tool].append(r)
            log(f"{'warm-up' if rep < 0 else f'rep {rep + 1}/{reps}'} {tool}: {r.wall:.2f} s ok={r.ok} "
                f"cpu={r.detail.get('cpu', 0):.2f} s busy={r.detail.get('busy', 0):.0%} "
                f"conn={r.connections} cmds={r.commands} sftp={r.subsystems} "
                f"ready->exit={r.ready_to_exit if r.ready_to_exit is None else round(r.ready_to_exit, 3)}")
    return runs


# -- start-up ------------------------------------------------------------------------------------
MODULES_PROBE = r"""
import sys, io, contextlib, importlib
base = set(sys.modules)
sys.argv = ["kaudit", "--help"]
module, _, func = ENTRY.partition(":")
main = getattr(importlib.import_module(module), func)
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass
new = sorted(m for m in sys.modules if m not in base)
import json
print(json.dumps(new))
"""


def kaudit_entry_point() -> str:
    """`module:function` of the installed `kaudit` console script (what `kaudit --help` really runs)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts", name="kaudit"):
        return str(ep.value)
    return "installer.cli:main"


def bench_help(runs: int) -> dict[str, Any]:
    """Measurement 4: `kaudit --help` vs `python -c pass`, interleaved, median."""
    cmds = {"kaudit --help": [KAUDIT, "--help"], "python -c pass": [PYTHON, "-c", "pass"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for argv in cmds.values():  # warm the page cache and .pyc files
        subprocess.run(argv, capture_output=True, check=True)
    for _ in range(runs):
        for name, argv in cmds.items():
            start = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    entry = kaudit_entry_point()
    probe = f"ENTRY = {entry!r}\n" + MODULES_PROBE
    out = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    tops = sorted({m.split(".")[0] for m in modules})
    return {
        "times": times,
        "median": {k: median(v) for k, v in times.items()},
        "entry_point": entry,
        "modules_count": len(modules),
        "top_level": tops,
        "heavy": [h for h in HEAVY if h in tops],
        "installer_modules": sorted(m for m in modules if m.startswith("installer")),
    }


# -- fleets ----------------------------------------------------------------------------------------
PY_SPY = False


def py_spy(name: str) -> list[str]:
    """Prefix: sample the kaudit process (all threads, active samples only) into bench/results/NAME.pyspy.txt."""
    RESULTS.mkdir(exist_ok=True)
    return [str(VENV_BIN / "py-spy"), "record", "--threads", "-r", "100", "--format", "raw",
            "-o", str(RESULTS / f"{name}.pyspy.txt"), "--"]


def fleet_inventory(path: Path, nodes: list[Any]) -> Path:
    """One single-node cluster (group) per node; a combined known_hosts next to it."""
    known = path.parent / "known_hosts"
    known.write_text("".join(Path(n.known_hosts).read_text() for n in nodes))
    children = {
        f"c{i + 1:02d}": {"hosts": {f"c{i + 1:02d}-cp": {
            "ansible_host": n.host, "ansible_port": n.ssh_port, "ansible_user": "kadmin",
            "ansible_ssh_private_key_file": str(n.key_path)}}}
        for i, n in enumerate(nodes)
    }
    path.write_text(json.dumps({"all": {"children": children}}, indent=1))
    return known


def kaudit_fleet(workdir: Path, size: int, parallel: int) -> dict[str, Any]:
    from bench.nodes import nodes, sshd_counts

    with nodes(workdir, size, linger=1.0, restart_delay=3.0) as fleet:
        run_dir = Path(tempfile.mkdtemp(prefix=f"fleet{size}-", dir=workdir))
        inv = run_dir / "fleet.yml"
        known = fleet_inventory(inv, fleet)
        time.sleep(0.5)
        idle0 = cpu_stat()
        time.sleep(2.0)
        idle1 = cpu_stat()
        idle_busy = (idle1[0] - idle0[0]) / max(idle1[1] - idle0[1], 1.0)
        argv = [*(py_spy(f"fleet{size}") if PY_SPY else []), KAUDIT, "enable", str(inv), "--parallel", str(parallel),
                "--profile", "minimal", "--yes",
                "--output", "json", "--known-hosts", str(known), "--timeout", "120"]
        with Usage() as usage:
            start = time.time()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            wall = time.time() - start
        res: dict[str, Any] = {"size": size, "wall": wall, "rc": proc.returncode, "cpu": usage.tool_cpu,
                               "busy": usage.machine_busy, "idle_busy": idle_busy}
        if "No such option" in proc.stderr or "no such option" in proc.stderr.lower():
            res["unsupported"] = proc.stderr.strip()[-300:]
            return res
        try:
            # py-spy prints lines before and after it
            doc = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("{"):])[0]
            results = doc["nodes"]
            res["ok_nodes"] = sum(1 for r in results if r.get("ok"))
            res["ready_seconds"] = [r.get("ready_seconds") for r in results]
            res["failures"] = [f"{r.get('node')}: {r.get('action')}: {r.get('message')}" for r in results
                               if not r.get("ok")]
        except (ValueError, KeyError):
            res["ok_nodes"] = 0
            res["stdout"] = proc.stdout[-1000:]
        res["ok"] = proc.returncode == 0 and res["ok_nodes"] == size
        counts = [sshd_counts(n) for n in fleet]
        res["max_connections"] = max(c.connections for c in counts)
        res["max_commands"] = max(c.commands for c in counts)
        if not res["ok"]:
            res["stderr"] = proc.stderr[-2000:]
            log(f"fleet {size} FAILED (rc {proc.returncode}): {res.get('failures')} {res.get('stderr')} "
                f"{res.get('stdout', '')}")
        return res


def bench_fleet(workdir: Path, sizes: list[int], parallel: int, base_reps: int) -> dict[str, Any]:
    """Measurement 5: 1, 3, 10, 30 single-node clusters, --parallel 10, restart delay 3 s, linger 1 s."""
    out: dict[str, Any] = {"parallel": parallel, "runs": []}
    for size in sizes:
        for _ in range(base_reps if size == 1 else 1):
            r = kaudit_fleet(workdir, size, parallel)
            log(f"fleet {size}: {r['wall']:.2f} s rc={r['rc']} ok={r.get('ok')} kaudit cpu={r['cpu']:.1f} s "
                f"machine busy={r['busy']:.0%} (idle nodes: {r['idle_busy']:.0%}) "
                f"conn/node<={r.get('max_connections')} cmds/node<={r.get('max_commands')}")
            out["runs"].append(r)
            if "unsupported" in r:
                log(f"--parallel is not available yet: {r['unsupported']}")
                return out
    return out


# -- report ----------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ver = subprocess.run([PYTHON, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True).stdout.strip()
    ansible = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()[:1]
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": ver, "kernel": platform.release(),
            "ansible": ansible[0] if ansible else "?",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(data: dict[str, Any], command: str) -> str:
    m = data["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['ansible']}, Linux {m['kernel']}; "
        f"{m['date']}.",
        f"Command: `{command}`",
        "",
        "| # | Measurement | kaudit | Baseline | Ratio | Target | |",
        "|---|---|---|---|---|---|---|",
    ]
    enable = data.get("enable")
    if enable:
        k = enable["kaudit"]
        kw = median([r.wall for r in k])
        reps = len(k)
        for tool in ANSIBLE_CONFIGS:
            a = enable[tool]
            aw = median([r.wall for r in a])
            ratio = aw / kw
            lines.append(f"| 1 | enable, one node, wall (median of {reps}) vs {tool} | {kw:.2f} s | {aw:.2f} s | "
                         f"{ratio:.1f}× faster | ≥ 5× | {verdict(ratio >= TARGETS['enable'])} |")
        kcpu = median([r.detail["cpu"] for r in k])
        for tool in ANSIBLE_CONFIGS:
            acpu = median([r.detail["cpu"] for r in enable[tool]])
            lines.append(f"| 1 | enable, one node, CPU time of the tool's local process tree vs {tool} | "
                         f"{kcpu:.2f} s | {acpu:.2f} s | {acpu / kcpu:.1f}× less | | |")
        kc = max(r.connections for r in k)
        kx = max(r.commands for r in k)
        for tool in ANSIBLE_CONFIGS:
            a = enable[tool]
            ac = median([r.connections for r in a])
            ax = median([r.commands for r in a])
            asub = median([r.subsystems for r in a])
            sftp = f" + {asub:g} sftp" if asub else ""
            lines.append(f"| 2 | SSH connections / remote commands per node vs {tool} | {kc} / {kx} | "
                         f"{ac:g} / {ax:g}{sftp} | {ax / kx:.1f}× fewer commands | 1 / ≤ 8 | "
                         f"{verdict(kc <= TARGETS['connections'] and kx <= TARGETS['commands'])} |")
        kr = [r.ready_to_exit for r in k if r.ready_to_exit is not None]
        ar = [r.ready_to_exit for r in enable["ansible (pipelining)"] if r.ready_to_exit is not None]
        lines.append(f"| 3 | new instance ready → success reported (median, max of {len(kr)}) | "
                     f"{median(kr):.2f} s (max {max(kr):.2f}) | {median(ar):.2f} s (ansible, pipelining) | "
                     f"{median(ar) / median(kr):.1f}× sooner | ≤ 1 s | "
                     f"{verdict(max(kr) <= TARGETS['ready_to_exit'])} |")
    hp = data.get("help")
    if hp:
        kh, ph = hp["median"]["kaudit --help"], hp["median"]["python -c pass"]
        n = len(hp["times"]["kaudit --help"])
        lines.append(f"| 4 | `kaudit --help` vs `python -c pass` (median of {n}) | {kh * 1000:.0f} ms | "
                     f"{ph * 1000:.0f} ms | {kh / ph:.1f}× | ≤ 3× | {verdict(kh / ph <= TARGETS['help'])} |")
    fleet = data.get("fleet")
    if fleet:
        runs = fleet["runs"]
        if runs and "unsupported" in runs[0]:
            lines.append("| 5 | fleet rollouts with --parallel | not run: `--parallel` is not available yet | | | "
                         "≤ 4× at 30 | n/a |")
        else:
            ones = [r["wall"] for r in runs if r["size"] == 1 and r.get("ok")]
            one = median(ones)
            for r in runs:
                if r["size"] == 1 and r is not next(x for x in runs if x["size"] == 1):
                    continue
                wall = median(ones) if r["size"] == 1 else r["wall"]
                status = "" if r.get("ok") else f" (FAILED: {r.get('ok_nodes')}/{r['size']} ok)"
                target = "≤ 4×" if r["size"] == 30 else ""
                v = verdict(wall / one <= TARGETS["fleet30"] and bool(r.get("ok"))) if r["size"] == 30 else ""
                label = f"{r['size']} cluster{'s' if r['size'] > 1 else ''}"
                if r["size"] == 1:
                    label += f" (median of {len(ones)})"
                lines.append(f"| 5 | fleet: {label}, --parallel {fleet['parallel']}, restart 3 s, linger 1 s; "
                             f"SSH conn / cmds per node ≤ {r.get('max_connections')} / {r.get('max_commands')}; "
                             f"kaudit CPU {r['cpu']:.1f} s; machine busy {r['idle_busy']:.0%} before, "
                             f"{r['busy']:.0%} during"
                             f"{status} | {wall:.2f} s | {one:.2f} s (1 cluster) | {wall / one:.2f}× | {target} | "
                             f"{v} |")
    if hp:
        forbidden = set(hp["heavy"]) & {"paramiko", "ruamel", "jinja2"}
        lines += ["", f"`kaudit --help` ({hp['entry_point']}) imports {hp['modules_count']} modules beyond the "
                  "interpreter's own; "
                  f"heavy ones among them: {', '.join(hp['heavy']) or 'none'} "
                  f"(paramiko, ruamel.yaml, jinja2: {', '.join(sorted(forbidden)) or 'none'}). "
                  f"Top-level packages: {', '.join(hp['top_level'])}."]
    if enable:
        k = enable["kaudit"]
        steps: dict[str, list[float]] = {}
        for r in k:
            for s in r.detail.get("steps", []):
                steps.setdefault(s["name"], []).append(s["seconds"])
        lines += ["", "kaudit enable steps (median s): " + ", ".join(f"{n} {median(v):.3f}" for n, v in steps.items())
                  + f"; outside the steps (start-up, connect, exit): "
                  f"{median([r.wall - sum(s['seconds'] for s in r.detail.get('steps', [])) for r in k]):.3f}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each enable run (median)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up round")
    ap.add_argument("--help-runs", type=int, default=20)
    ap.add_argument("--fleet", default="1,3,10,30", help="fleet sizes (single-node clusters)")
    ap.add_argument("--fleet-base-reps", type=int, default=3, help="repetitions of the 1-cluster rollout")
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--only", default="enable,help,fleet", help="which measurements: enable, help, fleet")
    ap.add_argument("--py-spy", action="store_true", help="record fleet runs with py-spy into bench/results/")
    ap.add_argument("--workdir", default=None, help="where nodes live (default: a temporary directory)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: test nodes need root (see tests/node/README.md)", file=sys.stderr)
        return 2
    for tool in ("kaudit", "ansible-playbook"):
        if not (VENV_BIN / tool).exists():
            print(f"bench: {VENV_BIN / tool} is missing: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
            return 2
    only = set(args.only.split(","))
    global PY_SPY
    PY_SPY = args.py_spy
    command = "sudo .venv/bin/python -m bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="kaudit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"machine": machine()}
    try:
        if "help" in only:
            log("measuring kaudit --help")
            data["help"] = bench_help(args.help_runs)
        if "enable" in only:
            log("measuring enable: kaudit vs ansible")
            data["enable"] = bench_enable(workdir, args.reps, not args.no_warmup)
        if "fleet" in only:
            log("measuring fleet rollouts")
            data["fleet"] = bench_fleet(workdir, [int(s) for s in args.fleet.split(",")], args.parallel,
                                        args.fleet_base_reps)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    table = report(data, command)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(table)
    (RESULTS / "latest.json").write_text(json.dumps(data, default=lambda o: o.__dict__, indent=1))
    return 0
