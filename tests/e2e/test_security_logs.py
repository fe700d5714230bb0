"""Issue 23, the log-reading side, on a test node from the user's install (`kaudit logs`): Secret data
past the masking (item 2), a crafted event crashing the read (item 3), `--save` into someone else's
directory (item 8), terminal escapes from the log (item 9), odd files beside the log (item 10: a log
path with a space, a stray file that is not a log, a sparse file named like a rotated log).

One node for the module, its audit log at a path with a space; each test adds its events to the live
log (in place: the running instance keeps its file) or files beside it, and takes them away."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kaudit_cli import change, on, ssh_args
from tests.node.node import TestNode

LOG = "/var/log/kubernetes/audit logs/audit.log"
SECRET = "n0de-s3cr3t-VALUE"
B64 = base64.b64encode(SECRET.encode()).decode()
LAST = "kubectl.kubernetes.io/last-applied-configuration"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _event(aid: str, *, ts: str | None = None, user: str = "sec-user", resource: str = "secrets",
           verb: str = "get", sub: str = "", **extra: Any) -> dict[str, Any]:
    ts = ts or _now()
    ref = {"resource": resource, "namespace": "prod", "name": "db", "apiVersion": "v1"}
    if sub:
        ref["subresource"] = sub
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": aid,
            "stage": "ResponseComplete", "requestURI": f"/api/v1/namespaces/prod/{resource}/db", "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
            "userAgent": "kubectl/v1.34.0", "objectRef": ref, "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": ts, "stageTimestamp": ts, **extra}


def _line(ev: dict[str, Any]) -> bytes:
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()


@pytest.fixture(scope="module")
def node(module_node: TestNode) -> TestNode:
    run = change(module_node, "enable", "--profile", "recommended", "--log-path", LOG)
    assert run.code == 0, run.err
    module_node.request("/api/v1/namespaces/default/pods", admin=True)
    module_node.wait_for(lambda: module_node.path(LOG).exists() and module_node.path(LOG).stat().st_size > 0)
    return module_node


@contextlib.contextmanager
def appended(node: TestNode, *events: dict[str, Any]) -> Iterator[None]:
    live = node.path(LOG)
    added = b"".join(_line(e) for e in events)
    with open(live, "ab") as f:
        f.write(added)
    try:
        yield
    finally:
        data = live.read_bytes()
        with open(live, "r+b") as f:  # in place: the running instance keeps its open file
            f.truncate(0)
            f.write(data.replace(added, b""))


@contextlib.contextmanager
def beside(node: TestNode, files: dict[str, bytes | int], log: str = LOG) -> Iterator[list[Path]]:
    """Files in the log's directory (bytes, or an int: a sparse file of that size), removed afterwards."""
    folder = node.path(log).parent
    paths = []
    try:
        for name, content in files.items():
            path = folder / name
            paths.append(path)
            if isinstance(content, int):
                with open(path, "wb") as f:
                    f.truncate(content)
            else:
                path.write_bytes(content)
        yield paths
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- item 2


def test_secret_data_in_annotations_patches_and_tables_is_masked(node: TestNode, tmp_path: Path) -> None:
    applied = json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                          "data": {"password": B64}, "type": "Opaque"})
    secret = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db", "annotations": {LAST: applied}},
              "data": {"password": B64}, "type": "Opaque"}
    events = [
        _event("m-create", verb="create", requestObject=secret, responseObject=secret),
        _event("m-patch", verb="patch", requestObject=[{"op": "replace", "path": "/data/password", "value": B64}]),
        _event("m-table", verb="list", responseObject={
            "kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": [{"cells": ["db", "Opaque", 1, "1d"], "object": {
                "kind": "PartialObjectMetadata", "metadata": {"name": "db", "annotations": {LAST: applied}}}}]}),
    ]
    saved = tmp_path / "saved"
    with appended(node, *events):
        run = on(node, "logs", "--user", "sec-user", "-o", "json", "--bodies", "--save", str(saved))
        assert run.code == 0, run.err
        ids = [json.loads(x)["auditID"] for x in run.out.splitlines()]
        assert ids == ["m-create", "m-patch", "m-table"]
        (file,) = saved.iterdir()
        everything = run.out + run.err + file.read_text()
        assert SECRET not in everything and B64 not in everything
        created = json.loads(run.out.splitlines()[0])
        assert json.loads(created["requestObject"]["metadata"]["annotations"][LAST])["metadata"]["name"] == "db"


