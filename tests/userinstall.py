"""The kaudit a user installs: this tree's wheel, installed WITHOUT extras into a fresh virtualenv
outside the tree, exactly as the README's `pip install .` does. Every test that runs the `kaudit`
command runs this install (tests/kaudit_cli.py), so a runtime import missing from
`[project.dependencies]` fails the suite instead of passing on the test extra.

Built once per distinct wheel and shared by every xdist worker and every pytest session on the
machine (a file lock; the venv is keyed by the wheel's content, so a change to the code, templates,
profiles or dependencies gets a new one and a running session never sees its venv swapped).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KAUDIT_USER_INSTALL_CACHE", Path(tempfile.gettempdir()) / "kaudit-user-install"))
KEEP = 6  # venvs of older trees kept (parallel sessions on other versions may still use them)

_bindir: Path | None = None


def _wheel_key(wheel: Path) -> str:
    """The content of the wheel, not its bytes (zip timestamps change with every build)."""
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            h.update(name.encode() + b"\0" + z.read(name) + b"\0")
    return h.hexdigest()[:16]


def build_wheel(outdir: Path) -> Path:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = outdir.glob("kube_audit_installer-*.whl")
    return wheel


def create_venv(env_dir: Path, wheel: Path) -> Path:
    """A fresh virtualenv with only the wheel and what its metadata requires; returns its bin/."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, capture_output=True)
    # This interpreter's pip installs into the new venv (--python): the same resolution a user's
    # `pip install .` does, from the wheel's own Requires-Dist, no extras. Byte-compiled, as pip does by
    # default: without it (and with PYTHONDONTWRITEBYTECODE set, as here) every kaudit run compiled
    # every module again, about 1.3 s of CPU per command.
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install",
                           "-q", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"installing {wheel.name} into a fresh venv failed:\n{proc.stderr}")
    return env_dir / "bin"


def _prune(keep: Path) -> None:
    venvs = sorted((p for p in CACHE.glob("venv-*") if p != keep), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in venvs[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)


BINDIR_ENV = "KAUDIT_TEST_USER_BINDIR"  # set by the process that built it, for the xdist workers it starts


def bindir() -> Path:
    """bin/ of the user install of this tree (built on first use, once per test run: the workers get it
    from the controller through BINDIR_ENV instead of each building the wheel again to find its key)."""
    global _bindir
    if _bindir is not None:
        return _bindir
    if os.environ.get(BINDIR_ENV):
        _bindir = Path(os.environ[BINDIR_ENV])
        return _bindir
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        wheel = build_wheel(Path(tmp))
        env_dir = CACHE / f"venv-{_wheel_key(wheel)}-compiled"  # the recipe is part of the key
        with open(CACHE / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (env_dir / "ready").exists():
                shutil.rmtree(env_dir, ignore_errors=True)
                create_venv(env_dir, wheel)
                (env_dir / "ready").write_text(wheel.name + "\n")
                _prune(env_dir)
            os.utime(env_dir)
    _bindir = env_dir / "bin"
    os.environ[BINDIR_ENV] = str(_bindir)
    return _bindir


def kaudit_argv() -> list[str]:
    """The command line of the installed `kaudit` console script."""
    return [str(bindir() / "kaudit")]


def kubectl_kaudit_argv() -> list[str]:
    """The installed `kubectl-kaudit` console script (the same main; kubectl runs it for `kubectl kaudit`)."""
    return [str(bindir() / "kubectl-kaudit")]


def user_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a user's shell has: nothing pointing into the source tree."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra or {})
    return env


if __name__ == "__main__":  # `python -m tests.userinstall`: build it and print where
    started = time.monotonic()
    print(bindir(), f"({time.monotonic() - started:.1f} s)")
