"""`kaudit --help` must not import the heavy libraries (they load lazily, inside the commands)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("paramiko", "ruamel", "jinja2")


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\n"
        f"sys.argv = ['kaudit', *{args!r}]\n"
        "from installer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {line.split(".")[0] for line in out.splitlines()}


def test_help_imports_no_heavy_module() -> None:
    loaded = _modules_after(["--help"])
    assert "installer" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_command_help_imports_no_heavy_module() -> None:
    loaded = _modules_after(["status", "--help"])
    assert not loaded & set(HEAVY)


def test_the_cached_top_level_help_is_typers_own() -> None:
    """`kaudit --help` is answered from installer/_help.py without importing typer; it must be exactly what
    typer renders (regenerate with `python -m installer.cli --write-help` after changing a command)."""
    from installer._help import TOP_HELP
    from installer.cli import render_top_help

    assert render_top_help() == TOP_HELP


def test_fast_help_and_version_import_no_cli_framework() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['kaudit', '--help']\n"
        "from installer.entry import main\n"
        "main()\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"COLUMNS": "100", "PATH": "/usr/bin:/bin"}).stdout
    help_text, _, modules = out.partition("MODULES ")
    assert help_text.startswith("Usage: kaudit [OPTIONS] COMMAND [ARGS]...")
    assert "enable" in help_text and "rollback" in help_text
    loaded = {m.split(".")[0] for m in modules.split()}
    assert not loaded & {"typer", "click", "rich", *HEAVY}


def test_the_fast_help_offers_shell_completion() -> None:
    """The cached help is typer's with the completion options (installer.cli adds them itself)."""
    from installer._help import TOP_HELP

    assert "--install-completion [bash|zsh|fish]" in TOP_HELP
    assert "--show-completion [bash|zsh|fish]" in TOP_HELP
