"""Audit events from a TARGET's control-plane nodes, over the one connection kaudit has to each.

Per node: the manifest says where the log is (`--audit-log-path`, through its hostPath mount) and
how it rotates; one streamed remote command (as root) then sends the rotated files, oldest first,
and the live file last. gzip travels on the wire where the node has gzip (rotated `.gz` files go as
they are); everything is base64 text, so a sudo pty cannot mangle it. Nothing is copied to local
disk. The nodes are merged by time (stageTimestamp).

The imports of kaudit's node, manifest and target packages are here only.
"""

from __future__ import annotations

import binascii
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.reader import (
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
    """The files of one node's stream-logs.sh output, as sources named `node:path`."""
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
class OpenedLogs:
    nodes: list[Any] = field(default_factory=list)  # NodeContext
    log_paths: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    kubernetes_version: tuple[int, int] | None = None
    rotation: tuple[int, int, int] | None = None
    sessions: list[Any] = field(default_factory=list)

    def records(self, stats: ReadStats, decoder: msgspec.json.Decoder[E]) -> Iterator[AnyRecord[E]]:
        from installer.transport import open_session

        streams = []
        for node, path in zip(self.nodes, self.log_paths, strict=True):
            session = open_session(node.transport, *scripts.STREAM_LOGS.bind(p=path))
            self.sessions.append(session)
            streams.append(read_as(stream_sources(node.name, session.readline), decoder, stats))
        return merge_by_time(streams)

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        for n in self.nodes:
            n.close()


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
            raise NodeError("auditing is webhook-only here (--audit-webhook-config-file, no --audit-log-path): "
                            "the events are on the webhook's receiver, not on the node", node=node_name)
        raise NodeError("auditing is off here (no --audit-log-path): nothing to simulate; "
                        "`kaudit enable` turns it on", node=node_name)
    if path == "-":
        raise NodeError("the audit log goes to the API server's standard output (--audit-log-path=-), i.e. the "
                        "container log: save it to a file and simulate that", node=node_name)
    if flags.get("--audit-log-format", "json") == "legacy":
        raise LogFormatError(f"{node_name}: the audit log is in the legacy format (--audit-log-format=legacy); "
                             "kaudit reads the json format")
    host = info.host_path(path)
    if host is None:
        raise NodeError(f"--audit-log-path {path} is not on a hostPath mount: the events stay inside the "
                        "container and are lost at each restart", node=node_name)
    return host, info


def open_logs(raw_targets: list[str], ssh: Any) -> OpenedLogs:
    """Connect to every control-plane node of the targets and find each one's audit log."""
    from installer.node.facts import gather
    from installer.targets.connect import Unreachable, open_targets

    opened = OpenedLogs()
    try:
        for _, node in open_targets(raw_targets, ssh):
            if isinstance(node, Unreachable):
                raise node.error
            opened.nodes.append(node)
            facts = gather(node.transport, node.layout)
            host, info = log_location(node.name, facts.manifest, facts.manifest_problem)
            opened.log_paths.append(host)
            if info.kubernetes_version and opened.kubernetes_version is None:
                opened.kubernetes_version = info.kubernetes_version
            flags = info.audit.flags
            if opened.rotation is None:
                opened.rotation = (_int(flags, "--audit-log-maxage"), _int(flags, "--audit-log-maxbackup"),
                                   _int(flags, "--audit-log-maxsize"))
        if not opened.nodes:
            raise InputError("no control-plane node in " + " ".join(raw_targets))
    except KauditError:
        opened.close()
        raise
    return opened
