"""Unified diff of two manifests for --dry-run: colour on a terminal, plain otherwise."""

from __future__ import annotations

import difflib

_RED, _GREEN, _CYAN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"


def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    out = [ln.removesuffix("\r") + "\n" for ln in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1] + "\n\\ No newline at end of file\n")
    return out


def unified_diff(old: bytes, new: bytes, name: str, *, color: bool, context: int = 3) -> str:
    """The change from `old` to `new` as a unified diff; empty when they are equal."""
    if old == new:
        return ""
    path = name.lstrip("/")  # git's headers: a/etc/kubernetes/..., never a//etc/...
    text = "".join(difflib.unified_diff(_lines(old), _lines(new), f"a/{path}", f"b/{path}", n=context))
    return colorize(text) if color else text


def colorize(diff: str) -> str:
    """ANSI colours for a plain unified diff (for a terminal)."""
    out = []
    for ln in diff.splitlines(keepends=True):
        if ln.startswith(("+++", "---")):
            out.append(f"{_BOLD}{ln.rstrip(chr(10))}{_RESET}\n")
        elif ln.startswith("@@"):
            out.append(f"{_CYAN}{ln.rstrip(chr(10))}{_RESET}\n")
        elif ln.startswith("+"):
            out.append(f"{_GREEN}{ln.rstrip(chr(10))}{_RESET}\n")
        elif ln.startswith("-"):
            out.append(f"{_RED}{ln.rstrip(chr(10))}{_RESET}\n")
        else:
            out.append(ln)
    return "".join(out)
