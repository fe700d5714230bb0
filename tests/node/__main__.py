"""`python -m tests.node start --dir DIR [--manifest FILE]`: run a test node by hand until Ctrl-C.
`python -m tests.node start --real --dir DIR`: a real node (tests/node/realnode.py); prints one JSON line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from .node import SUDO_PASSWORD, USERS, TestNode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.node")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start a node and stay in the foreground until Ctrl-C")
    st.add_argument("--dir", required=True, type=Path, help="node directory (created; reused if present)")
    st.add_argument("--manifest", type=Path, help="kube-apiserver manifest to seed (default: kubeadm-style)")
    st.add_argument("--no-rewrite", action="store_true", help="seed the manifest as is (addresses, port)")
    st.add_argument("--linger", type=float, default=2.0)
    st.add_argument("--restart-delay", type=float, default=0.5)
    st.add_argument("--start-delay", type=float, default=1.0)
    st.add_argument("--crash-backoff", type=float, default=1.0)
    st.add_argument("--terminating", type=float, default=0.0,
                    help="seconds a stopped instance keeps its process without serving (a real one: up to 30)")
    st.add_argument("--real", action="store_true",
                    help="a real node: kubeadm init, the real kubelet and control plane (tests/node/realnode.py)")
    args = ap.parse_args(argv)
    if args.real:
        return _real(args.dir)
    manifest = args.manifest.read_bytes() if args.manifest else None
    node = TestNode.start(args.dir, manifest, linger=args.linger, restart_delay=args.restart_delay,
                          start_delay=args.start_delay, crash_backoff=args.crash_backoff,
                          rewrite=not args.no_rewrite)
    if args.terminating:
        node.configure(terminating=args.terminating)
    cur = node.current_instance()
    print(f"""test node up
  ssh target:        {node.target('kadmin')}   (users: {', '.join(USERS)}; kpw sudo password: {SUDO_PASSWORD})
  ssh port:          {node.ssh_port}
  api port:          {node.api_port}   (https://127.0.0.1:{node.api_port}/readyz)
  key:               {node.key_path}
  known_hosts:       {node.known_hosts}
  host key:          {node.host_key_fingerprint}
  manifest (host):   {node.path(node.manifest_path)}
  simulator records: {node.ctl / 'records.jsonl'}
  sshd log:          {node.ctl / 'sshd.log'}
  instance:          {'pid {}, ready'.format(cur['pid']) if cur and cur['ready_at'] else cur}
  try:  ssh -i {node.key_path} -o UserKnownHostsFile={node.known_hosts} -p {node.ssh_port} kadmin@127.0.0.1
Ctrl-C stops the node.""", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
    return 0


def _real(base: Path) -> int:
    from .realnode import RealNode, missing_real_requirements

    reason = missing_real_requirements()
    if reason:
        print(json.dumps({"error": reason}), flush=True)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    node = None
    try:
        node = RealNode.start(base)
        print(json.dumps(node.info()), flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
