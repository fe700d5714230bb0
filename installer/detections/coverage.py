"""CIS 3.2.2 ("ensure that the audit policy covers key security concerns") as an automatic check.

kube-bench leaves it manual; here it is what a policy lets each detection of the catalogue see
(`detections.coverage`: the first-match evaluation of the request shape each detection watches),
summed up once for `kaudit simulate` (per candidate), `kaudit validate` and `kaudit render`; its text
form is `coverage_lines`.
"""

from __future__ import annotations

import textwrap
from typing import Any

from installer.detections import catalogue as detections

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


def coverage_lines(cov: dict[str, Any], width: int = 100) -> list[str]:
    """CIS 3.2.2 coverage (coverage.summary's object) as a few lines of text: the counts, then the detections
    lost and degraded, by name (simulate, validate, render)."""
    out = [f"{cov['standard']} coverage: {cov['kept']} of {cov['detections']} detections kept, "
           f"{cov['degraded']} degraded, {cov['lost']} lost"]
    lost = [r for r in cov["byDetection"] if r["state"] == "lost"]
    degraded = [r for r in cov["byDetection"] if r["state"] == "degraded"]
    if lost:
        names = ", ".join(r["detection"] + (" (stage omitted)" if r["stagesOmitted"] else "") for r in lost)
        out.extend(textwrap.wrap("lost (not recorded): " + names, width, initial_indent="  ",
                                 subsequent_indent="    ", break_on_hyphens=False))
    groups: dict[tuple[str, str], list[str]] = {}
    for r in degraded:
        groups.setdefault((r["recorded"], r["needs"]), []).append(r["detection"])
    for (recorded, needs), names_ in groups.items():
        out.extend(textwrap.wrap(f"degraded (recorded at {recorded}, without the body they read at {needs}): "
                                 + ", ".join(names_), width, initial_indent="  ", subsequent_indent="    ",
                                 break_on_hyphens=False))
    return out
