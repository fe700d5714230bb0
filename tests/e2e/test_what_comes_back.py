"""`kaudit backups` and `kaudit rollback --dry-run` say what a rollback brings back: the profile, auditing on
or off, and the policy file (issue 24 item 10)."""

from __future__ import annotations

from tests.conftest import NodeFactory
from tests.kaudit_cli import change, on


def test_backups_and_rollback_dry_run_name_the_profile_and_policy(node_factory: NodeFactory) -> None:
    node = node_factory()
    enabled = change(node, "enable", "--profile", "recommended")
    assert enabled.code == 0, enabled.out
    first_policy = enabled.node["policy_file"]
    switched = change(node, "switch", "--profile", "minimal")
    assert switched.code == 0, switched.out
    text = on(node, "backups")
    assert text.code == 0, text.out + text.err
    lines = {line.split()[0]: line for line in text.out.splitlines() if line.startswith("  ")}
    assert f"restores: auditing on, profile recommended, policy {first_policy}" in lines[switched.node["backup"]]
    assert "restores: auditing off" in lines[enabled.node["backup"]]
    assert len(set(lines.values())) == len(lines)  # no two backups print the same line
    doc = on(node, "backups", "--output", "json").node["backups"]
    by_id = {b["id"]: b for b in doc}
    assert by_id[switched.node["backup"]]["policy"] == first_policy
    assert by_id[switched.node["backup"]]["profile"] == "recommended"
    dry = on(node, "rollback", "--dry-run")
    assert dry.code == 0, dry.out + dry.err
    assert f"would restore backup {switched.node['backup']} (auditing on, profile recommended, policy " \
           f"{first_policy})" in dry.out
