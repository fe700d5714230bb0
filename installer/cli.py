"""The `kaudit` command line: parses, calls one operation, prints. No logic lives here.

Each command lives in its own module under `installer.commands` (pre-commit's layout) and
registers itself on the app. Heavy libraries (paramiko, ruamel.yaml, jinja2) are imported
inside the command functions, so `kaudit --help` stays fast.
"""

from __future__ import annotations

import sys

import typer

from installer import __version__
from installer.commands import COMMAND_MODULES
from installer.errors import KauditError

app = typer.Typer(
    name="kaudit",
    help="Switch Kubernetes API-server audit logging on, change it, or undo it, safely, on a live control plane.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Switch Kubernetes API-server audit logging on, change it, or undo it, safely."""


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    try:
        app()
    except KauditError as exc:  # raised outside a command's own handling
        typer.echo(f"kaudit: {exc}", err=True)
        sys.exit(exc.exit_code)
