"""CIS 3.2.2 ("ensure that the audit policy covers key security concerns") as an automatic check.

kube-bench leaves it manual; here it is what a policy lets each detection of the catalogue see
(`detections.coverage`: the first-match evaluation of the request shape each detection watches),
summed up once for `kaudit simulate` (per candidate), `kaudit validate` and `kaudit render`; its text
form is `text.coverage_lines` (below the catalogue, which simulate's text output may not import).
"""

from __future__ import annotations

from typing import Any

from installer.auditlog import detections

STANDARD = "CIS 3.2.2"
STATES = ("kept", "degraded", "lost")


def summary(policy: Any, kubernetes_version: tuple[int, int] | None = None) -> dict[str, Any]:
    """The JSON `coverage` object (docs/output.md): counts per state, the names lost and degraded, and
    every detection's row (`detection`, `state`, `recorded`, `needs`, `rule`, `stagesOmitted`)."""
    rows = detections.coverage(list(detections.load()), policy, kubernetes_version)
    by = {state: [r for r in rows if r["state"] == state] for state in STATES}
    return {
        "standard": STANDARD,
        "detections": len(rows),
        **{state: len(by[state]) for state in STATES},
        "lostDetections": [r["detection"] for r in by["lost"]],
        "degradedDetections": [r["detection"] for r in by["degraded"]],
        "byDetection": rows,
    }
