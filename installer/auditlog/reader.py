"""Audit events as a stream: the log backend's JSON lines from files, rotated sets (`.gz` included),
directories, stdin, or any iterator of byte chunks (a node's stream, `installer.auditlog.node`).

Only the fields callers need are decoded (msgspec, into `Event`); request and response bodies stay raw
bytes (`msgspec.Raw`), so their size is known without parsing them. Nothing is written anywhere.

Bad input, as issue 13 item 6 asks:
- a line that does not decode (a truncated last line, a line cut by a crash) is skipped and counted,
  with its file:line;
- a file whose first lines are not audit events at all (another kind of file, or the `legacy`
  format `--audit-log-format=legacy` writes) is one clear error (`LogFormatError`, exit 2);
- an empty file is zero events.
"""

from __future__ import annotations

import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, NamedTuple

import msgspec

from installer.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
# A file has proved to be an audit log at its first event; this many bad lines before that say it is not one.
PROOF_WINDOW = 20
# `2017-03-21T03:57:09.106841886-04:00 AUDIT: id="..." ip="..." method="GET" user="admin" ...`
_LEGACY = re.compile(rb'^\S+ AUDIT: id="')
# lumberjack's backup names: <stem>-2006-01-02T15-04-05.000<ext>[.gz]
_BACKUP = re.compile(r"-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(\.[^./]*)?(\.gz)?$")
_LOG_NAME = re.compile(r"\.(log|json|jsonl)(\.gz)?$|\.gz$")


class LogFormatError(InputError):
    """Not an audit log in the log backend's JSON format: nothing to simulate (exit 2)."""


class User(msgspec.Struct):
    username: str = ""
    groups: tuple[str, ...] = ()


class ObjectRef(msgspec.Struct):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    apiGroup: str = ""
    apiVersion: str = ""
    subresource: str = ""


_ABSENT = msgspec.Raw()  # an absent field: empty (a JSON value never is)


class Event(msgspec.Struct):
    """The fields of an audit.k8s.io/v1 Event that kaudit reads; the rest is skipped unparsed.
    Bodies, status and annotations stay raw bytes: `len()` is their size, 0 when absent."""

    kind: str = ""
    apiVersion: str = ""
    level: str = ""
    auditID: str = ""
    stage: str = ""
    requestURI: str = ""
    verb: str = ""
    user: User | None = None
    objectRef: ObjectRef | None = None
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    responseStatus: msgspec.Raw = _ABSENT
    requestObject: msgspec.Raw = _ABSENT
    responseObject: msgspec.Raw = _ABSENT
    annotations: msgspec.Raw = _ABSENT


class Record(NamedTuple):
    source: str
    line: int  # 1-based, in the decompressed source
    size: int  # bytes of the line as written, its newline included
    event: Event


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    bytes: int = 0
    bad_lines: int = 0
    bad_where: list[str] = field(default_factory=list)  # file:line of the first few bad lines
    not_events: int = 0  # valid JSON, but not an audit Event
    sources: list[str] = field(default_factory=list)

    def bad(self, source: str, line: int) -> None:
        self.bad_lines += 1
        if len(self.bad_where) < 20:
            self.bad_where.append(f"{source}:{line}")


@dataclass(frozen=True)
class Source:
    """One stream of lines: `name` is what reports show (a path, `<stdin>`, `node:path`)."""

    name: str
    open: Callable[[], Iterable[bytes]]  # lines, each with its newline (the last may lack it)


# --------------------------------------------------------------------------- decoding


_DECODER = msgspec.json.Decoder(Event)
_EVENT_START = b'{"kind":"Event"'  # how the log backend starts every line


def _first_bytes(line: bytes) -> bytes:
    return line.lstrip()[:1]


def read(sources: Iterable[Source], stats: ReadStats | None = None) -> Iterator[Record]:
    """Every event of every source, in order; bad lines skipped and counted in `stats`."""
    stats = stats if stats is not None else ReadStats()
    for source in sources:
        stats.sources.append(source.name)
        yield from _read_one(source, stats)


def _read_one(source: Source, stats: ReadStats) -> Iterator[Record]:
    decode = _DECODER.decode
    name = source.name
    proved = False
    pending: list[tuple[int, bytes]] = []  # bad lines before the first event: judged when the file is
    n = 0
    try:
        lines = source.open()
        for n, raw in enumerate(lines, 1):
            size = len(raw)
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if not line or line.isspace():
                stats.lines += 1
                stats.bytes += size
                continue
            try:
                event = decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                stats.lines += 1
                stats.bytes += size
                # A writer that crashed mid-line leaves the next event glued to the cut one: recover it.
                start = line.find(_EVENT_START, 1)
                glued = None
                if start > 0:
                    try:
                        glued = decode(line[start:])
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        glued = None
                if not proved and glued is None:
                    pending.append((n, line))
                    _judge(name, pending, final=False)
                    continue
                stats.bad(name, n)
                if glued is None or glued.kind != "Event":
                    continue
                if not proved:
                    proved = True
                    for where, _ in pending:
                        stats.bad(name, where)
                    pending = []
                stats.events += 1
                yield Record(name, n, size - start, glued)
                continue
            stats.lines += 1
            stats.bytes += size
            if event.kind != "Event" or not event.apiVersion.startswith("audit.k8s.io/"):
                if not proved:
                    pending.append((n, line))
                    _judge(name, pending, final=False)
                else:
                    stats.not_events += 1
                continue
            if not proved:
                proved = True
                for where, _ in pending:
                    stats.bad(name, where)
                pending = []
            stats.events += 1
            yield Record(name, n, size, event)
    except (EOFError, zlib.error):
        # a .gz cut short (still being written, or copied mid-write) ends here, like a truncated line
        stats.bad(name, n + 1)
        return
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not proved and pending:
        _judge(name, pending, final=True)
        for where, _ in pending:  # a lone cut line: a log whose only event was being written
            stats.bad(name, where)


