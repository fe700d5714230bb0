"""The `kaudit` entry point: answers `--help` and `--version` without importing the CLI framework.

Importing typer/click costs several times Python's own start-up; a user asking for help should
not wait for it. The cached text is typer's own rendering, checked by tests/unit/commands/test_startup.py.

The same `main` is also installed as `kubectl-kaudit`, the name kubectl looks for on PATH to run
`kubectl kaudit ...` (kubectl's plugin mechanism). Run under that name, usage lines say `kubectl kaudit`.
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


KUBECTL_PLUGIN = "kubectl-kaudit"  # the console script kubectl finds on PATH for `kubectl kaudit`
KUBECTL_PROG = "kubectl kaudit"


def program_name(argv0: str) -> str:
    """What usage lines call the program: `kubectl kaudit` when run as the kubectl plugin, else `kaudit`."""
    name = os.path.basename(argv0)
    return KUBECTL_PROG if name in (KUBECTL_PLUGIN, KUBECTL_PLUGIN + ".exe") else "kaudit"


def main() -> None:
    prog = program_name(sys.argv[0]) if sys.argv else "kaudit"
    if prog == KUBECTL_PROG:
        sys.argv[0] = KUBECTL_PROG  # click names the program after argv[0]'s base name in its usage lines
    args = sys.argv[1:]
    if args == ["--version"]:
        from installer import __version__

        sys.stdout.write(f"kaudit {__version__}\n")
        return
    if args == ["--help"] and _wide_enough():
        from installer._help import TOP_HELP

        text = TOP_HELP
        if prog != "kaudit":
            text = text.replace("Usage: kaudit ", f"Usage: {prog} ", 1)
        sys.stdout.write(text)
        return
    from installer.cli import main as cli_main

    cli_main()
