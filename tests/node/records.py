"""Append-only JSON-lines records shared by the simulator, its instances and the host side.

Small O_APPEND writes are atomic, so several processes can append to one file without a lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any


def append(path: str | Path, event: str, /, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"event": event, "ts": time.time(), **fields}
    line = (json.dumps(rec, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return rec


def read(path: str | Path) -> list[dict[str, Any]]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        if line.strip():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written right now
                out.append(json.loads(line))
    return out


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Readers poll this file: never let them see half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)
