"""`kaudit logs` on a TARGET's control-plane nodes: which files to read, the cheap filtering pushed to
the node, and following the live log.

Built on the reader's node stream (`installer.auditlog.node`: `open_logs`, the nodes opened and each
one's log located; `OpenedLogs.sources`, the one node-side reader `logs-history.sh`), with two things
it takes from `kaudit logs`, done on the node in POSIX sh + coreutils + grep + gzip (kind nodes have no
Python, no jq):

- rotated files are chosen by their time range: lumberjack names a backup after the moment it was
  rotated (UTC), so backup i holds the events between backup i-1's name and its own, and the live
  file those after the newest backup's;
- a fixed-string prefilter (`grep -F`, `installer.logs.filters.Filters.grep_groups`), so a 2 GB
  log does not cross the wire for ten matching events. Exact filtering happens locally.

Following: `tail -F` (by name: a rotation's rename and the new file are followed), started in the
background of a script whose foreground waits on its stdin; closing the session (Ctrl-C, end) ends
the wait and the script kills its tail, so nothing is left running on the node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from installer.auditlog.node import NodeLog, OpenedLogs
from installer.auditlog.reader import LogFormatError, ReadStats, Record, Source, read
from installer.scripts import load as scripts


def lumberjack_time(utc: str) -> str:
    """`2026-05-01T10:00:00.000000Z` (parse_time) as a backup name's `2026-05-01T10-00-00.000`."""
    return f"{utc[:10]}T{utc[11:19].replace(':', '-')}{utc[19:23]}"


class _RawHolder:
    """The line a source handed the reader last: the raw bytes of the record the reader yields next
    (the reader decodes a line and yields its record before it asks for another)."""

    last: bytes = b""
    inner: Any = None

    def wrap(self, source: Source) -> Source:
        def lines() -> Iterator[bytes]:
            self.inner = source.open()
            for line in self.inner:
                self.last = line
                yield line
        return Source(source.name, lines)

    def abandon(self) -> None:
        """The file being read is given up: its section of the stream is drained now (to its `@end`),
        so that the next file starts where it should."""
        inner, self.inner = self.inner, None
        close = getattr(inner, "close", None)
        if close is not None:
            close()


def history(log: NodeLog, filters: Any, stats: ReadStats, opened: OpenedLogs,
            *, prefilter: bool = True) -> Iterator[tuple[Record, bytes]]:
    """One node's events in the window, as (record, the line as written without its newline)."""
    since = lumberjack_time(filters.since) if filters.since else ""
    until = lumberjack_time(filters.until) if filters.until else ""
    groups = ["\n".join(g) for g in filters.grep_groups()] if prefilter else []
    holder = _RawHolder()
    for source in opened.sources(log, since=since, until=until, groups=groups):
        try:
            for rec in read([holder.wrap(source)], stats):
                raw = holder.last
                raw = raw[len(raw) - rec.size:] if rec.size <= len(raw) else raw
                yield rec, raw.rstrip(b"\r\n")
        except LogFormatError as exc:
            # one file that is not an audit log (a stray file named like a rotated one): a warning
            # naming it, and the node's other files are read (issue 23 item 10)
            holder.abandon()
            stats.bad_files.append(exc.message)
            if source.name == f"{log.name}:{log.path}":  # the live log itself: the node was not read (exit 2)
                stats.bad_live += 1


def follow_session(log: NodeLog, opened: OpenedLogs) -> Any:
    from installer.transport import open_session

    session = open_session(log.node.transport, *scripts.LOGS_FOLLOW.bind(p=log.path))
    opened.sessions.append(session)
    return session
