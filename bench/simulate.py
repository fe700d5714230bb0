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

`--approaches` also measures, on the same log and each pinned the same way, the ways of aggregating the
events that issue 21 item 1 asked to weigh (bench/README.md says which was chosen and why):

- `msgspec + loop`: the reader's blocks (msgspec, the needed fields, bodies as raw bytes), one Python
  loop per event adding its line size and body lengths to a per-key entry (kaudit's way);
- `msgspec + map/zip`: the same blocks, the per-key sums built without a Python statement per event
  (`attrgetter`/`map`/`zip` keys, `list.append` into per-key lists driven by `deque`, summed per key);
- `kaudit Simulation`: the whole of simulate's pass with one candidate (the loop, the policy per key,
  the report), without the command's start-up;
- `pyarrow.json`: pyarrow's multithreaded-capable JSON reader (one thread here), the key fields only,
  then a group-by count: it cannot give a body's or a line's raw size at all (an object read as a
  string is an error), so this is a lower bound of what it would cost;
- `polars.read_ndjson`: polars' reader with the bodies as strings, then a group-by summing their
  lengths: polars re-serializes them (`{"a": 1}` for `{"a":1}`), so its sizes are not the log's.

pyarrow and polars are not kaudit dependencies: `pip install pyarrow polars` into the venv to measure
them (each is skipped, and said so, when it is not installed).
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


APPROACH_PRELUDE = r"""
import gc, json, sys, time
from collections import defaultdict, deque
from operator import attrgetter, itemgetter
gc.disable()
path = sys.argv[1]
"""

