"""Errors that end a command, each carrying the exit code docs/design.md section 4 promises; and
`printable`, the one sanitiser of text that came from a node or a log before it reaches a terminal
(`clean_doc`: of every string of a report)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# Exit codes (docs/design.md section 4).
EXIT_OK = 0
EXIT_FAILED_RESTORED = 1
EXIT_REFUSED = 2
EXIT_NOT_RESTORED = 3
EXIT_STOPPED = 4  # a cluster's rollout stopped part-way: some of its nodes changed, the others not
EXIT_INTERRUPTED = 130


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with every character a terminal could take as a control (escape sequences, carriage
    returns, bidi overrides: what `str.isprintable` refuses) as `?`; `newlines` keeps newlines and tabs.
    For anything printed that came from a node or a log: user names, paths, kubectl's stderr, the API
    server's log lines (issue 23 item 9)."""
    if text.isprintable():
        return text
    keep = "\n\t" if newlines else ""
    return "".join(c if c.isprintable() or c in keep else "?" for c in text)


def clean_doc(value: Any) -> Any:
    """A report (simulate's, logs' summary and findings) with every string in it `printable`, for the text
    renderers: user names, resources, paths and node names come from the log (issue 23 item 9)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: clean_doc(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_doc(v) for v in value]
    return value


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest `word`: the same spelling in another case first, then difflib's closest at 0.6
    (as typed, then lowercased); None when none is near."""
    options = list(dict.fromkeys(choices))
    close = [c for c in options if c.lower() == word.lower()] or difflib.get_close_matches(word, options, n=1)
    if not close:
        lowered = {c.lower(): c for c in options}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1)]
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """The suffix ` (did you mean 'x'?)` naming the choice `nearest` to `word`, or "" when none is near:
    the one did-you-mean of every message that names an unknown profile, variable, detection or field."""
    close = nearest(word, choices)
    return f" (did you mean {close!r}?)" if close is not None else ""


class KauditError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, node: str | None = None) -> None:
        message = printable(message, newlines=True)  # messages quote node text (kubectl, file names)
        super().__init__(message)
        self.message = message
        self.node = node

    def __str__(self) -> str:
        return f"{printable(self.node)}: {self.message}" if self.node else self.message


class InputError(KauditError):
    """Bad input from the user: nothing was touched."""


class NodeError(KauditError):
    """A node could not be reached or read, or refused the change before anything changed."""


class OperationFailed(KauditError):
    """The change failed and the node was restored."""

    exit_code = EXIT_FAILED_RESTORED


class RestoreFailed(KauditError):
    """The change failed and the node could NOT be restored: a human is needed."""

    exit_code = EXIT_NOT_RESTORED
