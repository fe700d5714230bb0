"""The audit log reader (installer/auditlog/reader.py) and the node stream (installer/auditlog/node.py)."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
from pathlib import Path

import pytest

from installer.auditlog import node, reader
from installer.scripts import load
from tests import auditgen


def ev(i: int, ts: str = "2026-05-01T10:00:00.000000Z", **extra: object) -> bytes:
    doc = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"id-{i}",
           "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/a/pods", "verb": "list",
           "user": {"username": "alice", "groups": ["g"]}, "stageTimestamp": ts, **extra}
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def records(*paths: str | Path) -> tuple[list[reader.Record], reader.ReadStats]:
    stats = reader.ReadStats()
    out = list(reader.read(reader.local_sources([str(p) for p in paths]), stats))
    return out, stats


def test_fields_decoded_and_bodies_raw(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(ev(1, requestObject={"kind": "Pod", "spec": {"x": 1}}, impersonatedUser={"username": "bob"}))
    (rec,), stats = records(log)
    assert rec.event.user is not None and rec.event.user.username == "alice"
    assert rec.event.user.groups == ("g",)
    assert bytes(rec.event.requestObject) == b'{"kind":"Pod","spec":{"x":1}}'
    assert not rec.event.responseObject
    assert (rec.source, rec.line, rec.size) == (str(log), 1, log.stat().st_size)
    assert (stats.events, stats.bytes, stats.bad_lines) == (1, log.stat().st_size, 0)


def test_truncated_last_line_and_crash_cut_line_are_counted_with_place(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    cut = ev(2)[:57]
    log.write_bytes(ev(1) + cut + ev(3) + ev(4)[:40])  # a crash cut line 2; line 4 was being written
    recs, stats = records(log)
    # the event written after the crash is glued to the cut line: recovered, on the same line
    assert [r.event.auditID for r in recs] == ["id-1", "id-3"]
    assert [r.line for r in recs] == [1, 2]
    assert recs[1].size == len(ev(3))
    assert stats.bad_lines == 2 and stats.bad_where == [f"{log}:2", f"{log}:3"]


def test_empty_log_is_zero(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    recs, stats = records(log)
    assert recs == [] and stats.events == 0


def test_a_single_cut_line_is_truncation_not_a_format_error(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(ev(1)[:80])
    recs, stats = records(log)
    assert recs == [] and stats.bad_lines == 1


def test_legacy_format_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text('2017-03-21T03:57:09.106841886-04:00 AUDIT: id="c939d2a7-1c37-4ef1-b2f7-4ba9b1e43b53" '
                   'ip="127.0.0.1" method="GET" user="admin" groups="\\"system:masters\\"" as="<self>" '
                   'asgroups="<lookup>" namespace="default" uri="/api/v1/namespaces/default/pods"\n')
    with pytest.raises(reader.LogFormatError, match="legacy format"):
        records(log)


@pytest.mark.parametrize("content", [
    b"hello world\nthis is a text file\n",
    b'{"apiVersion": "v1", "kind": "Pod", "metadata": {}}\n',
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
])
def test_not_an_audit_log_is_refused(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "x.log"
    f.write_bytes(content)
    with pytest.raises(reader.LogFormatError, match="not an audit log"):
        records(f)


def test_rotated_set_with_gz_in_order(tmp_path: Path) -> None:
    d = tmp_path / "audit"
    d.mkdir()
    (d / "audit.log").write_bytes(ev(3))
    with gzip.open(d / "audit-2026-05-01T09-00-00.000.log.gz", "wb") as out:
        out.write(ev(2) + ev(22))
    with gzip.open(d / "audit-2026-04-30T09-00-00.000.log.gz", "wb") as out:
        out.write(ev(1))
    (d / ".audit.log.swp").write_bytes(b"junk")
    (d / "notes.txt").write_bytes(b"not picked")
    recs, _ = records(d)
    assert [r.event.auditID for r in recs] == ["id-1", "id-2", "id-22", "id-3"]
    assert recs[2].line == 2 and recs[2].source.endswith("09-00-00.000.log.gz")
    # the same files named one by one, in any order
    recs2, _ = records(d / "audit.log", *sorted(d.glob("*.gz")))
    assert [r.event.auditID for r in recs2] == ["id-1", "id-2", "id-22", "id-3"]


def test_gz_cut_short_counts_a_bad_line(tmp_path: Path) -> None:
    lines = list(auditgen.lines(2000))
    data = gzip.compress(b"".join(lines))
    f = tmp_path / "audit-2026-05-01T09-00-00.000.log.gz"
    f.write_bytes(data[: len(data) // 2])
    recs, stats = records(f)
    assert 0 < len(recs) < len(lines) and stats.bad_lines == 1


def test_stdin_plain_and_gzip() -> None:
    data = ev(1) + ev(2)
    for stream in (io.BytesIO(data), io.BytesIO(gzip.compress(data))):
        stats = reader.ReadStats()
        recs = list(reader.read(reader.local_sources(["-"], stdin=stream), stats))
        assert [r.event.auditID for r in recs] == ["id-1", "id-2"]
        assert recs[0].source == "<stdin>"


def test_missing_source_is_input_error(tmp_path: Path) -> None:
    from installer.errors import InputError

    with pytest.raises(InputError, match="no such file"):
        reader.local_sources([str(tmp_path / "nope.log")])
    with pytest.raises(InputError, match="no audit log files"):
        reader.local_sources([str(tmp_path)])


def test_generator_events_are_realistic(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    n = auditgen.write(log, 3000)
    recs, stats = records(log)
    assert len(recs) == n and stats.bad_lines == 0
    assert 700 < stats.bytes / n < 1600  # about 1 KB per event
    verbs = {r.event.verb for r in recs}
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= verbs
    assert any(r.event.requestURI == "/readyz" for r in auditgen_all()) is True


def auditgen_all() -> list[reader.Record]:
    data = b"".join(auditgen.lines(500, omit_received=False, level="Metadata"))
    return list(reader.read(reader.local_sources(["-"], stdin=io.BytesIO(data))))


# --------------------------------------------------------------------------- the node stream


def _stream(path: Path, env: dict[str, str] | None = None) -> list[reader.Record]:
    """LOGS_HISTORY (no window, no prefilter) run by a local sh, its output read as a node's would be."""
    proc = subprocess.run(["sh", "-c", load.LOGS_HISTORY.text, "sh", str(path), "", "", str(reader.MAX_LINE)],
                          capture_output=True, check=True, env=env)
    lines = iter(proc.stdout.decode().splitlines())
    stats = reader.ReadStats()
    return list(reader.read(node.stream_sources("cp-1", lambda: next(lines, "")), stats))


