"""Helpers for the fault-injection tests (issue 7): in-process rollouts with the transport seam,
node checks a user would make, and the tally of scenarios (tries, survived, data lost)."""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from installer.change.phases import NodeResult, Options, audit_tokens
from installer.change.rollout import Rollout, run_rollout
from installer.targets.connect import NodeContext, open_transport
from installer.transport import Transport
from installer.transport.ssh import SSHOptions
from tests.node.node import TestNode

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
MANIFESTS = "/etc/kubernetes/manifests"
TALLY = os.environ.get("KAUDIT_FAULT_TALLY", "")


def tally(scenario: str, tries: int, survived: int, data_lost: int) -> None:
    """Append one scenario's counts (KAUDIT_FAULT_TALLY=file to collect them across workers)."""
    if TALLY:
        with open(TALLY, "a", encoding="utf-8") as f:
            f.write(json.dumps({"scenario": scenario, "tries": tries, "survived": survived,
                                "data_lost": data_lost}) + "\n")


def manifest_of(node: TestNode) -> bytes:
    return node.path(MANIFEST).read_bytes()


def rollout(node: TestNode, planner: Any, plan_input: Callable[[NodeContext], Any], *, user: str = "kadmin",
            timeout: float = 2.0, guard_grace: float = 1.0, break_lock: bool = False,
            after_command: Callable[[Transport, int], None] | None = None,
            sudo_password: str | None = None,
            progress: Callable[[Transport, str], None] | None = None,
            before_script: tuple[str, Callable[[Transport], None]] | None = None,
            after_script: tuple[str, Callable[[Transport], None]] | None = None,
            ) -> tuple[NodeResult, Transport]:
    """One kaudit change in this process, with `after_command(transport, k)` as the fault seam;
    `progress(transport, message)` sees the wait's progress lines, and `before_script = (script, f)`
    (`after_script`) calls `f(transport)` just before (after) each remote run of that script
    (scripts.CONFIRM, say)."""
    opened: list[Transport] = []

    def connect(target: Any) -> Transport:
        t = open_transport(target, SSHOptions(identity_file=str(node.key_path), known_hosts=str(node.known_hosts),
                                              sudo_password=sudo_password))
        if after_command is not None:
            t.after_command = lambda k: after_command(t, k)
        if before_script is not None or after_script is not None:
            run = t.run

            def run_hooked(s: str, *args: Any, **kwargs: Any) -> Any:
                if before_script is not None and s == before_script[0]:
                    before_script[1](t)
                result = run(s, *args, **kwargs)
                if after_script is not None and s == after_script[0]:
                    after_script[1](t)
                return result
            t.run = run_hooked  # type: ignore[method-assign]
        opened.append(t)
        return t

    def tell(name: str, message: str) -> None:
        if progress is not None and opened:
            progress(opened[0], message)

    options = Options(timeout=timeout, guard_grace=guard_grace, break_lock=break_lock)
    job = Rollout(connect, planner, plan_input, options, lambda n, d: True, tell)
    results = run_rollout([node.target(user)], job)
    assert len(results) == 1, results
    return results[0], opened[0]


def cut_after(k: int) -> Callable[[Transport, int], None]:
    def seam(t: Transport, n: int) -> None:
        if n == k:
            t.disconnect_abruptly()  # type: ignore[attr-defined]
    return seam


def cut(t: Transport) -> None:
    """Drop the connection without a goodbye (a laptop's network gone)."""
    t.disconnect_abruptly()  # type: ignore[attr-defined]


def guard_pids(node: TestNode) -> list[int]:
    """Every kaudit guard process on the node (its argv: sh -c GUARD guard STATE MANIFEST ID ...)."""
    code = ("import os\n"
            "for p in os.listdir('/proc'):\n"
            "    try: argv = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')\n"
            "    except OSError: continue\n"
            "    if p.isdigit() and argv[:2] == [b'sh', b'-c'] and argv[3:4] == [b'guard']: print(p)\n")
    out = node.run(f"{sys.executable} -c {shlex.quote(code)}").stdout
    return [int(x) for x in out.split()]


def journal(node: TestNode) -> list[dict[str, Any]]:
    path = node.path("/var/lib/kaudit/journal")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def guard_done(node: TestNode, timeout: float = 20.0) -> None:
    """Wait until no kaudit guard is left on the node (it restored, or stood down)."""
    def gone() -> bool:
        rc = node.run("g=$(cut -d' ' -f1 /var/lib/kaudit/guard.pid 2>/dev/null) && [ -n \"$g\" ] && kill -0 \"$g\"",
                      check=False).returncode
        return rc != 0
    node.wait_for(gone, timeout, interval=0.1, what="the guard to finish")


def lock_free(node: TestNode, timeout: float = 10.0) -> bool:
    def free() -> bool:
        cmd = "[ ! -e /var/lib/kaudit/lock ] || flock -n /var/lib/kaudit/lock true"
        return node.run(cmd, check=False).returncode == 0
    try:
        node.wait_for(free, timeout, interval=0.1, what="the lock to be free")
    except Exception:
        return False
    return True


def healthy_with(node: TestNode, manifest: bytes, timeout: float = 20.0) -> dict[str, Any]:
    """A ready API-server instance whose audit flags are exactly the manifest's."""
    want = sorted(audit_tokens(manifest))

    def ok() -> dict[str, Any] | None:
        cur = node.current_instance()
        if cur and cur["ready_at"] and sorted(a for a in audit_tokens_of(cur["argv"])) == want:
            return cur
        return None
    return node.wait_for(ok, timeout, interval=0.05, what="a healthy instance of the expected manifest")


def audit_tokens_of(argv: list[str]) -> list[str]:
    out: list[str] = []
    for i, tok in enumerate(argv):
        if tok.startswith("--audit-"):
            out.append(tok)
            if "=" not in tok and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                out.append(argv[i + 1])
    return out


def valid_manifest(data: bytes) -> bool:
    from installer.manifest.parse import ManifestError
    from installer.manifest.read import read
    from installer.manifest.validate import validate_pod

    try:
        read(data)
    except ManifestError:
        return False
    return not validate_pod(data, None)


@contextmanager
def watch_manifests_dir(node: TestNode) -> Iterator[set[str]]:
    """Sample the manifests directory while the block runs; yields the set of stray names seen
    (anything but the manifest and dotfile temps)."""
    strays: set[str] = set()
    stop = threading.Event()
    d = node.path(MANIFESTS)

    def sample() -> None:
        while not stop.is_set():
            try:
                names = os.listdir(d)
            except OSError:
                names = []
            strays.update(n for n in names if n != "kube-apiserver.yaml" and not n.startswith("."))
            time.sleep(0.005)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        yield strays
    finally:
        stop.set()
        th.join()


def listing(node: TestNode, *node_dirs: str) -> dict[str, tuple[int, bytes | None]]:
    """Every file under the node dirs: mode and (for files) bytes. For 'nothing changed' checks."""
    out: dict[str, tuple[int, bytes | None]] = {}
    for nd in node_dirs:
        root = node.path(nd)
        if not root.exists():
            continue
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            out[str(p.relative_to(root.parent))] = (st.st_mode, p.read_bytes() if p.is_file() else None)
    return out
