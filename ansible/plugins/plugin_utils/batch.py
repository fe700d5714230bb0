"""One kaudit run for a play's hosts: the controller-side rendezvous of the forks that run one task.

Ansible runs an action plugin once per host, in forked workers (at most `forks` at a time). The first fork
of a task takes a lock, runs ONE kaudit for every host of the play batch and writes each
host's result into a state file; every fork (that one included) then takes its own host's result from it.
Forks that start while kaudit runs wait on the lock. Nothing waits for a fork that is not scheduled yet: the
batch is formed from the play's host list, not from the forks that happen to run, so `forks` smaller than the
number of hosts cannot deadlock.

The files live in a private directory (0700) per ansible-playbook process, `TMPDIR/kaudit-ansible-UID/
run-PID`, each 0600. A host's result is dropped from the state once its fork took it; the last one removes
the results. Directories of ansible-playbook processes that are gone are removed by the next run. Nothing
secret is written: kaudit's JSON results, and per host whether it has a become password (never the password).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from typing import Any


def private_dir() -> str:
    """TMPDIR/kaudit-ansible-UID (0700, owned by this user): refused when someone else could write to it."""
    base = os.path.join(tempfile.gettempdir(), f"kaudit-ansible-{os.getuid()}")
    os.makedirs(base, mode=0o700, exist_ok=True)
    st = os.lstat(base)
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isdir(base) or os.path.islink(base):
        raise OSError(f"{base} is not a private directory of this user (0700)")
    return base


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(base: str) -> None:
    """Remove the run directories of ansible-playbook processes that are gone."""
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            if name.startswith("run-") and name[4:].isdigit() and not _alive(int(name[4:])):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def fingerprint(request: dict[str, Any]) -> str:
    """What a host's own fork must find the batch used for it: task arguments, check and diff mode, its
    connection variables as kaudit got them, whether it has a become password."""
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


class BatchState:
    """The lock and the state file of one task for one play batch, in this ansible-playbook run."""

    def __init__(self, task_uuid: str) -> None:
        base = private_dir()
        run = os.path.join(base, f"run-{os.getppid()}")  # the forks' parent: the ansible-playbook process
        if not os.path.isdir(run):
            sweep(base)
            os.makedirs(run, mode=0o700, exist_ok=True)
        key = hashlib.sha256(task_uuid.encode()).hexdigest()[:24]
        self.lock_path = os.path.join(run, f"{key}.lock")
        self.state_path = os.path.join(run, f"{key}.json")
        self._fh: Any = None

    def __enter__(self) -> BatchState:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fh = os.fdopen(fd, "r+")
        fcntl.flock(self._fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()

    def load(self) -> dict[str, Any] | None:
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                state: dict[str, Any] = json.load(fh)
                return state
        except (OSError, ValueError):
            return None

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.state_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, self.state_path)

    def take(self, state: dict[str, Any], host: str) -> dict[str, Any] | None:
        """The host's entry ({fp, result}), once: later calls for the same host get None. A result is dropped
        from the file when its host took it; what stays is the list of hosts the batches covered."""
        entries: dict[str, Any] = state.setdefault("hosts", {})
        entry = entries.pop(host, None)
        if entry is None:
            return None
        self.save(state)
        out: dict[str, Any] = entry
        return out