def _judge(name: str, pending: list[tuple[int, bytes]], *, final: bool) -> None:
    """Raise LogFormatError when the bad lines before any event say this is not an audit log."""
    if any(_LEGACY.match(line) for _, line in pending):
        raise LogFormatError(
            f"{name}: this audit log is in the legacy format (--audit-log-format=legacy); kaudit reads the "
            "json format, the API server's default: switch the node to it (`kaudit enable ... --log-format json`)"
        )
    first_line, first = pending[0]
    looks_json = _first_bytes(first) == b"{"
    if final and len(pending) == 1 and looks_json and not _is_json_object(first):
        return  # one cut JSON line and nothing else: counted as truncated, not refused
    if len(pending) >= PROOF_WINDOW or final or not looks_json:
        what = "JSON, but not audit.k8s.io Events" if looks_json and _is_json_object(first) else "not JSON lines"
        raise LogFormatError(
            f"{name}: not an audit log ({what}, line {first_line}); kaudit reads the log backend's JSON lines "
            "(--audit-log-path with --audit-log-format=json)"
        )


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(msgspec.json.decode(line), dict)
    except msgspec.DecodeError:
        return False


# --------------------------------------------------------------------------- byte streams to lines


def lines_of_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines (newline kept) from arbitrary byte chunks."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk if rest else chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            yield data[start:end + 1]
            start = end + 1
        rest = data[start:]
    if rest:
        yield rest


def gunzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip stream (several members allowed, as `cat a.gz b.gz` gives); EOFError when the
    stream ends inside a member (a file cut short), after yielding what was there."""
    d = zlib.decompressobj(wbits=31)
    inside = False
    for chunk in chunks:
        while chunk:
            inside = True
            out = d.decompress(chunk)
            if out:
                yield out
            if d.eof:
                chunk, inside = d.unused_data, False
                d = zlib.decompressobj(wbits=31)
            else:
                chunk = b""
    if inside:
        if tail := d.flush():
            yield tail
        raise EOFError("gzip stream cut short")


def _file_lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic == GZIP_MAGIC:
            yield from lines_of_chunks(gunzip_chunks(iter(lambda: handle.read(1 << 20), b"")))
        else:
            yield from handle


def _stream_lines(stream: IO[bytes]) -> Iterator[bytes]:
    head = stream.read(2)
    if not head:
        return
    def chunks() -> Iterator[bytes]:
        yield head
        while chunk := stream.read(1 << 20):
            yield chunk
    if head == GZIP_MAGIC:
        yield from lines_of_chunks(gunzip_chunks(chunks()))
    else:
        yield from lines_of_chunks(chunks())


# --------------------------------------------------------------------------- local sources


def rotation_key(name: str) -> tuple[str, str, str]:
    """Sort key of a rotated set: per log stem, lumberjack backups oldest first, then the live file."""
    base = os.path.basename(name)
    m = _BACKUP.search(base)
    if m:
        return base[:m.start()], m.group(1), base
    stem = re.sub(r"(\.[^./]*)?(\.gz)?$", "", base)
    return stem, "~", base  # "~" sorts after every timestamp


def order_rotated(paths: list[str]) -> list[str]:
    return sorted(paths, key=rotation_key)


def local_sources(args: list[str], stdin: IO[bytes] | None = None) -> list[Source]:
    """`-` (stdin), files and directories, as sources: a directory's log files and the files named
    together are one rotated set, oldest backup first, the live file last."""
    sources: list[Source] = []
    files: list[str] = []
    for arg in args:
        if arg == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            sources.append(Source("<stdin>", lambda s=stream: _stream_lines(s)))  # type: ignore[misc]
        elif os.path.isdir(arg):
            found = [os.path.join(arg, e.name) for e in os.scandir(arg)
                     if e.is_file() and not e.name.startswith(".") and _LOG_NAME.search(e.name)]
            if not found:
                raise InputError(f"{arg}: no audit log files in this directory (*.log, *.log.gz, *.json, *.jsonl)")
            files.extend(found)
        elif os.path.exists(arg):
            if not os.path.isfile(arg) and not arg.startswith("/dev/"):
                raise InputError(f"{arg}: not a file or a directory")
            files.append(arg)
        else:
            raise InputError(f"{arg}: no such file or directory")
    for path in order_rotated(list(dict.fromkeys(files))):
        if not os.access(path, os.R_OK):
            raise InputError(f"cannot read {path}: permission denied (audit logs are root's: try sudo)")
        sources.append(Source(path, lambda p=path: _file_lines(p)))  # type: ignore[misc]
    return sources


def decode_event(line: bytes) -> Event:
    """One log line (its newline stripped) as an Event, for readers of a live stream (`logs --follow`);
    msgspec.DecodeError or msgspec.ValidationError when it is not one. No proof window, no counting."""
    return _DECODER.decode(line)
