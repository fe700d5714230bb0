"""The one event matcher (installer/auditlog/match.py): `kaudit logs` filters and the detection catalogue
check an event's fields through it, so a value means the same in both: exact, or ending in `*` a prefix."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from installer.auditlog import match
from installer.auditlog.reader import Event
from installer.detections import catalogue
from installer.logs.filters import Filters

DECODE = msgspec.json.Decoder(Event).decode


def event(**over: Any) -> Event:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a", "stage":
        "ResponseComplete", "requestURI": "/api/v1/namespaces/kube-system/secrets/token-x?timeout=5s",
        "verb": "get", "user": {"username": "system:serviceaccount:ci:bot", "groups": ["system:serviceaccounts"]},
        "objectRef": {"resource": "secrets", "namespace": "kube-system", "name": "token-x", "apiVersion": "v1"},
        "responseStatus": {"code": 200}, "stageTimestamp": "2026-05-01T10:00:00.000000Z",
    }
    doc.update(over)
    return DECODE(json.dumps(doc).encode())


FIELD_CASES = [
    ("users", ["system:serviceaccount:ci:bot"], True), ("users", ["system:serviceaccount:*"], True),
    ("users", ["system:node:*"], False), ("users", ["system:serviceaccount:ci:bo"], False),
    ("groups", ["system:serviceaccounts"], True), ("groups", ["system:*"], True), ("groups", ["dev*"], False),
    ("namespaces", ["kube-system"], True), ("namespaces", ["kube-*"], True), ("namespaces", ["kube"], False),
    ("names", ["token-*"], True), ("names", ["token"], False), ("names", ["*"], True),
    ("verbs", ["get", "list"], True), ("verbs", ["list"], False),
    ("paths", ["/api/v1/namespaces/kube-system/secrets/token-x"], True), ("paths", ["/api/v1/*"], True),
    ("paths", ["/apis/*"], False),
    ("codes", ["2xx"], True), ("codes", ["200"], True), ("codes", ["4xx"], False),
    ("levels", ["Metadata"], True), ("stages", ["ResponseComplete"], True), ("stages", ["Panic"], False),
    ("resources", ["secrets"], True), ("resources", ["*/exec"], False),
]


@pytest.mark.parametrize(("name", "values", "matches"), FIELD_CASES)
def test_each_field_by_the_one_rule(name: str, values: list[str], matches: bool) -> None:
    ev = event()
    assert match.check(name, values)(ev) is matches
    if name != "codes":
        assert match.check(name, values, negate=True)(ev) is not matches


def test_an_event_without_a_code_matches_neither_a_code_nor_its_negation() -> None:
    ev = event(responseStatus=None, stage="RequestReceived")
    assert not match.check("codes", ["2xx"])(ev) and not match.check("codes", ["4xx"], negate=True)(ev)


def test_absent_fields() -> None:
    ev = event(objectRef=None, user=None)
    assert not match.check("namespaces", ["*"])(ev) and match.check("namespaces", ["*"], negate=True)(ev)
    assert not match.check("groups", ["*"])(ev) and match.check("users", [""])(ev)


BOTH = ("users", "groups", "namespaces", "names", "verbs", "codes", "stages", "resources")  # filters and `match`


@pytest.mark.parametrize(("name", "values", "matches"), [c for c in FIELD_CASES if c[0] in BOTH])
def test_filters_and_the_catalogue_agree(name: str, values: list[str], matches: bool) -> None:
    """The same values mean the same under `kaudit logs --FIELD` and in a catalogue entry's `match`."""
    ev = event()
    assert Filters.build(**{name: values}).predicate()(ev) is matches
    [det] = catalogue.from_data("test", {"detections": [{"name": "probe", "title": "t", "why": "w", "level": "Metadata",
                                                         "rules": ["r"], "match": {name: values}}]})
    assert det.matches(ev, b"{}") is matches
