"""`kaudit logs` end to end: read every control-plane node's audit log (history or follow), filter,
and print events (text, JSON lines), a summary, or detection findings.

Kept apart from the typer command (installer/commands/logs.py) so tests drive it directly. The reading
is the reader's (`installer.auditlog.reader`, `installer.auditlog.node`); the node-side selection and
prefilter are in `logs_node`, the filters in `filters`, the catalogue in `detections`.
"""

from __future__ import annotations

import heapq
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Any

import msgspec

from installer.auditlog.match import event_time, short_user, status_code, well_formed_time
from installer.auditlog.reader import Event, ReadStats, Record
from installer.errors import InputError, KauditError, printable
from installer.logs.filters import Filters, Misses, own_request

SCHEMA_VERSION = 1


class _Extra(msgspec.Struct):
    """The fields the text line shows that the reader's Event does not decode."""

    sourceIPs: tuple[str, ...] = ()
    userAgent: str = ""


_EXTRA = msgspec.json.Decoder(_Extra)


@dataclass
class Request:
    targets: list[str]
    filters: Filters
    output: str = "text"  # text | json
    utc: bool = False
    follow: bool = False
    summary: bool = False
    detect: list[str] | None = None  # None: no --detect; []: every detection
    fail_on_findings: bool = False
    bodies: bool = False
    color: bool = False
    save: str | None = None  # --save DIR: the selected events also written there, one JSON-lines file per node
    include_kaudit: bool = False  # --include-kaudit: kaudit's own probe and verification requests too


class Saver:
    """`--save DIR`: a 0700 directory (made, or an existing one tightened) holding one 0600 file per node
    (`<node>.jsonl`, the events as `-o json` prints them: bodies only with --bodies, masked). Nothing is
    written anywhere without it.

    kaudit often runs as root: DIR, and every entry already in it, must be the invoking user's (its
    effective uid), or it is refused before anything is written; the directory is reached without
    following a link, and each file is created anew (O_EXCL, O_NOFOLLOW, 0600) in it, never opened
    where someone else may have put a file or a link (issue 23 item 8)."""

    def __init__(self, folder: str | None, bodies: bool, *, uid: int | None = None) -> None:
        import os

        self.folder, self.bodies = folder, bodies
        self.files: dict[str, IO[bytes]] = {}
        self.dir_fd: int | None = None
        self.uid = os.geteuid() if uid is None else uid
        if folder is None:
            return
        self.dir_fd = _private_dir(folder, self.uid)

    def line(self, node: str, raw: bytes) -> bytes | None:
        """What `write` would write for this event (None without --save): computed apart from the write so
        that a malformed event fails before anything of it is written."""
        if self.folder is None:
            return None
        return json_line(node, raw, bodies=self.bodies) + b"\n"

    def write(self, node: str, raw: bytes) -> None:
        self.write_line(node, self.line(node, raw))

    def write_line(self, node: str, data: bytes | None) -> None:
        if self.folder is None or data is None:
            return
        handle = self.files.get(node)
        if handle is None:
            handle = self.files[node] = self._create(node)
        handle.write(data)

    def _create(self, node: str) -> IO[bytes]:
        import os
        import re
        import stat

        assert self.dir_fd is not None and self.folder is not None
        name = re.sub(r"[^A-Za-z0-9._@-]+", "_", node) + ".jsonl"
        path = os.path.join(self.folder, name)
        try:
            try:
                st = os.lstat(name, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass
            else:  # a file of an earlier --save into the same directory: replaced, if it is ours
                if st.st_uid != self.uid or not stat.S_ISREG(st.st_mode):
                    raise InputError(f"--save: {path} is not a file of yours (owner uid {st.st_uid}): "
                                     "kaudit does not write into it")
                os.unlink(name, dir_fd=self.dir_fd)
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self.dir_fd)
            os.fchmod(fd, 0o600)
        except OSError as exc:
            raise InputError(f"--save: cannot write {path}: {exc.strerror or exc}") from None
        return os.fdopen(fd, "wb")

    def close(self) -> None:
        import os

        for handle in self.files.values():
            handle.close()
        self.files.clear()
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None


