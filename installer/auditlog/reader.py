"""Audit events as a stream: the log backend's JSON lines from files, rotated sets (`.gz` included),
directories, stdin, or any iterator of byte chunks (a node's stream, `installer.auditlog.node`).

Only the fields callers need are decoded (msgspec, into `Event`); request and response bodies stay raw
bytes (`msgspec.Raw`), so their size is known without parsing them. Nothing is written anywhere.

Two ways to read: `read` (one `Record` per event, lazily, line by line: `kaudit logs`, `simulate -o
events`) and `read_blocks` (simulate's report: big blocks of lines decoded at once into `LeanEvent`s,
the per-line path below only for a block holding a line it cannot take as is).

Bad input, as issue 13 item 6 asks:
- a line that does not decode (a truncated last line, a line cut by a crash) is skipped and counted,
  with its file:line;
- a file whose first lines are not audit events at all (another kind of file, or the `legacy`
  format `--audit-log-format=legacy` writes) is one clear error (`LogFormatError`, exit 2);
- an empty file is zero events;
- a line that is an audit Event (its kind and apiVersion say so) with a field of the wrong type is
  malformed: skipped and counted as a bad line, and it proves the file an audit log (issue 23 item 3);
- a line longer than MAX_LINE (a crafted or sparse file, NULs without a newline) is cut there, so it
  costs that much memory and no more, and is counted as a bad line (issue 23 item 10).
"""

from __future__ import annotations

import io
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from typing import IO, Annotated, Generic, Literal, NamedTuple, Protocol, TypeVar

import msgspec

from installer.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
# A file has proved to be an audit log at its first event; this many bad lines before that say it is not one.
PROOF_WINDOW = 20
# The longest line read as an event; the rest of a longer one is dropped unread (the line is then bad).
# The API server writes events far below it unless a RequestResponse body is huge; the node side cuts
# lines at the same length (installer/logs/logs_node.py).
MAX_LINE = 8 << 20
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
ABSENT = _ABSENT  # msgspec leaves this very object in a field the line lacks: `raw is ABSENT` tells


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


class _Head(msgspec.Struct):
    """Any JSON object's kind and apiVersion, whatever their types: is a line that does not decode as an
    Event an Event all the same (a malformed one)?"""

    kind: object = None
    apiVersion: object = None


_HEAD = msgspec.json.Decoder(_Head)


def _malformed_event(line: bytes) -> bool:
    try:
        head = _HEAD.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return False
    return head.kind == "Event" and isinstance(head.apiVersion, str) and head.apiVersion.startswith("audit.k8s.io/")


class LeanUser(msgspec.Struct, frozen=True, gc=False):
    """The authenticated user as a policy sees it (simulate decodes a LeanEvent's raw `user` into it)."""

    username: str = ""
    groups: tuple[str, ...] = ()


class LeanEvent(msgspec.Struct, gc=False):
    """What `kaudit simulate` reads of an event, and no more: every decoded field costs time on every line.
    `user` stays raw (simulate keys its tables by its bytes and decodes each distinct one once); so does
    `objectRef` (read only for the rare event without a requestURI)."""

    kind: str = ""
    apiVersion: str = ""
    level: str = ""
    stage: str = ""
    requestURI: str = ""
    verb: str = ""
    user: msgspec.Raw = _ABSENT
    objectRef: msgspec.Raw = _ABSENT
    requestReceivedTimestamp: str = ""
    stageTimestamp: str = ""
    responseStatus: msgspec.Raw = _ABSENT
    requestObject: msgspec.Raw = _ABSENT
    responseObject: msgspec.Raw = _ABSENT
    annotations: msgspec.Raw = _ABSENT


