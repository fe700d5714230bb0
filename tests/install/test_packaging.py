"""The wheel a user installs: built from this tree, installed into a fresh virtualenv outside it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.userinstall import bindir


@pytest.fixture(scope="module")
def installed() -> Path:
    """bin/ of the wheel installed without extras into a fresh virtualenv (tests/userinstall.py)."""
    return bindir()


def _run(bindir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Run from a directory outside the repository so nothing is imported from the source tree.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(bindir / "kaudit"), *args], capture_output=True, text=True, cwd=bindir.parent, env=env, check=False
    )


def test_installed_kaudit_reports_its_version(installed: Path) -> None:
    from installer import __version__

    result = _run(installed, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kaudit {__version__}"


def test_installed_status_help(installed: Path) -> None:
    result = _run(installed, "status", "--help")
    assert result.returncode == 0, result.stderr
    assert "TARGET" in result.stdout
    assert "--output" in result.stdout


def test_installed_package_is_imported_from_the_venv(installed: Path) -> None:
    code = "import installer, sys; print(installer.__file__)"
    result = subprocess.run(
        [str(installed / "python"), "-c", code], capture_output=True, text=True, cwd=installed.parent, check=True
    )
    assert str(installed.parent) in result.stdout


def test_python_dash_m_installer(installed: Path) -> None:
    result = subprocess.run(
        [str(installed / "python"), "-m", "installer", "--version"],
        capture_output=True, text=True, cwd=installed.parent, check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("kaudit ")
