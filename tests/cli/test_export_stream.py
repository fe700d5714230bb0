"""`kaudit export` output a user can save: stdout is ONE YAML stream, --out-dir writes the files.

`kaudit export --format kubeadm > kubeadm-audit.yaml` used to concatenate two files without a `---`, so
the policy's keys overwrote the ClusterConfiguration's. Here every format and option combination is
parsed with two independent YAML libraries (PyYAML, YAML 1.1; ruamel.yaml, YAML 1.2), and the stream is
compared with the files --out-dir writes from the same arguments.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml as pyyaml

from installer.manifest import export
from installer.policy import profiles
from tests.paths import ROOT
from tests.userinstall import kaudit_argv


def kaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kaudit_argv(), *args], capture_output=True, text=True, cwd=cwd, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def load_all_pyyaml(text: str) -> list[Any]:
    return [d for d in pyyaml.safe_load_all(text) if d is not None]


def load_all_ruamel(text: str) -> list[Any]:
    from ruamel.yaml import YAML

    return [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]


def load(text: str) -> Any:
    return pyyaml.safe_load(text)


def uncomment(lines: list[str]) -> str:
    out = []
    for line in lines:
        assert line == "#" or line.startswith("# "), line
        out.append(line[2:])
    return "".join(line + "\n" for line in out)


def segments(stream: str) -> dict[str, str]:
    """The stream cut at its `# ===== NAME: ... =====` headers: NAME -> the text after the header(s),
    without the `---` / `...` that separates it from the next file."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stream.splitlines(keepends=True):
        if line.startswith("# ===== ") and line.rstrip("\n").endswith(" ====="):
            name = line.removeprefix("# ===== ").split(": ", 1)[0]
            current = found.setdefault(name, [])
            continue
        assert current is not None, f"text before the first header: {line!r}"
        current.append(line)
    out = {}
    for name, lines in found.items():
        while lines and lines[-1] in ("---\n", "...\n"):
            lines.pop()
        out[name] = "".join(lines)
    return out


COMBINATIONS = [
    ("kubeadm", []),
    ("kubeadm", ["--kubernetes-version", "1.30"]),
    ("kubeadm", ["--kubernetes-version", "1.20", "--log-path", "-"]),
    ("kubeadm", ["--log-path", "/var/log/audit/k8s/audit.log", "--log-maxsize", "7", "-p", "cis"]),
    ("kubeadm", ["-p", "recommended", "--set", "exclude_namespaces=ci,staging"]),
    ("kind", []),
    ("kind", ["--kubernetes-version", "1.30"]),
    ("kind", ["--kubernetes-version", "1.36", "--log-path", "-"]),
    ("minikube", []),
    ("minikube", ["--kubernetes-version", "1.30", "-p", "security"]),
]


IDS = [f"{f}-{'_'.join(e) or 'default'}" for f, e in COMBINATIONS]


@pytest.mark.parametrize(("fmt", "extra"), COMBINATIONS, ids=IDS)
def test_stdout_is_one_yaml_stream_holding_the_files(fmt: str, extra: list[str], tmp_path: Path) -> None:
    args = ["export", "--format", fmt, *extra]
    if "-p" not in extra:
        args += ["--profile", "minimal"]
    printed = kaudit(*args)
    assert printed.returncode == 0, printed.stderr
    out = tmp_path / "out"
    wrote = kaudit(*args, "--out-dir", str(out))
    assert wrote.returncode == 0, wrote.stderr

    files = {str(p.relative_to(out)): p for p in out.rglob("*") if p.is_file()}
    config_name = {"kubeadm": "kubeadm-audit.yaml", "kind": "kind-config.yaml", "minikube": "minikube-audit.sh"}[fmt]
    [policy_name] = [n for n in files if n != config_name]
    assert set(files) == {config_name, policy_name}
    policy_text = files[policy_name].read_text()
    config_text = files[config_name].read_text()

    for loader in (load_all_pyyaml, load_all_ruamel):
        docs = loader(printed.stdout)
        if fmt == "minikube":  # the script is comments: the stream holds the Policy alone
            [pol] = docs
        else:
            config, pol = docs
            assert config == load(config_text)
            if fmt == "kubeadm":
                assert config["kind"] == "ClusterConfiguration"
                assert config["apiVersion"].startswith("kubeadm.k8s.io/")
            else:
                assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
        assert (pol["kind"], pol["apiVersion"]) == ("Policy", "audit.k8s.io/v1")
        assert pol == load(policy_text)  # the values the policy file has
        assert pol["rules"]

    # each file's bytes are in the stream under a header naming it (the script as comments)
    parts = segments(printed.stdout)
    assert list(parts) == [config_name, policy_name]
    assert parts[policy_name] == policy_text
    if fmt == "minikube":
        lines = parts[config_name].splitlines()
        assert lines[0].startswith("# (a shell script, not YAML")
        assert uncomment(lines[1:]) == config_text
        assert "minikube start" in config_text and "--extra-config=apiserver.audit-policy-file=" in config_text
    else:
        assert parts[config_name] == config_text
    # the policy the stream names is the one the configuration points at
    assert os.path.basename(policy_name) in config_text