APPROACHES = {
    "msgspec + loop": r"""
from installer.auditlog import reader
absent = reader.ABSENT
tables = {}
n = 0
for block in reader.read_blocks(reader.local_sources([path])):
    times = list(map(attrgetter("stageTimestamp"), block.events))
    table = tables.setdefault(min(times)[:13], {})
    for ev, size in zip(block.events, block.sizes):
        key = (ev.verb, ev.requestURI, bytes(ev.user), ev.stage, ev.level)
        entry = table.get(key)
        if entry is None:
            entry = table[key] = [0, 0, 0, 0, 0]
        entry[0] += 1
        entry[1] += size
        body = ev.requestObject
        if body is not absent:
            entry[2] += len(body)
        body = ev.responseObject
        if body is not absent:
            entry[3] += len(body)
        body = ev.responseStatus
        if body is not absent:
            entry[4] += len(body)
        body = ev.annotations
        if body is not absent:
            entry[4] += len(body)
    n += len(block.events)
print(json.dumps({"events": n, "groups": sum(map(len, tables.values()))}))
""",
    "msgspec + map/zip": r"""
from installer.auditlog import reader
KEY = attrgetter("verb", "requestURI", "stage", "level")
USER = attrgetter("user")
FIELDS = [attrgetter(f) for f in ("requestObject", "responseObject", "responseStatus", "annotations")]
SLOT = [itemgetter(i) for i in range(5)]
tables = {}
n = 0
for block in reader.read_blocks(reader.local_sources([path])):
    events = block.events
    times = list(map(attrgetter("stageTimestamp"), events))
    slots = tables.setdefault(min(times)[:13], defaultdict(lambda: ([], [], [], [], [])))
    got = list(map(slots.__getitem__, zip(map(KEY, events), map(bytes, map(USER, events)))))
    deque(map(list.append, map(SLOT[0], got), block.sizes), 0)
    for i, field in enumerate(FIELDS, 1):
        deque(map(list.append, map(SLOT[i], got), map(len, map(field, events))), 0)
    n += len(events)
groups = 0
for slots in tables.values():
    for slot in slots.values():
        sums = list(map(sum, slot))
    groups += len(slots)
print(json.dumps({"events": n, "groups": groups}))
""",
    "kaudit Simulation": r"""
from installer.auditlog import reader
from installer.simulate.run import build_candidates
from installer.simulate.simulate import Simulation
from installer.policy.model import LATEST_KNOWN_VERSION
cands = build_candidates(["recommended"], [], [], (None, None, None), LATEST_KNOWN_VERSION)
t = time.perf_counter()
sim = Simulation(cands, LATEST_KNOWN_VERSION)
stats = reader.ReadStats()
sim.read(reader.read_blocks(reader.local_sources([path]), stats))
report = sim.report(stats)
print(json.dumps({"events": report["log"]["events"], "groups": report["candidates"][0]["cache"]["keys"]}))
""",
    "pyarrow.json": r"""
import pyarrow as pa, pyarrow.json as pj
pa.set_cpu_count(1)
pa.set_io_thread_count(1)
user = pa.struct([("username", pa.string()), ("groups", pa.list_(pa.string()))])
schema = pa.schema([("verb", pa.string()), ("requestURI", pa.string()), ("stage", pa.string()),
                    ("level", pa.string()), ("stageTimestamp", pa.string()), ("user", user)])
table = pj.read_json(path, read_options=pj.ReadOptions(use_threads=False),
                     parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"))
table = table.append_column("username", table["user"].combine_chunks().field("username"))
import pyarrow.compute as pc
table = table.append_column("hour", pc.utf8_slice_codeunits(table["stageTimestamp"], 0, 13))
grouped = table.group_by(["hour", "verb", "requestURI", "username", "stage", "level"]).aggregate([("verb", "count")])
print(json.dumps({"events": table.num_rows, "groups": grouped.num_rows}))
""",
    "polars.read_ndjson": r"""
import os
os.environ["POLARS_MAX_THREADS"] = "1"
import polars as pl
s = pl.String
schema = {"verb": s, "requestURI": s, "stage": s, "level": s, "stageTimestamp": s, "user": s,
          "requestObject": s, "responseObject": s, "responseStatus": s, "annotations": s}
df = pl.read_ndjson(path, schema=schema)
grouped = df.group_by(pl.col("stageTimestamp").str.slice(0, 13), "verb", "requestURI", "user", "stage", "level").agg(
    pl.len(), *[pl.col(c).str.len_bytes().sum() for c in ("requestObject", "responseObject", "responseStatus",
                                                          "annotations")])
print(json.dumps({"events": df.height, "groups": grouped.height}))
""",
}
APPROACH_MODULES = {"pyarrow.json": "pyarrow", "polars.read_ndjson": "polars"}


def approaches(log: Path, events: int, repeat: int) -> dict[str, Any]:
    """Each approach in its own pinned process on the same log, in rounds (the best of each kept)."""
    import importlib.util

    commands: dict[str, list[str]] = {}
    for name, code in APPROACHES.items():
        module = APPROACH_MODULES.get(name)
        if module and importlib.util.find_spec(module) is None:
            print(f"  {name}: skipped ({module} is not installed: pip install {module})", flush=True)
            continue
        commands[name] = [PY, "-c", APPROACH_PRELUDE + code, str(log)]
    best = rounds(repeat, commands)
    base = best["msgspec + loop"][0]
    out: dict[str, Any] = {}
    for name, (wall, rss, stdout) in best.items():
        got = json.loads(stdout)
        out[name] = {"wall": wall, "rss_kib": rss, "events_per_s": events / wall, "vs_loop": wall / base, **got}
        print(f"  {name:20s} {wall:6.2f} s  {events / wall:>9,.0f} events/s  {wall / base:5.2f}x the loop's time  "
              f"RSS {rss / 1024:4.0f} MiB  {got['groups']:,} groups", flush=True)
    return out


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
    parser.add_argument("--approaches", action="store_true",
                        help="also measure the other ways of aggregating (msgspec map/zip, pyarrow, polars)")
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

    if args.approaches:
        print("approaches, on the same log (whole process, pinned, best of the rounds):", flush=True)
        result["approaches"] = approaches(log, events, args.repeat)

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
