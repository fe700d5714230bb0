"""Audit events from a TARGET's control-plane nodes, over the one connection kaudit has to each (for
`kaudit simulate`, `tune` and `logs`).

Per node: the manifest says where the log is (`--audit-log-path`, through its hostPath mount) and
how it rotates (`log_location`, the one place that says why a node has no log to read). One streamed
remote command (as root, `logs-history.sh`, the one node-side reader: `kaudit logs` adds a time window
and a `grep -F` prefilter) then sends the rotated files, oldest first, and the live file last. gzip
travels on the wire where the node has gzip (rotated `.gz` files go as they are); everything is base64
text, so a sudo pty cannot mangle it. Nothing is copied to local disk. The nodes are merged by time
(stageTimestamp).

Node access (node, manifest, targets, transport) is imported lazily, inside the functions that read a
TARGET.
"""

from __future__ import annotations

import binascii
import contextlib
import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.reader import (
    MAX_LINE,
    AnyRecord,
    E,
    LogFormatError,
    ReadStats,
    Source,
    gunzip_chunks,
    lines_of_chunks,
    read_as,
)
from installer.errors import InputError, KauditError, NodeError
from installer.scripts import load as scripts


class _Section:
    """The lines of one file in a node's stream: base64 text until `@end`, decoded (and gunzipped)."""

    def __init__(self, readline: Callable[[], str], mode: str) -> None:
        self.readline, self.mode = readline, mode

    def _chunks(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if line == "@end" or line == "":
                return
            try:
                yield binascii.a2b_base64(line)
            except binascii.Error:
                raise EOFError("garbled stream") from None

    def lines(self) -> Iterator[bytes]:
        chunks = self._chunks()
        try:
            yield from lines_of_chunks(gunzip_chunks(chunks) if self.mode == "gz" else chunks)
        finally:
            for _ in chunks:  # drain to @end, so the next file starts where it should
                pass


def stream_sources(node: str, readline: Callable[[], str]) -> Iterator[Source]:
    """The files of one node's logs-history.sh output, as sources named `node:path`."""
    while True:
        line = readline()
        if line in ("", "@done"):
            return
        if line.startswith("@missing "):
            raise NodeError(f"no audit log at {line[9:]} (auditing is configured, but nothing was written yet)",
                            node=node)
        if line.startswith("@file "):
            _, mode, path = line.split(" ", 2)
            section = _Section(readline, mode)
            yield Source(f"{node}:{path}", section.lines)


def merge_by_time(streams: list[Iterator[AnyRecord[E]]]) -> Iterator[AnyRecord[E]]:
    """Several nodes' records, each in its own order, merged by stageTimestamp (RFC 3339 UTC sorts as text)."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda r: r.event.stageTimestamp or r.event.requestReceivedTimestamp)


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
class OpenedLogs:
    """The readable nodes of some targets, and the error of each one that is not (unreachable, auditing
    off, a webhook, the log not mounted, ...)."""

    logs: list[NodeLog] = field(default_factory=list)
    failures: list[tuple[str, KauditError]] = field(default_factory=list)  # (node, why it cannot be read)
    sessions: list[Any] = field(default_factory=list)

    @property
    def problems(self) -> list[tuple[str, str]]:
        """(node, one line) for each node that cannot be read."""
        return [(node, exc.message) for node, exc in self.failures]

    @property
    def kubernetes_version(self) -> tuple[int, int] | None:
        """The first node's that says."""
        return next((log.info.kubernetes_version for log in self.logs if log.info.kubernetes_version), None)

    @property
    def rotation(self) -> tuple[int, int, int] | None:
        """The first node's --audit-log-maxage, -maxbackup, -maxsize (0 when absent)."""
        if not self.logs:
            return None
        flags = self.logs[0].info.audit.flags
        return (_int(flags, "--audit-log-maxage"), _int(flags, "--audit-log-maxbackup"),
                _int(flags, "--audit-log-maxsize"))

    def sources(self, log: NodeLog, *, since: str = "", until: str = "", groups: Sequence[str] = ()
                ) -> Iterator[Source]:
        """One node's files (`logs-history.sh`): the rotated ones whose time range overlaps since..until
        (lumberjack's name form, "" for none), then the live log; every line cut at MAX_LINE; prefiltered
        by fixed-string groups (each group's alternatives separated by newlines), none for every line."""
        from installer.transport import open_session

        session = open_session(log.node.transport, *scripts.LOGS_HISTORY.bind(
            list(groups), p=log.path, since=since, until=until, max=str(MAX_LINE)))
        self.sessions.append(session)
        return stream_sources(log.name, checked(log.name, session.readline))

    def records(self, stats: ReadStats, decoder: msgspec.json.Decoder[E]) -> Iterator[AnyRecord[E]]:
        """Every node's every event, merged by time."""
        return merge_by_time([read_as(self.sources(log), decoder, stats) for log in self.logs])

    def close(self) -> None:
        for s in self.sessions:
            with contextlib.suppress(Exception):
                s.close()
        self.sessions.clear()
        for log in self.logs:
            with contextlib.suppress(Exception):
                log.node.close()


def checked(node: str, readline: Callable[[], str]) -> Callable[[], str]:
    """`readline` of a node's stream, its `@error KIND PATH` lines (a log path that cannot be read as a
    log) raised as NodeErrors."""
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


def _int(flags: dict[str, str], name: str) -> int:
    try:
        return int(flags.get(name, "0"))
    except ValueError:
        return 0


def log_location(node_name: str, manifest_bytes: bytes | None, problem: str | None) -> tuple[str, Any]:
    """(host path of the audit log, the manifest's info), or the reason there is no log to read."""
    from installer.manifest.parse import ManifestError
    from installer.manifest.read import read as read_manifest

    if manifest_bytes is None:
        raise NodeError(problem or "no kube-apiserver manifest", node=node_name)
    try:
        info = read_manifest(manifest_bytes)
    except ManifestError as exc:
        raise NodeError(f"the kube-apiserver manifest cannot be read: {exc.message}", node=node_name) from None
    flags = info.audit.flags
    path = flags.get("--audit-log-path")
    if not path:
        if flags.get("--audit-webhook-config-file"):
            raise NodeError("events go to a webhook (--audit-webhook-config-file, no --audit-log-path); "
                            "kaudit cannot read them on the node", node=node_name)
        raise NodeError("auditing is off (no --audit-log-path): nothing to read; see `kaudit status`, "
                        "and `kaudit enable` to turn it on", node=node_name)
    if path == "-":
        raise NodeError("the audit log goes to the API server's standard output (--audit-log-path=-), i.e. the "
                        "container log: save it to a file and read that", node=node_name)
    if flags.get("--audit-log-format", "json") == "legacy":
        raise LogFormatError(f"{node_name}: the audit log is in the legacy format (--audit-log-format=legacy); "
                             "kaudit reads the json format")
    host = info.host_path(path)
    if host is None:
        raise NodeError(f"--audit-log-path {path} is not on a hostPath mount: the events stay inside the "
                        "container and are lost at each restart", node=node_name)
    return host, info


def open_logs(raw_targets: list[str], ssh: Any, *, with_policy: bool = False) -> OpenedLogs:
    """Connect to every control-plane node of the targets (`targets.connect.open_targets`) and find each
    one's audit log; a node that cannot be read is a failure, the others go on (`kaudit logs` reads
    those; `simulate` and `tune` need every node: `raise_failures`). A target list that cannot be parsed
    is an InputError, and so is one without a control-plane node."""
    from installer.node.facts import gather
    from installer.targets.connect import Unreachable, open_targets

    opened = OpenedLogs()
    try:
        for _, node in open_targets(raw_targets, ssh):
            if isinstance(node, Unreachable):
                opened.failures.append((node.name, node.error))
                continue
            try:
                facts = gather(node.transport, node.layout)
                path, info = log_location(node.name, facts.manifest, facts.manifest_problem)
                log = NodeLog(node, path, info)
                if with_policy:
                    log.policy = _policy_bytes(node, info)
                opened.logs.append(log)
            except KauditError as exc:
                opened.failures.append((exc.node or node.name, exc))
                node.close()
    except BaseException:
        opened.close()
        raise
    if not opened.logs and not opened.failures:
        raise InputError("no control-plane node in " + " ".join(raw_targets))
    return opened


def raise_failures(opened: OpenedLogs) -> OpenedLogs:
    """`opened`, when every node could be read; else it is closed and the first node's error raised."""
    if opened.failures:
        opened.close()
        raise opened.failures[0][1]
    return opened


def _policy_bytes(node: Any, info: Any) -> bytes | None:
    """The policy file the node's manifest names, as the node has it; None when it cannot be read."""
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
