"""What a node looks like right now, gathered in one remote command.

The node's own clock, the kubelet's static pod path, the manifest bytes, and every
kube-apiserver process (pid, start time, command line) from the process table, which is the
ground truth every flavor has.

Opening a node (targets.connect) needs its flavor marks before its layout is known, and every
command's first read of the node is this gather: `gather_opening` does both in the one round trip
(gather.sh reports the marks and uses the state directory they name), and the facts it read are
handed to the node's first `gather` when that comes right after (`REUSE_SECONDS`), once.
"""

from __future__ import annotations

import base64
import json
import posixpath
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from installer.errors import NodeError
from installer.node import layout
from installer.scripts import load as scripts
from installer.transport import Transport

# A kube-apiserver manifest is a few KiB; anything this big is not one (and is not worth fetching).
MAX_MANIFEST_BYTES = 1024 * 1024
# Facts read when the node was opened answer its first gather only this soon after (a command reads its
# node right after opening it; a node opened long before it is read, e.g. the later nodes of a rollout,
# is read again).
REUSE_SECONDS = 5.0


@dataclass(frozen=True)
class Process:
    pid: int
    started_at: float  # epoch seconds, node clock
    argv: list[str]


@dataclass
class NodeFacts:
    static_pod_path: str
    manifest_path: str
    manifest: bytes | None
    manifest_problem: str | None
    now: float
    free_kb: int | None
    guard_pid: int | None = None
    lock_holder: str | None = None
    state_problem: str | None = None  # a state file of the wrong kind, or a state dir others can write
    last_confirmed: dict[str, Any] | None = None  # kaudit's last completed operation on this node
    last_record: dict[str, Any] | None = None  # the journal's last line, whatever its state
    last_begin: dict[str, Any] | None = None  # the last operation started (its summary)
    processes: list[Process] = field(default_factory=list)
    audit_files: dict[str, tuple[str, float]] = field(default_factory=dict)  # path -> (sha256, mtime epoch)

    def newest_process(self) -> Process | None:
        return max(self.processes, key=lambda p: p.started_at, default=None)


def _json_b64(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        doc = json.loads(base64.b64decode(value))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _run(transport: Transport, node_layout: layout.NodeLayout, marks: Sequence[tuple[str, str]] = ()) -> str:
    result = transport.run(*scripts.GATHER.bind(
        [part for pair in marks for part in pair],
        default_dir=node_layout.manifests_dir, kubelet_config=node_layout.kubelet_config,
        manifest_name=node_layout.manifest_name, state=node_layout.state_dir, max_bytes=str(MAX_MANIFEST_BYTES),
        audit=node_layout.audit_dir))
    if result.rc != 0:
        raise NodeError(f"cannot inspect the node: {result.err or f'exit code {result.rc}'}", node=transport.name)
    return result.text


@dataclass(frozen=True)
class Opening:
    """The first round trip to a node: its flavor marks and its facts, read with `layout`."""

    hostname: str | None
    paths: frozenset[str]  # the marks given that exist on the node
    layout: layout.NodeLayout  # the layout given, with the state directory the first mark found names
    facts: NodeFacts


def gather_opening(transport: Transport, node_layout: layout.NodeLayout,
                   marks: Sequence[tuple[str, str]]) -> Opening:
    """One round trip: the node's host name, which of the mark paths exist, and its facts, read with
    `node_layout` whose state directory is that of the first mark found (each mark is (path, state
    directory of the flavor it marks), in the order the flavor is decided), else `node_layout`'s own.
    Call `keep` with the layout decided to let the node's first gather use these facts."""
    text = _run(transport, node_layout, marks)
    hostname: str | None = None
    paths: set[str] = set()
    state = node_layout.state_dir
    rest: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "hostname":
            hostname = value.strip() or None
        elif key == "path":
            paths.add(value)
        elif key == "state_dir":
            state = value
        else:
            rest.append(line)
    used = replace(node_layout, state_dir=state)
    return Opening(hostname, frozenset(paths), used, _parse("\n".join(rest), used))


_KEPT: dict[int, tuple[Transport, layout.NodeLayout, NodeFacts, float]] = {}


def keep(transport: Transport, opening: Opening) -> None:
    """Let the node's first `gather` with the opening's layout, if it comes within REUSE_SECONDS, answer
    with the facts read when the node was opened instead of a round trip."""
    _KEPT[id(transport)] = (transport, opening.layout, opening.facts, time.monotonic())


def _kept(transport: Transport, node_layout: layout.NodeLayout) -> NodeFacts | None:
    entry = _KEPT.pop(id(transport), None)
    if entry is None:
        return None
    kept_transport, kept_layout, facts, at = entry
    fresh = time.monotonic() - at <= REUSE_SECONDS
    return facts if kept_transport is transport and kept_layout == node_layout and fresh else None


def gather(transport: Transport, node_layout: layout.NodeLayout) -> NodeFacts:
    """The node's facts: one round trip, or none for the first gather right after the node was opened
    (`keep`)."""
    kept = _kept(transport, node_layout)
    return kept if kept is not None else _parse(_run(transport, node_layout), node_layout)


def _parse(text: str, node_layout: layout.NodeLayout) -> NodeFacts:
    values: dict[str, str] = {}
    procs: list[str] = []
    audit_files: dict[str, tuple[str, float]] = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "proc":
            procs.append(value)
        elif key == "audit_file":
            sha, mtime, path = [*value.split(" ", 2), "", ""][:3]
            if path:
                audit_files[path] = (sha, float(mtime) if mtime.isdigit() else 0.0)
        else:
            values[key] = value
    btime = float(values.get("btime") or 0)
    ticks = float(values.get("clk_tck") or 100)
    processes = []
    for entry in procs:
        parts = entry.split(" ", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            continue
        argv = base64.b64decode(parts[2]).decode("utf-8", "replace").split("\0")  # exact: values may hold newlines
        while argv and argv[-1] == "":
            argv.pop()
        processes.append(Process(int(parts[0]), btime + int(parts[1]) / ticks, argv))
    spp = values.get("static_pod_path") or node_layout.manifests_dir
    manifest_path = posixpath.join(spp, node_layout.manifest_name)
    manifest = base64.b64decode(values["manifest"]) if "manifest" in values else None
    problem = None
    if "manifest_missing" in values:
        problem = f"no manifest at {manifest_path}"
    elif "manifest_unreadable" in values:
        problem = f"{manifest_path} is not readable"
    elif "manifest_too_large" in values:
        problem = (f"{manifest_path} is {values['manifest_too_large']} bytes: too large for a kube-apiserver "
                   f"manifest (kaudit reads at most {MAX_MANIFEST_BYTES // 1024} KiB); nothing was changed")
    free = values.get("free_kb", "")
    return NodeFacts(
        static_pod_path=spp,
        manifest_path=manifest_path,
        manifest=manifest,
        manifest_problem=problem,
        now=float(values.get("now") or 0),
        free_kb=int(free) if free.isdigit() else None,
        lock_holder=values.get("lock_holder"),
        state_problem=values.get("state_problem"),
        last_confirmed=_json_b64(values.get("last_confirmed")),
        last_record=_json_b64(values.get("last_record")),
        last_begin=_json_b64(values.get("last_begin")),
        guard_pid=int(values["guard_pid"]) if values.get("guard_pid", "").isdigit() else None,
        processes=processes,
        audit_files=audit_files,
    )
