"""`kaudit tune` as a user runs it (the installed command): the policy it prints keeps the detections,
never records secret bodies, records unseen traffic, and every claim in its comments is what
`kaudit simulate` measures when the rule is taken out (issue 22)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from installer.policy.evaluate import Attributes, Evaluator
from installer.policy.validate import parse
from tests import auditgen
from tests.kaudit_cli import Run, kaudit

T0 = 1_777_600_000.0


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated day of a small cluster's traffic: over 200k events."""
    path = tmp_path_factory.mktemp("tune") / "day.log"
    assert auditgen.write(path, 300_000) >= 200_000
    return path


@pytest.fixture(scope="module")
def tuned(day: Path) -> dict[str, Any]:
    run = kaudit("tune", str(day), "-o", "json", timeout=300)
    assert run.code == 0, run.err
    doc: dict[str, Any] = run.json()
    return doc


def _yaml_run(*args: str, stdin: str | None = None) -> Run:
    return kaudit("tune", *args, stdin=stdin, timeout=300)


def test_keeps_every_detection_write_bodies_keeps_at_half_its_bytes(tuned: dict[str, Any]) -> None:
    rows = {r["name"]: r for r in tuned["compare"]}
    assert tuned["coverage"]["kept"] >= rows["write-bodies"]["coverage"]["kept"] == 38
    assert tuned["coverage"]["lost"] == 0
    assert [d["detection"] for d in tuned["degraded"]] == ["configmap-with-credentials"]
    assert rows["tuned"]["bytesPerDay"] <= 0.5 * rows["write-bodies"]["bytesPerDay"], rows
    assert len(re.findall(r"^- level:", tuned["policy"], re.M)) <= 25


def test_each_comment_is_what_simulate_measures_without_that_rule(tuned: dict[str, Any], day: Path,
                                                                  tmp_path: Path) -> None:
    yaml = YAML()
    policy = yaml.load(tuned["policy"])
    assert tuned["rules"], "no cut rule on a day of a cluster's traffic"
    files = [tmp_path / "tuned.yaml"]
    files[0].write_text(tuned["policy"])
    for i in range(len(tuned["rules"])):
        doc = yaml.load(tuned["policy"])
        del doc["rules"][i]
        files.append(tmp_path / f"without-{i}.yaml")
        with files[-1].open("w") as out:
            yaml.dump(doc, out)
    args = [a for f in files for a in ("--policy-file", str(f))]
    sim = kaudit("simulate", str(day), *args, "-o", "json", timeout=300)
    assert sim.code == 0, sim.err
    cands = sim.json()["candidates"]
    for i, rule in enumerate(tuned["rules"]):
        # per day, each figure rounded on its own: within one byte (or event) a day
        assert rule["savesBytesPerDay"] > 0
        assert abs(cands[1 + i]["bytesPerDay"] - cands[0]["bytesPerDay"] - rule["savesBytesPerDay"]) <= 1
        assert abs(cands[1 + i]["eventsPerDay"] - cands[0]["eventsPerDay"] - rule["savesEventsPerDay"]) <= 1
        # the rule in the YAML is the one the JSON describes, and its comment says the same figures
        assert policy["rules"][i]["level"] == rule["level"]
        assert list(policy["rules"][i]["verbs"]) == rule["verbs"]
        assert f"saves {rule['savesEventsPerDay']:,} events" in tuned["policy"]


def test_never_records_secret_bodies_and_records_unseen_traffic(tuned: dict[str, Any]) -> None:
    report = parse(tuned["policy"])
    assert report.ok and report.policy is not None
    assert tuple(report.policy.omit_stages) == ("RequestReceived",)
    ev = Evaluator(report.policy)
    for user in ("kubernetes-admin", "system:serviceaccount:ci:deployer", "eve"):
        for verb in ("get", "list", "create", "update", "patch", "delete"):
            for group, resource, sub in (("", "secrets", ""), ("", "configmaps", ""),
                                         ("", "serviceaccounts", "token"),
                                         ("authentication.k8s.io", "tokenreviews", "")):
                attrs = Attributes(user, ("system:authenticated",), verb, True, "", group, "v1", "default",
                                   resource, sub, "x")
                assert ev.evaluate(attrs).level in ("None", "Metadata"), (user, verb, resource)
    # a kind of request the log never showed: still recorded, at Metadata
    unseen = Attributes("mallory", ("system:authenticated",), "create", True, "", "example.com", "v1", "default",
                        "widgets", "", "")
    assert ev.evaluate(unseen).level == "Metadata"
    # detections that read request bodies keep them, whoever sends them (the log held no such request by them)
    pod = Attributes("mallory", ("system:authenticated",), "create", True, "", "", "v1", "default", "pods", "", "")
    assert ev.evaluate(pod).level == "Request"


def test_the_same_log_gives_the_same_bytes_and_enable_accepts_it(day: Path, tmp_path: Path) -> None:
    first, second = _yaml_run(str(day)), _yaml_run(str(day))
    assert first.code == second.code == 0, first.err
    assert first.out == second.out
    assert "tuned" in first.err and "write-bodies" in first.err  # the comparison on stderr
    path = tmp_path / "tuned.yaml"
    path.write_text(first.out)
    checked = kaudit("validate", str(path))
    assert checked.code == 0, checked.out + checked.err
    exported = kaudit("export", "--policy-file", str(path), "--format", "kubeadm")  # enable's --force gate
    assert exported.code == 0, exported.err