_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class FastEvent(msgspec.Struct, gc=False):
    """`read_blocks`' fast path: LeanEvent's fields as the API server writes them, checked while decoding
    (a line that differs in any way fails the block over to the per-line path, into `LeanEvent`s): kind
    and apiVersion those of an audit Event, a non-empty requestURI and stageTimestamp, a known stage,
    level and verb. Literal values come back as the one interned string each: no allocation, and a
    cached hash and identity comparison in simulate's keys."""

    kind: Literal["Event"]
    apiVersion: Literal["audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1"]
    level: Literal["Metadata", "Request", "RequestResponse"]
    stage: Literal["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
    requestURI: _NonEmpty
    verb: Literal["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy",
                  "post", "put", "head", "options"]
    stageTimestamp: _NonEmpty
    user: msgspec.Raw = _ABSENT
    responseStatus: msgspec.Raw = _ABSENT
    requestObject: msgspec.Raw = _ABSENT
    responseObject: msgspec.Raw = _ABSENT
    annotations: msgspec.Raw = _ABSENT


class LeanEventWithID(LeanEvent, gc=False):
    """`simulate -o events` also prints the auditID."""

    auditID: str = ""


class EventLike(Protocol):
    """What the reader (and a merge by time) needs of any event type it decodes into."""

    kind: str
    apiVersion: str
    stageTimestamp: str
    requestReceivedTimestamp: str


E = TypeVar("E", bound=EventLike)
T = TypeVar("T")


class AnyRecord(NamedTuple, Generic[E]):
    source: str
    line: int  # 1-based, in the decompressed source
    size: int  # bytes of the line as written, its newline included
    event: E


Record = AnyRecord[Event]  # what `read` yields
LeanRecord = AnyRecord[LeanEventWithID]  # what `read_as(..., LEAN_DECODER_WITH_ID)` yields


@dataclass
class Block(Generic[T]):
    """Consecutive events of one source, decoded together. `sizes[i]` is the line's length as written,
    less `newline` (1 when every line of the block ended with one, as the fast path leaves it)."""

    source: str
    first_line: int  # the 1-based line of events[0], when `lines` is None
    events: list[T]
    sizes: list[int]
    newline: int
    lines: list[int] | None = None  # each event's line, when they are not consecutive
    fast: bool = False  # the events are FastEvents (the fast path's): every one has a requestURI


@dataclass
class ReadStats:
    lines: int = 0
    events: int = 0
    bytes: int = 0
    bad_lines: int = 0
    bad_where: list[str] = field(default_factory=list)  # file:line of the first few bad lines
    not_events: int = 0  # valid JSON, but not an audit Event
    sources: list[str] = field(default_factory=list)
    bad_files: list[str] = field(default_factory=list)  # why each skipped file was skipped (kaudit logs)
    bad_live: int = 0  # of those, live logs (the file the API server writes): a node that could not be read

    def bad(self, source: str, line: int) -> None:
        self.bad_lines += 1
        if len(self.bad_where) < 20:
            self.bad_where.append(f"{source}:{line}")


@dataclass(frozen=True)
class Source:
    """One stream of lines: `name` is what reports show (a path, `<stdin>`, `node:path`)."""

    name: str
    open: Callable[[], Iterable[bytes]]  # lines, each with its newline (the last may lack it)
    chunks: Callable[[], Iterable[bytes]] | None = None  # the same bytes in big pieces, where cheaper
    # the same lines in lists, with their sizes, each line ending with its newline but a file's last (a line
    # longer than MAX_LINE cut there, newline added, the rest dropped); None when not available (a .gz)
    line_lists: Callable[[], Iterator[tuple[list[bytes], list[int]]] | None] | None = None


# --------------------------------------------------------------------------- decoding


_DECODER = msgspec.json.Decoder(Event)
LEAN_DECODER = msgspec.json.Decoder(LeanEvent)
FAST_DECODER = msgspec.json.Decoder(FastEvent)
LEAN_DECODER_WITH_ID = msgspec.json.Decoder(LeanEventWithID)
_EVENT_START = b'{"kind":"Event"'  # how the log backend starts every line
BLOCK_BYTES = 1 << 20  # read_blocks reads this much at a time (about a thousand events)
_BLOCK_LINES = 1024  # lines per block from a source that only gives lines


def _first_bytes(line: bytes) -> bytes:
    return line.lstrip()[:1]


def read(sources: Iterable[Source], stats: ReadStats | None = None) -> Iterator[Record]:
    """Every event of every source, in order; bad lines skipped and counted in `stats`."""
    return read_as(sources, _DECODER, stats)


def read_as(sources: Iterable[Source], decoder: msgspec.json.Decoder[E],
            stats: ReadStats | None = None) -> Iterator[AnyRecord[E]]:
    """`read`, decoding into the decoder's type (`LEAN_DECODER_WITH_ID` for `simulate -o events`)."""
    stats = stats if stats is not None else ReadStats()
    for source in sources:
        stats.sources.append(source.name)
        yield from _read_one(source, stats, decoder)


class _LineJudge(Generic[E]):
    """One source's lines, one at a time: decoded, or skipped and counted (bad input, module doc). A file
    has proved to be an audit log at its first event; bad lines before that are judged then."""

    def __init__(self, name: str, stats: ReadStats, decoder: msgspec.json.Decoder[E]) -> None:
        self.name, self.stats, self.decode = name, stats, decoder.decode
        self.proved = False
        self.pending: list[tuple[int, bytes]] = []

    def prove(self) -> None:
        if not self.proved:
            self.proved = True
            for where, _ in self.pending:
                self.stats.bad(self.name, where)
            self.pending = []

    def feed(self, n: int, raw: bytes) -> tuple[int, E] | None:
        """(size as written, event) for line `n` (its newline, if any, included in `raw`), or None."""
        stats = self.stats
        size = len(raw)
        stats.lines += 1
        stats.bytes += size
        if not raw or raw.isspace():
            return None
        try:
            event = self.decode(raw)  # the newline is whitespace to the decoder: no copy without it
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            line = raw[:-1] if raw.endswith(b"\n") else raw
            # A writer that crashed mid-line leaves the next event glued to the cut one: recover it.
            start = line.find(_EVENT_START, 1)
            glued = None
            if start > 0:
                try:
                    glued = self.decode(line[start:])
                except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                    glued = None
            if glued is None and _malformed_event(line):
                self.prove()  # an audit Event, with a field of the wrong type: skipped and counted
                stats.bad(self.name, n)
                return None
            if not self.proved and glued is None:
                self.pending.append((n, line))
                _judge(self.name, self.pending, final=False)
                return None
            stats.bad(self.name, n)
            if glued is None or glued.kind != "Event":
                return None
            self.prove()
            stats.events += 1
            return size - start, glued
        if event.kind != "Event" or not event.apiVersion.startswith("audit.k8s.io/"):
            if not self.proved:
                self.pending.append((n, raw[:-1] if raw.endswith(b"\n") else raw))
                _judge(self.name, self.pending, final=False)
            else:
                stats.not_events += 1
            return None
        if not self.proved:
            self.prove()
        stats.events += 1
        return size, event

    def finish(self) -> None:
        if not self.proved and self.pending:
            _judge(self.name, self.pending, final=True)
            for where, _ in self.pending:  # a lone cut line: a log whose only event was being written
                self.stats.bad(self.name, where)


def _read_one(source: Source, stats: ReadStats, decoder: msgspec.json.Decoder[E]) -> Iterator[AnyRecord[E]]:
    judge = _LineJudge(source.name, stats, decoder)
    name = source.name
    n = 0
    try:
        lines = source.open()
        decode = decoder.decode
        for n, raw in enumerate(lines, 1):
            if judge.proved:  # the common case, inline: an audit event, once the file has proved to hold them
                try:
                    event = decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                    pass  # the judge says what it is
                else:
                    if event.kind == "Event" and event.apiVersion.startswith("audit.k8s.io/"):
                        size = len(raw)
                        stats.lines += 1
                        stats.bytes += size
                        stats.events += 1
                        yield AnyRecord(name, n, size, event)
                        continue
            got = judge.feed(n, raw)
            if got is not None:
                yield AnyRecord(name, n, got[0], got[1])
    except (EOFError, zlib.error):
        # a .gz cut short (still being written, or copied mid-write) ends here, like a truncated line
        stats.bad(name, n + 1)
        return
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    judge.finish()


def read_blocks(sources: Iterable[Source],
                stats: ReadStats | None = None) -> Iterator[Block[FastEvent] | Block[LeanEvent]]:
    """Every event of every source, in order, in blocks; the same events, line numbers, sizes and bad-line
    accounting as `read`. A block of lines that all decode as `FastEvent`s (every line of a real log) is
    decoded in one go (`map`); a block with any other line (cut, blank, not an event, anything unusual)
    goes through `read`'s per-line path into `LeanEvent`s, so that bad input is counted exactly as there."""
    stats = stats if stats is not None else ReadStats()
    for source in sources:
        stats.sources.append(source.name)
        yield from _blocks_one(source, stats)


def _line_chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    """A line source as big chunks (lines joined), for read_blocks."""
    it = iter(lines)
    while chunk := b"".join(islice(it, _BLOCK_LINES)):
        yield chunk


def _blocks_one(source: Source, stats: ReadStats) -> Iterator[Block[FastEvent] | Block[LeanEvent]]:
    name = source.name
    judge = _LineJudge(name, stats, LEAN_DECODER)
    decode = FAST_DECODER.decode
    n = 0  # lines so far
    rest = b""  # the start of a line the last chunk cut
    try:
        lists = source.line_lists() if source.line_lists is not None else None
        if lists is not None:
            yield from _blocks_of_lists(lists, judge, stats, name)
            return
        chunks = source.chunks() if source.chunks is not None else _line_chunks(source.open())
        for chunk in chunks:
            lines = chunk.split(b"\n")
            if len(lines) == 1:  # no newline in this chunk: a long line goes on
                rest += chunk
                continue
            if rest:
                lines[0] = rest + lines[0]
            rest = lines.pop()
            count = len(lines)
            try:
                events = list(map(decode, lines))
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                block = _slow_block(judge, name, n, lines)
                if block is not None:
                    yield block
            else:
                judge.prove()
                sizes = list(map(len, lines))
                stats.lines += count
                stats.events += count
                stats.bytes += sum(sizes) + count
                yield Block[FastEvent](name, n + 1, events, sizes, 1, fast=True)
            n += count
        if rest:
            block = _slow_block(judge, name, n, [rest], newline=False)
            if block is not None:
                yield block
            n += 1
    except (EOFError, zlib.error):
        stats.bad(name, n + 1)
        return
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    judge.finish()


def _blocks_of_lists(lists: Iterator[tuple[list[bytes], list[int]]], judge: _LineJudge[LeanEvent],
                     stats: ReadStats, name: str) -> Iterator[Block[FastEvent] | Block[LeanEvent]]:
    """`_blocks_one` for a source of line lists (`Source.line_lists`: a plain file, read line by line in C,
    which costs less than reading big chunks and splitting them). Errors are the caller's to catch; the
    judge finishes here."""
    decode = FAST_DECODER.decode
    n = 0
    for lines, sizes in lists:
        count = len(lines)
        try:
            events = list(map(decode, lines))
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            block = _slow_block(judge, name, n, lines, newline=False)
            if block is not None:
                yield block
        else:
            judge.prove()
            stats.lines += count
            stats.events += count
            stats.bytes += sum(sizes)
            yield Block[FastEvent](name, n + 1, events, sizes, 0, fast=True)
        n += count
    judge.finish()


def _slow_block(judge: _LineJudge[E], name: str, n: int, lines: list[bytes],
                newline: bool = True) -> Block[E] | None:
    events: list[E] = []
    sizes: list[int] = []
    where: list[int] = []
    nl = b"\n" if newline else b""
    for i, line in enumerate(lines, n + 1):
        got = judge.feed(i, line + nl)
        if got is not None:
            sizes.append(got[0])
            events.append(got[1])
            where.append(i)
    return Block(name, n + 1, events, sizes, 0, where) if events else None


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
    except (msgspec.DecodeError, RecursionError):
        return False


# --------------------------------------------------------------------------- byte streams to lines


def lines_of_chunks(chunks: Iterable[bytes], max_line: int = MAX_LINE) -> Iterator[bytes]:
    """Lines (newline kept) from arbitrary byte chunks. A line longer than `max_line` is yielded cut to
    `max_line` bytes (with a newline: it decodes as nothing, and is counted bad) and the rest of it is
    dropped as it comes: memory stays bounded whatever the input."""
    rest = b""
    skipping = False  # inside the dropped rest of a long line
    for chunk in chunks:
        if not chunk:
            continue
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            skipping = False
            chunk = chunk[end + 1:]
            if not chunk:
                continue
        data = rest + chunk if rest else chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if end - start > max_line:
                yield data[start:start + max_line] + b"\n"
            else:
                yield data[start:end + 1]
            start = end + 1
        rest = data[start:]
        if len(rest) > max_line:
            yield rest[:max_line] + b"\n"
            rest, skipping = b"", True
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


def _file_chunks(path: str) -> Iterator[bytes]:
    """A file's (decompressed) bytes in pieces of about BLOCK_BYTES, for read_blocks."""
    with open(path, "rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic == GZIP_MAGIC:
            yield from gunzip_chunks(iter(lambda: handle.read(BLOCK_BYTES // 8), b""))
        else:
            yield from iter(lambda: handle.read(BLOCK_BYTES), b"")


def _file_line_lists(path: str) -> Iterator[tuple[list[bytes], list[int]]] | None:
    """A plain file's lines, a block at a time, with their sizes (`Source.line_lists`); None for a
    gzipped file. Each line is read in C (`readline` mapped over the block) and bounded by MAX_LINE: a
    longer one is cut there, a newline added (it decodes as nothing and is counted bad) and the rest of
    it dropped as it is read, so memory stays bounded whatever the file."""
    handle = io.BufferedReader(io.FileIO(path), BLOCK_BYTES)  # closed by the generator
    try:
        if handle.peek(2)[:2] == GZIP_MAGIC:
            handle.close()
            return None
    except BaseException:
        handle.close()
        raise

    def lists() -> Iterator[tuple[list[bytes], list[int]]]:
        with handle:
            readline = handle.readline
            count = max(BLOCK_BYTES >> 10, 1)  # lines of about a KiB: a block of about BLOCK_BYTES
            while True:
                lines = list(map(readline, repeat(MAX_LINE, count)))
                if not lines[-1]:  # the end of the file
                    del lines[lines.index(b""):]
                    if not lines:
                        return
                sizes = list(map(len, lines))
                if max(sizes) >= MAX_LINE:
                    _cut_long_lines(lines, sizes, readline)
                yield lines, sizes
    return lists()


def _cut_long_lines(lines: list[bytes], sizes: list[int], readline: Callable[[int], bytes]) -> None:
    """A line read as MAX_LINE bytes without a newline is cut there: the newline added, and the rest of
    it (the entries read after it, up to the one that ends it, and then whatever more it takes) dropped,
    as `lines_of_chunks` does for streams."""
    kept: list[bytes] = []
    skipping = False
    for line in lines:
        if skipping:
            skipping = not line.endswith(b"\n")
            continue
        if len(line) >= MAX_LINE and not line.endswith(b"\n"):
            line += b"\n"
            skipping = True
        kept.append(line)
    while skipping:
        rest = readline(MAX_LINE)
        skipping = bool(rest) and not rest.endswith(b"\n")
    lines[:] = kept
    sizes[:] = list(map(len, kept))


def _stream_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    head = stream.read(2)
    if not head:
        return

    def chunks() -> Iterator[bytes]:
        yield head
        while chunk := stream.read(BLOCK_BYTES):
            yield chunk
    yield from gunzip_chunks(chunks()) if head == GZIP_MAGIC else chunks()


def _stream_lines(stream: IO[bytes]) -> Iterator[bytes]:
    return lines_of_chunks(_stream_chunks(stream))


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
            # stdin is read once: whichever opener is called first gets it
            sources.append(Source("<stdin>", lambda s=stream: _stream_lines(s),  # type: ignore[misc]
                                  lambda s=stream: _stream_chunks(s)))  # type: ignore[misc]
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
        # line lists for a regular file only: a FIFO (/dev/fd/N) cannot be opened twice if it is gzipped
        lists = (lambda p=path: _file_line_lists(p)) if os.path.isfile(path) else None
        sources.append(Source(path, lambda p=path: _file_lines(p),  # type: ignore[misc]
                              lambda p=path: _file_chunks(p), lists))  # type: ignore[misc]
    return sources


def decode_event(line: bytes) -> Event:
    """One log line (its newline stripped) as an Event, for readers of a live stream (`logs --follow`);
    msgspec.DecodeError or msgspec.ValidationError when it is not one. No proof window, no counting."""
    return _DECODER.decode(line)
