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


def _section(name: str) -> str:
    return DOC.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]


def _named(text: str) -> set[str]:
    """Every `name` (camelCase included) a piece of the doc puts in backticks."""
    return set(re.findall(r"`([A-Za-z_0-9]+)`", text))


def _run(command: str, *args: str) -> dict[str, object]:
    import json

    import typer
    from typer.testing import CliRunner

    from installer.commands import simulate, validate

    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """kaudit"""

    {"validate": validate, "simulate": simulate}[command].register(app)
    result = CliRunner().invoke(app, [command, *args, "-o", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def _policy_file(tmp_path: object) -> str:
    from pathlib import Path

    from installer.policy.profiles import render

    path = Path(str(tmp_path)) / "policy.yaml"
    path.write_text(render("recommended", {}).text)
    return str(path)


def test_validate_fields_are_the_documented_ones(tmp_path: object) -> None:
    doc = _run("validate", _policy_file(tmp_path))
    rows = table("validate")  # the lowercase names; the camelCase ones are in the text
    documented = _named(_section("validate"))
    assert set(doc) - {"schemaVersion", "command"} <= documented | set(rows)
    coverage = doc["coverage"]
    assert isinstance(coverage, dict)
    assert set(coverage) <= documented
    by_detection = coverage["byDetection"]
    assert isinstance(by_detection, list) and by_detection
    assert set(by_detection[0]) <= documented


def test_simulate_fields_are_documented(tmp_path: object) -> None:
    """Every field of a simulate candidate (its coverage and cache included) is named in docs/output.md."""
    from pathlib import Path

    from tests import auditgen

    log = Path(str(tmp_path)) / "audit.log"
    auditgen.write(log, 500)
    doc = _run("simulate", str(log), "-p", "minimal", "--policy-file", _policy_file(tmp_path))
    documented = _named(_section("simulate"))
    candidates = doc["candidates"]
    assert isinstance(candidates, list)
    for cand in candidates:
        assert set(cand) <= documented, set(cand) - documented
        assert set(cand["cache"]) <= documented, set(cand["cache"]) - documented
        assert set(cand["coverage"]) <= _named(_section("validate"))
