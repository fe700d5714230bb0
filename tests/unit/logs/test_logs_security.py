"""Issue 23, the log-reading side, without a node: Secret data past the masking (item 2), one crafted
event crashing `kaudit logs` (item 3), `--save` into someone else's directory (item 8), terminal escapes
from the log (item 9), odd files on the node (item 10: the node-side script runs here, in a local `sh`).

`kaudit logs` is driven whole (`logs_command`), its node replaced by a local one: the real node-side
script (`load.LOGS_HISTORY.text`) reads files in a temporary directory through a local transport."""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from installer.auditlog import masking, node
from installer.auditlog.reader import MAX_LINE, lines_of_chunks
from installer.errors import KauditError, printable
from installer.logs import logs, logs_node
from installer.logs.filters import Filters
from installer.scripts import load
from installer.transport.local import LocalTransport

SECRET = "s3cr3t-VALUE-never-shown"
B64 = base64.b64encode(SECRET.encode()).decode()
TS = "2026-05-01T10:00:00.000000Z"
LAST = masking.LAST_APPLIED


def event(aid: str = "a1", *, resource: str = "secrets", verb: str = "get", ts: str = TS, **over: Any
          ) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": aid,
        "stage": "ResponseComplete", "requestURI": f"/api/v1/namespaces/prod/{resource}/db", "verb": verb,
        "user": {"username": "alice", "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
        "userAgent": "kubectl/v1.34.1", "objectRef": {"resource": resource, "namespace": "prod", "name": "db",
                                                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200}, "requestReceivedTimestamp": ts, "stageTimestamp": ts,
    }
    doc.update(over)
    return doc


def line(doc: dict[str, Any]) -> bytes:
    text = json.dumps(doc, separators=(",", ":"))
    deep = 3000
    text = text.replace('"@DEEP@"', '{"a":[' * deep + json.dumps(SECRET) + "]}" * deep)
    return (text + "\n").encode()


def secret_obj(**meta: Any) -> dict[str, Any]:
    return {"kind": "Secret", "apiVersion": "v1", "type": "Opaque", "metadata": {"name": "db", **meta},
            "data": {"password": B64}, "stringData": {"plain": SECRET}}


def applied() -> str:
    """What `kubectl apply` writes in the annotation: the whole Secret, data and all."""
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"},
                       "data": {"password": B64}, "type": "Opaque"})


def with_annotation() -> dict[str, Any]:
    return secret_obj(annotations={LAST: applied()})


# --------------------------------------------------------------------------- item 2: masking