def _event(user: str, verb: str, uri: str, t: float, *, code: int = 200, level: str = "Metadata",
           group: str = "system:authenticated", body: dict[str, Any] | None = None) -> str:
    ev: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": f"id-{t}",
        "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
        "user": {"username": user, "groups": [group]}, "sourceIPs": ["10.0.0.1"], "userAgent": "test",
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": auditgen._ts(t), "stageTimestamp": auditgen._ts(t + 0.01),
    }
    if body is not None:
        ev["requestObject"] = body
    return json.dumps(ev, separators=(",", ":")) + "\n"


def _shape(path: Path, traffic: list[tuple[str, str, str, int]], hours: int = 24) -> Path:
    """Traffic classes (user, verb, uri, requests per hour), spread over `hours`."""
    lines = []
    for h in range(hours):
        for k, (user, verb, uri, per_hour) in enumerate(traffic):
            for n in range(per_hour):
                lines.append((T0 + h * 3600 + (n * 3600 / per_hour) + k * 0.001, user, verb, uri))
    lines.sort()
    group = {True: "system:nodes", False: "system:authenticated"}
    path.write_text("".join(_event(u, v, uri, t, group=group[u.startswith("system:node:")])
                            for t, u, v, uri in lines))
    return path


def test_a_chatty_controller_and_a_noisy_agent_are_cut_a_quiet_admin_is_not(tmp_path: Path) -> None:
    log = _shape(tmp_path / "shapes.log", [
        ("system:serviceaccount:kube-system:chatty", "update", "/apis/apps/v1/namespaces/a/deployments/x/status", 600),
        ("system:serviceaccount:monitoring:agent", "get", "/metrics", 900),
        ("kubernetes-admin", "get", "/api/v1/namespaces/a/secrets/s", 1),
        ("system:node:n1", "update", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", 360),
    ])
    run = _yaml_run(str(log), "-o", "json")
    assert run.code == 0, run.err
    doc = run.json()
    cut = {(u, r["level"]) for r in doc["rules"] for u in r["users"]}
    assert ("system:serviceaccount:kube-system:chatty", "None") in cut
    assert ("system:serviceaccount:monitoring:agent", "None") in cut
    assert ("system:node:n1", "None") in cut
    assert not any(u == "kubernetes-admin" for u, _ in cut)  # reads of secrets by a person: detections need them
    rows = {r["name"]: r for r in doc["compare"]}
    assert rows["tuned"]["eventsPerDay"] < 0.01 * rows["log"]["eventsPerDay"]


def test_a_quiet_cluster_with_no_pod_creations_keeps_the_detections_rules(tmp_path: Path) -> None:
    log = _shape(tmp_path / "quiet.log", [("system:node:n1", "get", "/api/v1/nodes/n1", 2)])
    run = _yaml_run(str(log), "-o", "json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["coverage"]["lost"] == 0 and doc["coverage"]["kept"] == 38
    policy = parse(doc["policy"]).policy
    assert policy is not None
    pod = Attributes("eve", ("system:authenticated",), "create", True, "", "", "v1", "default", "pods", "", "")
    assert Evaluator(policy).evaluate(pod).level == "Request"


def test_reads_stdin_and_keeps_named_detections(day: Path) -> None:
    run = _yaml_run("-", "--keep", "pod-exec,privileged-pod", "-o", "json", stdin=day.read_text())
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["input"]["events"] > 200_000
    assert "Read by: privileged-pod." in doc["policy"]


def test_budget_met_or_refused_naming_the_detections(day: Path, tuned: dict[str, Any]) -> None:
    per_day = next(r for r in tuned["compare"] if r["name"] == "tuned")["bytesPerDay"]
    ok = _yaml_run(str(day), "--budget", f"{per_day * 2}B/day")
    assert ok.code == 0, ok.err
    refused = _yaml_run(str(day), "--budget", f"{per_day // 2}B/day")
    assert refused.code == 2 and refused.out == ""
    assert "cannot be met" in refused.err and refused.err.count("\n") == 1, refused.err


@pytest.mark.parametrize(("args", "needle"), [
    (["{empty}"], "no audit events"),
    (["{missing}"], "no such file"),
    (["{day}", "--keep", "pod-exek"], "did you mean 'pod-exec'"),
    (["{day}", "--budget", "lots"], "--budget"),
    (["{day}", "-o", "xml"], "--output"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_text("")
    day = tmp_path / "small.log"
    auditgen.write(day, 500)
    paths = {"{empty}": str(empty), "{missing}": str(tmp_path / "nope.log"), "{day}": str(day)}
    run = _yaml_run(*[paths.get(a, a) for a in args])
    assert run.code == 2, (run.out, run.err)
    assert needle in run.err and run.err.count("\n") == 1 and "Traceback" not in run.err, run.err
    assert run.out == ""
