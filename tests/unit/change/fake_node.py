"""An in-memory node for the change workflow's unit tests, after kind's pkg/exec fake Cmder.

`FakeNode` is a Transport: it recognises each node script by its text (`scripts.APPLY.text`, ...),
reads its arguments by the script's own parameter names, and answers as the script would on a node
(its key=value lines and exit code), from a small state: the manifest bytes, the content-addressed
audit files, the journal, the backups, an armed guard, the node's lock. Faults are knobs: a script's
exit code (conflict, payload, unsafe, tampered), an instance that never becomes healthy, one that
appears only after N waits, the guard that restored first, the connection lost before or after a
script. No sshd, no sleeps: a whole change runs in milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer.errors import NodeError
from installer.scripts import load as scripts
from installer.scripts.exitcodes import ScriptExit
from installer.transport import Result, Session, Transport

MANIFESTS = "/etc/kubernetes/manifests"
MANIFEST_PATH = f"{MANIFESTS}/kube-apiserver.yaml"
SCRIPT_NAMES = {s.text: s.name for s in scripts.all_scripts()}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class FakeSession(Session):
    """A long-running script's output, line by line; '' once the lines (or the connection) end."""

    def __init__(self, lines: list[str], node: FakeNode) -> None:
        self._lines = list(lines)
        self._node = node
        self.closed = False

    def readline(self) -> str:
        if self._node.lost or not self._lines:
            return ""
        return self._lines.pop(0)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeNode(Transport):
    """One control-plane node in memory; `calls` lists the scripts run, in order."""

    manifest: bytes
    name: str = "cp1"
    now: float = 1_700_000_000.0  # node clock, epoch seconds
    uptime: float = 1_000.0  # seconds since boot
    journal: list[dict[str, Any]] = field(default_factory=list)
    backups: dict[str, bytes] = field(default_factory=dict)  # id -> the manifest before that change
    files: dict[str, bytes] = field(default_factory=dict)  # path -> content: policies, webhook configs
    guard: str | None = None  # the change an armed guard waits for
    lock_holder: str | None = None  # another run's lock
    free_kb: int = 10 ** 7
    pid: int = 100  # the running kube-apiserver
    # Faults and knobs:
    apply_exit: int = 0  # apply.sh's exit code: ScriptExit.CONFLICT, PAYLOAD, UNSAFE, TAMPERED, or 1
    crashing: set[bytes] = field(default_factory=set)  # manifests whose kube-apiserver never becomes ready
    ready_after: int = 0  # waits that time out before a new instance appears
    guard_restored_first: bool = False  # confirm.sh finds the guard's time was up and it restored
    lose_before: str | None = None  # a script's name: the connection drops just before it runs
    lose_after: str | None = None  # ... just after it ran on the node and answered (a session: while it runs)
    before: dict[str, Callable[[FakeNode], None]] = field(default_factory=dict)  # script -> called before it
    interrupt_at: str | None = None  # a script's name: Ctrl-C just before it runs
    calls: list[str] = field(default_factory=list)
    lost: bool = False
    sessions: list[FakeSession] = field(default_factory=list)

    def __post_init__(self) -> None:
        Transport.__init__(self)
        self.waits = 0

    # -- the transport -----------------------------------------------------------------------------
    def _script(self, command: str) -> tuple[str, dict[str, str], list[str]]:
        argv = shlex.split(command)
        assert argv[:2] == ["sh", "-c"] and argv[3] == "sh", argv[:4]
        name = SCRIPT_NAMES.get(argv[2])
        assert name is not None, f"not a node script: {argv[2][:80]!r}"
        params = scripts.Script(name).params
        args = argv[4:]
        return name, dict(zip(params, args, strict=False)), args[len(params):]

    def _enter(self, name: str) -> None:
        if self.lost:
            raise NodeError("the connection was lost", node=self.name)
        if name == self.interrupt_at:
            self.interrupt_at = None
            raise KeyboardInterrupt
        if name == self.lose_before:
            self.lost = True
            raise NodeError("the connection was lost", node=self.name)
        self.calls.append(name)
        if name in self.before:
            self.before[name](self)
        self.now += 1
        self.uptime += 1

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        name, args, rest = self._script(command)
        self._enter(name)
        rc, out = getattr(self, "_" + name.replace("-", "_"))(args, rest, stdin or b"")
        if name == self.lose_after:  # the answer arrived; every later command finds the connection gone
            self.lost = True
        return Result(rc, "".join(f"{line}\n" for line in out).encode(), b"")

    def _open(self, command: str) -> Session:
        name, args, rest = self._script(command)
        self._enter(name)
        lines = getattr(self, "_" + name.replace("-", "_"))(args, rest)
        if name == self.lose_after:
            self.lost = True
        session = FakeSession(lines, self)
        self.sessions.append(session)
        return session

    # -- the scripts -------------------------------------------------------------------------------
    def _gather(self, args: dict[str, str], rest: list[str], stdin: bytes) -> tuple[int, list[str]]:
        out = [f"static_pod_path={MANIFESTS}", f"now={self.now:.0f}", f"btime={self.now - self.uptime:.0f}",
               "clk_tck=100", f"manifest={_b64(self.manifest)}"]
        if self.lock_holder:
            out.append(f"lock_holder={self.lock_holder}")
        confirmed = [r for r in self.journal if r.get("state") == "confirmed"]
        begun = [r for r in self.journal if r.get("state") == "begin"]
        for key, records in (("last_confirmed", confirmed), ("last_record", self.journal), ("last_begin", begun)):
            if records:
                out.append(f"{key}={_b64(json.dumps(records[-1]).encode())}")
        if self.guard:
            out.append("guard_pid=4242")
        for path, data in self.files.items():
            out.append(f"audit_file={sha(data)} {self.now - 100:.0f} {path}")
        out.append(f"free_kb={self.free_kb}")
        argv = b"\0".join(a.encode() for a in self._argv(self.manifest))
        out.append(f"proc={self.pid} {(self.uptime - 50) * 100:.0f} {_b64(argv)}")
        return 0, out

    def _lock(self, args: dict[str, str], rest: list[str]) -> list[str]:
        if self.lock_holder and args["mode"] != "break":
            return [f"held {self.lock_holder}"]
        return ["locked"]

    def _apply(self, args: dict[str, str], rest: list[str], stdin: bytes) -> tuple[int, list[str]]:
        parts = [base64.b64decode(line) for line in stdin.splitlines()]
        manifest, policy, webhook, record, meta = parts
        if self.apply_exit == ScriptExit.UNSAFE:
            return self.apply_exit, [f"unsafe={args['state']} is writable by others"]
        if self.apply_exit == ScriptExit.PAYLOAD or " ".join(sha(p) for p in parts) != args["sums"]:
            return ScriptExit.PAYLOAD, ["payload=incomplete"]
        if self.apply_exit == ScriptExit.CONFLICT or sha(self.manifest) != args["expect"]:
            return ScriptExit.CONFLICT, [f"conflict={sha(self.manifest)}"]
        if self.apply_exit == ScriptExit.TAMPERED:
            return self.apply_exit, [f"tampered={args['policy']}"]
        if self.apply_exit:
            return self.apply_exit, ["step=journal", "step=backup"]
        ident = args["id"]
        self.journal.append(json.loads(record))
        self.backups[ident] = self.manifest
        json.loads(meta)
        for path, data in ((args["policy"], policy), (args["webhook"], webhook)):
            if path:
                self.files[path] = data
        self.guard = ident
        self.manifest = manifest
        return 0, ["step=journal", "step=backup", "step=files", "step=guard", "step=manifest",
                   f"applied={self.now:.0f} {self.uptime:.2f}"]

    def _await(self, args: dict[str, str], tokens: list[str]) -> list[str]:
        self.waits += 1
        wanted = (args["mode"] == "absent" and not self._audit_tokens()) or set(tokens) <= set(self._audit_tokens())
        if self.manifest in self.crashing or self.waits <= self.ready_after or not wanted:
            return ["progress=waiting for a new kube-apiserver", "timeout=crash-looping",
                    "log=E0101 00:00:00.000000 1 run.go:74] \"command failed\" err=\"audit policy: no such file\""]
        self.pid += 1
        verify = ["verify=found"] if args["vurl"] else []
        return ["progress=starting", *verify, f"ready={self.pid} {self.uptime:.2f} {self.now + 2.5:.3f} probe"]

    def _confirm(self, args: dict[str, str], rest: list[str], stdin: bytes) -> tuple[int, list[str]]:
        ident = args["id"]
        if self.guard_restored_first:
            self.manifest, self.guard = self.backups[ident], None
            self.journal.append({"id": ident, "state": "guard-restored", "at": self.now})
            return ScriptExit.GUARD_RESTORED, ["guard-restored"]
        self.guard = None
        self.journal.append(json.loads(args["record"]))
        return 0, ["confirmed"]

    def _restore(self, args: dict[str, str], rest: list[str], stdin: bytes) -> tuple[int, list[str]]:
        ident = args["id"]
        if ident not in self.backups:
            return ScriptExit.NO_BACKUP, [f"no backup {ident}"]
        self.manifest, self.guard = self.backups[ident], None
        self.journal.append(json.loads(args["record"]))
        return 0, [f"restored={self.now:.0f} {self.uptime:.2f}"]

    def _takeover(self, args: dict[str, str], rest: list[str], stdin: bytes) -> tuple[int, list[str]]:
        ident = args["id"]
        if self.guard is None:
            restored = any(r.get("id") == ident and r.get("state") == "guard-restored" for r in self.journal)
            return 0, [*(["restored=1"] if restored else []), "state=gone"]
        if self.guard != ident:
            return 0, ["state=other"]
        if ident not in self.backups:
            return 0, ["state=nobackup"]
        if sha(self.manifest) != args["new"]:
            return 0, ["state=changed"]
        return 0, [f"armed={self.now:.0f}", f"applied={self.now - 30:.0f} {self.uptime - 30:.2f}",
                   f"before={_b64(self.backups[ident])}", "state=pending"]

    # -- helpers -----------------------------------------------------------------------------------
    def _argv(self, manifest: bytes) -> list[str]:
        from installer.manifest.parse import ManifestError
        from installer.manifest.read import load

        try:
            return list(load(manifest).info.argv)
        except ManifestError:  # the kubelet runs nothing of a manifest that does not parse: an old instance
            return ["kube-apiserver"]

    def _audit_tokens(self) -> list[str]:
        from installer.change.phases import audit_tokens

        return audit_tokens(self.manifest)

    def states(self, ident: str) -> list[str]:
        """The journal's states for one change, in order."""
        return [str(r.get("state")) for r in self.journal if r.get("id") == ident]
