"""The `kaudit` command line: parses, calls one operation, prints. No logic lives here.

Each command lives in its own module under `installer.commands` (pre-commit's layout) and
registers itself on the app. Heavy libraries (paramiko, ruamel.yaml, jinja2) are imported
inside the command functions, so `kaudit --help` stays fast.
"""

from __future__ import annotations

import enum
import os
import sys

import typer

from installer import __version__
from installer.commands import COMMAND_MODULES
from installer.errors import InputError, KauditError

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


# Shell completion, as typer's add_completion gives it, but with the shell named (or taken from $SHELL)
# and the program's name fixed, so that `python -m installer` installs completion for `kaudit` too.
# typer's completion classes are registered only when the shell asks for completions (main below).
PROG = "kaudit"
COMPLETE_VAR = "_KAUDIT_COMPLETE"
COMPLETION_FLAGS = ("--install-completion", "--show-completion")
RC_FILES = {"bash": "~/.bashrc", "zsh": "~/.zshrc", "fish": None}  # fish loads ~/.config/fish/completions/


class Shell(str, enum.Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def _install_completion(ctx: typer.Context, value: Shell | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import install

    try:
        shell, path = install(shell=value.value, prog_name=PROG, complete_var=COMPLETE_VAR)
    except OSError as exc:
        raise InputError(f"--install-completion: cannot write {exc.filename or '~'}: {exc.strerror or exc}") from None
    rc = RC_FILES.get(shell)
    typer.echo(f"{shell} completion installed in {path}" + (f" (loaded by {rc})" if rc else ""))
    typer.echo("Completion will take effect once you restart the terminal")
    raise typer.Exit()


def _show_completion(ctx: typer.Context, value: Shell | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=value.value))
    raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    install_completion: Shell | None = typer.Option(  # noqa: B008
        None, "--install-completion", metavar="[bash|zsh|fish]", callback=_install_completion, is_eager=True,
        expose_value=False,
        help="Install completion for the shell (default: $SHELL) and exit.",
    ),
    show_completion: Shell | None = typer.Option(  # noqa: B008
        None, "--show-completion", metavar="[bash|zsh|fish]", callback=_show_completion, is_eager=True,
        expose_value=False,
        help="Print the completion script for the shell (default: $SHELL), to copy it or customize the "
        "installation.",
    ),
) -> None:
    """Switch Kubernetes API-server audit logging on, change it, or undo it, safely."""


for _module in COMMAND_MODULES:
    _module.register(app)


def _with_default_shell(args: list[str]) -> list[str]:
    """`--install-completion` / `--show-completion` without a shell: the one $SHELL names."""
    out: list[str] = []
    for i, arg in enumerate(args):
        out.append(arg)
        if arg in COMPLETION_FLAGS and (i + 1 == len(args) or args[i + 1].startswith("-")):
            shell = os.path.basename(os.environ.get("SHELL", ""))
            if shell not in Shell.__members__:
                raise InputError(f"{arg}: name the shell (bash, zsh or fish); $SHELL is {shell or 'not set'}")
            out.append(shell)
    return out


def main() -> None:
    try:
        if COMPLETE_VAR in os.environ:  # the shell asks for completions (the scripts --show-completion prints)
            from typer._completion_classes import completion_init

            completion_init()
        args = sys.argv[1:]
        if any(flag in args for flag in COMPLETION_FLAGS):
            args = _with_default_shell(args)
        app(args=args)
    except KauditError as exc:  # raised outside a command's own handling
        typer.echo(f"kaudit: {exc}", err=True)
        sys.exit(exc.exit_code)


def render_top_help() -> str:
    """`kaudit --help` exactly as typer prints it at 80 columns: the source of installer/_help.py."""
    import os
    import subprocess

    code = "import sys; sys.argv = ['kaudit', '--help']; from installer.cli import main; main()"
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


if __name__ == "__main__":  # python -m installer.cli --write-help regenerates installer/_help.py
    if sys.argv[1:] == ["--write-help"]:
        from pathlib import Path

        target = Path(__file__).with_name("_help.py")
        target.write_text(
            '"""Generated by `python -m installer.cli --write-help`; '
            'tests/unit/commands/test_startup.py keeps it current."""\n\n'
            + "TOP_HELP = (\n"
            + "".join(f"    {line!r}\n" for line in render_top_help().splitlines(keepends=True))
            + ")\n"
        )
