"""How commands and files reach a node: one small interface, several ways in.

Everything kaudit does on a node is a POSIX sh script run as root (through sudo when the login
user is not root). Arguments travel as positional parameters, quoted once here, so no value a
user gives is ever interpreted by a shell. A node needs only sh, coreutils, sudo and curl/wget.
Imports installer.scripts (what it runs), installer.targets.parse (the Target value) and installer.errors.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from installer.errors import NodeError
from installer.scripts import load as scripts
from installer.scripts.exitcodes import ScriptExit


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


def sh_command(script: str, args: Sequence[str]) -> str:
    """`sh -c SCRIPT sh ARG...`, every piece quoted: values never reach a shell as code."""
    return " ".join(shlex.quote(p) for p in ["sh", "-c", script, "sh", *args])


class Transport:
    """Run a script as root on one node. Subclasses implement `_run`."""

    name: str = "node"
    # Where the node was reached on the network once connected (the resolved host, behind its jump host):
    # two nodes with the same address share a network stack. "" when unknown.
    address: str = ""
    # Seam for fault injection: called after each remote command with its 1-based number.
    after_command: Callable[[int], None] | None = None

    def __init__(self) -> None:
        self.commands_run = 0

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        raise NotImplementedError

    def _open(self, command: str) -> Session:
        raise NotImplementedError

    def run(
        self, script: str, args: Sequence[str] = (), *, stdin: bytes | None = None, timeout: float | None = None
    ) -> Result:
        """One remote command: `script` run by sh as root with `args` as $1, $2, ..."""
        result = self._run(sh_command(script, args), stdin, timeout)
        self.commands_run += 1
        if self.after_command is not None:
            self.after_command(self.commands_run)
        return result

    def check(
        self, script: str, args: Sequence[str] = (), *, stdin: bytes | None = None, timeout: float | None = None,
        what: str,
    ) -> Result:
        result = self.run(script, args, stdin=stdin, timeout=timeout)
        if result.rc != 0:
            raise NodeError(f"{what} failed: {result.err or f'exit code {result.rc}'}", node=self.name)
        return result

    def read_file(self, path: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        result = self.run(*scripts.READ_FILE.bind(path=path))
        if result.rc == ScriptExit.MISSING:
            return None
        if result.rc != 0:
            raise NodeError(f"cannot read {path}: {result.err}", node=self.name)
        return result.stdout

    def write_file(self, path: str, data: bytes, *, mode: int = 0o600, owner: str = "0:0") -> None:
        """Atomic: readers see the old file or the new one, never a part."""
        import hashlib

        sha = hashlib.sha256(data).hexdigest()
        self.check(*scripts.ATOMIC_WRITE.bind(target=path, mode=f"{mode:o}", owner=owner, sum=sha), stdin=data,
                   what=f"writing {path}")

    def close(self) -> None:
        """Release the connection (and with it the node-side lock holder)."""


class Session:
    """A long-running remote command whose output is read line by line (lock holder, waits)."""

    def readline(self) -> str:
        """The next line without its newline; '' at the end of output."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _StreamSession(Session):
    def __init__(self, stream: Any, closer: Callable[[], None]) -> None:
        self._stream = stream
        self._closer = closer

    def readline(self) -> str:
        try:
            line = self._stream.readline()
        except (OSError, EOFError):  # the connection is gone: the command's output ends here
            return ""
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
        return text.rstrip("\r\n") if text else ""

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):  # gone with the connection: nothing left to close
            self._closer()


def popen_session(argv: list[str]) -> Session:
    """A session that is a local process (local and docker exec transports): its stdin stays open
    until the session is closed, as an SSH channel's does."""
    import subprocess

    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def close() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    return _StreamSession(proc.stdout, close)


def open_session(transport: Transport, script: str, args: Sequence[str] = ()) -> Session:
    """Start `script` as root; it keeps running (with stdin open) until the session is closed."""
    session = transport._open(sh_command(script, args))
    transport.commands_run += 1
    if transport.after_command is not None:
        transport.after_command(transport.commands_run)
    return session
