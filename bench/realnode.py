"""`kaudit enable` against the Ansible baseline on a REAL node (tests/node/realnode.py: kubeadm init, the real
kubelet restarting the real kube-apiserver), in the same run, interleaved; and enable's parts (write ->
kubelet notices -> old instance gone -> new container started -> ready -> kaudit confirmed).

    sudo .venv/bin/python -m bench.realnode [--reps 2]

Needs what the real tier needs (tests/node/README.md) plus ansible-core (`pip install -e '.[bench]'`).
Each run is a real restart (15-45 s here) and so is the reset between runs: ~2 minutes per repetition.
Prints a table and writes bench/results/realnode.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.run import PLAYBOOK, VENV_BIN, median
from tests.node.realnode import RealNode, missing_real_requirements
from tests.real import kube
from tests.userinstall import kaudit_argv, user_env

RESULTS = Path(__file__).resolve().parent / "results"


def _kaudit(node: RealNode) -> dict[str, Any]:
    assert node.node is not None
    argv = [*kaudit_argv(), "enable", node.node.target("kadmin"), "-i", str(node.node.key_path), "--known-hosts",
            str(node.node.known_hosts), "--profile", "minimal", "--yes", "--output", "json", "--timeout", "150"]
    start = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, env=user_env(None), check=False)
    end = time.time()
    out: dict[str, Any] = {"ok": proc.returncode == 0, "wall": end - start, "end": end}
    try:
        node_doc = json.loads(proc.stdout)["nodes"][0]
        out["steps"] = {s["name"]: s["seconds"] for s in node_doc["steps"]}
    except (ValueError, KeyError, IndexError):
        out["error"] = (proc.stdout + proc.stderr)[-2000:]
    return out


def _ansible(node: RealNode, workdir: Path) -> dict[str, Any]:
    assert node.node is not None
    run_dir = Path(tempfile.mkdtemp(prefix="ansible-", dir=workdir))
    (run_dir / "cp").mkdir()
    inventory = {"all": {"hosts": {"node": {
        "ansible_host": node.node.host, "ansible_port": node.node.ssh_port, "ansible_user": "kadmin",
        "ansible_ssh_private_key_file": str(node.node.key_path),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={node.node.known_hosts} -o StrictHostKeyChecking=yes",
    }}}}
    inv = run_dir / "inventory.yml"
    inv.write_text(json.dumps(inventory))
    env = {**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOK.parent / "ansible.cfg"), "ANSIBLE_HOME": str(run_dir / "home"),
           "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(run_dir / "cp"),
           "ANSIBLE_NOCOLOR": "1", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    # The playbook probes /readyz on the node at 127.0.0.1 by default; the real node's API server listens on
    # its advertise address (kubeadm's probes point there too).
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(PLAYBOOK),
            "-e", f"readyz_url=https://{node.node_addr}:6443/readyz", "-e", "backup_dir=/var/lib/kaudit/audit-playbook"]
    start = time.time()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=run_dir)
    end = time.time()
    for sock in (run_dir / "cp").iterdir():
        subprocess.run(["ssh", "-O", "exit", "-S", str(sock), "node"], capture_output=True, check=False)
    out: dict[str, Any] = {"ok": proc.returncode == 0, "wall": end - start, "end": end}
    if proc.returncode:
        out["error"] = (proc.stdout + proc.stderr)[-2000:]
    return out


def _observed(node: RealNode, tool: Any, *args: Any) -> dict[str, Any]:
    """Run `tool`, observing the restart from outside; its parts relative to the manifest write."""
    assert node.node is not None
    old = {p["pid"] for p in kube.apiservers(node)}
    result: dict[str, Any] = {}
    t = threading.Thread(target=lambda: result.update(tool(node, *args)))
    started = time.time()
    t.start()
    seen = kube.observe_restart(node, old, timeout=200)
    t.join()
    write = node.node.path(kube.MANIFEST).stat().st_mtime
    parts = kube.timeline(node, write, seen, tool.__name__, done=result["end"])
    result["parts"] = parts
    result["write_after_start"] = round(write - started, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.realnode")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args(argv)
    reason = missing_real_requirements()
    if reason:
        print(f"bench.realnode: {reason}", file=sys.stderr)
        return 2
    if not (VENV_BIN / "ansible-playbook").exists():
        print("bench.realnode: ansible-playbook not in the venv (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="kaudit-bench-real-"))
    node = RealNode.start(workdir / "node")
    runs: dict[str, list[dict[str, Any]]] = {"kaudit": [], "ansible": []}
    try:
        assert node.node is not None
        node.original_manifest = node.node.path(kube.MANIFEST).read_bytes()  # type: ignore[attr-defined]
        for rep in range(args.reps):
            for name in (("kaudit", "ansible") if rep % 2 == 0 else ("ansible", "kaudit")):
                kube.reset(node)
                r = _observed(node, _kaudit) if name == "kaudit" else _observed(node, _ansible, workdir)
                runs[name].append(r)
                print(f"{name}: ok={r['ok']} wall={r['wall']:.1f}s parts={r['parts']}", flush=True)
    finally:
        node.stop()
    summary = {name: {"ok": all(r["ok"] for r in rs), "wall_median": round(median([r["wall"] for r in rs]), 2),
                      **{k: round(median([r["parts"][k] for r in rs]), 2)
                         for k in ("old_gone", "started", "ready", "done")}}
               for name, rs in runs.items() if rs}
    if summary.get("kaudit") and summary.get("ansible"):
        summary["ratio_wall_kaudit_over_ansible"] = round(summary["kaudit"]["wall_median"]
                                                          / summary["ansible"]["wall_median"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "realnode.json").write_text(json.dumps({"summary": summary, "runs": runs}, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
