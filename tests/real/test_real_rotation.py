"""Rotation on the real API server: --log-maxsize 1 and traffic until it rotates; `kaudit logs` reads across
the rotated files with nothing lost or doubled; `kaudit logs --follow` survives a rotation."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import changed
from tests.userinstall import kaudit_argv, user_env

NS = "kaudit-real-rot"


def _big_patch(node: RealNode, ids: dict[str, kube.Identity], agent: str) -> int:
    body = {"metadata": {"annotations": {"kaudit.test/blob": secrets.token_hex(100_000)}}}
    status, _ = kube.request(node, ids["admin"], "PATCH", f"/api/v1/namespaces/{NS}", body, agent=agent,
                             content_type="application/merge-patch+json")
    return status


def _files(node: RealNode) -> list[Path]:
    assert node.node is not None
    return sorted(node.node.path("/var/log/kubernetes/audit").glob("audit*.log"))


def _lines(files: list[Path]) -> int:
    return sum(1 for f in files for line in f.read_text().splitlines() if line.strip())


def test_rotation_and_kaudit_logs_across_rotated_files(fresh_node: RealNode, ids: dict[str, kube.Identity]) -> None:
    node = fresh_node
    assert node.node is not None
    changed(node, "enable", "--profile", "all-bodies", "--log-maxsize", "1", "--log-maxbackup", "20")
    status, _ = kube.request(node, ids["admin"], "POST", "/api/v1/namespaces",
                             {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    assert status == 201
    target = node.node.target("kadmin")
    ssh = ["-i", str(node.node.key_path), "--known-hosts", str(node.node.known_hosts)]
    follow = subprocess.Popen([*kaudit_argv(), "logs", target, *ssh, "--follow", "-o", "json", "--user",
                               "kubernetes-admin"], env=user_env(None), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        time.sleep(3)  # --follow is reading the live file
        i = 0
        while len(_files(node)) < 3 and i < 60:  # two rotations: the live file and two rotated ones
            assert _big_patch(node, ids, f"kaudit-real/rot/{i}") == 200
            i += 1
        assert len(_files(node)) >= 3, f"no rotation after {i} requests of ~200 kB events: {_files(node)}"
        for j in range(3):  # after the rotations: --follow must still see these
            assert _big_patch(node, ids, f"kaudit-real/rot-after/{j}") == 200
        time.sleep(3)
    finally:
        follow.terminate()
        followed, ferr = follow.communicate(timeout=30)
    files = _files(node)
    on_disk = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    # --include-kaudit: compared with the raw files on disk, kaudit's own probes included
    run = subprocess.run([*kaudit_argv(), "logs", target, *ssh, "-o", "json", "--include-kaudit"],
                         env=user_env(None),
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    read = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    keys = [(e["auditID"], e["stage"]) for e in read]
    assert len(keys) == len(set(keys)), "kaudit logs printed an event twice"
    disk_keys = {(e["auditID"], e["stage"]) for e in on_disk}
    # the live server keeps writing (controllers, the kubelet): everything on disk when we listed it is read
    assert disk_keys <= set(keys), f"kaudit logs lost {len(disk_keys - set(keys))} of {len(disk_keys)} events"
    ours = [e for e in read if e.get("userAgent", "").startswith("kaudit-real/rot")]
    assert len({e["userAgent"] for e in ours}) == i + 3
    got = {json.loads(line).get("userAgent") for line in followed.splitlines() if line.strip()}
    missing = {f"kaudit-real/rot-after/{j}" for j in range(3)} - got
    assert not missing, f"--follow lost events after the rotation: {missing}; stderr: {ferr[-2000:]}"
    kube.TIMELINES.append({"what": "rotation", "requests": i, "files": len(files), "events_on_disk": len(on_disk)})