def test_node_stream_sends_the_rotated_set_oldest_first(tmp_path: Path) -> None:
    (tmp_path / "audit.log").write_bytes(ev(3) + ev(4)[:30])
    with gzip.open(tmp_path / "audit-2026-05-01T09-00-00.000.log.gz", "wb") as out:
        out.write(ev(2))
    (tmp_path / "audit-2026-04-30T09-00-00.000.log").write_bytes(ev(1))
    recs = _stream(tmp_path / "audit.log")
    assert [r.event.auditID for r in recs] == ["id-1", "id-2", "id-3"]
    assert recs[-1].source == f"cp-1:{tmp_path / 'audit.log'}" and recs[-1].line == 1


def test_node_stream_without_gzip_on_the_node(tmp_path: Path) -> None:
    import os
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "dirname", "basename", "ls", "sort", "base64", "cat", "tr", "cut", "head", "expr", "grep"):
        real = shutil.which(tool)
        assert real
        os.symlink(real, bindir / tool)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "audit.log").write_bytes(ev(1) + ev(2))
    recs = _stream(logs / "audit.log", env={"PATH": str(bindir)})
    assert [r.event.auditID for r in recs] == ["id-1", "id-2"]


def test_two_nodes_merged_by_time(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "audit.log").write_bytes(ev(1, "2026-05-01T10:00:01.000000Z") + ev(3, "2026-05-01T10:00:03.000000Z"))
    (b / "audit.log").write_bytes(ev(2, "2026-05-01T10:00:02.000000Z") + ev(4, "2026-05-01T10:00:04.000000Z"))
    streams = []
    for name, d in (("cp-1", a), ("cp-2", b)):
        proc = subprocess.run(["sh", "-c", load.LOGS_HISTORY.text, "sh", str(d / "audit.log"), "", "",
                               str(reader.MAX_LINE)], capture_output=True, check=True)
        lines = iter(proc.stdout.decode().splitlines())
        streams.append(reader.read(node.stream_sources(name, lambda it=lines: next(it, ""))))  # type: ignore[misc]
    merged = list(node.merge_by_time(streams))
    assert [r.event.auditID for r in merged] == ["id-1", "id-2", "id-3", "id-4"]
    assert [r.source.split(":")[0] for r in merged] == ["cp-1", "cp-2", "cp-1", "cp-2"]


