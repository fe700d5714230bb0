"""Shell completion: `kaudit --show-completion SHELL` / `--install-completion SHELL`, and the completions the
real installed `kaudit` entry point answers through typer's environment protocol.

The bash tests run bash itself: the generated script must parse (`bash -n`), register a completion
function for `kaudit`, and that function, called the way bash calls it on <TAB>, must fill COMPREPLY with
what `kaudit` answers. zsh and fish are usually absent: their scripts are checked as text, and run with
`-n` where the shell is installed; their completion protocol needs no shell and is exercised directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

BIN = Path(sys.executable).parent
KAUDIT = BIN / "kaudit"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(not KAUDIT.exists(), reason=f"no installed kaudit entry point in {BIN}")


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("_KAUDIT") and not k.startswith("COMP_")}
    return {**base, "PATH": f"{BIN}{os.pathsep}{base.get('PATH', '/usr/bin:/bin')}", **extra}


def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAUDIT), *args], capture_output=True, text=True, env=env(**extra), check=False,
                          cwd="/")


def complete_bash(line: str) -> list[str]:
    """What `kaudit` answers bash for the command line `line` (cursor at its end)."""
    words = line.split(" ")
    proc = run(_KAUDIT_COMPLETE="complete_bash", COMP_WORDS=line, COMP_CWORD=str(len(words) - 1))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_bash_protocol_completes_commands_options_and_values() -> None:
    assert complete_bash("kaudit st") == ["status"]
    assert set(complete_bash("kaudit ")) >= {"status", "enable", "disable", "rollback", "export", "profiles"}
    assert complete_bash("kaudit enable --pro") == ["--profile"]
    assert "--install-completion" in complete_bash("kaudit --")
    assert complete_bash("kaudit export --format mini") == ["minikube"]
    assert complete_bash("kaudit export --out") == ["--out-dir", "--out"]


def test_zsh_and_fish_protocols() -> None:
    zsh = run(_KAUDIT_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="kaudit ena")
    assert zsh.returncode == 0 and '"enable"' in zsh.stdout, (zsh.stdout, zsh.stderr)
    fish = run(_KAUDIT_COMPLETE="complete_fish", _TYPER_COMPLETE_FISH_ACTION="get-args",
               _TYPER_COMPLETE_ARGS="kaudit rollb")
    assert fish.returncode == 0 and fish.stdout.startswith("rollback\t"), (fish.stdout, fish.stderr)


@pytest.mark.skipif(BASH is None, reason="no bash")
def test_bash_script_is_valid_and_really_completes(tmp_path: Path) -> None:
    proc = run("--show-completion", "bash")
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "kaudit.bash"
    script.write_text(proc.stdout)
    assert BASH is not None
    syntax = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    # bash on <TAB>: COMP_WORDS / COMP_CWORD set, the registered function called with the command name
    driver = f"""
source {script}
spec=$(complete -p kaudit) || exit 7
echo "SPEC $spec"
func=$(echo "$spec" | sed -n 's/.*-F \\([^ ]*\\) kaudit$/\\1/p')
tab() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); "$func" kaudit; echo "REPLY ${{COMPREPLY[*]}}"; }}
tab kaudit st
tab kaudit enable --pro
tab kaudit ba
"""
    proc = subprocess.run([BASH, "--norc", "--noprofile", "-c", driver], capture_output=True, text=True,
                          env=env(), check=False, timeout=60)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("SPEC complete ") and lines[0].endswith(" kaudit")
    assert lines[1:] == ["REPLY status", "REPLY --profile", "REPLY backups"], proc.stdout


@pytest.mark.parametrize(
    ("shell", "marks"), [("zsh", ["#compdef kaudit", "compdef "]), ("fish", ["complete --command kaudit"])]
)
def test_zsh_and_fish_scripts(shell: str, marks: list[str], tmp_path: Path) -> None:
    proc = run("--show-completion", shell)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.strip() and "kaudit" in text and "_KAUDIT_COMPLETE=complete_" + shell in text
    for mark in marks:
        assert mark in text
    exe = shutil.which(shell)
    if exe:
        script = tmp_path / f"kaudit.{shell}"
        script.write_text(text)
        syntax = subprocess.run([exe, "-n", str(script)], capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, syntax.stderr


def test_shell_defaults_to_dollar_shell_and_bad_shells_are_refused() -> None:
    assert run("--show-completion", SHELL="/usr/bin/zsh").stdout == run("--show-completion", "zsh").stdout
    assert run("--show-completion", SHELL="/bin/bash").stdout.startswith("_kaudit_completion()")
    for args, shell in ((["--show-completion"], "/bin/tcsh"), (["--install-completion"], "")):
        proc = run(*args, SHELL=shell)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.startswith(f"kaudit: {args[0]}: name the shell") and proc.stderr.count("\n") == 1
    proc = run("--show-completion", "tcsh")
    assert proc.returncode == 2 and "tcsh" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_install_completion_writes_the_users_shell_files(shell: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if shell == "bash":
        (home / ".bashrc").write_text("alias k=kubectl\n")
    show = run("--show-completion", shell).stdout
    for _ in range(2):  # twice: the rc file gets the line once
        proc = run("--install-completion", shell, HOME=str(home), SHELL="/bin/sh")
        assert proc.returncode == 0, proc.stderr
    if shell == "bash":
        script, rc = home / ".bash_completions" / "kaudit.sh", home / ".bashrc"
        assert rc.read_text().startswith("alias k=kubectl\n")
        assert rc.read_text().count(f"source '{script}'") == 1
    elif shell == "zsh":
        script, rc = home / ".zfunc" / "_kaudit", home / ".zshrc"
        assert rc.read_text().count("fpath+=~/.zfunc; autoload -Uz compinit; compinit") == 1
    else:
        script, rc = home / ".config" / "fish" / "completions" / "kaudit.fish", None
    assert script.read_text().strip() == show.strip()
    assert f"{shell} completion installed in {script}" in proc.stdout
    assert sorted(p.name for p in home.iterdir()) == sorted(
        {"bash": [".bashrc", ".bash_completions"], "zsh": [".zshrc", ".zfunc"], "fish": [".config"]}[shell]
    )
    if shell == "bash" and BASH:  # a new interactive bash reads ~/.bashrc and knows how to complete kaudit
        proc = subprocess.run([BASH, "-i", "-c", "complete -p kaudit"], capture_output=True, text=True,
                              env=env(HOME=str(home)), check=False, stdin=subprocess.DEVNULL, timeout=60)
        assert proc.stdout.startswith("complete ") and proc.stdout.rstrip().endswith(" kaudit"), proc


def test_python_dash_m_installs_for_kaudit_too(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "installer", "--show-completion", "bash"], capture_output=True,
                          text=True, env=env(), check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == run("--show-completion", "bash").stdout


def test_install_completion_into_an_unusable_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a directory")
    proc = run("--install-completion", "bash", HOME=str(home))
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("kaudit: --install-completion: cannot write ") and proc.stderr.count("\n") == 1
