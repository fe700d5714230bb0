"""The wheel a user installs: built from this tree, installed into a fresh virtualenv outside it."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it (with its dependencies) into a new virtualenv; returns its bin/."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    wheels = list(out.glob("kube_audit_installer-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheels[0])],
        check=True, capture_output=True,
    )
    return env_dir / "bin"


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