def _private_dir(folder: str, uid: int) -> int:
    """An open descriptor of `folder` (made 0700 when missing), checked to be the user's and to hold
    nothing of anyone else's, then made 0700; else a one-line InputError, nothing written."""
    import errno
    import os
    import stat

    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.EEXIST):
            raise InputError(f"--save {folder}: not a directory") from None
        raise InputError(f"--save {folder}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"--save {folder}: not a directory")
        if st.st_uid != uid:
            raise InputError(f"--save {folder}: the directory belongs to uid {st.st_uid}, not to you (uid {uid}): "
                             "kaudit saves events only into a directory of your own")
        for entry in os.scandir(fd):
            owner = entry.stat(follow_symlinks=False).st_uid
            if owner != uid:
                raise InputError(f"--save {folder}: {entry.name} in it belongs to uid {owner}, not to you "
                                 f"(uid {uid}): kaudit saves events only into a directory of your own")
        os.fchmod(fd, 0o700)
    except OSError as exc:
        os.close(fd)
        raise InputError(f"--save {folder}: {exc.strerror or exc}") from None
    except InputError:
        os.close(fd)
        raise
    return fd


@dataclass
class Outcome:
    code: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Selected:
    """What the selection kept and left out: the events shown (or summarised, or hunted) and kaudit's own
    requests left out."""

    shown: int = 0
    own: int = 0

    def without_own(self, events: Iterable[tuple[Record, bytes, str]], include: bool
                    ) -> Iterator[tuple[Record, bytes, str]]:
        for item in events:
            if not include and own_request(item[0].event, item[1]):
                self.own += 1
                continue
            self.shown += 1
            yield item


def own_note(own: int) -> str:
    return (f"{own} of kaudit's own probe and verification requests left out (--include-kaudit shows them)")


# --------------------------------------------------------------------------- text


_COLORS = {2: "\x1b[32m", 3: "\x1b[36m", 4: "\x1b[33m", 5: "\x1b[31m"}


def _parse_ts(ts: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def latency_ms(ev: Event) -> int | None:
    if ev.stage == "RequestReceived":
        return None
    a, b = _parse_ts(ev.requestReceivedTimestamp), _parse_ts(ev.stageTimestamp)
    if a is None or b is None:
        return None
    return max(0, int((b - a).total_seconds() * 1000))


def short_agent(agent: str) -> str:
    """`kubectl/v1.34.1 (linux/amd64) kubernetes/abc` -> `kubectl/v1.34.1`; at most 32 characters."""
    first = agent.split(" ", 1)[0] if agent else "-"
    return first if len(first) <= 32 else first[:31] + "…"


def resource_text(ev: Event) -> str:
    ref = ev.objectRef
    if ref is None or not ref.resource:
        return ev.requestURI.split("?", 1)[0] or "-"
    text = ref.resource + (f".{ref.apiGroup}" if ref.apiGroup else "")
    return text + (f"/{ref.subresource}" if ref.subresource else "")


def object_text(ev: Event) -> str:
    ref = ev.objectRef
    if ref is None:
        return "-"
    if ref.namespace and ref.name:
        return f"{ref.namespace}/{ref.name}"
    if ref.namespace:
        return f"{ref.namespace}/"
    return ref.name or "-"


def format_time(ts: str, utc: bool) -> str:
    """RFC 3339 to the millisecond, always with its zone, so a time can be pasted into --since: UTC with
    `Z` (--utc), else the local time with its offset (`2026-05-01T12:00:00.342+02:00`)."""
    parsed = _parse_ts(ts)
    if parsed is None:
        return ts or "-"
    try:
        if utc:
            return parsed.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return parsed.astimezone().isoformat(timespec="milliseconds")
    except (OverflowError, ValueError):  # a crafted time that leaves the representable range in another zone
        return ts


def text_line(node: str, ev: Event, raw: bytes, *, utc: bool = False, color: bool = False) -> str:
    """One event, one line: time, node, user, verb, resource[/sub], namespace/name, code, latency,
    source IP, user agent. Never a body."""
    try:
        extra = _EXTRA.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        extra = _Extra()
    code = status_code(ev)
    code_text = str(code) if code else ("recv" if ev.stage == "RequestReceived" else "-")
    lat = latency_ms(ev)
    user = short_user(ev.user.username) if ev.user and ev.user.username else "-"
    parts = [
        format_time(ev.stageTimestamp or ev.requestReceivedTimestamp, utc), node, user, ev.verb or "-",
        resource_text(ev), object_text(ev), code_text, f"{lat}ms" if lat is not None else "-",
        extra.sourceIPs[0] if extra.sourceIPs else "-", short_agent(extra.userAgent),
    ]
    cleaned = [_clean(p) for p in parts]
    if color and code // 100 in _COLORS:
        cleaned[6] = f"{_COLORS[code // 100]}{code_text}\x1b[0m"
    return "  ".join(cleaned)


def _clean(text: str) -> str:
    """No terminal control characters from a log into the user's terminal."""
    return printable(text)


# What a malformed event (a field of a type or shape kaudit does not expect, in a body or anywhere it
# reads) raises while it is printed, masked, summarised or matched: the event is counted and skipped
# with its file:line, as a bad line is, and the others go on (issue 23 item 3).
MALFORMED = (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError, RecursionError,
             msgspec.DecodeError, msgspec.ValidationError)


def well_formed(ev: Event) -> bool:
    """What the reader's typed decoding does not check of an event kaudit sorts, filters and counts by:
    its timestamps are RFC 3339 times."""
    return well_formed_time(ev.stageTimestamp) and well_formed_time(ev.requestReceivedTimestamp)


# --------------------------------------------------------------------------- json


_BODY_KEYS = (b'"requestObject"', b'"responseObject"')


def json_line(node: str, raw: bytes, *, bodies: bool = False) -> bytes:
    """The event as written plus `"node"`; bodies dropped unless asked, and masked even then."""
    node_field = b',"node":' + msgspec.json.encode(node) + b"}"
    if not any(k in raw for k in _BODY_KEYS):
        return raw.rstrip()[:-1] + node_field
    doc = msgspec.json.decode(raw)
    if not isinstance(doc, dict):
        return raw
    from installer.auditlog.masking import mask_event

    if bodies:
        mask_event(doc)
    else:
        doc.pop("requestObject", None)
        doc.pop("responseObject", None)
    doc["node"] = node
    return msgspec.json.encode(doc)


# --------------------------------------------------------------------------- reading


def _sort_key(item: tuple[Record, bytes, str]) -> str:
    return event_time(item[0].event)


def history(opened: Any, filters: Filters, stats: ReadStats, *, prefilter: bool = True
            ) -> Iterator[tuple[Record, bytes, str]]:
    """Every node's events in the window, merged by stageTimestamp, exactly filtered: (record, raw, node)."""
    from installer.logs import logs_node

    keep = filters.predicate()
    streams: list[Iterator[tuple[Record, bytes, str]]] = []
    for log in opened.logs:
        def one(log: Any = log) -> Iterator[tuple[Record, bytes, str]]:
            for rec, raw in logs_node.history(log, filters, stats, opened, prefilter=prefilter):
                try:
                    ok = well_formed(rec.event)
                    wanted = ok and keep(rec.event)
                except MALFORMED:
                    ok = wanted = False
                if not ok:  # malformed: counted and skipped, as a bad line is
                    stats.bad(rec.source, rec.line)
                elif wanted:
                    yield rec, raw, log.name
        streams.append(one())
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_sort_key)


def _warn(err: IO[str], text: str) -> None:
    err.write(f"kaudit: {printable(text)}\n")
    err.flush()


def logs_command(req: Request, ssh_options: Callable[[], Any], stdout: IO[str], stderr: IO[str] | None = None) -> int:
    """The whole command; returns the exit code. Bad input raises KauditError (exit 2)."""
    from installer.auditlog import node as remote

    err = stderr if stderr is not None else sys.stderr
    if req.save is not None and (req.summary or req.detect is not None):
        raise InputError("--save keeps the selected events: it does not combine with --summary or --detect")
    if req.follow and (req.summary or req.detect is not None):
        raise InputError("--follow prints events as they come: it does not combine with --summary or --detect")
    catalogue = None
    if req.detect is not None:
        import installer.detections.catalogue as detections

        catalogue = detections.select(detections.load(), req.detect)
    saver = Saver(req.save, req.bodies)  # refused (exit 2) before any node is reached
    try:
        opened = remote.open_logs(req.targets, ssh_options(), with_policy=req.detect is not None)
    except BaseException:
        saver.close()
        raise
    out = Outcome(problems=list(opened.problems))
    try:
        for node, problem in opened.problems:
            _warn(err, f"{node}: {problem}")
        if not opened.logs:
            return 2
        if req.follow:
            code = follow(opened, req, stdout, err, saver)
            return code if code else (2 if out.problems else 0)
        stats = ReadStats()
        selected = Selected()
        # the prefilter keeps a superset of what the filters keep, so summaries and detections see the same
        events = selected.without_own(history(opened, req.filters, stats), req.include_kaudit)
        if req.summary or catalogue is not None:
            code = _report(opened, events, req, catalogue, stats, stdout, out, selected)
        else:
            code = _print_events(events, req, stdout, stats, saver)
        _stats_note(stats, err)
        if selected.own:
            _warn(err, own_note(selected.own))
        if not selected.shown and not stats.bad_live:
            if req.filters.asked():
                _warn(err, no_match(opened, req))
            elif not selected.own:
                _warn(err, "no event: the audit log holds none")
        if code:
            return code
        return 2 if out.problems or stats.bad_live else 0
    except KauditError:
        raise
    finally:
        saver.close()
        opened.close()


# How many events of the window the no-match note looks at, at most, for the values the log holds.
NEAREST_LIMIT = 200_000


def no_match(opened: Any, req: Request) -> str:
    """The one line that says the filters matched no event, with the values the log does hold: a second
    read of the window without the other filters (and without the node's prefilter)."""
    misses = Misses(req.filters, limit=NEAREST_LIMIT)
    window = Filters(since=req.filters.since, until=req.filters.until)
    try:
        for rec, raw, _node in history(opened, window, ReadStats()):
            try:
                if not req.include_kaudit and own_request(rec.event, raw):
                    continue
                misses.add(rec.event)
            except MALFORMED:
                continue
            if misses.full:
                break
    except KauditError:  # the second look is a courtesy: without it, the note names no values
        return misses.head()
    return misses.message()


def _stats_note(stats: ReadStats, err: IO[str]) -> None:
    for why in stats.bad_files:
        _warn(err, f"skipped {why}")
    if stats.bad_lines:
        where = ", ".join(stats.bad_where[:3])
        _warn(err, f"skipped {stats.bad_lines} truncated or unreadable line(s) ({where}"
              f"{', ...' if stats.bad_lines > 3 else ''})")


def _print_events(events: Iterable[tuple[Record, bytes, str]], req: Request, stdout: IO[str],
                  stats: ReadStats | None = None, saver: Saver | None = None) -> int:
    write = stdout.write
    saver = saver if saver is not None else Saver(req.save, req.bodies)
    stats = stats if stats is not None else ReadStats()
    try:
        for rec, raw, node in events:
            try:  # everything that reads the event first, then the writes
                if req.output == "json":
                    shown = json_line(node, raw, bodies=req.bodies).decode("utf-8", "replace")
                else:
                    shown = text_line(node, rec.event, raw, utc=req.utc, color=req.color)
                saved = saver.line(node, raw)
            except MALFORMED:
                stats.bad(rec.source, rec.line)
                continue
            write(shown + "\n")
            saver.write_line(node, saved)
    finally:
        saver.close()
    stdout.flush()
    return 0


def _report(opened: Any, events: Iterable[tuple[Record, bytes, str]], req: Request, catalogue: Any,
            stats: ReadStats, stdout: IO[str], out: Outcome, selected: Selected | None = None) -> int:
    from installer.logs import summary as summary_mod

    summ = summary_mod.Summary() if req.summary else None
    hunt = None
    if catalogue is not None:
        import installer.detections.catalogue as detections

        hunt = detections.Hunt(catalogue)
    for rec, raw, _node in events:
        try:
            if summ is not None:
                summ.add(rec.event, raw)
            if hunt is not None:
                hunt.add(rec.event, raw)
        except MALFORMED:
            stats.bad(rec.source, rec.line)
    doc: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION, "command": "logs",
                           "nodes": [log.name for log in opened.logs],
                           "problems": [{"node": n, "error": e} for n, e in out.problems],
                           "read": {"events": stats.events, "badLines": stats.bad_lines,
                                    "badWhere": stats.bad_where[:20], "badFiles": stats.bad_files,
                                    "kauditOwn": selected.own if selected is not None else 0}}
    if summ is not None:
        doc["summary"] = summ.to_json(req.targets)
    found = 0
    if hunt is not None:
        import installer.detections.catalogue as detections

        blind = detections.blind_spots(catalogue, [(log.name, log.policy, log.info) for log in opened.logs])
        doc["findings"] = hunt.findings()
        doc["blind"] = blind
        found = len(doc["findings"])
    if req.output == "json":
        stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")
    else:
        from installer.errors import clean_doc

        shown = clean_doc(doc)  # user names, resources and paths from the log: no terminal controls
        if summ is not None:
            stdout.write(summary_mod.render_text(shown["summary"]))
        if hunt is not None:
            import installer.detections.catalogue as detections

            stdout.write(detections.render_text(shown["findings"], shown["blind"]))
    stdout.flush()
    return 1 if req.fail_on_findings and found else 0


