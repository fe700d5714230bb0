"""Errors that end a command, each carrying the exit code docs/design.md section 4 promises."""

from __future__ import annotations

# Exit codes (docs/design.md section 4).
EXIT_OK = 0
EXIT_FAILED_RESTORED = 1
EXIT_REFUSED = 2
EXIT_NOT_RESTORED = 3
EXIT_INTERRUPTED = 130


class KauditError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


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
