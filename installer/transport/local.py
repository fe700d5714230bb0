"""The `local` target: kaudit runs on the control-plane node itself."""

from __future__ import annotations

import os
import subprocess

from installer.errors import NodeError
from installer.transport import Result, Session, Transport, popen_session


class LocalTransport(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.name = "local"
        self._sudo = os.geteuid() != 0

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        argv = ["sudo", "-n", "--", "sh", "-c", command] if self._sudo else ["sh", "-c", command]
        try:
            proc = subprocess.run(argv, input=stdin or b"", capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NodeError(f"command timed out after {timeout} s", node=self.name) from exc
        if self._sudo and proc.returncode == 1 and b"sudo:" in proc.stderr and b"password" in proc.stderr:
            raise NodeError("sudo needs a password here: run kaudit as root", node=self.name)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def _open(self, command: str) -> Session:
        return popen_session(["sudo", "-n", "--", "sh", "-c", command] if self._sudo else ["sh", "-c", command])
