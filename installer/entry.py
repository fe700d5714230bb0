"""The `kaudit` entry point: answers `--help` and `--version` without importing the CLI framework.

Importing typer/click costs several times Python's own start-up; a user asking for help should
not wait for it. The cached text is typer's own rendering, checked by tests/unit/commands/test_startup.py.
"""

from __future__ import annotations

import os
import sys


def _wide_enough() -> bool:
    """Click renders help at most 80 columns wide; narrower terminals get the real renderer."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit():
        return int(cols) >= 80
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns >= 80
    except (OSError, ValueError):
        return True  # not a terminal: click assumes 80


def main() -> None:
    args = sys.argv[1:]
    if args == ["--version"]:
        from installer import __version__

        sys.stdout.write(f"kaudit {__version__}\n")
        return
    if args == ["--help"] and _wide_enough():
        from installer._help import TOP_HELP

        sys.stdout.write(TOP_HELP)
        return
    from installer.cli import main as cli_main

    cli_main()
