"""What a user's install costs: `python3 -m venv D && D/bin/pip install .` as the README says.

Measures, in one run: the install's wall time, the venv's size (MB, total and per distribution),
and `kaudit enable --dry-run` against a test node, the first run right after the install (cold:
nothing of kaudit's has been imported yet on this machine since it was installed) and the median
of 5 warm runs, each as a ratio to `python -c pass` from the same venv measured in the same run.

    sudo .venv/bin/python -m bench.install_footprint
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.nodes import start_node
from tests.userinstall import build_wheel, user_env


def du_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def per_distribution(site: Path) -> dict[str, float]:
    """MB per installed distribution, from each one's RECORD."""
    out: dict[str, float] = {}
    for record in site.glob("*.dist-info/RECORD"):
        size = 0
        for line in record.read_text().splitlines():
            parts = line.rsplit(",", 2)
            if len(parts) == 3 and parts[2].isdigit():
                size += int(parts[2])
        out[record.parent.name.split("-")[0]] = size / 1e6
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd="/", stdin=subprocess.DEVNULL,
                          check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return elapsed


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="kaudit-footprint-"))
    wheel = build_wheel(work / "dist")
    venv = work / "venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True)
    install_s = time.perf_counter() - started
    site = next((venv / "lib").glob("python*/site-packages"))
    node = start_node(work)
    try:
        env = user_env()
        argv = [str(venv / "bin" / "kaudit"), "enable", node.target(), "-i", str(node.key_path), "--known-hosts",
                str(node.known_hosts), "--profile", "recommended", "--dry-run", "--output", "json"]
        subprocess.run(["sync"], check=False)
        cold = timed(argv, env)
        warm = [timed(argv, env) for _ in range(5)]
        base = [timed([str(venv / "bin" / "python"), "-c", "pass"], env) for _ in range(5)]
    finally:
        node.stop()
    dists = per_distribution(site)
    data = {
        "install_seconds": round(install_s, 1),
        "venv_mb": round(du_mb(venv), 1),
        "site_packages_mb": round(du_mb(site), 1),
        "largest": {k: round(v, 1) for k, v in list(dists.items())[:6]},
        "dry_run_cold_seconds": round(cold, 2),
        "dry_run_warm_median_seconds": round(statistics.median(warm), 2),
        "python_pass_median_seconds": round(statistics.median(base), 3),
        "dry_run_warm_ratio_to_python_pass": round(statistics.median(warm) / statistics.median(base), 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
