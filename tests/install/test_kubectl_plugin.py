"""`kubectl kaudit ...`: the wheel installs a `kubectl-kaudit` console script next to `kaudit` (the same
main), which kubectl runs for `kubectl kaudit` when it is on PATH; run under that name, usage lines say
`kubectl kaudit`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from installer import __version__
from tests.paths import ROOT
from tests.userinstall import bindir, kaudit_argv, kubectl_kaudit_argv, user_env


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=user_env(env), timeout=60, check=False,
                          stdin=subprocess.DEVNULL)


def test_the_plugin_executable_is_installed_next_to_kaudit_and_runs_the_same_main() -> None:
    [plugin] = kubectl_kaudit_argv()
    assert Path(plugin).parent == Path(kaudit_argv()[0]).parent and os.access(plugin, os.X_OK)
    version = run([plugin, "--version"])
    assert (version.returncode, version.stdout, version.stderr) == (0, f"kaudit {__version__}\n", "")
    assert run([*kaudit_argv(), "--version"]).stdout == version.stdout


def test_usage_names_kubectl_kaudit_when_run_as_the_plugin() -> None:
    [plugin] = kubectl_kaudit_argv()
    top = run([plugin, "--help"])  # the cached help text
    assert top.returncode == 0 and top.stdout.startswith("Usage: kubectl kaudit [OPTIONS] COMMAND [ARGS]...\n")
    narrow = run([plugin, "--help"], {"COLUMNS": "60"})  # typer's own rendering
    assert narrow.returncode == 0 and narrow.stdout.startswith("Usage: kubectl kaudit [OPTIONS] COMMAND")
    sub = run([plugin, "status", "--help"])
    assert sub.returncode == 0 and sub.stdout.startswith("Usage: kubectl kaudit status "), sub.stdout
    missing = run([plugin, "enable"])  # a usage error: one message naming the command as the user typed it
    assert missing.returncode == 2 and "Usage: kubectl kaudit enable" in missing.stderr
    assert "Traceback" not in missing.stderr
    # as `kaudit`, nothing changed
    assert run([*kaudit_argv(), "--help"]).stdout.startswith("Usage: kaudit [OPTIONS] COMMAND [ARGS]...\n")


def _real_kubectl() -> str | None:
    """kubectl on PATH, unless it is the tests' stand-in (tests/fakes/kubectl, which does no plugin dispatch)."""
    found = shutil.which("kubectl")
    if found is None or Path(found).resolve() == (ROOT / "tests/fakes/kubectl").resolve():
        return None
    return found


@pytest.mark.skipif(_real_kubectl() is None, reason="no real kubectl binary on PATH")
def test_kubectl_dispatches_to_the_plugin_on_path(tmp_path: Path) -> None:
    kubectl = _real_kubectl()
    assert kubectl is not None
    env = {"PATH": f"{bindir()}{os.pathsep}{os.path.dirname(kubectl)}", "HOME": str(tmp_path),
           "KUBECONFIG": str(tmp_path / "none")}
    listed = run([kubectl, "plugin", "list"], env)
    assert str(bindir() / "kubectl-kaudit") in listed.stdout, listed.stdout + listed.stderr
    version = run([kubectl, "kaudit", "--version"], env)
    assert (version.returncode, version.stdout) == (0, f"kaudit {__version__}\n"), version.stderr
    usage = run([kubectl, "kaudit", "status", "--help"], env)
    assert usage.returncode == 0 and usage.stdout.startswith("Usage: kubectl kaudit status "), usage.stdout
