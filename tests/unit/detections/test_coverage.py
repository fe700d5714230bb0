"""CIS 3.2.2 coverage (installer/detections/coverage.py) as simulate, validate and render show it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from installer.commands import render, simulate, validate
from installer.detections import coverage
from installer.detections.coverage import coverage_lines
from installer.policy.validate import parse
from tests import auditgen

# exec and attach not recorded; pods written at Metadata only (the pod-body detections lose their body)
BLIND_TO_EXEC = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources:
  - resources: [pods/exec, pods/attach]
- level: Metadata
"""


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """kaudit"""

    for module in (render, simulate, validate):
        module.register(app)
    return app


def kaudit(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def blind(tmp_path: Path) -> Path:
    path = tmp_path / "blind.yaml"
    path.write_text(BLIND_TO_EXEC)
    return path


def test_summary_counts_names_and_rows() -> None:
    report = parse(BLIND_TO_EXEC)
    assert report.policy is not None
    cov = coverage.summary(report.policy, (1, 34))
    assert cov["standard"] == "CIS 3.2.2"
    assert cov["kept"] + cov["degraded"] + cov["lost"] == cov["detections"] == len(cov["byDetection"]) >= 30
    assert {"pod-exec", "pod-attach"} <= set(cov["lostDetections"])
    assert "privileged-pod" in cov["degradedDetections"]
    exec_row = next(r for r in cov["byDetection"] if r["detection"] == "pod-exec")
    assert exec_row == {"detection": "pod-exec", "state": "lost", "recorded": "None", "needs": "Metadata",
                        "rule": 0, "stagesOmitted": False}
    text = "\n".join(coverage_lines(cov))
    assert text.startswith(f"CIS 3.2.2 coverage: {cov['kept']} of {cov['detections']} detections kept")
    assert "lost (not recorded): pod-exec, pod-attach" in text
    assert "degraded (recorded at Metadata, without the body they read at Request):" in text


def test_validate_prints_the_coverage(blind: Path) -> None:
    code, out, _ = kaudit("validate", str(blind))
    assert code == 0
    assert "CIS 3.2.2 coverage:" in out and "pod-exec" in out
    code, out, _ = kaudit("validate", str(blind), "-o", "json")
    doc = json.loads(out)
    assert code == 0 and "pod-exec" in doc["coverage"]["lostDetections"]
    invalid = blind.with_name("invalid.yaml")
    invalid.write_text(BLIND_TO_EXEC.replace("- level: Metadata", "- level: Loud"))
    code, out, _ = kaudit("validate", str(invalid), "-o", "json")
    assert code == 1 and json.loads(out)["coverage"] is None


def test_render_prints_the_coverage_on_stderr_only() -> None:
    code, out, err = kaudit("render", "minimal")
    assert code == 0
    assert "kaudit: CIS 3.2.2 coverage:" in err
    assert "coverage" not in out
    report = parse(out)  # stdout is still the policy alone
    assert report.ok and report.policy is not None


def test_simulate_shows_each_candidates_coverage(tmp_path: Path, blind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # short names: the table's columns are the candidates' names
    log = tmp_path / "audit.log"
    auditgen.write(log, 300)
    code, out, err = kaudit("simulate", "audit.log", "--policy-file", blind.name, "-p", "all-bodies", "-o", "json")
    assert code == 0, err
    mine, bodies = json.loads(out)["candidates"]
    assert "pod-exec" in mine["coverage"]["lostDetections"]
    assert "pod-exec" not in bodies["coverage"]["lostDetections"]
    assert bodies["coverage"]["kept"] > mine["coverage"]["kept"]
    code, out, _ = kaudit("simulate", "audit.log", "--policy-file", blind.name, "-p", "all-bodies")
    assert code == 0
    assert "CIS 3.2.2 kept/degraded/lost" in out
    assert f"{mine['coverage']['kept']}/{mine['coverage']['degraded']}/{mine['coverage']['lost']}" in out
    assert "lost (not recorded): pod-exec, pod-attach" in out
