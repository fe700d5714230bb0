"""Bench for `kaudit simulate` (issue 13 item 8): events/s on one core, RSS for a large log, and the
in-run baselines on the same file: Debian's `jq -c 'select(.verb=="delete")'` and a plain `json.loads`
loop. Also the cost of more candidates (one parse, cached evaluation) and the cache hit rate.

    .venv/bin/python -m bench.simulate [--size-mb 256] [--rss-size-mb 2048] [--repeat 3] [--keep DIR]

Each measured process is pinned to one core (taskset) and run as its own subprocess, so its peak RSS
is its own (RUSAGE_CHILDREN of a fresh waiter). The figures of one run are measured in rounds (every
command once per round, --repeat rounds, the best of each kept), so that a neighbour's burst of load
hits them all alike. The log is written by tests/auditgen.py (realistic ~1 KB events, bodies where the
level has them). Also measured: the command on an empty log (its start-up: imports, the candidates'
rendering and validation, the detection catalogue), so the rate after start-up is known, and the
reader alone (reader.read_blocks: the file read, split and decoded, nothing else), the floor of any
pass over the events in this design.
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

READER_ONLY = r"""
import gc, sys
from installer.auditlog import reader
gc.disable()
n = sum(len(b.events) for b in reader.read_blocks(reader.local_sources([sys.argv[1]])))
print(n)
"""

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


def rounds(n: int, commands: dict[str, list[str]]) -> dict[str, tuple[float, int, bytes]]:
    """Each command once per round, n rounds; the best (fastest) run of each."""
    runs: dict[str, list[tuple[float, int, bytes]]] = {name: [] for name in commands}
    for _ in range(n):
        for name, argv in commands.items():
            runs[name].append(measure(argv))
    return {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--size-mb", type=int, default=256, help="the log for throughput (MB)")
    parser.add_argument("--rss-size-mb", type=int, default=2048, help="the large log for RSS (MB); 0 skips")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the best run of each command is kept)")
    parser.add_argument("--keep", type=Path, help="write the logs here and keep them")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests import auditgen

    work = args.keep or Path(tempfile.mkdtemp(prefix="kaudit-bench-sim-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "audit.log"
    empty = work / "empty.log"
    empty.write_bytes(b"")
    t = time.perf_counter()
    events, size = auditgen.write_size(log, args.size_mb * 1024 * 1024)
    print(f"log: {events:,} events, {size / 1e6:.0f} MB, {size / events:.0f} B/event "
          f"(generated in {time.perf_counter() - t:.1f} s)", flush=True)
    result: dict[str, Any] = {"events": events, "bytes": size}

    commands = {
        "kaudit_1": kaudit(log, "recommended"),
        "kaudit_3": kaudit(log, "recommended", "minimal", "all-bodies"),
        "kaudit_6": kaudit(log, "recommended", "minimal", "all-bodies", "cis", "security", "write-bodies"),
        "startup_1": kaudit(empty, "recommended"),
        "startup_3": kaudit(empty, "recommended", "minimal", "all-bodies"),
        "startup_6": kaudit(empty, "recommended", "minimal", "all-bodies", "cis", "security", "write-bodies"),
        "reader": [PY, "-c", READER_ONLY, str(log)],
        "json_loads": [PY, "-c", JSON_LOOP, str(log)],
    }
    jq = shutil.which("jq")
    if jq:
        commands["jq"] = [jq, "-c", 'select(.verb=="delete")', str(log)]
    best = rounds(args.repeat, commands)

    wall, rss, out = best["kaudit_1"]
    start = best["startup_1"][0]
    cache = json.loads(out)["candidates"][0]["cache"]
    result["kaudit_1"] = {"wall": wall, "events_per_s": events / wall, "rss_kib": rss, "cache": cache,
                          "startup": start, "events_per_s_after_startup": events / (wall - start)}
    print(f"kaudit simulate, 1 candidate: {wall:.2f} s, {events / wall:,.0f} events/s, RSS {rss / 1024:.0f} MiB, "
          f"cache hit rate {cache['hitRate']:.4f} ({cache['distinct']:,} distinct attribute sets, "
          f"{cache['keys']:,} keys applied)", flush=True)
    print(f"  start-up (empty log): {start:.2f} s; after start-up: {events / (wall - start):,.0f} events/s",
          flush=True)
    for n in (3, 6):
        w = best[f"kaudit_{n}"][0]
        s0 = best[f"startup_{n}"][0]
        result[f"kaudit_{n}"] = {"wall": w, "events_per_s": events / w, "startup": s0,
                                 "vs_one": w / wall, "vs_one_after_startup": (w - s0) / (wall - start)}
        print(f"kaudit simulate, {n} candidates: {w:.2f} s ({w / wall:.2f}x one candidate; after start-up "
              f"{(w - s0) / (wall - start):.2f}x)", flush=True)
    rwall = best["reader"][0]
    result["reader"] = {"wall": rwall, "events_per_s": events / rwall}
    print(f"reader alone (read, split, decode): {rwall:.2f} s, {events / rwall:,.0f} events/s", flush=True)
    if jq:
        jwall, jrss, _ = best["jq"]
        result["jq"] = {"wall": jwall, "events_per_s": events / jwall, "rss_kib": jrss}
        print(f"jq -c 'select(.verb==\"delete\")': {jwall:.2f} s, {events / jwall:,.0f} events/s "
              f"-> kaudit is {jwall / wall:.2f}x jq", flush=True)
    lwall = best["json_loads"][0]
    result["json_loads"] = {"wall": lwall, "events_per_s": events / lwall}
    print(f"json.loads loop: {lwall:.2f} s, {events / lwall:,.0f} events/s -> kaudit is {lwall / wall:.2f}x",
          flush=True)

    if args.rss_size_mb:
        big = work / "big.log"
        bevents, bsize = auditgen.write_size(big, args.rss_size_mb * 1024 * 1024)
        bwall, brss, bout = measure(kaudit(big, "recommended"))
        bcache = json.loads(bout)["candidates"][0]["cache"]
        result["large"] = {"events": bevents, "bytes": bsize, "wall": bwall, "rss_kib": brss,
                           "events_per_s": bevents / bwall, "cache": bcache}
        print(f"large log {bsize / 1e9:.2f} GB ({bevents:,} events): {bwall:.1f} s, {bevents / bwall:,.0f} events/s, "
              f"RSS {brss / 1024:.0f} MiB, {bcache['keys']:,} keys applied", flush=True)
        if not args.keep:
            big.unlink()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
