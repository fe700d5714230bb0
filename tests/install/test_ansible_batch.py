"""One kaudit per play (issue 21 item 4): the kaudit.audit.audit action batches the play's hosts into one kaudit
run, with forks fewer than hosts (no deadlock: the batch is the play's host list, not the forks that run), and
keeps per-host `changed`, failures, check mode, diff mode, `when` and per-host arguments. The kaudit processes
are counted with a wrapper named as the hosts' kaudit_command."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from pathlib import Path

from tests.conftest import NodeFactory
from tests.install.test_ansible_collection import (  # noqa: F401 - the fixtures
    FAST,
    Controller,
    audit,
    audit_argv,
    collection,
    controller,
    failed,
    manifest,
)
from tests.node.node import TestNode
from tests.userinstall import bindir


def counting_kaudit(base: Path) -> tuple[Path, Path]:
    """A kaudit_command that logs each start (its subcommand) and runs the installed kaudit."""
    log = base / "kaudit-starts.log"
    wrapper = base / "kaudit-counting"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {log}\nexec {bindir() / "kaudit"} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def starts(log: Path) -> list[str]:
    lines = log.read_text().split() if log.exists() else []
    log.write_text("")
    return lines


def test_one_kaudit_for_the_play_forks_fewer_than_hosts(node_factory: NodeFactory,
                                                        controller: Controller) -> None:  # noqa: F811
    nodes: dict[str, TestNode] = {f"c{i}": node_factory() for i in range(1, 5)}
    originals = {name: manifest(n) for name, n in nodes.items()}
    wrapper, log = counting_kaudit(controller.base)
    controller.inventory({name: [(name, n, {})] for name, n in nodes.items()}, {"kaudit_command": str(wrapper)})

    # Check mode with diff, 4 hosts, 2 forks: every host changed (a real run would), nothing on any node
    # changed; each host's manifest and policy diff; one `kaudit enable --dry-run` for the play, one status
    # (the diff's before-policy), at most one render (the after-policy).
    pb = controller.playbook("enable", [audit(profile="minimal", **FAST)])
    play = controller.run(pb, "--check", "--diff", "-f", "2")
    assert play.code == 0, play.out + play.err
    for name, n in nodes.items():
        res = play.results[name]
        assert res["changed"] is True and res["action"] == "dry-run", res
        assert res["batch"]["hosts"] == 4 and res["batch"]["kaudit_runs"] == 1, res
        assert res["kaudit"]["node"] == name
        assert manifest(n) == originals[name]
    assert play.out.count("--- before: audit policy: none (auditing off)") == 4, play.out
    assert play.out.count("+    - --audit-policy-file=/etc/kubernetes/audit/policy-") == 4, play.out
    ran = starts(log)
    assert ran.count("enable") == 1 and ran.count("status") == 1 and ran.count("render") <= 1, ran

    # The real run; c2's new API server fails: c2 alone failed and restored, the others changed, one kaudit.
    nodes["c2"].configure(fail_next_start=True, crash_backoff=5)
    play = controller.run(controller.playbook("enable-real", [audit(profile="minimal", timeout=3, guard_grace=3)]),
                          "-f", "2")
    assert play.code == 2, play.out + play.err
    assert starts(log) == ["enable"]
    assert failed(play, "c2") and play.results["c2"]["restored"] is True and play.results["c2"]["exit_code"] == 1
    assert "c2: " in play.results["c2"]["msg"] and manifest(nodes["c2"]) == originals["c2"]
    for name in ("c1", "c3", "c4"):
        assert not failed(play, name), play.out
        assert play.results[name]["changed"] is True and play.results[name]["action"] == "enabled"
        assert b"--audit-policy-file" in manifest(nodes[name]) and audit_argv(nodes[name])

    # Per-host `when` and arguments, worked out for hosts no fork runs yet: c1 skipped, c3's own profile from
    # its host variables, c2 enabled now, c4 unchanged; one kaudit per set of arguments (2), with diff.
    controller.inventory({name: [(name, n, {"kaudit_profile": "recommended"} if name == "c3" else {})]
                          for name, n in nodes.items()}, {"kaudit_command": str(wrapper)})
    task = {**audit(profile="{{ kaudit_profile | default('minimal') }}", **FAST), "when": "inventory_hostname != 'c1'"}
    c1_before = manifest(nodes["c1"])
    play = controller.run(controller.playbook("per-host", [task]), "--diff", "-f", "2")
    assert play.code == 0, play.out + play.err
    assert re.search(r"^c1\s+: ok=0\s+changed=0\s+unreachable=0\s+failed=0\s+skipped=1", play.out, re.M), play.out
    assert manifest(nodes["c1"]) == c1_before
    assert play.results["c2"]["changed"] is True and play.results["c2"]["action"] == "enabled"
    assert play.results["c3"]["changed"] is True and play.results["c3"]["action"] == "switched"
    assert play.results["c3"]["kaudit"]["profile"] == "recommended"
    assert play.results["c4"]["changed"] is False and play.results["c4"]["action"] == "unchanged"
    assert {play.results[h]["batch"]["kaudit_runs"] for h in ("c2", "c3", "c4")} == {2}
    ran = starts(log)
    assert ran.count("enable") == 2, ran
    assert re.search(r"\+\+\+ after: audit policy /etc/kubernetes/audit/policy-\w+\.yaml", play.out)

    # The controller's batch files: a private directory, files 0600, no result left behind.
    base = Path(tempfile.gettempdir()) / f"kaudit-ansible-{os.getuid()}"
    for run_dir in base.glob("run-*"):
        if run_dir.stat().st_uid != os.getuid():
            continue
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        for f in run_dir.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
            if f.suffix == ".json":
                assert json.loads(f.read_text())["hosts"] == {}, f
