"""`docker exec` transport: kind nodes are containers and run no sshd.

Every command is `docker exec -i --user 0 NODE sh -c SCRIPT sh ARG...`: the container's root,
no sudo, no pty; stdin carries file contents. The engine binary is `docker` unless kind was told
to use another provider (`KIND_EXPERIMENTAL_PROVIDER=podman|nerdctl`), whose CLIs take the same
`exec` arguments.

There is no connection to hold, so the node-side lock holder (docs/design.md section 4) is a process
started by the operation itself; `close()` has nothing to release.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from installer.errors import InputError, NodeError
from installer.transport import Result, Session, Transport, popen_session

PROVIDERS = ("docker", "podman", "nerdctl")


def engine_binary(explicit: str | None = None) -> str:
    """The container engine CLI kind uses here: `docker`, or the one named by KIND_EXPERIMENTAL_PROVIDER."""
    name = explicit or os.environ.get("KIND_EXPERIMENTAL_PROVIDER") or "docker"
    if name not in PROVIDERS:
        raise InputError(f"KIND_EXPERIMENTAL_PROVIDER={name!r} is not one of {', '.join(PROVIDERS)}")
    return name


def require(binary: str, why: str) -> str:
    """The full path of `binary`, or one line saying it is missing and what needs it."""
    path = shutil.which(binary)
    if path is None:
        raise InputError(f"the {binary} command is not installed or not on PATH ({why})")
    return path


class DockerExecTransport(Transport):
    def __init__(self, container: str, *, engine: str | None = None, display: str | None = None) -> None:
        super().__init__()
        self.container = container
        self.engine = engine_binary(engine)
        self.name = display or container
        self._binary = require(self.engine, f"needed to reach {self.name} with {self.engine} exec")

    def argv(self, command: str) -> list[str]:
        """`command` is an already quoted `sh -c ...` string (Transport.run builds it)."""
        return [self._binary, "exec", "-i", "--user", "0", self.container, *shlex.split(command)]

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        try:
            proc = subprocess.run(
                self.argv(command), input=stdin or b"", capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise NodeError(f"command timed out after {timeout} s", node=self.name) from None
        except OSError as exc:
            raise NodeError(f"cannot run {self.engine}: {exc.strerror or exc}", node=self.name) from None
        if proc.returncode != 0 and _engine_failed(proc.stderr):
            # The engine itself failed (daemon down, no such container, container stopped): not the script.
            raise NodeError(f"{self.engine} exec failed: {_first_line(proc.stderr)}", node=self.name)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def _open(self, command: str) -> Session:
        return popen_session(self.argv(command))


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "no output"


_ENGINE_ERRORS = (
    "error response from daemon",
    "error: no such container",
    "cannot connect to the docker daemon",
    "permission denied while trying to connect to the docker daemon",
    "oci runtime exec failed",
    "error: can only exec into running containers",  # podman
)


def _engine_failed(stderr: bytes) -> bool:
    """The engine's own errors come first on stderr; a script's messages do not start like these."""
    head = stderr.decode("utf-8", "replace").lstrip().lower()
    return head.startswith(_ENGINE_ERRORS)
