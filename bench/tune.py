"""Bench for `kaudit tune` (issue 22): its time on one core against `kaudit simulate` with one
candidate on the same log, in the same run (the target: at most 2x), and both peak RSS.

    .venv/bin/python -m bench.tune [--size-mb 256] [--repeat 3] [--keep DIR]

tune reads the log twice (the traffic, then the policy, each cut rule taken out, and the six shipped
profiles evaluated together), so its floor is about two passes of simulate's reader.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.simulate import PY, ROOT, kaudit, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join((__doc__ or "").split("\n\n")[0].split()))
    parser.add_argument("--size-mb", type=int, default=256, help="the log (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (the best run of each command is kept)")
    parser.add_argument("--keep", type=Path, help="write the log here and keep it")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests import auditgen

    work = args.keep or Path(tempfile.mkdtemp(prefix="kaudit-bench-tune-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "audit.log"
    t = time.perf_counter()
    events, size = auditgen.write_size(log, args.size_mb * 1024 * 1024)
    print(f"log: {events:,} events, {size / 1e6:.0f} MB (written in {time.perf_counter() - t:.0f} s)")
    best = rounds(args.repeat, {
        "simulate -p recommended": kaudit(log, "recommended"),
        "tune": [PY, "-m", "installer", "tune", str(log), "-o", "json"],
    })
    base = best["simulate -p recommended"][0]
    for name, (wall, rss, _) in best.items():
        print(f"{name:<26} {wall:7.2f} s  {wall / base:5.2f}x  {events / wall:10,.0f} events/s  "
              f"peak RSS {rss / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
