"""The policy diff's paths come from kaudit's JSON, not from the manifest diff's text (issue 20 item 8): on a
node whose manifest quotes its flags (`- "--flag=value"`, which kaudit's patch keeps for the flags it adds),
the header names the policy file without a trailing quote and its content is known."""

from __future__ import annotations

import re

from tests.conftest import NodeFactory
from tests.install.test_ansible_collection import (  # noqa: F401 - the fixtures
    FAST,
    MANIFEST,
    Controller,
    audit,
    collection,
    controller,
    instance,
    manifest,
)


def test_check_diff_on_a_manifest_that_quotes_its_flags(node_factory: NodeFactory,
                                                        controller: Controller) -> None:  # noqa: F811
    node = node_factory()
    first = instance(node)
    quoted = re.sub(rb'(?m)^(\s*- )(--[^\s"\']+)$', rb'\1"\2"', manifest(node))
    assert quoted != manifest(node)
    node.path(MANIFEST).write_bytes(quoted)  # the same pod: the kubelet restarts nothing
    controller.inventory({"prod": [("cp1", node, {})]})
    play = controller.run(controller.playbook("enable", [audit(profile="minimal", **FAST)], hosts="cp1"),
                          "--check", "--diff")
    assert play.code == 0, play.out + play.err
    res = play.results["cp1"]
    policy_file = res["kaudit"]["policy_file"]
    assert res["changed"] is True and re.fullmatch(r"/etc/kubernetes/audit/policy-[0-9a-f]{12}\.yaml", policy_file)
    assert f'+    - "--audit-policy-file={policy_file}"' in play.out  # the flag added in the manifest's style
    assert f"+++ after: audit policy {policy_file}\n" in play.out, play.out
    assert "content unknown" not in play.out and "+kind: Policy" in play.out
    assert manifest(node) == quoted and instance(node)["seq"] == first["seq"]
