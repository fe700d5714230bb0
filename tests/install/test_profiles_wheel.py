"""The profiles and templates ship inside the wheel (as package data of `installer`), not beside it.

Builds the wheel from this tree, installs it without dependencies into a fresh virtualenv (the
dependencies come from the test environment through a .pth entry, so no network is needed), and
renders every profile from there, outside the source tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.paths import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(out.glob("kube_audit_installer-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "installer/profiles/cis.yaml" in names and "installer/templates/_common.yaml.j2" in names
    assert not any(n.startswith(("profiles/", "templates/")) for n in names)

    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # Install: a wheel is a zip of the site-packages layout.
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # Dependencies (jinja2, ruamel.yaml, typer...) from the test environment, after the venv's own.
    Path(site, "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _python(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=python.parent.parent, env=env, check=False
    )


def test_every_profile_renders_from_the_installed_wheel(wheel_python: Path) -> None:
    code = (
        "import installer, installer.policy.profiles as p\n"
        "from installer.policy.validate import check\n"
        "print(installer.__file__)\n"
        "print(p.templates_dir())\n"
        "for prof in p.list_profiles():\n"
        "    r = p.render(prof.name)\n"
        "    assert check(r.text, own_profile=True, strict=True).ok, prof.name\n"
        "    print('rendered', prof.name)\n"
    )
    result = _python(wheel_python, code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    venv_root = str(wheel_python.parent.parent)
    assert lines[0].startswith(venv_root), lines[0]  # imported from the venv, not the tree
    assert lines[1].startswith(venv_root) and lines[1].endswith("installer/templates")
    assert [line.split()[1] for line in lines[2:]] == [
        "minimal",
        "recommended",
        "cis",
        "security",
        "write-bodies",
        "all-bodies",
    ]


def test_installed_cli_renders(wheel_python: Path) -> None:
    result = _python(
        wheel_python, "import sys; sys.argv = ['kaudit', 'render', 'cis']\nfrom installer.cli import main\nmain()"
    )
    assert result.returncode == 0, result.stderr
    assert "profile 'cis'" in result.stdout
