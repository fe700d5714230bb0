"""Lint findings carry stable codes, and the --force gate tests the code, never the wording (issue 20 item 2)."""

from __future__ import annotations

import dataclasses

from installer.policy import lint, source
from installer.policy.model import CODES, Finding
from installer.policy.validate import check

LEAKY = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  users: ["*"]
  resources:
  - group: ""
    resources: [secrets]
- level: Metadata
  resources:
  - group: ""
    resources: [secrets]
- level: None
  resources:
  - group: ""
    resources: [secrets]
"""


def test_every_lint_finding_has_a_known_code() -> None:
    report = check(LEAKY)
    codes = {w.code for w in report.warnings}
    assert codes == {"sensitive-bodies", "no-catch-all", "shadowed-rule", "request-received-kept", "literal-star"}
    assert codes <= set(CODES)
    assert all(e.code in CODES for e in check("kind: Policy\nrules: [{level: Loud}]\n").errors)


def test_the_force_gate_reads_the_code_not_the_message() -> None:
    sensitive = next(w for w in check(LEAKY).warnings if w.code == "sensitive-bodies")
    reworded = dataclasses.replace(sensitive, message="bodies of the sensitive set, reworded")
    assert lint.records_sensitive_bodies(reworded)
    other = Finding("rules[0]", "mentions a secret and sensitive data", "warning", 3, "shadowed-rule")
    assert not lint.records_sensitive_bodies(other)
    report = check(LEAKY)
    assert [f.code for f in source.refusals(report, force=False)] == ["sensitive-bodies"]
    assert source.refusals(report, force=True) == []
