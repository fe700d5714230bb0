"""The detection catalogue is found from the user's installed wheel, not from the checkout."""

from __future__ import annotations

import subprocess

from tests.userinstall import bindir, user_env


def test_the_catalogue_ships_in_the_wheel() -> None:
    code = ("from installer.detections import catalogue as d; c = d.load(); "
            "print(len(c), d.catalogue_dir())")
    proc = subprocess.run([str(bindir() / "python"), "-c", code], capture_output=True, text=True, env=user_env(),
                          cwd="/", check=False)
    assert proc.returncode == 0, proc.stderr
    count, where = proc.stdout.split()
    assert int(count) >= 30 and "site-packages/installer/profiles/detections" in where
