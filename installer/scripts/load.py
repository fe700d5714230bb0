"""Loading a node script: its text with the shared pieces inlined, and its parameters by name.

Each script is one file under sh/ that the node runs as `sh -c TEXT sh ARG...`. Shared pieces live
in sh/lib/ and are pulled in by a line of the form

    . "$(dirname "$0")/lib/common.sh"  # kaudit:include

which shellcheck follows (`shellcheck -x`) and the loader replaces by the piece itself, so one remote
command carries everything it needs. A script's positional parameters are declared once, by the
script's own `name=$1 other=$2 ...` line; `bind` builds the argument list from names, so no caller
can pass them in another order.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

_INCLUDE = re.compile(r'^\. "\$\(dirname "\$0"\)/lib/([\w.-]+\.sh)"\s+# kaudit:include$', re.M)
_PARAMS = re.compile(r"^(?:\w+=\$(?:\d|\{\d+\})\s*)+$", re.M)
_PARAM = re.compile(r"(\w+)=\$(?:(\d)|\{(\d+)\})")
VERSION_MARK = "@KAUDIT_VERSION@"


def _read(relative: str) -> str:
    return files("installer.scripts").joinpath(f"sh/{relative}").read_text(encoding="utf-8")


def _lib(name: str) -> str:
    """A shared piece without its shellcheck header lines (they only make sense in the file)."""
    lines = _read(f"lib/{name}").splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("# shellcheck "))


def parameters(text: str) -> tuple[str, ...]:
    """The names of the script's positional parameters, in order, from its `a=$1 b=$2` line."""
    found = _PARAMS.search(text)
    if found is None:
        return ()
    pairs = [(m.group(1), int(m.group(2) or m.group(3))) for m in _PARAM.finditer(found.group(0))]
    if [n for _, n in pairs] != list(range(1, len(pairs) + 1)):
        raise ValueError(f"parameters out of order: {found.group(0)!r}")
    return tuple(name for name, _ in pairs)


@dataclass(frozen=True)
class Script:
    name: str

    @functools.cached_property
    def source(self) -> str:
        """The file as it is on disk (what shellcheck reads)."""
        return _read(f"{self.name}.sh")

    @functools.cached_property
    def text(self) -> str:
        """What runs on the node: the file with its includes inlined, and kaudit's version where the
        text says `@KAUDIT_VERSION@` (the user agent of its requests, lib/probe.sh)."""
        from installer import __version__

        return _INCLUDE.sub(lambda m: _lib(m.group(1)), self.source).replace(VERSION_MARK, __version__)

    @functools.cached_property
    def params(self) -> tuple[str, ...]:
        return parameters(self.source)

    def args(self, rest: Sequence[str] = (), **values: str) -> list[str]:
        """The positional arguments, from names; `rest` follows them (the script's "$@" after `shift`)."""
        missing = [p for p in self.params if p not in values]
        extra = [k for k in values if k not in self.params]
        if missing or extra:
            raise TypeError(f"{self.name}.sh takes {', '.join(self.params) or 'no named parameters'}; "
                            f"missing {missing}, unknown {extra}")
        return [values[p] for p in self.params] + list(rest)

    def bind(self, rest: Sequence[str] = (), **values: str) -> tuple[str, list[str]]:
        """(text, args): what Transport.run and open_session take."""
        return self.text, self.args(rest, **values)


def script(name: str) -> Script:
    return Script(name)


def all_scripts() -> list[Script]:
    return sorted((Script(p.name.removesuffix(".sh")) for p in files("installer.scripts").joinpath("sh").iterdir()
                   if p.name.endswith(".sh")), key=lambda s: s.name)


# The scripts by name (one per file in sh/).
APPLY = Script("apply")
ATOMIC_WRITE = Script("atomic-write")
AWAIT = Script("await")
CONFIRM = Script("confirm")
GATHER = Script("gather")
GUARD = Script("guard")
LIST_BACKUPS = Script("list-backups")
LOCK = Script("lock")
LOGS_FOLLOW = Script("logs-follow")
LOGS_HISTORY = Script("logs-history")
PROBE_ONCE = Script("probe-once")
PROBE_PEERS = Script("probe-peers")
READ_BACKUP = Script("read-backup")
READ_FILE = Script("read-file")
RESTORE = Script("restore")
TAKEOVER = Script("takeover")
STATUS = Script("status")
