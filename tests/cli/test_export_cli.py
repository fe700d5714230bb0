"""`kaudit export` as a user runs it: the installed command's options and its refusals."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from installer.policy import profiles
from installer.policy import validate as policy
from tests.paths import ROOT
from tests.userinstall import kaudit_argv


@pytest.fixture(scope="module")
def rendered() -> profiles.RenderedPolicy:
    return profiles.render("recommended")


def kaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kaudit_argv(), *args], capture_output=True, text=True, cwd=cwd, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_cli_out_alias_and_options(tmp_path: Path) -> None:
    proc = kaudit("export", "--profile", "recommended", "--format", "kind", "--out", str(tmp_path / "k"))
    assert proc.returncode == 0, proc.stderr
    written = sorted(str(p.relative_to(tmp_path / "k")) for p in (tmp_path / "k").rglob("*"))
    assert "kind-config.yaml" in written and "kind-audit-logs" in written
    policy_files = list((tmp_path / "k" / "kaudit-policy").glob("exported-policy-*.yaml"))
    assert len(policy_files) == 1
    assert policy.check(policy_files[0].read_text()).ok
    proc = kaudit("export", "-p", "cis", "--format", "kubeadm", "--kubernetes-version", "v1.30.4",
                  "--log-maxsize", "200", "--set", "exclude_namespaces=ci")
    assert proc.returncode == 0, proc.stderr
    assert 'audit-log-maxsize: "200"' in proc.stdout and "apiVersion: kubeadm.k8s.io/v1beta3" in proc.stdout
    assert "# ===== exported-policy-" in proc.stdout


def test_cli_policy_file_and_errors(tmp_path: Path, rendered: profiles.RenderedPolicy) -> None:
    good = tmp_path / "p.yaml"
    good.write_text(rendered.text)
    proc = kaudit("export", "--policy-file", str(good), "--format", "minikube")
    assert proc.returncode == 0, proc.stderr
    assert "--extra-config=apiserver.audit-log-path=-" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    for args in (
        ["--policy-file", str(bad), "--format", "kubeadm"],
        ["--profile", "recommended", "--format", "k3s"],
        ["--profile", "recommended", "--policy-file", str(good), "--format", "kind"],
        ["--profile", "recommended", "--format", "kubeadm", "--kubernetes-version", "latest"],
        ["--profile", "recommended", "--format", "minikube", "--log-path", "/var/log/audit.log"],
    ):
        proc = kaudit("export", *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("kaudit: "), proc.stderr


SECRET_BODIES = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
"""


def test_export_applies_the_force_rule_like_enable(tmp_path: Path) -> None:
    """export used to print a policy recording Secret bodies without a word; now it refuses as enable does."""
    path = tmp_path / "p.yaml"
    path.write_text(SECRET_BODIES)
    refused = kaudit("export", "--policy-file", str(path), "--format", "kubeadm")
    assert refused.returncode == 2 and "pass --force" in refused.stderr and not refused.stdout
    assert refused.stderr.count("\n") == 1
    forced = kaudit("export", "--policy-file", str(path), "--format", "kubeadm", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "level: RequestResponse" in forced.stdout and "warning" in forced.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--webhook-mode", "batch"], "kaudit: --webhook-mode needs --webhook-config"),
    (["--log-maxage", "-1"], "kaudit: --log-maxage must be 0 or more, not -1"),
    (["--log-format", "xml"], "kaudit: --log-format must be one of json, legacy, not 'xml'"),
    (["--webhook-config", "/nonexistent/wh.kubeconfig"], "kaudit: cannot read --webhook-config /nonexistent/"),
    (["--log-path", "/var/log/audit.log"], "kaudit: --log-path: the audit log /var/log/audit.log would mount"),
])
def test_cli_refuses_bad_backend_options_as_enable_does(args: list[str], message: str) -> None:
    proc = kaudit("export", "-p", "minimal", "--format", "kubeadm", *args)
    assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_cli_webhook_is_placed_beside_the_policy(tmp_path: Path) -> None:
    wh = tmp_path / "wh.kubeconfig"
    wh.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: r\n  cluster:\n    server: https://r:1\n")
    proc = kaudit("export", "-p", "minimal", "--format", "kind", "--webhook-config", str(wh), "--webhook-mode",
                  "blocking", "--log-format", "legacy", "--no-log-compress", "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    [placed] = (tmp_path / "out" / "kaudit-policy").glob("exported-webhook-*.kubeconfig")
    assert placed.read_text() == wh.read_text() and placed.stat().st_mode & 0o777 == 0o600
    config = (tmp_path / "out" / "kind-config.yaml").read_text()
    for flag in (f"audit-webhook-config-file: \"/etc/kubernetes/audit/{placed.name}\"",
                 'audit-webhook-mode: "blocking"', 'audit-log-format: "legacy"', 'audit-log-compress: "false"'):
        assert flag in config
