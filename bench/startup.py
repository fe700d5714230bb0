"""Start-up of every kaudit command against `python -c pass` (issue 21 item 2), and what each one imports.

    .venv/bin/python -m bench.startup [--runs 20] [--json FILE] [--importtime] [--tree DIR]

Every command runs as the user runs it (`installer.entry:main`, bytecode written by an untimed first run),
interleaved with `python -c pass` in the same loop; the figure is the median wall time of each minus the
baseline's median (its overhead), and their ratio. Commands that reach nodes (enable, disable, status,
rollback, logs) are timed **up to their first remote step**: a probe ends the process (`os._exit`) at the
moment kaudit would open its TCP connection to the node's sshd (paramiko imported, ssh config read) or run
a command on a `local` target, so what is timed is only kaudit's local work (start-up, imports, option
parsing, the policy rendered and checked), never a network or a node. `--importtime` adds each command's
heaviest imports (`python -X importtime`, cumulative, top-level only). `--tree DIR` runs the kaudit of
another source tree (e.g. `git archive OLD | tar -x -C DIR`: before and after in one run, on the same venv).

Benchmarks, not tests: tests/unit/commands/test_startup.py checks which modules each command imports, not
how long it takes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Ends the process at kaudit's first remote step: the TCP connection to the node's sshd (after paramiko is
# imported and the ssh config read) or a command on a local/docker transport. Patched lazily (an import hook),
# so the probe imports nothing kaudit would not.
PROBE = r"""
import os, sys, importlib.machinery
def _stop(*a, **k):
    sys.stdout.flush()
    os._exit(97)
def _patch(mod):
    if mod.__name__ == 'installer.transport.ssh':
        mod._dial = _stop
    else:
        mod.Transport.run = _stop
        mod.Transport.open = _stop
class _Hook:
    def find_spec(self, name, path=None, target=None):
        if name not in ('installer.transport', 'installer.transport.ssh'):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            _patch(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, _Hook())
"""

ENTRY = "import sys\nsys.argv = ['kaudit', *sys.argv[1:]]\nfrom installer.entry import main\nmain()\n"


def fixtures(tmp: Path) -> dict[str, str]:
    """A small audit log and a policy file, the local inputs of the file commands."""
    sys.path.insert(0, str(ROOT))
    from tests import auditgen

    log = tmp / "audit.log"
    auditgen.write(log, 200)
    policy = ROOT / "tests" / "golden" / "minimal.yaml"
    return {"LOG": str(log), "POLICY": str(policy)}


# (name, arguments, reaches a node: timed up to its first remote command)
COMMANDS: list[tuple[str, list[str], bool]] = [
    ("--help", ["--help"], False),
    ("--version", ["--version"], False),
    ("profiles", ["profiles"], False),
    ("render minimal", ["render", "minimal"], False),
    ("validate FILE", ["validate", "{POLICY}"], False),
    ("export -f kubeadm -p minimal", ["export", "-f", "kubeadm", "-p", "minimal"], False),
    ("simulate LOG -p minimal", ["simulate", "{LOG}", "-p", "minimal"], False),
    ("tune LOG", ["tune", "{LOG}"], False),
    ("enable --help", ["enable", "--help"], False),
    ("status --help", ["status", "--help"], False),
    ("enable (to the SSH connect)", ["enable", "root@127.0.0.1", "-p", "minimal", "--yes"], True),
    ("enable local (to the first command)", ["enable", "local", "-p", "minimal", "--yes"], True),
    ("disable (to the SSH connect)", ["disable", "root@127.0.0.1", "--yes"], True),
    ("status (to the SSH connect)", ["status", "root@127.0.0.1"], True),
    ("rollback (to the SSH connect)", ["rollback", "root@127.0.0.1", "--yes"], True),
    ("logs (to the SSH connect)", ["logs", "root@127.0.0.1"], True),
]


def argv_of(args: list[str], remote: bool, fx: dict[str, str], importtime: bool = False) -> list[str]:
    code = (PROBE if remote else "") + ENTRY
    return [PYTHON, *(["-X", "importtime"] if importtime else []), "-c", code,
            *(a.format(**fx) if a.startswith("{") else a for a in args)]


TREE = ROOT  # the source tree whose kaudit runs (--tree): the working directory, first on sys.path for -c


def run_once(argv: list[str], remote: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "100"
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, env=env, cwd=TREE, check=False)
    elapsed = time.perf_counter() - start
    if remote and proc.returncode != 97:
        raise SystemExit(f"{argv[3:]}: the probe did not stop it (rc {proc.returncode}): {proc.stderr[-800:]!r}")
    if not remote and proc.returncode not in (0, 1):
        raise SystemExit(f"{argv[3:]}: rc {proc.returncode}: {proc.stderr[-800:]!r}")
    return elapsed


def importtime_top(argv: list[str], n: int = 8) -> tuple[int, list[tuple[str, int]]]:
    """(the sum of top-level imports' cumulative µs, the n heaviest top-level imports)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=TREE, check=False)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum, name = line.split(":", 1)[1].split("|")
        if len(name) - len(name.lstrip()) == 1:  # top level: imported by the program itself
            rows.append((name.strip(), int(cum)))
    rows.sort(key=lambda r: -r[1])
    return sum(c for _, c in rows), rows[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", help="comma-separated command names (as printed)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--importtime", action="store_true")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the source tree to run (default: this one)")
    a = ap.parse_args(argv)
    global TREE
    TREE = a.tree.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        fx = fixtures(Path(tmp))
        cmds = [c for c in COMMANDS if not a.only or c[0] in a.only.split(",")]
        base = [PYTHON, "-c", "pass"]
        for _name, args, remote in cmds:  # untimed: bytecode written, page cache warm
            run_once(argv_of(args, remote, fx), remote)
        times: dict[str, list[float]] = {"python -c pass": []}
        times.update({name: [] for name, _, _ in cmds})
        for _ in range(a.runs):
            for name, args, remote in cmds:
                times["python -c pass"].append(run_once(base, False))
                times[name].append(run_once(argv_of(args, remote, fx), remote))
        med = {k: statistics.median(v) for k, v in times.items()}
        b = med["python -c pass"]
        print(f"python -c pass: {b * 1000:.0f} ms (median of {len(times['python -c pass'])})")
        print(f"{'command':42} {'median':>8} {'overhead':>9} {'ratio':>6}")
        out: dict[str, Any] = {"baseline": b, "commands": {}}
        for name, args, remote in cmds:
            m = med[name]
            row: dict[str, Any] = {"median": m, "overhead": m - b, "ratio": m / b, "times": times[name]}
            print(f"{name:42} {m * 1000:6.0f} ms {(m - b) * 1000:6.0f} ms {m / b:5.1f}×")
            if a.importtime:
                total, top = importtime_top(argv_of(args, remote, fx, importtime=True))
                row["importtime_us"] = total
                row["importtime_top"] = top
                print(f"    imports {total / 1000:.0f} ms: " + ", ".join(f"{n} {c / 1000:.0f}" for n, c in top))
            out["commands"][name] = row
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
