"""The real restart, measured: a manifest write -> the kubelet notices -> the old API server is gone -> the
new one started -> ready; by hand (an atomic rename, as an operator's editor would) and by `kaudit enable`
(plus kaudit's own confirmation). The numbers are printed at the end of the session (and in README.md)."""

from __future__ import annotations

import os
import threading
import time

from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import change


def test_restart_timeline_by_hand_and_by_kaudit(fresh_node: RealNode) -> None:
    node = fresh_node
    assert node.node is not None
    manifest = node.node.path(kube.MANIFEST)
    original = manifest.read_bytes()
    edited = original.replace(b"    - --allow-privileged=true\n",
                              b"    - --allow-privileged=true\n    - --profiling=false\n")
    assert edited != original

    old = {p["pid"] for p in kube.apiservers(node)}
    tmp = manifest.parent / ".kaudit-real-edit"
    tmp.write_bytes(edited)
    write = time.time()
    os.replace(tmp, manifest)
    by_hand = kube.timeline(node, write, kube.observe_restart(node, old), "by hand")
    assert by_hand["noticed"] is not None and by_hand["noticed"] < 5, by_hand
    assert by_hand["old_gone"] <= by_hand["started"] + 0.5 <= by_hand["ready"] + 0.5, by_hand

    # kaudit enable on the edited (still kubeadm-shaped) manifest, observed from outside while it runs
    old = {p["pid"] for p in kube.apiservers(node)}
    result: dict[str, object] = {}
    t = threading.Thread(target=lambda: result.update(run=change(node, "enable", "--profile", "minimal")))
    t.start()
    seen = kube.observe_restart(node, old)
    t.join()
    done = time.time()
    run = result["run"]
    assert run.code == 0, (run.out, run.err)  # type: ignore[attr-defined]
    write = manifest.stat().st_mtime
    by_kaudit = kube.timeline(node, write, seen, "kaudit enable", confirmed=done)
    assert by_kaudit["confirmed"] >= by_kaudit["ready"] - 0.5, by_kaudit
