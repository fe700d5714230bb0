"""Bench for `kaudit simulate` (issue 13 item 8): events/s on one core, RSS for a large log, and the
in-run baselines on the same file: Debian's `jq -c 'select(.verb=="delete")'` and a plain `json.loads`
loop. Also the cost of more candidates (one parse, cached evaluation) and the cache hit rate.

    .venv/bin/python -m bench.simulate [--size-mb 512] [--rss-size-mb 2048] [--keep DIR]

Each measured process is pinned to one core (taskset) and run as its own subprocess, so its peak RSS
is its own (RUSAGE_CHILDREN of a fresh waiter). The log is written by tests/auditgen.py (realistic
~1 KB events, bodies where the level has them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

JSON_LOOP = r"""
import json, sys
n = d = 0
with open(sys.argv[1], "rb") as f:
    for line in f:
        ev = json.loads(line)
        n += 1
        if ev.get("verb") == "delete":
            d += 1
print(n, d)
"""


def _pin() -> list[str]:
    return ["taskset", "-c", "0"] if shutil.which("taskset") else []


def measure(argv: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in KiB, stdout) of one pinned subprocess, measured by a fresh waiter."""
    waiter = r"""
import resource, subprocess, sys, time, json
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
if p.returncode:
    sys.stderr.buffer.write(p.stderr)
    sys.exit(p.returncode)
sys.stdout.write(json.dumps({"wall": wall, "rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}) + "\n")
sys.stdout.buffer.write(p.stdout)
"""
    out = subprocess.run([PY, "-c", waiter, *_pin(), *argv], capture_output=True, check=True, cwd=ROOT).stdout
    head, _, rest = out.partition(b"\n")
    info = json.loads(head)
    return info["wall"], int(info["rss"]), rest


def kaudit(log: Path, *candidates: str) -> list[str]:
    args = [PY, "-m", "installer", "simulate", str(log)]
    for c in candidates:
        args += ["-p", c]
    return [*args, "-o", "json"]


def best(n: int, argv: list[str]) -> tuple[float, int, bytes]:
    runs = [measure(argv) for _ in range(n)]
    return min(runs, key=lambda r: r[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="the log for throughput (MB)")
    parser.add_argument("--rss-size-mb", type=int, default=2048, help="the large log for RSS (MB); 0 skips")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best is kept)")
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests import auditgen

    work = args.keep or Path(tempfile.mkdtemp(prefix="kaudit-bench-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "audit.log"
    t = time.perf_counter()
    events, size = auditgen.write_size(log, args.size_mb * 1024 * 1024)
    print(f"log: {events:,} events, {size / 1e6:.0f} MB, {size / events:.0f} B/event "
          f"(generated in {time.perf_counter() - t:.1f} s)", flush=True)
    result: dict[str, Any] = {"events": events, "bytes": size}

    wall, rss, out = best(args.repeat, kaudit(log, "recommended"))
    doc = json.loads(out)
    cache = doc["candidates"][0]["cache"]
    result["kaudit_1"] = {"wall": wall, "events_per_s": events / wall, "rss_kib": rss, "cache": cache}
    print(f"kaudit simulate, 1 candidate: {wall:.2f} s, {events / wall:,.0f} events/s, RSS {rss / 1024:.0f} MiB, "
          f"cache hit rate {cache['hitRate']:.4f} ({cache['distinct']:,} distinct)", flush=True)
    wall3, _, _ = best(args.repeat, kaudit(log, "recommended", "minimal", "all-bodies"))
    result["kaudit_3"] = {"wall": wall3, "events_per_s": events / wall3}
    print(f"kaudit simulate, 3 candidates: {wall3:.2f} s ({wall3 / wall:.2f}x one candidate)", flush=True)

    jq = shutil.which("jq")
    if jq:
        jwall, jrss, _ = best(args.repeat, [jq, "-c", 'select(.verb=="delete")', str(log)])
        result["jq"] = {"wall": jwall, "events_per_s": events / jwall, "rss_kib": jrss}
        print(f"jq -c 'select(.verb==\"delete\")': {jwall:.2f} s, {events / jwall:,.0f} events/s "
              f"-> kaudit is {jwall / wall:.2f}x jq", flush=True)
    lwall, _, _ = best(args.repeat, [PY, "-c", JSON_LOOP, str(log)])
    result["json_loads"] = {"wall": lwall, "events_per_s": events / lwall}
    print(f"json.loads loop: {lwall:.2f} s, {events / lwall:,.0f} events/s -> kaudit is {lwall / wall:.2f}x",
          flush=True)

    if args.rss_size_mb:
        big = work / "big.log"
        bevents, bsize = auditgen.write_size(big, args.rss_size_mb * 1024 * 1024)
        bwall, brss, _ = measure(kaudit(big, "recommended"))
        result["large"] = {"events": bevents, "bytes": bsize, "wall": bwall, "rss_kib": brss}
        print(f"large log {bsize / 1e9:.2f} GB ({bevents:,} events): {bwall:.1f} s, RSS {brss / 1024:.0f} MiB",
              flush=True)
        if not args.keep:
            big.unlink()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
