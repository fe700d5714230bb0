"""`kaudit logs` input and output an operator trips over (issue 24): verbs and resources checked and
normalised as the API server and `kubectl get` spell them, a filter set that matched nothing says so
with the values the log does hold, kaudit's own probe and verification requests left out by their
user agent AND shape, detection names with a did-you-mean, and times printed with their zone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from installer import __version__
from installer.auditlog.match import ResourceSpec, resource_name
from installer.auditlog.reader import Event
from installer.detections import catalogue as detections
from installer.errors import InputError
from installer.logs import logs
from installer.logs.filters import Filters, Misses, own_request

DECODE = msgspec.json.Decoder(Event).decode
AGENT = f"kaudit/{__version__} (verify)"
VERIFY_URI = "/api/v1/namespaces/default/configmaps?limit=1&kaudit-verify=20261205T073912Z-switch-de7b-1a2b"


def raw(**over: Any) -> bytes:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1",
        "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/prod/secrets/db", "verb": "delete",
        "user": {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        "sourceIPs": ["10.2.3.4"], "userAgent": "kubectl/v1.34.1 (linux/amd64) kubernetes/abcdef",
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2026-05-01T10:00:00.100000Z", "stageTimestamp": "2026-05-01T10:00:00.342000Z",
    }
    doc.update(over)
    return json.dumps(doc, separators=(",", ":")).encode()


def keep(line: bytes, **kw: Any) -> bool:
    f = Filters.build(**kw)
    exact = f.predicate()(DECODE(line))
    pre = all(any(s.encode() in line for s in group) for group in f.grep_groups())
    assert pre or not exact, ("the prefilter must never drop what the exact filter keeps", kw)
    return exact


# --------------------------------------------------------------------------- verbs and resources


def test_verbs_any_case_and_unknown_refused_with_the_nearest() -> None:
    line = raw()
    assert keep(line, verbs=["DELETE"]) and keep(line, verbs=["Delete,get"])
    assert Filters.build(verbs=["LIST", "list"]).verbs == ["list"]
    assert Filters.build(verbs=["POST", "proxy", "deletecollection"]).verbs == ["post", "proxy", "deletecollection"]
    for bad, near in (("delet", "delete"), ("lsit", "list"), ("wacth", "watch")):
        with pytest.raises(InputError) as info:
            Filters.build(verbs=[bad])
        message = str(info.value)
        assert f"--verb {bad!r}" in message and f"did you mean {near!r}" in message, message
        assert "deletecollection" in message and "\n" not in message
    with pytest.raises(InputError) as info:
        Filters.build(verbs=["frobnicate"])
    assert "did you mean" not in str(info.value) and "get, list, watch" in str(info.value)


@pytest.mark.parametrize(("given", "resource"), [
    ("secret", "secrets"), ("Secret", "secrets"), ("SECRETS", "secrets"), ("po", "pods"), ("pod", "pods"),
    ("svc", "services"), ("cm", "configmaps"), ("deploy", "deployments"), ("ds", "daemonsets"),
    ("sts", "statefulsets"), ("ns", "namespaces"), ("no", "nodes"), ("sa", "serviceaccounts"),
    ("ep", "endpoints"), ("pvc", "persistentvolumeclaims"), ("pv", "persistentvolumes"), ("rs", "replicasets"),
    ("rc", "replicationcontrollers"), ("ing", "ingresses"), ("netpol", "networkpolicies"),
    ("crd", "customresourcedefinitions"), ("cj", "cronjobs"), ("cronjob", "cronjobs"), ("job", "jobs"),
    ("jobs", "jobs"), ("clusterrole", "clusterroles"), ("clusterrolebinding", "clusterrolebindings"),
    ("role", "roles"), ("rolebinding", "rolebindings"), ("lease", "leases"), ("ev", "events"),
    ("event", "events"), ("configmap", "configmaps"), ("widgets", "widgets"), ("Widgets", "widgets"),
])
def test_kubectl_names_for_resources(given: str, resource: str) -> None:
    assert resource_name(given) == resource
    assert ResourceSpec.from_user(given).resource == resource


def test_resource_filters_take_kubectl_names() -> None:
    line = raw()
    assert keep(line, resources=["secret"]) and keep(line, resources=["Secret"]) and not keep(line, resources=["po"])
    exec_line = raw(verb="create", requestURI="/api/v1/namespaces/prod/pods/web/exec",
                    objectRef={"resource": "pods", "namespace": "prod", "name": "web", "apiVersion": "v1",
                               "subresource": "exec"})
    assert keep(exec_line, resources=["po/exec"]) and keep(exec_line, resources=["pod/*"])
    assert not keep(exec_line, resources=["po"])  # as in a policy: pods without a subresource
    scale = raw(verb="patch", objectRef={"resource": "deployments", "apiGroup": "apps", "namespace": "prod",
                                         "name": "web", "apiVersion": "v1", "subresource": "scale"})
    assert keep(scale, resources=["deploy.apps/scale"]) and keep(scale, resources=["deployment/scale"])
    assert keep(scale, resources=["deployments.apps/*"]) and not keep(scale, resources=["deploy.extensions/scale"])
    assert ResourceSpec.from_user("*/exec") == ResourceSpec("*", None, "exec")
    with pytest.raises(InputError):
        Filters.build(resources=["po/"])


# --------------------------------------------------------------------------- nothing matched


def _misses(lines: list[bytes], **kw: Any) -> str:
    filters = Filters.build(**kw)
    assert not any(filters.predicate()(DECODE(x)) for x in lines), "the filters must match none of the events"
    m = Misses(filters)
    for x in lines:
        m.add(DECODE(x))
    return m.message()


THREE_DELETES = [raw(auditID=f"d{i}", objectRef={"resource": "secrets", "namespace": "prod", "name": f"s{i}",
                                                  "apiVersion": "v1"}) for i in range(3)]
OTHERS = [raw(auditID="g1", verb="get", user={"username": "kubernetes-admin", "groups": ["system:masters"]},
              objectRef={"resource": "pods", "namespace": "kube-system", "apiVersion": "v1"})]


def test_no_match_names_the_users_the_log_holds() -> None:
    said = _misses(THREE_DELETES + OTHERS, users=["anonymous"])
    assert said.startswith("no event matched --user anonymous; users in the log: system:anonymous, ")
    assert "kubernetes-admin" in said and "\n" not in said


def test_no_match_prefers_the_events_that_fail_one_filter_only() -> None:
    said = _misses(THREE_DELETES + OTHERS, users=["anonymous"], verbs=["delete"])
    assert said == ("no event matched --user anonymous --verb delete; users of the events that match the other "
                    "filters: system:anonymous")
    said = _misses(THREE_DELETES + OTHERS, resources=["configmaps"], namespaces=["prod"])
    assert said.endswith("resources of the events that match the other filters: secrets")


def test_no_match_in_an_empty_window_or_log() -> None:
    assert _misses([], users=["jane"]) == "no event matched --user jane: the log holds no event"
    said = _misses(THREE_DELETES, since="2027-01-01T00:00:00Z")
    assert said == "no event matched --since 2027-01-01T00:00:00.000000Z: there is no event in the window"


def test_no_match_ranks_values_by_closeness_and_shows_at_most_five() -> None:
    users = [raw(auditID=f"u{i}", user={"username": name, "groups": []})
             for i, name in enumerate(["zed", "amy", "bob", "carl", "system:serviceaccount:ci:deployer", "dan",
                                       "eve", "fay"])]
    said = _misses(users, users=["ci:deployr"])
    assert said.startswith("no event matched --user system:serviceaccount:ci:deployr; users in the log: "
                           "system:serviceaccount:ci:deployer, ")
    assert said.endswith(", ...") and said.count(",") == 5


def test_no_match_looks_at_a_bounded_number_of_events_and_says_so() -> None:
    m = Misses(Filters.build(users=["jane"]), limit=2)
    for line in THREE_DELETES[:2]:
        m.add(DECODE(line))
    assert m.full
    assert m.message() == "no event matched --user jane; users in the log (its first 2 events): system:anonymous"
    assert m.head() == "no event matched --user jane"


# --------------------------------------------------------------------------- kaudit's own requests


def verify_event(**over: Any) -> bytes:
    base: dict[str, Any] = dict(
        verb="list", requestURI=VERIFY_URI, userAgent=AGENT, responseStatus={"metadata": {}, "code": 403},
        objectRef={"resource": "configmaps", "namespace": "default", "apiVersion": "v1"})
    base.update(over)
    return raw(**base)


def probe_event(**over: Any) -> bytes:
    base: dict[str, Any] = dict(verb="get", requestURI="/readyz", objectRef=None,
                                userAgent=f"kaudit/{__version__} (probe)")
    base.update(over)
    return raw(**base)


def test_own_requests_are_known_by_agent_and_shape() -> None:
    for line in (verify_event(), verify_event(user={"username": "kubernetes-admin", "groups": []}),
                 verify_event(stage="RequestReceived", responseStatus=None), probe_event(),
                 probe_event(requestURI="/livez"), probe_event(requestURI="/readyz?verbose")):
        assert own_request(DECODE(line), line), line
    # the same user agent on any other request is shown: an attacker gains nothing by sending it
    for line in (verify_event(verb="get"), verify_event(requestURI=VERIFY_URI.replace("limit=1", "limit=500")),
                 verify_event(objectRef={"resource": "secrets", "namespace": "default", "apiVersion": "v1"},
                              requestURI="/api/v1/namespaces/default/secrets?limit=1&kaudit-verify=x"),
                 verify_event(objectRef={"resource": "configmaps", "namespace": "kube-system", "apiVersion": "v1"},
                              requestURI="/api/v1/namespaces/kube-system/configmaps?limit=1&kaudit-verify=x"),
                 verify_event(userAgent=AGENT + " extra"), verify_event(userAgent="curl/7.88.1"),
                 probe_event(requestURI="/api/v1/secrets"), probe_event(verb="post"),
                 probe_event(userAgent=AGENT), raw(userAgent=AGENT)):
        assert not own_request(DECODE(line), line), line


def _records(lines: list[bytes]) -> Iterator[tuple[Any, bytes, str]]:
    from installer.auditlog.reader import Record

    for i, line in enumerate(lines):
        yield Record("cp-1:/log", i + 1, len(line) + 1, DECODE(line)), line, "cp-1"


def test_own_requests_left_out_unless_asked() -> None:
    lines = [verify_event(auditID=f"v{i}", stageTimestamp=f"2026-05-01T10:00:0{i}.000000Z") for i in range(6)]
    lines.append(raw(auditID="real", verb="list", userAgent="curl/7.88.1", responseStatus={"metadata": {}, "code": 403},
                     objectRef={"resource": "secrets", "namespace": "prod", "apiVersion": "v1"}))
    selected = logs.Selected()
    kept = [x[1] for x in selected.without_own(_records(lines), include=False)]
    assert kept == [lines[-1]] and selected.own == 6 and selected.shown == 1
    everything = logs.Selected()
    assert len(list(everything.without_own(_records(lines), include=True))) == 7 and everything.own == 0
    assert logs.own_note(6) == "6 of kaudit's own probe and verification requests left out (--include-kaudit " \
        "shows them)"


# --------------------------------------------------------------------------- detection names


def test_unknown_detection_name_says_the_nearest() -> None:
    catalogue = detections.load()
    with pytest.raises(InputError) as info:
        detections.select(catalogue, ["pod-exc"])
    message = str(info.value)
    assert "--detect 'pod-exc': no detection of that name (did you mean 'pod-exec'?)" in message
    assert "--list-detections" in message
    with pytest.raises(InputError) as far:
        detections.select(catalogue, ["zzzzzzzz"])
    assert "did you mean" not in str(far.value)


# --------------------------------------------------------------------------- times


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "IST-5:30")  # POSIX: UTC+05:30, no zoneinfo needed
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_text_times_carry_their_zone(kolkata: None) -> None:
    line = raw()
    local = logs.text_line("cp-1", DECODE(line), line).split("  ")[0]
    assert local == "2026-05-01T15:30:00.342+05:30"
    assert logs.text_line("cp-1", DECODE(line), line, utc=True).split("  ")[0] == "2026-05-01T10:00:00.342Z"
    from installer.auditlog.match import parse_time

    assert parse_time(local) == "2026-05-01T10:00:00.342000Z"  # a printed time pastes into --since
