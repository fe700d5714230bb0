"""`kaudit validate` as a user runs it: the verdict `kaudit enable --policy-file` gives (issue 24 item 7)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.kaudit_cli import kaudit

SECRET_BODIES = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  resources:
  - resources: [secrets]
- level: Metadata
"""


def test_a_policy_recording_secret_bodies_is_invalid_unless_force(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SECRET_BODIES)
    run = kaudit("validate", str(path))
    assert run.code == 1, (run.out, run.err)
    assert f"{path}: error: rules[0].level (line 5): level RequestResponse records bodies" in run.out
    assert "refuse such a policy" in run.out and "--force" in run.out and "INVALID: 1 error(s)" in run.out
    run = kaudit("validate", str(path), "-o", "json")
    doc = json.loads(run.out)
    assert run.code == 1 and doc["valid"] is False and doc["warnings"] == []
    assert [e["path"] for e in doc["errors"]] == ["rules[0].level"]

    run = kaudit("validate", str(path), "--force")
    assert run.code == 0, (run.out, run.err)
    assert f"{path}: warning: rules[0].level" in run.out and "valid audit policy" in run.out
    run = kaudit("validate", "-", "--force", "-o", "json", stdin=SECRET_BODIES)
    assert run.code == 0 and json.loads(run.out)["valid"] is True


def test_help_says_so() -> None:
    run = kaudit("validate", "--help")
    assert run.code == 0 and "--force" in run.out and "enable" in run.out