# --------------------------------------------------------------------------- follow


def follow(opened: Any, req: Request, stdout: IO[str], err: IO[str], saver: Saver | None = None) -> int:
    """Tail every node at once until Ctrl-C; a node that drops out is a warning, the others go on.
    Returns 2 when a node was lost (Ctrl-C included), else 0; Ctrl-C with every node alive propagates
    (exit 130) after the sessions are closed."""
    from installer.auditlog.reader import decode_event
    from installer.logs import logs_node

    keep = req.filters.predicate()
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    sessions = []
    for log in opened.logs:
        sessions.append((log.name, logs_node.follow_session(log, opened)))

    def pump(name: str, session: Any) -> None:
        while True:
            line = session.readline()
            if not line:
                lines.put((name, None))
                return
            lines.put((name, line))

    threads = [threading.Thread(target=pump, args=s, daemon=True) for s in sessions]
    for t in threads:
        t.start()
    saver = saver if saver is not None else Saver(req.save, req.bodies)
    live = len(threads)
    lost = 0
    bad = 0
    own = 0
    closing = False
    try:
        while live:
            name, line = lines.get()
            if line is None:
                live -= 1
                if not closing:
                    lost += 1
                    _warn(err, f"{name}: the node dropped out; following the others")
                continue
            if line.startswith("@error "):
                _warn(err, f"{name}: the audit log path {line.split(' ', 2)[2]} is a directory, not a file")
                continue
            raw = line.encode("utf-8", "surrogateescape")
            try:
                ev = decode_event(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                bad += 1
                continue
            try:
                if ev.kind != "Event" or not well_formed(ev) or not keep(ev):
                    bad += ev.kind == "Event" and not well_formed(ev)
                    continue
                if not req.include_kaudit and own_request(ev, raw):
                    own += 1
                    continue
                if req.output == "json":
                    shown = json_line(name, raw, bodies=req.bodies).decode("utf-8", "replace")
                else:
                    shown = text_line(name, ev, raw, utc=req.utc, color=req.color)
                saved = saver.line(name, raw)
            except MALFORMED:
                bad += 1
                continue
            stdout.write(shown + "\n")
            saver.write_line(name, saved)
            stdout.flush()
    except KeyboardInterrupt:
        if not lost:
            raise
        _warn(err, f"interrupted; {lost} node(s) were lost while following")
    finally:
        closing = True
        saver.close()
        opened.close()
        if bad:
            _warn(err, f"skipped {bad} truncated or malformed line(s)")
        if own:
            _warn(err, own_note(own))
    return 2 if lost else 0


def pick_color(stream: IO[str]) -> bool:
    import os

    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