BODIES: dict[str, dict[str, Any]] = {
    "create: last-applied": event(verb="create", requestObject=with_annotation(), responseObject=with_annotation()),
    "get: last-applied": event(responseObject=with_annotation()),
    "merge patch with last-applied": event(verb="patch", requestObject={
        "metadata": {"annotations": {LAST: applied()}}, "data": {"password": B64}}),
    "JSON patch on a secret": event(verb="patch", requestObject=[
        {"op": "replace", "path": "/data/password", "value": B64},
        {"op": "add", "path": "/stringData", "value": {"plain": SECRET}},
        {"op": "add", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
         "value": applied()}]),
    "Table of secrets (metadata rows)": event(verb="list", responseObject={
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "columnDefinitions": [{"name": "Name", "type": "string"}],
        "rows": [{"cells": ["db", "Opaque", 1, "5d"], "object": {
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "db", "annotations": {LAST: applied()}}}}]}),
    "Table of secrets (object rows)": event(verb="list", responseObject={
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": [{"cells": ["db"], "object": with_annotation()}]}),
    "SecretList items without kind": event(verb="list", responseObject={
        "kind": "SecretList", "apiVersion": "v1", "items": [{"metadata": {"name": "db"}, "data": {"k": B64},
                                                             "type": "Opaque"}]}),
    "a Secret in a List (another resource)": event(resource="configmaps", verb="list", responseObject={
        "kind": "List", "apiVersion": "v1", "items": [secret_obj()]}),
    "a watch event's Secret": event(resource="events", verb="watch", responseObject={
        "type": "ADDED", "object": with_annotation()}),
    "a Secret embedded in a ConfigMap's annotation": event(resource="configmaps", responseObject={
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "annotations": {LAST: applied()}},
        "data": {"color": "blue"}}),
    "no objectRef, a secrets URI": {k: v for k, v in event(verb="patch", requestObject={
        "stringData": {"plain": SECRET}}).items() if k != "objectRef"},
    "a YAML apply patch (a string body)": event(verb="patch", requestObject=f"stringData:\n  plain: {SECRET}\n"),
    "a non-string type (item 3's body)": event(verb="create", requestObject={"data": {"k": B64}, "type": 5}),
    "TokenReview": event(resource="tokenreviews", verb="create", requestObject={
        "kind": "TokenReview", "spec": {"token": SECRET}}),
    "serviceaccounts/token": event(resource="serviceaccounts", verb="create", responseObject={
        "kind": "TokenRequest", "status": {"token": SECRET, "expirationTimestamp": TS}}),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_secret_data_is_masked_wherever_it_sits(case: str) -> None:
    out = logs.json_line("cp-1", line(BODIES[case]), bodies=True).decode()
    assert SECRET not in out and B64 not in out, out
    assert json.loads(out)["auditID"] == "a1"


def test_masking_keeps_what_is_not_secret() -> None:
    out = json.loads(logs.json_line("cp-1", line(BODIES["create: last-applied"]), bodies=True))
    body = out["requestObject"]
    assert body["data"] == {"password": masking.MASK} and body["metadata"]["name"] == "db"
    embedded = json.loads(body["metadata"]["annotations"][LAST])
    assert embedded["data"] == {"password": masking.MASK} and embedded["metadata"]["name"] == "db"
    cm = json.loads(logs.json_line("cp-1", line(BODIES["a Secret embedded in a ConfigMap's annotation"]),
                                   bodies=True))
    assert cm["responseObject"]["data"] == {"color": "blue"}  # a ConfigMap's data is not a Secret's
    patch = json.loads(logs.json_line("cp-1", line(BODIES["JSON patch on a secret"]), bodies=True))
    assert [op["path"] for op in patch["requestObject"]] == ["/data/password", "/stringData",
                                                              "/metadata/annotations/kubectl.kubernetes.io~1"
                                                              "last-applied-configuration"]
    table = json.loads(logs.json_line("cp-1", line(BODIES["Table of secrets (metadata rows)"]), bodies=True))
    assert table["responseObject"]["rows"][0]["object"]["metadata"]["name"] == "db"


# --------------------------------------------------------------------------- a local node


class _Sh(LocalTransport):
    """The node-side scripts, run by the local `sh` as this user (no sudo)."""

    def __init__(self) -> None:
        super().__init__()
        self._sudo = False


class _Node:
    name = "cp-1"

    def __init__(self) -> None:
        self.transport = _Sh()

    def close(self) -> None:
        pass


def run_logs(monkeypatch: Any, log_path: Path, *args: str, uid: int | None = None) -> tuple[int, str, str]:
    """`kaudit logs cp-1 ARGS` with the node's audit log at `log_path` (its rotated files beside it):
    (exit code, stdout, stderr)."""
    monkeypatch.setattr(node, "open_logs", lambda targets, ssh, with_policy=False: node.OpenedLogs(
        logs=[node.NodeLog(_Node(), str(log_path), None)]))
    opts = list(args)

    def take(flag: str) -> str | None:
        if flag in opts:
            i = opts.index(flag)
            value = opts[i + 1]
            del opts[i:i + 2]
            return value
        return None

    output = take("-o") or "text"
    save = take("--save")
    detect = [] if "--detect" in opts else None
    req = logs.Request(targets=["cp-1"], filters=Filters.build(), output=output, summary="--summary" in opts,
                       detect=detect, bodies="--bodies" in opts, save=save, utc=True)
    out, err = io.StringIO(), io.StringIO()
    try:
        code = logs.logs_command(req, lambda: None, out, err)
    except KauditError as exc:  # as the command prints it
        return exc.exit_code, out.getvalue(), f"kaudit: {exc}\n" + err.getvalue()
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- item 3: malformed events


def _with(**over: Any) -> dict[str, Any]:
    return event("bad", **over)


MALFORMED: dict[str, dict[str, Any]] = {
    "data and a non-string type": _with(verb="create", requestObject={"data": {"k": B64}, "type": 5}),
    "a Secret's data a string": _with(responseObject={"kind": "Secret", "data": B64}),
    "a SecretList's items a number": _with(verb="list", responseObject={"kind": "SecretList", "items": 5}),
    "kind a number": _with(responseObject={"kind": 5, "data": {"k": B64}, "type": "Opaque"}),
    "annotations a list": _with(responseObject={"kind": "Secret", "metadata": {"annotations": [1]}}),
    "last-applied a number": _with(responseObject={"kind": "Secret", "metadata": {"annotations": {LAST: 5}}}),
    "last-applied not JSON": _with(responseObject={"kind": "Secret", "metadata": {"annotations": {LAST: SECRET}}}),
    "metadata a number": _with(responseObject={"kind": "Secret", "metadata": 5}),
    "a body a number": _with(requestObject=5),
    "a body a list of numbers": _with(verb="patch", requestObject=[1, 2]),
    "a deep body": _with(responseObject="@DEEP@"),
    "objectRef a string": _with(objectRef="secrets"),
    "objectRef a list": _with(objectRef=[{"resource": "secrets"}]),
    "objectRef.resource a number": _with(objectRef={"resource": 5}),
    "user a string": _with(user="alice"),
    "user a list": _with(user=["alice"]),
    "groups a string": _with(user={"username": "alice", "groups": "system:masters"}),
    "username a number": _with(user={"username": 5}),
    "verb a number": _with(verb=5),
    "stage a list": _with(stage=[]),
    "stageTimestamp a number": _with(stageTimestamp=5),
    "stageTimestamp not a time": _with(stageTimestamp="yesterday", requestReceivedTimestamp="yesterday"),
    "a time past year 9999 in UTC": _with(stageTimestamp="9999-12-31T23:59:59-05:00"),
    "responseStatus a string": _with(responseStatus="ok"),
    "code a string": _with(responseStatus={"code": "200"}),
    "code too big": _with(responseStatus={"code": 10 ** 30}),
    "sourceIPs a string": _with(sourceIPs="10.0.0.1"),
    "userAgent a number": _with(userAgent=5),
    "annotations of the event a list": _with(annotations=[1]),
    "requestURI a number": _with(requestURI=5),
}
MODES = [(), ("-o", "json"), ("-o", "json", "--bodies"), ("--summary",), ("--summary", "-o", "json"),
         ("--detect",), ("--detect", "-o", "json")]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_event_is_skipped_and_counted_not_a_crash(case: str, monkeypatch: Any, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    bad = MALFORMED[case]
    log.write_bytes(line(event("first")) + line(bad) + line(event("last")))
    for mode in MODES:
        code, out, err = run_logs(monkeypatch, log, *mode)
        assert code == 0 and "Traceback" not in err, (mode, err)
        assert SECRET not in out + err and B64 not in out + err, (mode, out)
        if "--summary" in mode or "--detect" in mode:
            if "json" in mode:
                read = json.loads(out)["read"]
                assert f"cp-1:{log}:2" in read["badWhere"] or (read["events"] == 3 and not read["badLines"]), read
            continue
        shown = out.splitlines()
        if "json" in mode:
            ids = [json.loads(x)["auditID"] for x in shown]
            assert ids in (["first", "bad", "last"], ["first", "last"]), (mode, ids)
        else:
            assert len(shown) in (2, 3)
        if len(shown) == 2:  # skipped: counted, with its file:line
            assert f"{log}:2" in err and "skipped 1 " in err, (mode, err)


def test_a_file_of_one_malformed_event_is_a_bad_line_not_a_bad_file(monkeypatch: Any, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(line(MALFORMED["user a string"]))
    code, out, err = run_logs(monkeypatch, log, "-o", "json")
    assert code == 0 and out == "" and f"{log}:1" in err and "not an audit log" not in err


# --------------------------------------------------------------------------- item 8: --save


def test_save_refuses_a_directory_of_another_user(monkeypatch: Any, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    os.chmod(theirs, 0o777)
    other = os.geteuid() + 4242
    os.chown(theirs, other, -1) if os.geteuid() == 0 else None
    log = tmp_path / "audit.log"
    log.write_bytes(line(event("first")))
    if os.geteuid() == 0:
        code, out, err = run_logs(monkeypatch, log, "--save", str(theirs))
    else:  # the directory is ours: pretend to be someone else
        monkeypatch.setattr(os, "geteuid", lambda: other)
        code, out, err = run_logs(monkeypatch, log, "--save", str(theirs))
    assert code == 2 and "not to you" in err and len(err.splitlines()) == 1, err
    assert list(theirs.iterdir()) == [] and out == ""  # nothing written, not even to stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user's needs root to make")
def test_save_refuses_a_file_another_user_put_there(monkeypatch: Any, tmp_path: Path) -> None:
    """root's --save into a directory of root's, where another user had made the node's file (or a link)
    before it was tightened: refused, the file untouched, nothing written."""
    mine = tmp_path / "mine"
    mine.mkdir()
    planted = mine / "cp-1.jsonl"
    planted.write_text("theirs\n")
    os.chown(planted, 4242, 4242)
    log = tmp_path / "audit.log"
    log.write_bytes(line(event("first")))
    code, out, err = run_logs(monkeypatch, log, "--save", str(mine))
    assert code == 2 and "cp-1.jsonl" in err and "not to you" in err and len(err.splitlines()) == 1, err
    assert planted.read_text() == "theirs\n" and planted.stat().st_uid == 4242 and out == ""


def test_save_creates_its_files_exclusively(monkeypatch: Any, tmp_path: Path) -> None:
    """A link where the node's file goes (made by us, the only one who can write there): not followed."""
    mine = tmp_path / "mine"
    mine.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    log = tmp_path / "audit.log"
    log.write_bytes(line(event("first")))
    os.symlink(target, mine / "cp-1.jsonl")
    code, _, err = run_logs(monkeypatch, log, "--save", str(mine))
    assert code == 2 and "cp-1.jsonl" in err and target.read_text() == "keep\n", err
    os.unlink(mine / "cp-1.jsonl")
    code, _, err = run_logs(monkeypatch, log, "--save", str(mine))
    assert code == 0, err
    (saved,) = mine.iterdir()
    assert json.loads(saved.read_text())["auditID"] == "first" and oct(saved.stat().st_mode & 0o777) == "0o600"
    code, _, err = run_logs(monkeypatch, log, "--save", str(mine))  # a second run replaces its own file
    assert code == 0 and len(saved.read_text().splitlines()) == 1, err


# --------------------------------------------------------------------------- item 9: terminal escapes


ESC_USER = "mallory\x1b]0;pwned\x07\x1b[2J\u202e"


def test_summary_and_detect_print_no_terminal_controls(monkeypatch: Any, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    evs = [event(f"e{i}", resource="pods", verb="create", user={"username": ESC_USER, "groups": ["g\x1b[1m"]},
                 objectRef={"resource": "pods", "subresource": "exec", "namespace": "prod\x1b[31m", "name": "p"},
                 responseStatus={"code": 500}, sourceIPs=["10.0.0.1\x1b[2J"]) for i in range(3)]
    log.write_bytes(b"".join(line(e) for e in evs))
    for mode in [("--summary",), ("--detect",), ()]:
        code, out, err = run_logs(monkeypatch, log, *mode)
        assert code == 0, err
        assert "\x1b" not in out + err and "\x07" not in out + err and "\u202e" not in out, (mode, out)
        assert "mallory" in out, (mode, out)
    code, out, _ = run_logs(monkeypatch, log, "--summary", "-o", "json")
    assert ESC_USER in json.loads(out)["summary"]["users"][0]["name"]  # JSON keeps the value, escaped


def test_a_file_name_from_the_node_is_printed_clean(monkeypatch: Any, tmp_path: Path) -> None:
    folder = tmp_path / "logs\x1b[2J"
    folder.mkdir()
    log = folder / "audit.log"
    log.write_bytes(line(event("first")) + b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","cut')
    code, _, err = run_logs(monkeypatch, log)
    assert code == 0 and "skipped 1 " in err and "\x1b" not in err, err


def test_errors_carry_no_terminal_controls() -> None:
    from installer.errors import NodeError
    from installer.targets.kube import kubectl_failure

    exc = kubectl_failure("prod", 1, "error: the server said \x1b]0;owned\x07\x1b[2J no\r\n")
    assert "\x1b" not in str(exc) and "\x07" not in str(exc) and "\r" not in str(exc) and "no" in str(exc)
    assert str(NodeError("kube-apiserver said: E0101 \x1b[2Jx", node="n\x1b[1m")) == \
        "n?[1m: kube-apiserver said: E0101 ?[2Jx"
    assert printable("a\tb\nc\x1b") == "a?b?c?" and printable("a\tb\nc\x1b", newlines=True) == "a\tb\nc?"


def test_api_server_log_lines_after_a_failure_are_printed_clean(monkeypatch: Any) -> None:
    """What `enable` prints after a timeout: the API server's last log lines (read from the node)."""
    from types import SimpleNamespace

    import typer

    import installer.change.rollout as rollout
    from installer.change.data import NodeResult
    from installer.commands import changing

    result = NodeResult(
        node="cp-1", cluster="c", exit_code=1, action="failed-restored",
        message="no healthy kube-apiserver (said: \x1b[2J)",
        notes=["note \x1b]0;x\x07"], verify={"verified": False, "reason": "r\x1b[1m"}, ok=False,
        log_lines=["E0101 bad flag \x1b]0;pwned\x07\x1b[2J", "F0101 \x9b2J"])
    monkeypatch.setattr(rollout, "run_rollout", lambda targets, job, parallel: [result])
    echoed: list[str] = []
    monkeypatch.setattr(typer, "echo", lambda text="", **kw: echoed.append(str(text)))
    monkeypatch.setattr(typer, "secho", lambda text="", **kw: echoed.append(str(text)))
    flags = SimpleNamespace(output="text", dry_run=False, timeout=1.0, guard_grace=1.0, break_lock=False, yes=True,
                            parallel=1, quiet=False, conn=SimpleNamespace(ssh_options=lambda: None))
    with pytest.raises(typer.Exit):
        changing.run(flags, ["cp-1"], None, None)  # type: ignore[arg-type]
    text = "\n".join(echoed)
    assert "kube-apiserver: E0101 bad flag" in text and "no healthy kube-apiserver" in text, text
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text, text


# --------------------------------------------------------------------------- item 10: odd files


def rotated(folder: Path, stamp: str, *docs: dict[str, Any], gz: bool = False) -> Path:
    path = folder / (f"audit-{stamp}.log" + (".gz" if gz else ""))
    data = b"".join(line(d) for d in docs)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_a_log_path_with_a_space_reads_its_rotated_files(monkeypatch: Any, tmp_path: Path) -> None:
    folder = tmp_path / "audit logs"
    folder.mkdir()
    rotated(folder, "2026-01-01T10-00-00.000", event("old-gz", ts="2026-01-01T09:00:00.000000Z"), gz=True)
    rotated(folder, "2026-01-02T10-00-00.000", event("old-plain", ts="2026-01-02T09:00:00.000000Z"))
    log = folder / "audit.log"
    log.write_bytes(line(event("live")))
    code, out, err = run_logs(monkeypatch, log, "-o", "json")
    assert code == 0, err
    assert [json.loads(x)["auditID"] for x in out.splitlines()] == ["old-gz", "old-plain", "live"]


def test_a_file_that_is_not_a_log_is_skipped_with_a_warning(monkeypatch: Any, tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    rotated(folder, "2026-01-01T10-00-00.000", event("old", ts="2026-01-01T09:00:00.000000Z"))
    stray = folder / "audit-notes.log"
    stray.write_text("this is not JSON\n" + line(event("hidden")).decode())
    stray_gz = folder / "audit-2026-01-02T10-00-00.000.log.gz"
    stray_gz.write_bytes(gzip.compress(b"PK\x03\x04 not a log either\n"))
    log = folder / "audit.log"
    log.write_bytes(line(event("live", resource="pods", verb="create",
                               objectRef={"resource": "pods", "subresource": "exec", "namespace": "p"})))
    code, out, err = run_logs(monkeypatch, log, "-o", "json")
    assert code == 0, err
    assert [json.loads(x)["auditID"] for x in out.splitlines()] == ["old", "live"]
    assert f"skipped cp-1:{stray}: not an audit log" in err and str(stray_gz) in err, err
    code, out, err = run_logs(monkeypatch, log, "--detect", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["findings"] and len(doc["read"]["badFiles"]) == 2, err


def test_a_live_log_that_is_not_a_log_is_exit_2_after_the_rest(monkeypatch: Any, tmp_path: Path) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    rotated(folder, "2026-01-01T10-00-00.000", event("old", ts="2026-01-01T09:00:00.000000Z"))
    log = folder / "audit.log"
    log.write_bytes(b'2017-03-21T03:57:09.106841886-04:00 AUDIT: id="x" ip="1.2.3.4" method="GET" user="admin"\n')
    code, out, err = run_logs(monkeypatch, log, "-o", "json")
    assert code == 2 and [json.loads(x)["auditID"] for x in out.splitlines()] == ["old"]
    assert f"skipped cp-1:{log}: this audit log is in the legacy format" in err, err


def test_a_sparse_file_and_a_huge_line_cost_bounded_memory(monkeypatch: Any, tmp_path: Path) -> None:
    """A 64 MiB hole named like a rotated log, and a 20 MiB line without a newline: neither is read as one
    line (the node cuts lines at MAX_LINE and drops NULs), the rest is read."""
    import subprocess
    import sys

    folder = tmp_path / "audit"
    folder.mkdir()
    sparse = folder / "audit-2026-01-01T10-00-00.000.log"
    with open(sparse, "wb") as f:
        f.truncate(64 << 20)
    huge = folder / "audit-2026-01-02T10-00-00.000.log"
    huge.write_bytes(line(event("before", ts="2026-01-02T09:00:00.000000Z")) + b'{"kind":"Event","x":"'
                     + b"a" * (20 << 20) + b'"}\n' + line(event("after", ts="2026-01-02T09:30:00.000000Z")))
    log = folder / "audit.log"
    log.write_bytes(line(event("live")))
    code, out, err = run_logs(monkeypatch, log, "-o", "json")
    assert code == 0, err
    assert [json.loads(x)["auditID"] for x in out.splitlines()] == ["before", "after", "live"]
    assert f"cp-1:{huge}:2" in err, err
    # the node side's biggest process (grep, cut, gzip, ...), without and with a prefilter: far below the
    # 20 MiB line
    for groups in ([], ["Event"]):
        probe = ("import resource, subprocess, sys\n"
                 "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        kib = subprocess.run([sys.executable, "-c", probe, "sh", "-c", load.LOGS_HISTORY.text, "sh", str(log), "", "",
                              str(MAX_LINE), *groups], capture_output=True, text=True, check=True).stdout
        assert int(kib) < 16 << 10, (groups, kib)


def test_lines_are_bounded_locally() -> None:
    chunks = [b'{"a":1}\n', b"x" * 10, b"y" * 10, b"z\n", b'{"b":2}\n{"c"', b":3}"]
    assert list(lines_of_chunks(chunks, max_line=12)) == [b'{"a":1}\n', b"x" * 10 + b"yy\n", b'{"b":2}\n',
                                                          b'{"c":3}']
    assert list(lines_of_chunks([b"a" * 30 + b"\nok\n"], max_line=12)) == [b"a" * 12 + b"\n", b"ok\n"]



def test_status_and_rollback_print_the_nodes_text_clean(monkeypatch: Any) -> None:
    """item 9 beyond logs: what `status` renders (journal, flags, paths) and `rollback`'s list of backups
    (records read from the node) reach the terminal without control characters."""
    from types import SimpleNamespace

    import typer
    from typer.testing import CliRunner

    import installer.change.status as status_mod
    import installer.change.status_text as status_text
    import installer.targets.connect as connect
    from installer.commands import rollback, status

    evil = "journal: op \x1b]0;owned\x07\x1b[2J done"
    monkeypatch.setattr(status_mod, "run_status", lambda targets, ssh: [SimpleNamespace(ok=True)])
    monkeypatch.setattr(status_text, "render_text", lambda r: f"cp-1:\n  {evil}")

    def visit(targets: Any, ssh: Any, read: Any, failed: Any) -> list[dict[str, object]]:
        return [{"node": "cp-1", "ok": True, "backups": [{"id": "b1", "summary": evil}]},
                failed("cp-2\x1b[1m", None, f"cannot read {evil}")]

    monkeypatch.setattr(connect, "visit_nodes", visit)
    for module, args in ((status, ["status", "cp-1"]), (rollback, ["backups", "cp-1"])):
        app = typer.Typer()

        @app.callback()
        def _root() -> None:
            """kaudit"""

        module.register(app)
        result = CliRunner().invoke(app, args)
        assert "journal: op" in result.output, (args, result.output)
        assert "\x1b" not in result.output and "\x07" not in result.output, (args, result.output)


def test_simulate_text_prints_the_logs_names_clean(tmp_path: Path) -> None:
    """`kaudit simulate -o text` shows the top users a candidate would stop writing, from the log."""
    import typer
    from typer.testing import CliRunner

    from installer.commands import simulate as simulate_cmd

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """kaudit"""

    simulate_cmd.register(app)
    log = tmp_path / "audit.log"
    evs = [event(f"s{i}", resource="pods", verb="list", user={"username": ESC_USER, "groups": ["system:authenticated"]},
                 ts=f"2026-05-01T1{i % 3}:00:00.000000Z", level="Metadata") for i in range(6)]
    log.write_bytes(b"".join(line(e) for e in evs) + b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","cut\x1b[2J')
    drop = tmp_path / "drop.yaml"  # a candidate that stops writing everything: its top users are shown
    drop.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n")
    result = CliRunner().invoke(app, ["simulate", str(log), "--policy-file", str(drop)])
    assert result.exit_code == 0, result.output
    assert "mallory" in result.stdout and "\x1b" not in result.stdout and "\x07" not in result.stdout, result.stdout


def test_follow_skips_malformed_events_too(monkeypatch: Any) -> None:
    """--follow reads lines as they come: every malformed shape is skipped and counted there as well."""
    lines = [line(event("first")).decode()] + [line(MALFORMED[k]).decode() for k in sorted(MALFORMED)] \
        + [line(event("last")).decode()]

    class Session:
        def readline(self) -> str:
            return lines.pop(0).rstrip("\n") if lines else ""

        def close(self) -> None:
            pass

    monkeypatch.setattr(logs_node, "follow_session", lambda log, opened: Session())
    opened = node.OpenedLogs(logs=[node.NodeLog(_Node(), "/nonexistent/audit.log", None)])
    for output, bodies in (("json", True), ("text", False)):
        lines[:] = [line(event("first")).decode()] + [line(MALFORMED[k]).decode() for k in sorted(MALFORMED)] \
            + [line(event("last")).decode()]
        out, err = io.StringIO(), io.StringIO()
        req = logs.Request(targets=["cp-1"], filters=Filters.build(), output=output, follow=True, bodies=bodies)
        code = logs.follow(opened, req, out, err)
        assert code == 2 and "dropped out" in err.getvalue()  # the end of the fake stream: the node is gone
        shown = out.getvalue().splitlines()
        assert len(shown) >= 2 and "malformed line(s)" in err.getvalue(), err.getvalue()
        assert SECRET not in out.getvalue() and B64 not in out.getvalue()
        if output == "json":
            assert json.loads(shown[0])["auditID"] == "first" and json.loads(shown[-1])["auditID"] == "last"


def test_a_live_log_that_is_a_fifo_is_refused_not_a_hang(monkeypatch: Any, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    os.mkfifo(log)
    import threading

    result: list[tuple[int, str, str]] = []
    worker = threading.Thread(target=lambda: result.append(run_logs(monkeypatch, log)), daemon=True)
    worker.start()
    worker.join(20)
    if not result:  # unblock the node-side reader, so that the test process can end
        with contextlib.suppress(OSError):
            os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
    assert result, "kaudit logs hung on a FIFO"
    code, _, err = result[0]
    assert code == 2 and "not a regular file" in err, err