@pytest.fixture(scope="module")
def rendered() -> profiles.RenderedPolicy:
    return profiles.render("minimal")


def _settings(text: str) -> export.Settings:
    return export.Settings(policy=text, profile=None)


@pytest.mark.parametrize("fmt", ["kubeadm", "kind", "minikube"])
@pytest.mark.parametrize(
    "shape",
    [
        "{p}",
        "---\n{p}",
        "# a comment\n---\n{p}",
        "%YAML 1.1\n---\n{p}",
        "{p}...\n",
        "\ufeff{p}",
        "{p_no_newline}",
    ],
)
def test_a_given_policy_of_any_shape_stays_one_document(
    fmt: str, shape: str, rendered: profiles.RenderedPolicy
) -> None:
    """--policy-file takes the user's file as it is: a leading `---`, a directive, an end marker, a BOM or a
    missing final newline must not break the stream or merge documents."""
    text = shape.format(p=rendered.text, p_no_newline=rendered.text.rstrip("\n"))
    result = export.export(fmt, _settings(text))
    stream = result.to_text()
    expected = load(rendered.text)
    for loader in (load_all_pyyaml, load_all_ruamel):
        docs = loader(stream)
        assert docs[-1] == expected
        assert len(docs) == (1 if fmt == "minikube" else 2)


def test_out_dir_atomic_modes_and_report(tmp_path: Path) -> None:
    out = tmp_path / "new" / "nested"
    proc = kaudit("export", "-p", "minimal", "-f", "kind", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    [policy_file] = (out / "kaudit-policy").glob("exported-policy-*.yaml")
    assert proc.stdout.splitlines() == [
        f"wrote {out / 'kind-config.yaml'}",
        f"wrote {policy_file}",
        f"made directory {out / 'kind-audit-logs'}/ (the audit log's host side)",
    ]
    assert stat.S_IMODE(policy_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "kind-config.yaml").stat().st_mode) == 0o644
    # again, over existing files: replaced, no temp file left, the mode set again
    policy_file.chmod(0o644)
    (out / "kind-config.yaml").write_text("old")
    proc = kaudit("export", "-p", "minimal", "-f", "kind", "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(policy_file.stat().st_mode) == 0o600
    assert (out / "kind-config.yaml").read_text().startswith("# kaudit export")
    assert list(out.rglob(".*")) == []
    proc = kaudit("export", "-p", "minimal", "-f", "minikube", "--out-dir", str(tmp_path / "mk"))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "mk" / "minikube-audit.sh").stat().st_mode) == 0o755
    [mk_policy] = (tmp_path / "mk").glob("kaudit-policy-*.yaml")
    assert stat.S_IMODE(mk_policy.stat().st_mode) == 0o600


def _refused(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    assert proc.stderr.startswith("kaudit: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr


def test_bad_out_dir_is_refused_clearly(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    _refused(kaudit("export", "-p", "minimal", "-f", "kubeadm", "--out-dir", str(a_file)), "is not a directory")
    assert a_file.read_text() == "x"
    _refused(kaudit("export", "-p", "minimal", "-f", "kubeadm", "--out-dir", str(a_file / "sub")), "cannot create")
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "kubeadm-audit.yaml").mkdir()  # the target name is taken by a directory
    _refused(kaudit("export", "-p", "minimal", "-f", "kubeadm", "--out-dir", str(blocked)), "cannot write")
    assert [p.name for p in blocked.iterdir()] == ["kubeadm-audit.yaml"]  # no temp file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_read_only_out_dir_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _refused(kaudit("export", "-p", "minimal", "-f", "kind", "--out-dir", str(ro)), "is not writable")
        _refused(kaudit("export", "-p", "minimal", "-f", "kind", "--out-dir", str(ro / "x")), "cannot create")
    finally:
        ro.chmod(0o755)


def test_not_writable_out_dir_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same check where the tests run as root (for whom every directory is writable): os.access says no."""
    from installer import cli

    real_access = os.access
    target = str(tmp_path / "ro")
    os.mkdir(target)
    monkeypatch.setattr(os, "access", lambda p, m, **kw: False if str(p) == target else real_access(p, m, **kw))
    monkeypatch.setattr(sys, "argv", ["kaudit", "export", "-p", "minimal", "-f", "kind", "--out-dir", target])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == f"kaudit: --out-dir {target} is not writable\n"
    assert os.listdir(target) == []