def test_node_without_a_log(tmp_path: Path) -> None:
    from installer.errors import NodeError

    with pytest.raises(NodeError, match="no audit log"):
        _stream(tmp_path / "audit.log")


# --------------------------------------------------------------------------- read_blocks (simulate's fast path)


def _flat_blocks(sources: list[reader.Source], stats: reader.ReadStats) -> list[tuple[str, int, int, str, str]]:
    out = []
    for b in reader.read_blocks(sources, stats):
        lines = b.lines if b.lines is not None else range(b.first_line, b.first_line + len(b.events))
        for line, size, e in zip(lines, b.sizes, b.events, strict=True):
            out.append((b.source, line, size + b.newline, e.verb, e.stageTimestamp))
    return out


def _flat_records(sources: list[reader.Source], stats: reader.ReadStats) -> list[tuple[str, int, int, str, str]]:
    return [(r.source, r.line, r.size, r.event.verb, r.event.stageTimestamp) for r in reader.read(sources, stats)]


@pytest.mark.parametrize("case", ["plain", "cut-lines", "blank-lines", "no-final-newline", "odd-verb", "gz-cut",
                                  "not-events-after-proof", "crlf"])
def test_read_blocks_agrees_with_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    monkeypatch.setattr(reader, "BLOCK_BYTES", 4096)  # many blocks, lines cut across chunks
    lines = list(auditgen.lines(300))
    if case == "cut-lines":
        lines[40] = lines[40][:70]  # a crash cut line: the next event glued to it
        lines[-1] = lines[-1][:50]
    elif case == "blank-lines":
        lines[10:10] = [b"\n", b"   \n"]
    elif case == "no-final-newline":
        lines[-1] = lines[-1].rstrip(b"\n")
    elif case == "odd-verb":  # what the fast decoder does not take: the per-line path does
        lines[5] = lines[5].replace(b'"verb":"', b'"verb":"propfind', 1)
        lines[6] = lines[6].replace(b'"requestURI":"', b'"requestURI":"', 1).replace(b'"level":"', b'"level":"X', 1)
    elif case == "not-events-after-proof":
        lines[50:50] = [b'{"kind":"Pod","apiVersion":"v1"}\n']
    elif case == "crlf":
        lines = [line.replace(b"\n", b"\r\n") for line in lines]
    data = b"".join(lines)
    log = tmp_path / ("audit.log.gz" if case == "gz-cut" else "audit.log")
    log.write_bytes(gzip.compress(data)[:-200] if case == "gz-cut" else data)
    s1, s2 = reader.ReadStats(), reader.ReadStats()
    slow = _flat_records(reader.local_sources([str(log)]), s1)
    fast = _flat_blocks(reader.local_sources([str(log)]), s2)
    assert len(fast) > 150
    assert fast == slow
    assert s2 == s1
    kinds = {type(b.events[0]).__name__ for b in reader.read_blocks(reader.local_sources([str(log)]))}
    assert "FastEvent" in kinds  # most blocks take the fast path...
    if case in ("cut-lines", "blank-lines", "odd-verb", "not-events-after-proof"):
        assert "LeanEvent" in kinds  # ... a block with an odd line the per-line one


def test_read_blocks_from_a_source_of_lines(tmp_path: Path) -> None:
    """A node's stream gives lines, not chunks: the blocks are made of them."""
    data = b"".join(auditgen.lines(200))
    source = reader.Source("cp-1:/var/log/audit.log", lambda: iter(data.splitlines(keepends=True)))
    s1, s2 = reader.ReadStats(), reader.ReadStats()
    assert _flat_blocks([source], s2) == _flat_records([source], s1)
    assert s1 == s2


def test_read_blocks_refuses_what_read_refuses(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.log"
    legacy.write_text('2017-03-21T03:57:09.106841886-04:00 AUDIT: id="c939" ip="127.0.0.1" method="GET"\n')
    with pytest.raises(reader.LogFormatError, match="legacy format"):
        list(reader.read_blocks(reader.local_sources([str(legacy)])))
    other = tmp_path / "other.log"
    other.write_bytes(b'{"apiVersion": "v1", "kind": "Pod", "metadata": {}}\n')
    with pytest.raises(reader.LogFormatError, match="not an audit log"):
        list(reader.read_blocks(reader.local_sources([str(other)])))
