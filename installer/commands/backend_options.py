"""The typer options of the audit backend settings, made from installer/manifest/settings.py's table:
one definition for `enable`, `switch` and `export` (tests/unit/manifest/test_settings.py checks them)."""

from __future__ import annotations

from typing import Any

import typer

from installer.manifest import settings


def option(name: str, default: Any = None, *, more_help: str = "") -> Any:
    """The option of the table's setting `name`: its names, metavar and help; `more_help` adds to the help."""
    s = settings.BY_NAME[name]
    if s.option is None:
        raise ValueError(f"{name} has no option of its own")
    help_text = s.help if not more_help else f"{s.help.rstrip('.')} {more_help}"
    return typer.Option(default, *s.option_names, metavar=s.metavar, help=help_text)
