"""HA rollouts: remote commands per node and wall time for one `kaudit enable` over 1, 3 and 5
control-plane nodes of one cluster (issue 12, item 6). Counts come from each node's sshd log
("Starting session: command"), so they are what the nodes saw.

    sudo .venv/bin/python -m bench.ha_commands [--sizes 1,3,5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.nodes import nodes, sshd_counts
from tests.userinstall import kaudit_argv, user_env


def one_rollout(size: int, workdir: Path) -> dict[str, object]:
    with nodes(workdir, size, linger=0.0, restart_delay=0.0) as cluster:
        known = workdir / f"known-{size}"
        known.write_text("".join(n.known_hosts.read_text() for n in cluster))
        before = [sshd_counts(n).commands for n in cluster]
        config = workdir / f"ssh-config-{size}"
        config.write_text("".join(f"Host cp{i}\n  HostName {n.host}\n  Port {n.ssh_port}\n  User kadmin\n"
                                  f"  IdentityFile {n.key_path}\n" for i, n in enumerate(cluster)))
        argv = [*kaudit_argv(), "enable", *[f"cp{i}" for i in range(size)], "--profile", "minimal", "--yes",
                "--output", "json", "--timeout", "30", "--known-hosts", str(known), "-F", str(config)]
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=user_env(), check=False,
                              stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"enable over {size} nodes failed: {proc.stdout}{proc.stderr}")
        per_node = [sshd_counts(n).commands - b for n, b in zip(cluster, before, strict=True)]
    return {"nodes": size, "wall_s": round(wall, 2), "commands_per_node": per_node,
            "max_commands_per_node": max(per_node), "mean": round(statistics.mean(per_node), 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,3,5")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kaudit-ha-"))
    rows = [one_rollout(int(s), work) for s in args.sizes.split(",")]
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
