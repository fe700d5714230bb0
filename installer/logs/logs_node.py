"""`kaudit logs` on a TARGET's control-plane nodes: which files to read, the cheap filtering pushed to
the node, and following the live log.

Built on the reader's node stream (`installer.auditlog.node`): the same wire protocol (`@file gz|raw
PATH`, base64 lines, `@end`, `@done`) and the same manifest reading (`log_location`), with two things
added on the node side, in POSIX sh + coreutils + grep + gzip (kind nodes have no Python, no jq):

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

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from installer.auditlog.node import log_location, stream_sources
from installer.auditlog.reader import MAX_LINE, LogFormatError, ReadStats, Record, Source, read
from installer.errors import InputError, KauditError, NodeError
from installer.scripts import load as scripts


def lumberjack_time(utc: str) -> str:
    """`2026-05-01T10:00:00.000000Z` (parse_time) as a backup name's `2026-05-01T10-00-00.000`."""
    return f"{utc[:10]}T{utc[11:19].replace(':', '-')}{utc[19:23]}"


@dataclass
class NodeLog:
    """One readable node: its connection, the audit log's host path, and its manifest's audit facts."""

    node: Any  # NodeContext
    path: str
    info: Any  # installer.manifest.read.ManifestInfo
    policy: bytes | None = None

    @property
    def name(self) -> str:
        return str(self.node.name)


@dataclass
class Opened:
    logs: list[NodeLog] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (node, one line)
    sessions: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for s in self.sessions:
            with contextlib.suppress(Exception):
                s.close()
        self.sessions.clear()
        for log in self.logs:
            with contextlib.suppress(Exception):
                log.node.close()


def locate(node_name: str, manifest: bytes | None, problem: str | None) -> tuple[str, Any]:
    """The log's host path and the manifest's info, or a one-line NodeError for `logs`' users. The
    manifest is parsed once; only when there is no log does it look again, to say why in logs' words."""
    from installer.manifest.parse import ManifestError
    from installer.manifest.read import read as read_manifest

    try:
        return log_location(node_name, manifest, problem)
    except NodeError:
        flags: dict[str, str] | None = None
        if manifest is not None:
            with contextlib.suppress(ManifestError):
                flags = read_manifest(manifest).audit.flags
        if flags is not None and not flags.get("--audit-log-path"):
            if flags.get("--audit-webhook-config-file"):
                raise NodeError("events go to a webhook (--audit-webhook-config-file, no --audit-log-path); "
                                "kaudit cannot read them on the node", node=node_name) from None
            raise NodeError("auditing is off (no --audit-log-path): nothing to read; see `kaudit status`, "
                            "and `kaudit enable` to turn it on", node=node_name) from None
        raise


def open_nodes(raw_targets: list[str], ssh: Any, *, with_policy: bool = False) -> Opened:
    """Connect to every control-plane node of the targets; a node that cannot be read is a problem
    line, the others go on. A target list that cannot be parsed is an InputError."""
    from installer.node.facts import gather
    from installer.targets.connect import Unreachable, open_targets

    opened = Opened()
    try:
        for _, node in open_targets(raw_targets, ssh):
            if isinstance(node, Unreachable):
                opened.problems.append((node.name, node.error.message))
                continue
            try:
                facts = gather(node.transport, node.layout)
                path, info = locate(node.name, facts.manifest, facts.manifest_problem)
                log = NodeLog(node, path, info)
                if with_policy:
                    log.policy = _policy_bytes(node, info)
                opened.logs.append(log)
            except KauditError as exc:
                opened.problems.append((exc.node or node.name, exc.message))
                node.close()
    except BaseException:
        opened.close()
        raise
    if not opened.logs and not opened.problems:
        raise InputError("no control-plane node in " + " ".join(raw_targets))
    return opened


def _policy_bytes(node: Any, info: Any) -> bytes | None:
    path = info.audit.flags.get("--audit-policy-file")
    if not path:
        return None
    host = info.host_path(path)
    if host is None:
        return None
    try:
        data: bytes | None = node.transport.read_file(host)
    except KauditError:
        return None
    return data


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


def _checked(node: str, readline: Callable[[], str]) -> Callable[[], str]:
    def read_line() -> str:
        line = readline()
        if line.startswith("@error "):
            _, what, path = line.split(" ", 2)
            if what == "directory":
                raise NodeError(f"the audit log path {path} is a directory, not a file: check --audit-log-path "
                                "in the manifest", node=node)
            if what == "notfile":
                raise NodeError(f"the audit log path {path} is not a regular file (a FIFO, a device, a socket): "
                                "kaudit does not read it", node=node)
            if what == "nodir":
                raise NodeError(f"no audit log directory {path} on the node (nothing was written yet, or the "
                                "hostPath is elsewhere)", node=node)
            raise NodeError(f"cannot read {path} on the node (unreadable even as root)", node=node)
        return line
    return read_line


def history(log: NodeLog, filters: Any, stats: ReadStats, opened: Opened,
            *, prefilter: bool = True) -> Iterator[tuple[Record, bytes]]:
    """One node's events in the window, as (record, the line as written without its newline)."""
    from installer.transport import open_session

    since = lumberjack_time(filters.since) if filters.since else ""
    until = lumberjack_time(filters.until) if filters.until else ""
    groups = ["\n".join(g) for g in filters.grep_groups()] if prefilter else []
    session = open_session(log.node.transport, *scripts.LOGS_HISTORY.bind(
        groups, p=log.path, since=since, until=until, max=str(MAX_LINE)))
    opened.sessions.append(session)
    holder = _RawHolder()
    for source in stream_sources(log.name, _checked(log.name, session.readline)):
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


def follow_session(log: NodeLog, opened: Opened) -> Any:
    from installer.transport import open_session

    session = open_session(log.node.transport, *scripts.LOGS_FOLLOW.bind(p=log.path))
    opened.sessions.append(session)
    return session
