"""`kaudit simulate` on local sources: the report's figures (byte estimation cases), -o events, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from installer.auditlog import reader
from installer.commands import simulate as simulate_cmd
from installer.policy.validate import parse
from installer.simulate.simulate import Candidate, Rotation, Simulation, history_days
from tests import auditgen

SECRET = "c3VwZXItc2VjcmV0LXRva2Vu"  # a Secret value in a body: must never be printed


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """kaudit"""

    simulate_cmd.register(app)
    return app


def kaudit(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), ["simulate", *args], input=stdin)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def event(i: int, *, level: str = "Metadata", stage: str = "ResponseComplete", verb: str = "get",
          uri: str = "/api/v1/namespaces/a/pods/p", user: str = "alice", ts: str = "2026-05-01T10:00:00.000000Z",
          **extra: Any) -> dict[str, Any]:
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": f"id-{i}", "stage": stage,
            "requestURI": uri, "verb": verb, "user": {"username": user, "groups": ["system:authenticated"]},
            "stageTimestamp": ts, "requestReceivedTimestamp": ts, "responseStatus": {"metadata": {}, "code": 200},
            **extra}


def line(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, separators=(",", ":")).encode() + b"\n"


def write(path: Path, *events: dict[str, Any]) -> Path:
    path.write_bytes(b"".join(line(e) for e in events))
    return path


HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
POLICY_META = HEAD + "rules:\n- level: Metadata\n"
POLICY_REQUEST = HEAD + "rules:\n- level: Request\n"
POLICY_RR = HEAD + "rules:\n- level: RequestResponse\n"
KEEP_ALL = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def candidate(text: str, name: str = "p", rotation: Rotation | None = None) -> Candidate:
    report = parse(text)
    assert report.policy is not None, report.errors
    return Candidate(name, report.policy, rotation or Rotation(30, 10, 100, "default"), "policy-file")


def run(path: Path, *texts: str) -> dict[str, Any]:
    """The report of the fast path (blocks); the one-by-one path (-o events, TARGETs) must agree."""
    sim = Simulation([candidate(t, f"c{i}") for i, t in enumerate(texts)], (1, 36))
    stats = reader.ReadStats()
    sim.read(reader.read_blocks(reader.local_sources([str(path)]), stats))
    report = sim.report(stats)
    slow = Simulation([candidate(t, f"c{i}") for i, t in enumerate(texts)], (1, 36))
    slow_stats = reader.ReadStats()
    slow.run(reader.read_as(reader.local_sources([str(path)]), reader.LEAN_DECODER_WITH_ID, slow_stats))
    assert _figures(slow.report(slow_stats)) == _figures(report)
    return report


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    return {**report, "candidates": [{k: v for k, v in c.items() if k != "cache"} for c in report["candidates"]]}


# --------------------------------------------------------------------------- bytes


def test_same_level_is_exact(tmp_path: Path) -> None:
    log = write(tmp_path / "a.log", event(1), event(2))
    r = run(log, POLICY_META)
    c = r["candidates"][0]
    assert c["bytes"] == c["bytesExact"] == log.stat().st_size == r["log"]["bytes"]
    assert not c["bytesAtLeast"]


def test_lower_level_drops_the_bodies_exactly(tmp_path: Path) -> None:
    body = {"kind": "Secret", "data": {"token": SECRET}}
    rr = event(1, level="RequestResponse", verb="update", requestObject=body, responseObject=body)
    as_metadata = {k: v for k, v in rr.items() if k not in ("requestObject", "responseObject")} | {"level": "Metadata"}
    as_request = {k: v for k, v in rr.items() if k != "responseObject"} | {"level": "Request"}
    log = write(tmp_path / "a.log", rr)
    r = run(log, POLICY_META, POLICY_REQUEST, POLICY_RR)
    sizes = [c["bytes"] for c in r["candidates"]]
    assert sizes == [len(line(as_metadata)), len(line(as_request)), len(line(rr))]


def test_omit_managed_fields_is_sized_exactly(tmp_path: Path) -> None:
    obj = {"metadata": {"name": "x", "managedFields": [{"manager": "kubectl", "operation": "Update"}]}, "spec": {}}
    lean = {"metadata": {"name": "x"}, "spec": {}}
    log = write(tmp_path / "a.log", event(1, level="Request", verb="update", requestObject=obj))
    r = run(log, POLICY_REQUEST + "omitManagedFields: true\n")
    expected = event(1, level="Request", verb="update", requestObject=lean)
    assert r["candidates"][0]["bytes"] == len(line(expected))


def test_higher_level_estimates_bodies_from_the_same_verb_and_resource(tmp_path: Path) -> None:
    body = {"kind": "Deployment", "spec": {"replicas": 3}}
    uri = "/apis/apps/v1/namespaces/a/deployments/d"
    seen = event(1, level="Request", verb="update", uri=uri, requestObject=body)
    unseen = event(2, level="Metadata", verb="update", uri=uri)
    log = write(tmp_path / "a.log", seen, unseen)
    r = run(log, POLICY_REQUEST)
    c = r["candidates"][0]
    body_bytes = len(b'"requestObject":') + 1 + len(json.dumps(body, separators=(",", ":")))
    # the raised event: its metadata exactly, its body the mean of the bodies seen
    assert c["bytesExact"] == len(line(seen)) + len(line(unseen)) + len("Request") - len("Metadata")
    assert c["bytesEstimated"] == body_bytes
    assert c["unknownBodies"] == 0 and not c["bytesAtLeast"]


def test_higher_level_without_any_example_is_at_least(tmp_path: Path) -> None:
    log = write(tmp_path / "a.log", event(1, verb="create", uri="/api/v1/namespaces/a/configmaps"))
    c = run(log, POLICY_RR)["candidates"][0]
    assert c["unknownBodies"] == 2 and c["bytesAtLeast"]  # the request and the response body


def test_reads_have_no_request_body(tmp_path: Path) -> None:
    log = write(tmp_path / "a.log", event(1, verb="get"), event(2, verb="list", uri="/api/v1/pods"))
    c = run(log, POLICY_REQUEST)["candidates"][0]
    assert c["unknownBodies"] == 0 and c["bytesEstimated"] == 0 and not c["bytesAtLeast"]


def test_a_stage_the_log_omitted_is_counted_once_per_request(tmp_path: Path) -> None:
    watch = event(2, verb="watch", uri="/api/v1/pods?watch=true")
    log = write(tmp_path / "a.log", event(1), watch, event(2, verb="watch", uri="/api/v1/pods?watch=true",
                                                          stage="ResponseStarted") | {"auditID": "id-2"})
    r = run(log, KEEP_ALL, POLICY_META)
    keeps, omits = r["candidates"]
    assert keeps["stagesAdded"]["RequestReceived"]["events"] == 2  # two requests
    received = {k: v for k, v in event(1).items() if k != "responseStatus"} | {"stage": "RequestReceived"}
    assert keeps["stagesAdded"]["RequestReceived"]["bytes"] == len(line(received)) + len(line(
        {k: v for k, v in watch.items() if k != "responseStatus"} | {"stage": "RequestReceived"}))
    assert keeps["events"] == 5 and omits["events"] == 3
    assert "ResponseStarted" not in keeps["stagesAdded"]  # the log has it for the watch already


def test_profiler_streams_are_long_running(tmp_path: Path) -> None:
    """k8s.io/apiserver server/filters/longrunning.go: a non-resource path under /debug/pprof/ is long-running,
    so the API server also writes its ResponseStarted; a /metrics scrape is not."""
    log = write(tmp_path / "a.log", event(1, uri="/debug/pprof/profile?seconds=30"), event(2, uri="/metrics"),
                event(3, verb="get", uri="/api/v1/namespaces/a/pods/p/log?follow=true"))
    keeps = run(log, KEEP_ALL)["candidates"][0]
    assert keeps["stagesAdded"]["ResponseStarted"]["events"] == 2  # the profile and the pod log
    assert keeps["stagesAdded"]["RequestReceived"]["events"] == 3


def test_a_failed_authentication_is_one_responsestarted_event(tmp_path: Path) -> None:
    """pkg/endpoints/filters/authn_audit.go: a request that fails authentication is written as a single
    ResponseStarted event without a user; it is a request, and no other stage of it is ever written."""
    failed = event(1, stage="ResponseStarted", uri="/api/v1/namespaces/kube-system/secrets", verb="list",
                   responseStatus={"metadata": {}, "code": 401}) | {"user": {}}
    log = write(tmp_path / "a.log", failed, event(2))
    omit_started = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [ResponseStarted]\n"
                    "rules:\n- level: Metadata\n")
    keeps, omits = run(log, KEEP_ALL, omit_started)["candidates"]
    assert keeps["requests"] == 2 and keeps["events"] == 3  # + the RequestReceived of the authenticated one
    assert keeps["stagesAdded"]["RequestReceived"]["events"] == 1
    assert omits["requests"] == 1 and omits["stopsWriting"]["top"][0]["user"] == "(unauthenticated)"


def test_dropped_groups_rules_and_days(tmp_path: Path) -> None:
    events = [event(i, user="system:kube-proxy", verb="watch", uri="/api/v1/endpoints?watch=1",
                    ts=f"2026-05-0{1 + i % 2}T10:00:00.000000Z") for i in range(6)]
    events.append(event(9, ts="2026-05-01T10:00:00.000000Z"))
    log = write(tmp_path / "a.log", *events)
    policy = (HEAD + "rules:\n"
              "- level: None\n  users: [system:kube-proxy]\n  verbs: [watch]\n"
              "- level: None\n  resources: [{group: apps}]\n"
              "- level: Metadata\n")
    r = run(log, policy)
    c = r["candidates"][0]
    assert c["stopsWriting"]["top"] == [{"user": "system:kube-proxy", "verb": "watch", "resource": "endpoints",
                                         "events": 6}]
    assert [x["hits"] for x in c["rules"]] == [6, 0, 1]
    assert c["rulesNeverFired"] == [1]
    assert r["input"]["spanSeconds"] == 86400.0
    assert c["eventsPerDay"] == 1 and c["bytesPerDay"] == c["bytes"]


def test_requests_no_longer_recorded_and_stage_events_dropped_are_apart(tmp_path: Path) -> None:
    """Issue 24 item 3: minimal records a node's lease updates at Metadata and drops only their
    RequestReceived events: those requests are still recorded, and the report must not say otherwise."""
    from io import StringIO

    from installer.policy.profiles import render
    from installer.simulate.text import render_text

    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/worker-1"
    events = []
    for i in range(3):
        for stage in ("RequestReceived", "ResponseComplete"):
            events.append(event(i, verb="update", uri=lease, user="system:node:worker-1", stage=stage))
        events.append(event(10 + i, uri="/healthz", user="system:anonymous"))
    log = write(tmp_path / "a.log", *events)
    r = run(log, render("minimal").text)
    c = r["candidates"][0]
    assert c["stopsRecording"] == {"requests": 3, "events": 3, "top": [
        {"user": "system:anonymous", "verb": "get", "resource": "/healthz", "events": 3}]}
    assert c["stagesDropped"] == {"events": 3, "byStage": {"RequestReceived": 3}, "top": [
        {"user": "system:node:worker-1", "verb": "update", "resource": "leases.coordination.k8s.io",
         "stage": "RequestReceived", "events": 3}]}
    assert c["stopsWriting"]["events"] == 6  # both, as before
    out = StringIO()
    render_text({**r, "candidates": [{**c, "name": "minimal"}]}, out)
    text = out.getvalue()
    gone = text.split("would no longer record", 1)[1].split("would drop", 1)[0]
    assert "/healthz" in gone and "leases" not in gone, text
    assert "would drop 3 RequestReceived event(s) of requests it still records" in text, text
    assert "system:node:worker-1  update  leases.coordination.k8s.io  RequestReceived" in text, text


def test_text_names_each_rule_and_shows_no_bound_on_a_missing_figure(tmp_path: Path) -> None:
    """Rule hits name the rule (`#1 Metadata secrets,configmaps`), not a bare index; a per-day figure that
    cannot be given is a bare "-", never "≥ -" (issue 24)."""
    from io import StringIO

    from installer.simulate.text import render_text

    log = write(tmp_path / "a.log", event(1, verb="create", uri="/api/v1/namespaces/a/configmaps"),
                event(2, verb="create", uri="/apis/apps/v1/namespaces/a/deployments"))
    policy = (HEAD + "rules:\n- level: None\n  users: [system:kube-proxy]\n"
              "- level: Metadata\n  resources: [{resources: [secrets, configmaps]}]\n- level: RequestResponse\n")
    r = run(log, policy)
    c = r["candidates"][0]
    assert c["bytesAtLeast"] and c["bytesPerDay"] is None  # a body unknown; under a minute of log
    assert [x["summary"] for x in c["rules"]] == ["None users=system:kube-proxy", "Metadata secrets,configmaps",
                                                 "RequestResponse (every request)"]
    out = StringIO()
    render_text(r, out)
    text = out.getvalue()
    assert "≥ -" not in text and "≥ " in text, text
    assert "never fired  #0 None users=system:kube-proxy (line 5)" in text, text
    assert "1  #1 Metadata secrets,configmaps (line 7)" in text, text


def test_early_folds_and_hour_crossing_blocks_give_the_same_report(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat by folding the per-key tables into the counters when they grow: the figures
    are sums, so folding after every few keys changes nothing; nor do blocks that cross an hour."""
    from installer.simulate import simulate

    log = tmp_path / "audit.log"
    auditgen.write(log, 3000, span=4 * 3600.0)
    lean = POLICY_RR + "omitManagedFields: true\n"
    whole = run(log, POLICY_META, lean, POLICY_RR)
    monkeypatch.setattr(simulate, "_MAX_KEYS", 3)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 8192)
    folded = run(log, POLICY_META, lean, POLICY_RR)
    assert _figures(folded) == _figures(whole)
    assert len(whole["log"]["eventsPerHour"]) >= 4
    _, without_mf, with_mf = whole["candidates"]
    assert without_mf["bytesExact"] < with_mf["bytesExact"]  # managedFields left out of the bodies


