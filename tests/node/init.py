"""PID 1 of a test node: bind-mounts the node's own directories, starts sshd and the simulator, reaps.

Run by TestNode under `unshare --mount --pid --fork --mount-proc`, so the mounts and the process
table are this node's alone and nothing of it outlives this process (killing PID 1 kills the namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    ctl = Path(sys.argv[1])
    cfg = json.loads((ctl / "init.json").read_text())
    try:
        for src, dst in cfg["binds"]:
            subprocess.run(["mount", "--bind", src, dst], check=True, capture_output=True, text=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    except subprocess.CalledProcessError as e:
        (ctl / "init.error").write_text(f"{e.cmd}: {e.stderr}")
        return 1
    children: dict[int, str] = {}
    sshd = subprocess.Popen(cfg["sshd"], stdin=subprocess.DEVNULL,
                            stdout=open(ctl / "sshd.out", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 (handed to a child process)
    children[sshd.pid] = "sshd"
    sim = None  # a real node (tests/node/realnode.py) has no simulator: its real kubelet runs the pods
    if cfg.get("simulator"):
        sim = subprocess.Popen([sys.executable, cfg["simulator"], str(ctl)], stdin=subprocess.DEVNULL,
                               stdout=open(ctl / "simulator.out", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 (handed to a child process)
        children[sim.pid] = "simulator"

    def term(*_: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)
        os._exit(0)  # PID 1 exiting takes the whole namespace with it

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    if len(sys.argv) > 2:  # the lifeline pipe from TestNode: EOF means its owner is gone
        fd = int(sys.argv[2])

        def watch() -> None:
            while os.read(fd, 1):
                pass
            term()

        threading.Thread(target=watch, daemon=True).start()
    (ctl / "init.ready").write_text(json.dumps({"sshd": sshd.pid, "simulator": sim.pid if sim else None}))
    while True:  # as PID 1 we inherit every orphan (e.g. kaudit's detached guard): reap them all
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.5)
            continue
        except InterruptedError:
            continue
        if pid in children:
            with open(ctl / "init.log", "a") as f:
                f.write(f"{time.time()} {children[pid]} (pid {pid}) exited with status {status}\n")


if __name__ == "__main__":
    sys.exit(main())
