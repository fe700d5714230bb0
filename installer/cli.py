"""The `kaudit` command line: parses, calls one operation, prints. No logic lives here.

Each command lives in its own module under `installer.commands` (pre-commit's layout) and
registers itself on the app. Heavy libraries (paramiko, ruamel.yaml, jinja2) are imported
inside the command functions, so `kaudit --help` stays fast.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable
from typing import Any

import typer

from installer import __version__
from installer.commands import COMMAND_MODULES
from installer.errors import InputError, KauditError

# -- option values without pydantic ---------------------------------------------------------------------------
# typer 0.29 converts every option value (all but a flag's True/False) through a pydantic TypeAdapter built on
# first use: the first command line that gives any option imports pydantic, ≈0.1 s, a third of a command's
# start-up. kaudit's parameters are only str, int, float, bool, an Enum and lists of them: these are
# converted here as pydantic converts them, with its messages (tests/unit/commands/test_startup.py compares
# both on the same values); any other annotation, or a typer without this seam, goes to typer's own.
Convert = Callable[[Any, Any], Any]  # (value, click context) -> the value, or ValueError(message)
_BOOL_WORDS = {"0": False, "off": False, "f": False, "false": False, "n": False, "no": False,
               "1": True, "on": True, "t": True, "true": True, "y": True, "yes": True}


def _str(value: Any, ctx: Any) -> str:
    if isinstance(value, bytes):
        raise ValueError("bytes")  # never from a command line parsed by click; typer's own decodes it
    return str(value)


def _bool(value: Any, ctx: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word == "":
        return False
    if word not in _BOOL_WORDS:
        raise ValueError("Input should be a valid boolean, unable to interpret input")
    return _BOOL_WORDS[word]


def _number(kind: type, least: float | None, most: float | None) -> Convert:
    what = "a valid integer, unable to parse string as an integer" if kind is int else \
        "a valid number, unable to parse string as a number"

    def convert(value: Any, ctx: Any) -> Any:
        if isinstance(value, str):
            try:
                value = kind(value.strip())
            except ValueError:
                raise ValueError(f"Input should be {what}") from None
        elif not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"Input should be {what}")
        if least is not None and not value >= least:  # nan too
            raise ValueError(f"Input should be greater than or equal to {least}")
        if most is not None and not value <= most:
            raise ValueError(f"Input should be less than or equal to {most}")
        return value

    return convert


def _choice(choices: tuple[Any, ...], case_sensitive: bool) -> Convert:
    from typer._param_types import coerce_cli_choice

    def convert(value: Any, ctx: Any) -> Any:
        try:
            return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)
        except ValueError as exc:
            raise ValueError(f"Value error, {exc}") from None

    return convert


def _leaf(annotation: Any, info: Any) -> Convert | None:
    if annotation is str:
        return _str
    if annotation is bool:
        return _bool
    if annotation in (int, float):
        if info.clamp:
            return None
        return _number(annotation, info.min, info.max)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choice(tuple(annotation), info.case_sensitive)
    return None


def lean_converter(annotation: Any, info: Any) -> Convert | None:
    """How kaudit converts a parameter's values, or None: typer's own (pydantic) conversion."""
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    if getattr(annotation, "__origin__", None) is list:
        item = _leaf(annotation.__args__[0], info)
        if item is None:
            return None
        element = item

        def convert_list(value: Any, ctx: Any) -> list[Any]:
            values = value if isinstance(value, (list, tuple)) else [value]
            return [element(v, ctx) for v in values]

        return convert_list
    return _leaf(annotation, info)


def _install_lean_conversion() -> None:
    """Put `lean_converter` in front of typer's `build_runtime_param` (typer >= 0.29's seam; else nothing)."""
    try:
        from dataclasses import dataclass

        from typer import _coercion, core
        from typer._click.exceptions import BadParameter
    except ImportError:
        return
    typers_own: Any = getattr(core, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if typers_own is None or base is None or getattr(typers_own, "kaudit_lean", False):
        return

    @dataclass(frozen=True)
    class LeanRuntimeParam(base):  # type: ignore[misc,valid-type]
        convert: Convert

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value, ctx)
            except ValueError as exc:
                raise BadParameter(str(exc), ctx=ctx, param=param) from None

    def build_runtime_param(descriptor: Any) -> Any:
        convert = None if descriptor.file_annotation is not None else \
            lean_converter(descriptor.annotation, descriptor.parameter_info)
        if convert is None:
            return typers_own(descriptor)
        return LeanRuntimeParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation,
                                convert=convert)

    build_runtime_param.kaudit_lean = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_runtime_param)  # noqa: B010 (not in typer.core's __all__)


_install_lean_conversion()

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
