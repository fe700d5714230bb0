"""Issue 23, the log-reading side, without a node: Secret data past the masking (item 2), one crafted
event crashing `kaudit logs` (item 3), `--save` into someone else's directory (item 8), terminal escapes
from the log (item 9), odd files on the node (item 10: the node-side script runs here, in a local `sh`).

`kaudit logs` is driven whole (`logs_command`), its node replaced by a local one: the real node-side
script (`logs_node.HISTORY`) reads files in a temporary directory through a local transport."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from installer.auditlog import logs, masking

SECRET = "s3cr3t-VALUE-never-shown"
B64 = base64.b64encode(SECRET.encode()).decode()
TS = "2026-05-01T10:00:00.000000Z"
LAST = masking.LAST_APPLIED


def event(aid: str = "a1", *, resource: str = "secrets", verb: str = "get", ts: str = TS, **over: Any
          ) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse", "auditID": aid,
        "stage": "ResponseComplete", "requestURI": f"/api/v1/namespaces/prod/{resource}/db", "verb": verb,
        "user": {"username": "alice", "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
        "userAgent": "kubectl/v1.34.1", "objectRef": {"resource": resource, "namespace": "prod", "name": "db",
                                                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200}, "requestReceivedTimestamp": ts, "stageTimestamp": ts,
    }
    doc.update(over)
    return doc


def line(doc: dict[str, Any]) -> bytes:
    text = json.dumps(doc, separators=(",", ":"))
    deep = 3000
    text = text.replace('"@DEEP@"', '{"a":[' * deep + json.dumps(SECRET) + "]}" * deep)
    return (text + "\n").encode()


def secret_obj(**meta: Any) -> dict[str, Any]:
    return {"kind": "Secret", "apiVersion": "v1", "type": "Opaque", "metadata": {"name": "db", **meta},
            "data": {"password": B64}, "stringData": {"plain": SECRET}}


def applied() -> str:
    """What `kubectl apply` writes in the annotation: the whole Secret, data and all."""
    return json.dumps({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"},
                       "data": {"password": B64}, "type": "Opaque"})


def with_annotation() -> dict[str, Any]:
    return secret_obj(annotations={LAST: applied()})


# --------------------------------------------------------------------------- item 2: masking


BODIES: dict[str, dict[str, Any]] = {
    "create: last-applied": event(verb="create", requestObject=with_annotation(), responseObject=with_annotation()),
    "get: last-applied": event(responseObject=with_annotation()),
    "merge patch with last-applied": event(verb="patch", requestObject={
        "metadata": {"annotations": {LAST: applied()}}, "data": {"password": B64}}),
    "JSON patch on a secret": event(verb="patch", requestObject=[
        {"op": "replace", "path": "/data/password", "value": B64},
        {"op": "add", "path": "/stringData", "value": {"plain": SECRET}},
        {"op": "add", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
         "value": applied()}]),
    "Table of secrets (metadata rows)": event(verb="list", responseObject={
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "columnDefinitions": [{"name": "Name", "type": "string"}],
        "rows": [{"cells": ["db", "Opaque", 1, "5d"], "object": {
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "db", "annotations": {LAST: applied()}}}}]}),
    "Table of secrets (object rows)": event(verb="list", responseObject={
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": [{"cells": ["db"], "object": with_annotation()}]}),
    "SecretList items without kind": event(verb="list", responseObject={
        "kind": "SecretList", "apiVersion": "v1", "items": [{"metadata": {"name": "db"}, "data": {"k": B64},
                                                             "type": "Opaque"}]}),
    "a Secret in a List (another resource)": event(resource="configmaps", verb="list", responseObject={
        "kind": "List", "apiVersion": "v1", "items": [secret_obj()]}),
    "a watch event's Secret": event(resource="events", verb="watch", responseObject={
        "type": "ADDED", "object": with_annotation()}),
    "a Secret embedded in a ConfigMap's annotation": event(resource="configmaps", responseObject={
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c", "annotations": {LAST: applied()}},
        "data": {"color": "blue"}}),
    "no objectRef, a secrets URI": {k: v for k, v in event(verb="patch", requestObject={
        "stringData": {"plain": SECRET}}).items() if k != "objectRef"},
    "a YAML apply patch (a string body)": event(verb="patch", requestObject=f"stringData:\n  plain: {SECRET}\n"),
    "a non-string type (item 3's body)": event(verb="create", requestObject={"data": {"k": B64}, "type": 5}),
    "TokenReview": event(resource="tokenreviews", verb="create", requestObject={
        "kind": "TokenReview", "spec": {"token": SECRET}}),
    "serviceaccounts/token": event(resource="serviceaccounts", verb="create", responseObject={
        "kind": "TokenRequest", "status": {"token": SECRET, "expirationTimestamp": TS}}),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_secret_data_is_masked_wherever_it_sits(case: str) -> None:
    out = logs.json_line("cp-1", line(BODIES[case]), bodies=True).decode()
    assert SECRET not in out and B64 not in out, out
    assert json.loads(out)["auditID"] == "a1"


def test_masking_keeps_what_is_not_secret() -> None:
    out = json.loads(logs.json_line("cp-1", line(BODIES["create: last-applied"]), bodies=True))
    body = out["requestObject"]
    assert body["data"] == {"password": masking.MASK} and body["metadata"]["name"] == "db"
    embedded = json.loads(body["metadata"]["annotations"][LAST])
    assert embedded["data"] == {"password": masking.MASK} and embedded["metadata"]["name"] == "db"
    cm = json.loads(logs.json_line("cp-1", line(BODIES["a Secret embedded in a ConfigMap's annotation"]),
                                   bodies=True))
    assert cm["responseObject"]["data"] == {"color": "blue"}  # a ConfigMap's data is not a Secret's
    patch = json.loads(logs.json_line("cp-1", line(BODIES["JSON patch on a secret"]), bodies=True))
    assert [op["path"] for op in patch["requestObject"]] == ["/data/password", "/stringData",
                                                              "/metadata/annotations/kubectl.kubernetes.io~1"
                                                              "last-applied-configuration"]
    table = json.loads(logs.json_line("cp-1", line(BODIES["Table of secrets (metadata rows)"]), bodies=True))
    assert table["responseObject"]["rows"][0]["object"]["metadata"]["name"] == "db"
