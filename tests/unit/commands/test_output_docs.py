"""docs/output.md documents every field `--output json` prints, and nothing it does not print."""

from __future__ import annotations

import dataclasses
import re

from installer.change.phases import NodeResult
from installer.change.status import ApiServerStatus, NodeStatus, PathStatus, _unfinished
from installer.node.facts import NodeFacts
from tests.paths import ROOT

DOC = (ROOT / "docs" / "output.md").read_text()


def table(section: str) -> dict[str, str]:
    """field name -> its row's text, from the table under `## `section``."""
    body = DOC.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in body.splitlines():
        cells = line.split(" | ")
        if line.startswith("| `") and len(cells) >= 2:
            for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
                rows[name] = line
    return rows


def names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_status_fields_are_the_documented_ones() -> None:
    rows = table("status")
    assert set(rows) == set(NodeStatus(node="n", ok=True).to_json())
    for nested, cls in (("paths", PathStatus), ("api_server", ApiServerStatus)):
        documented = set(re.findall(r"`([a-z_0-9]+)`", rows[nested].split(" | ", 1)[1]))
        assert names(cls) <= documented, (nested, names(cls) - documented)


def test_unfinished_operation_fields_are_documented() -> None:
    facts = NodeFacts(static_pod_path="/m", manifest_path="/m/kube-apiserver.yaml", manifest=b"x",
                      manifest_problem=None, now=0.0, free_kb=None,
                      last_record={"id": "b", "state": "begin"}, last_begin={"id": "b", "summary": "s"})
    unfinished = _unfinished(facts)
    assert unfinished is not None
    documented = set(re.findall(r"`([a-z_0-9]+)`", table("status")["unfinished"].split(" | ", 1)[1]))
    assert set(unfinished) <= documented, set(unfinished) - documented


def test_change_fields_are_the_documented_ones() -> None:
    result = NodeResult(node="n", ok=True, exit_code=0, action="enabled", message="m")
    assert set(table("change")) == set(result.to_json())