def test_history_days() -> None:
    day = 100 * 1024 * 1024  # 100 MiB a day
    assert history_days(Rotation(30, 10, 100, "x"), day, (1, 34)) == (11.0, "size")
    assert history_days(Rotation(7, 10, 100, "x"), day, (1, 34)) == (7.0, "maxage")
    assert history_days(Rotation(0, 0, 100, "x"), day, (1, 34)) == (None, "unbounded (no size or age limit)")
    assert history_days(Rotation(0, 1, 0, "x"), day, (1, 34)) == (2.0, "size")  # maxsize 0 = 100 MB before 1.36
    assert history_days(Rotation(30, 1, 0, "x"), day, (1, 36)) == (30.0, "maxage")  # no rotation from 1.36


# --------------------------------------------------------------------------- the command


def test_events_output_contract(tmp_path: Path) -> None:
    log = write(tmp_path / "a.log", event(1), event(2, verb="create", uri="/api/v1/namespaces/a/secrets",
                                                    requestObject={"data": {"k": SECRET}}, level="Request"))
    pol = tmp_path / "p.yaml"
    pol.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  resources:\n"
                   "  - resources: [secrets]\n- level: Metadata\n")
    code, out, err = kaudit(str(log), "--policy-file", str(pol), "-p", "minimal", "-o", "events")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert rows[0] == {"source": str(log), "line": 1, "auditID": "id-1", "stage": "ResponseComplete",
                       "policy": str(pol), "level": "Metadata", "rule": 1, "written": True}
    # for each event in input order, each candidate in command-line order
    assert [(r["line"], r["policy"]) for r in rows] == [(1, str(pol)), (1, "minimal"), (2, str(pol)), (2, "minimal")]
    assert rows[2]["level"] == "None" and rows[2]["rule"] == 0 and rows[2]["written"] is False
    assert SECRET not in out


