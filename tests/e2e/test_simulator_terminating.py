"""The simulator's `terminating` knob, from the real node (tests/node/README.md, "Where the simulator and the
real node disagree"): after the kill the real API server stops listening at once, but its process stays in
the process table until the pod's grace period ends; only then does the new instance start."""

from __future__ import annotations

import os
import socket
import time

from tests.node import TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
ANCHOR = "    - --tls-private-key-file=/etc/kubernetes/pki/apiserver.key\n"


def _listening(node: TestNode) -> bool:
    try:
        with socket.create_connection((node.host, node.api_port), timeout=0.2):
            return True
    except OSError:
        return False


def test_terminating_instance_keeps_its_process_but_not_its_port(node_factory) -> None:  # type: ignore[no-untyped-def]
    node: TestNode = node_factory(linger=0.0, restart_delay=0.1, start_delay=0.1)
    node.configure(terminating=2.0)
    old = node.wait_ready(10)
    manifest = node.path(MANIFEST)
    tmp = manifest.with_name(".edit")
    tmp.write_text(manifest.read_text().replace(ANCHOR, ANCHOR + "    - --v=2\n"))
    t = time.time()
    os.replace(tmp, manifest)
    node.wait_for(lambda: any(r["event"] == "terminating" for r in node.sim_log()), 5, what="terminating")
    node.wait_for(lambda: not _listening(node), 1.5, what="the terminating instance to stop listening")
    assert node.run(f"test -d /proc/{old['pid']}", check=False).returncode == 0, "its process is gone too early"
    assert node.current_instance()["pid"] == old["pid"]  # type: ignore[index]  # no new instance yet
    new = node.wait_ready(10, after=t)
    stopped = next(i for i in node.instances() if i["seq"] == old["seq"])["stopped_at"]
    assert stopped - t >= 1.9 and new["started_at"] >= stopped