# --------------------------------------------------------------------------- item 3


def test_a_crafted_event_is_skipped_and_counted_not_a_crash(node: TestNode) -> None:
    crafted = [_event("c-type", verb="create", requestObject={"data": {"k": B64}, "type": 5}),
               _event("c-user", user="x") | {"user": "a string"},
               _event("c-ref") | {"objectRef": ["secrets"]},
               _event("c-time", ts="9999-12-31T23:59:59-05:00")]
    after = _event("c-after")
    with appended(node, *crafted, after):
        for args in (["-o", "json", "--bodies"], [], ["--summary"], ["--detect"]):
            run = on(node, "logs", "--user", "sec-user", *args)
            assert run.code == 0 and "Traceback" not in run.err, (args, run.err)
            assert SECRET not in run.out and B64 not in run.out
            if not args or "json" in args:
                shown = run.out.splitlines()
                assert len(shown) >= 2 and ("c-after" in shown[-1] or args == []), (args, shown)
            if "json" in args:
                assert [json.loads(x)["auditID"] for x in run.out.splitlines()][-1] == "c-after"
        run = on(node, "logs", "-o", "json")
        assert "skipped 3 " in run.err and "audit.log:" in run.err, run.err


# --------------------------------------------------------------------------- item 8


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's directory needs root to make")
def test_save_into_another_users_directory_is_refused(node: TestNode, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chmod(theirs, 0o777)
    os.chown(theirs, 4242, 4242)
    run = on(node, "logs", "--save", str(theirs))
    assert run.code == 2 and "not to you" in run.err and len(run.err.splitlines()) == 1, run.err
    assert list(theirs.iterdir()) == [] and run.out == ""
    mine = tmp_path / "mine"
    mine.mkdir()
    planted = mine / "node.jsonl"  # any file: kaudit does not write beside another user's files either
    planted.write_text("theirs\n")
    os.chown(planted, 4242, 4242)
    run = on(node, "logs", "--save", str(mine))
    assert run.code == 2 and planted.name in run.err and planted.read_text() == "theirs\n", run.err
    assert planted.stat().st_uid == 4242 and run.out == ""


# --------------------------------------------------------------------------- item 9


def test_escape_sequences_from_the_log_never_reach_the_terminal(node: TestNode) -> None:
    evil = "mallory\x1b]0;pwned\x07\x1b[2J"
    events = [_event(f"e{i}", user=evil, resource="pods", verb="create", sub="exec") for i in range(3)]
    with appended(node, *events):
        for args in (["--summary"], ["--detect"], [], ["--user", evil]):
            run = on(node, "logs", *args)
            assert run.code == 0, (args, run.err)
            assert "\x1b" not in run.out + run.err and "\x07" not in run.out + run.err, (args, run.out)
            assert "mallory" in run.out, (args, run.out)


# --------------------------------------------------------------------------- item 10


def _rotated(stamp: str, *events: dict[str, Any], gz: bool = False) -> tuple[str, bytes]:
    data = b"".join(_line(e) for e in events)
    return f"audit-{stamp}.log" + (".gz" if gz else ""), gzip.compress(data) if gz else data


def test_rotated_files_at_a_path_with_a_space(node: TestNode) -> None:
    files = dict([_rotated("2026-01-01T10-00-00.000", _event("r-gz", ts="2026-01-01T09:00:00.000000Z",
                                                             verb="delete"), gz=True),
                  _rotated("2026-01-02T10-00-00.000", _event("r-plain", ts="2026-01-02T09:00:00.000000Z",
                                                             verb="delete"))])
    with beside(node, files):
        run = on(node, "logs", "--verb", "delete", "-o", "json")
        assert run.code == 0, run.err
        assert [json.loads(x)["auditID"] for x in run.out.splitlines()] == ["r-gz", "r-plain"]


def test_a_stray_file_is_skipped_with_a_warning_and_detect_still_reports(node: TestNode) -> None:
    files = {"audit-2026-01-01T10-00-00.000.log": b"not json at all\n",
             "audit-backup.log": b"\x00\x01binary\n" + _line(_event("hidden", verb="delete"))}
    exec_event = _event("x-exec", resource="pods", verb="create", sub="exec", user="intruder")
    with beside(node, files) as paths, appended(node, exec_event):
        run = on(node, "logs", "--detect", "pod-exec", "-o", "json")
        assert run.code == 0, run.err
        doc = run.json()
        assert [f["name"] for f in doc["findings"]] == ["pod-exec"]
        assert all(str(p.name) in run.err for p in paths) and "not an audit log" in run.err, run.err
        assert len(doc["read"]["badFiles"]) == 2
        text = on(node, "logs", "--verb", "create")  # the prefilter drops the stray files' lines on the node
        assert text.code == 0 and "intruder" in text.out, text.err


def test_a_sparse_file_named_like_a_rotated_log_costs_little_memory(node_factory: Any) -> None:
    """300 MB of holes (NULs, no newline), and 40 MB of text without a newline before an event: neither
    the node's grep nor kaudit holds either as one line; the event after the long line is read. (A node
    of its own, its log at the default path: at the module's path the old script never read the files.)"""
    node = node_factory()
    assert change(node, "enable", "--profile", "recommended").code == 0
    log = "/var/log/kubernetes/audit/audit.log"
    node.request("/api/v1/namespaces/default/pods", admin=True)
    node.wait_for(lambda: node.path(log).exists() and node.path(log).stat().st_size > 0)
    files: dict[str, bytes | int] = {
        "audit-2026-01-03T10-00-00.000.log": 300 << 20,
        "audit-2026-01-04T10-00-00.000.log": b'{"kind":"Event","x":"' + b"a" * (40 << 20) + b'"}\n'
        + _line(_event("after-long", ts="2026-01-04T09:00:00.000000Z", verb="delete"))}
    probe = ("import resource, subprocess, sys\n"
             "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.stderr.write(proc.stderr); sys.stdout.write(proc.stdout)")
    from tests.userinstall import kaudit_argv, user_env

    with beside(node, files, log) as (_, long):
        argv = [*kaudit_argv(), "logs", node.target(), *ssh_args(node), "-o", "json"]  # no prefilter
        proc = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=300,
                              env=user_env(None), check=False)
        first, _, rest = proc.stdout.partition("\n")
        code, kib = (int(x) for x in first.split())
        assert code == 0, proc.stderr
        assert "after-long" in rest and f"{long.name}:1" in proc.stderr and "skipped 1 " in proc.stderr, proc.stderr
        assert "not an audit log" not in proc.stderr  # the NULs were dropped on the node: an empty file
        assert kib < 200 << 10, f"kaudit used {kib} KiB"
        # the node side alone, as kaudit runs it there, with a prefilter (grep) on
        from installer.auditlog.reader import MAX_LINE
        from installer.scripts.load import LOGS_HISTORY

        host_log = str(node.path(log))
        node_probe = subprocess.run([sys.executable, "-c", probe, "sh", "-c", LOGS_HISTORY.text, "sh", host_log, "", "",
                                     str(MAX_LINE), '"verb":"delete"'], capture_output=True, text=True,
                                    timeout=300, check=False)
        code, kib = (int(x) for x in node_probe.stdout.partition("\n")[0].split())
        assert code == 0 and kib < 32 << 10, f"the node-side script used {kib} KiB"