def test_a_fieldselector_names_the_object_of_a_list_only(tmp_path: Path) -> None:
    """requestinfo.go takes metadata.name from a list's or watch's fieldSelector; a create on the same URI
    has no name. The same URI read twice, with either verb, keeps each its own answer."""
    uri = "/api/v1/namespaces/a/configmaps?fieldSelector=metadata.name%3Dcm"
    log = write(tmp_path / "a.log", *(event(i, verb=v, uri=uri) for i, v in enumerate(["list", "create"] * 2)))
    pol = tmp_path / "p.yaml"
    pol.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Request\n  resources:\n"
                   "  - resources: [configmaps]\n    resourceNames: [cm]\n- level: Metadata\n")
    for output in ("events", "json"):
        code, out, err = kaudit(str(log), "--policy-file", str(pol), "-o", output)
        assert code == 0, err
        if output == "events":
            assert [json.loads(x)["rule"] for x in out.splitlines()] == [0, 1, 0, 1]
        else:
            assert [r["hits"] for r in json.loads(out)["candidates"][0]["rules"]] == [2, 2]


def test_text_and_json(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    auditgen.write(log, 2000)
    with log.open("ab") as out:
        out.write(line(event(1, verb="update", uri="/api/v1/namespaces/a/secrets/s", level="RequestResponse",
                             requestObject={"data": {"token": SECRET}}, responseObject={"data": {"t": SECRET}})))
        out.write(b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Meta')
    code, out, err = kaudit(str(log), "-p", "recommended", "-p", "minimal",
                            "--set", "recommended.exclude_namespaces=ci")
    assert code == 0, err
    assert "recommended" in out and "minimal" in out and "days of history" in out and "events per hour" in out
    assert f"{log}:" in out  # the skipped last line, with its place
    assert SECRET not in out
    code, out, err = kaudit(str(log), "-p", "recommended", "--policy-file", str(_policy(tmp_path)), "-o", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schemaVersion"] == 1 and doc["command"] == "simulate"
    assert [c["name"] for c in doc["candidates"]] == ["recommended", str(tmp_path / "p.yaml")]
    assert doc["candidates"][0]["rotation"] == {"maxage": 30, "maxbackup": 10, "maxsize": 100, "source": "profile"}
    assert doc["input"]["skippedLines"] == 1
    assert SECRET not in out
    assert doc["candidates"][0]["cache"]["hitRate"] > 0.5


@pytest.mark.parametrize(("args", "order"), [
    (["-p", "minimal", "--policy-file", "{f}", "-p", "recommended"], ["minimal", "{f}", "recommended"]),
    (["--policy-file={f}", "-pminimal", "--set", "recommended.exclude_namespaces=ci", "--profile=recommended"],
     ["{f}", "minimal", "recommended"]),
    (["-p", "recommended", "-p", "minimal", "-p", "recommended", "--policy-file", "{f}"],
     ["recommended", "minimal", "{f}"]),  # a profile given twice is one candidate
])
def test_mixed_candidates_keep_the_command_line_order(tmp_path: Path, args: list[str], order: list[str]) -> None:
    log = write(tmp_path / "a.log", event(1))
    f = str(_policy(tmp_path))
    code, out, err = kaudit(str(log), *(a.replace("{f}", f) for a in args), "-o", "json")
    assert code == 0, err
    assert [c["name"] for c in json.loads(out)["candidates"]] == [o.replace("{f}", f) for o in order]
    code, out, _ = kaudit(str(log), *(a.replace("{f}", f) for a in args), "-o", "events")
    assert [json.loads(x)["policy"] for x in out.splitlines()] == [o.replace("{f}", f) for o in order]


def _policy(tmp_path: Path) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(POLICY_META)
    return p


def test_since_until(tmp_path: Path) -> None:
    log = write(tmp_path / "a.log", event(1, ts="2026-05-01T09:00:00.000000Z"),
                event(2, ts="2026-05-01T10:30:00.000000Z"), event(3, ts="2026-05-01T12:00:00.000000Z"))
    code, out, _ = kaudit(str(log), "-p", "minimal", "--since", "2026-05-01T10:00:00Z", "--until",
                          "2026-05-01T11:00:00+00:00", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["input"]["filteredOut"] == 2 and doc["log"]["events"] == 1


def test_empty_log_reports_zero(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    code, out, _ = kaudit(str(log), "-p", "minimal", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["log"]["events"] == 0 and doc["candidates"][0]["events"] == 0


def test_stdin(tmp_path: Path) -> None:
    code, out, _ = kaudit("-", "-p", "minimal", "-o", "json", stdin=line(event(1)))
    assert code == 0 and json.loads(out)["log"]["events"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["-p", "nope"], "unknown profile"),
    (["-p", "minimal", "--set", "nope=1"], "no --profile candidate has a variable"),
    ([], "at least one candidate"),
    (["-p", "minimal", "-o", "yaml"], "--output must be"),
    (["-p", "minimal", "--since", "yesterday"], "expected a time"),
])
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    log = write(tmp_path / "a.log", event(1))
    code, out, err = kaudit(str(log), *args)
    assert code == 2 and message in err and "Traceback" not in err + out


def test_bad_logs_exit_2_with_one_line(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.log"
    legacy.write_text('2017-03-21T03:57:09.106841886-04:00 AUDIT: id="c939" ip="127.0.0.1" method="GET"\n')
    other = tmp_path / "other.log"
    other.write_text("just some text\n")
    bad_policy = tmp_path / "bad.yaml"
    bad_policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resource: [x]\n")
    for args, message in (([str(legacy), "-p", "minimal"], "legacy format"),
                          ([str(other), "-p", "minimal"], "not an audit log"),
                          ([str(tmp_path / "missing.log"), "-p", "minimal"], "no such file"),
                          ([str(write(tmp_path / "a.log", event(1))), "--policy-file", str(bad_policy)],
                           "not a valid audit policy")):
        code, out, err = kaudit(*args)
        assert code == 2, (args, out, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert message in err
