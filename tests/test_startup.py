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
