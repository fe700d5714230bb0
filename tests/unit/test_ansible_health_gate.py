"""The Ansible collection's health gate is kaudit's (issue 20 item 8): plugin_utils' node_health reads `kaudit
status`'s `healthy` and `health` (the rollout's gate verdict, installer/node/health.py gate_answer), and has no
rule of its own about which node is healthy."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from installer.change.status import NodeStatus
from installer.node.health import ProbeResult
from tests.paths import ROOT


@pytest.fixture(scope="module")
def utils() -> ModuleType:
    path = ROOT / "ansible" / "plugins" / "plugin_utils" / "kaudit.py"
    spec = importlib.util.spec_from_file_location("kaudit_plugin_utils", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _status(code: int, running: bool = True) -> dict[str, object]:
    probe = ProbeResult("https://10.0.0.2:6443/readyz", code, "anonymous")
    s = NodeStatus(node="cp2", ok=True, readyz={"url": probe.url, "code": code, "via": probe.via,
                                                 "ready": probe.ready})
    s.health = probe.gate_answer()  # as node_status sets them
    s.healthy = s.health is None
    doc = s.to_json()
    doc["api_server"] = {"running": running}
    return doc


def test_a_ready_node_passes_and_a_sick_one_is_refused_in_kaudits_words(utils: ModuleType) -> None:
    assert utils.node_health(_status(200)) is None
    assert utils.node_health(_status(500)) == "https://10.0.0.2:6443/readyz answers 500"
    assert utils.node_health(_status(0)) == "https://10.0.0.2:6443/readyz does not answer"


def test_kaudits_verdict_wins_over_the_process_table(utils: ModuleType) -> None:
    """The collection used to refuse a node whose process kaudit did not see even when it answered ready;
    kaudit's rollout does not, and neither does the collection now."""
    assert utils.node_health(_status(200, running=False)) is None


def test_a_node_kaudit_could_not_read(utils: ModuleType) -> None:
    unread = NodeStatus(node="cp2", ok=False, error="unreachable", health="cannot be read: unreachable").to_json()
    assert utils.node_health(unread) == "cannot be read: unreachable"
    # kaudit printed nothing for the node (the plugin's stand-in when kaudit itself failed)
    assert utils.node_health({"ok": False, "error": "kaudit exited 2"}) == "cannot be read: kaudit exited 2"
