"""`kaudit profiles`, `kaudit render`, `kaudit validate`: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from installer.cli import app

runner = CliRunner()
VALID = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n"


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_profiles_lists_names_descriptions_and_variables() -> None:
    code, out, _ = run("profiles")
    assert code == 0
    for name in ("minimal", "recommended", "cis", "security", "write-bodies", "all-bodies"):
        assert f"\n{name}\n" in f"\n{out}"
    assert "CIS Kubernetes Benchmark v1.10" in out
    assert "exclude_namespaces" in out and "omit_request_received     bool  default true" in out


def test_profiles_json() -> None:
    code, out, _ = run("profiles", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    cis = next(p for p in doc["profiles"] if p["name"] == "cis")
    assert cis["log"] == {"maxage": 30, "maxbackup": 10, "maxsize": 100}
    assert {"name": "exclude_namespaces", "type": "list", "default": []}.items() <= cis["variables"][0].items()


def test_render_prints_a_valid_policy(tmp_path: Path) -> None:
    code, out, _ = run("render", "cis", "--set", "exclude_namespaces=ci,staging", "--set", "omit_request_received=no")
    assert code == 0
    assert out.startswith("# Audit policy rendered by kaudit from profile 'cis'.")
    assert 'namespaces: ["ci", "staging"]' in out
    assert "omitStages" not in out.split("rules:")[0].split("\n\n", 1)[1]
    code, _, _ = run("validate", write(tmp_path, out))
    assert code == 0


@pytest.mark.parametrize(
    ("args", "content"),
    [
        (("render", "nope"), "known profiles: minimal, recommended, cis"),
        (("render", "cis", "--set", "colour=blue"), "valid variables: exclude_namespaces (list"),
        (("render", "cis", "--set", "omit_request_received=perhaps"), "expected a boolean"),
        (("render", "cis", "--set", "novalue"), "expected name=value"),
        (("render", "cis", "--kubernetes-version", "one"), "not a Kubernetes version"),
    ],
)
def test_render_bad_input_exits_2(args: tuple[str, ...], content: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert content in err
    assert out == ""


def test_validate_valid(tmp_path: Path) -> None:
    code, out, _ = run("validate", write(tmp_path, VALID))
    assert code == 0
    assert "valid audit policy for Kubernetes 1.36 (1 rules)" in out


def test_validate_lists_every_error_with_its_place(tmp_path: Path) -> None:
    text = VALID + "- level: Metadata\n  omitStages: [Nope]\n  resource: [secrets]\n- lvl: None\n"
    code, out, _ = run("validate", write(tmp_path, text))
    assert code == 1
    assert "error: rules[1].omitStages[0] (line 7): unknown stage 'Nope'" in out
    assert 'error: rules[1].resource (line 8): unknown field "resource"' in out
    assert "error: rules[2].lvl (line 9)" in out
    assert "error: rules[2].level (line 9): level is required" in out
    assert "INVALID: 4 error(s)" in out


def test_validate_warnings_and_strict(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("- level: Metadata", "- level: Metadata\n  verbs: [get]"))
    code, out, _ = run("validate", path)
    assert code == 0 and "warning: rules (line 5): no catch-all rule" in out
    code, out, _ = run("validate", "--strict", path)
    assert code == 1 and "refused by --strict" in out


def test_validate_version_dependent_wildcard_group(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + '- level: None\n  resources: [{group: "*", resources: [leases]}]\n')
    assert run("validate", "--kubernetes-version", "1.34", path)[0] == 1
    assert run("validate", "--kubernetes-version", "1.36", path)[0] == 0
    assert run("validate", path)[0] == 0  # the newest known version by default


def test_validate_unreadable_exits_2(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err
    assert run("validate", str(tmp_path))[0] == 2  # a directory
    assert run("validate", "--kubernetes-version", "x", write(tmp_path, VALID))[0] == 2


def test_validate_stdin() -> None:
    assert run("validate", "-", stdin=VALID)[0] == 0


def test_validate_json(tmp_path: Path) -> None:
    code, out, _ = run("validate", "-o", "json", write(tmp_path, VALID + "- level: Meta\n"))
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["errors"][0]["path"] == "rules[1].level" and doc["errors"][0]["line"] == 6


def test_validate_v1beta1_and_upgrade(tmp_path: Path) -> None:
    path = write(tmp_path, "# old\n" + VALID.replace("audit.k8s.io/v1", "audit.k8s.io/v1beta1"))
    code, out, _ = run("validate", path)
    assert code == 1
    assert "removed in Kubernetes 1.24" in out and "kaudit validate --upgrade" in out
    code, out, _ = run("validate", "--upgrade", path)
    assert code == 0
    assert out == "# old\n" + VALID


@pytest.mark.parametrize("command", ["profiles", "render", "validate"])
def test_command_help_imports_no_heavy_module(command: str) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['kaudit', {command!r}, '--help']\n"
        "from installer.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'ruamel', 'paramiko')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out
