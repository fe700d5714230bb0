"""The change result's `policy_sha256`: the sha256 of the policy file's content, for whoever compares it with
`kaudit status`'s `paths[].sha256` (the Ansible collection's diff, issue 20 item 8), never a hash read off the
file's name."""

from __future__ import annotations

import hashlib

from tests.unit.change.conftest import FakeNode, plan_disable, run


def test_enable_and_dry_run_name_the_policys_sha256(node: FakeNode) -> None:
    dry = run(node, dry_run=True)
    assert dry.action == "dry-run" and dry.policy_file and dry.policy_sha256
    r = run(node)
    assert r.policy_file == dry.policy_file and r.policy_file in node.files
    assert r.policy_sha256 == dry.policy_sha256 == hashlib.sha256(node.files[r.policy_file]).hexdigest()
    assert r.to_json()["policy_sha256"] == r.policy_sha256


def test_turning_auditing_off_has_no_policy(node: FakeNode) -> None:
    run(node)
    off = run(node, plan_disable, None)
    assert off.action == "disabled" and off.policy_file is None and off.policy_sha256 is None
