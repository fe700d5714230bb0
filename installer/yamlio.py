"""One ruamel.yaml reader per thread and setting: creating a YAML() object is costly (it scans
for plugins), and kaudit parses a manifest several times per node, for every node of a fleet."""

from __future__ import annotations

import threading
from typing import Any

_local = threading.local()


def reader(typ: str = "safe") -> Any:
    """A ruamel.yaml YAML(typ, pure=True) private to this thread, for reading only. Not for a reader with
    `version` set: ruamel forgets the version after the first document such an object reads."""
    cache: dict[str, Any] = _local.__dict__.setdefault("readers", {})
    if typ not in cache:
        from ruamel.yaml import YAML

        cache[typ] = YAML(typ=typ, pure=True)
    return cache[typ]
