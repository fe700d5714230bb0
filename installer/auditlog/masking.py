"""Body fields that must never reach a terminal or a file, even with `--bodies`: a Secret's data, and
tokens (TokenReview and TokenRequest carry one, kubeconfigs and webhook configs can).

Masked by what the object is, not by where it sits (issue 23 item 2):
- a Secret anywhere in a body (`kind: Secret`, the items of a SecretList, a List's or a WatchEvent's
  object, a Table row's object): its `data` and `stringData`;
- the `kubectl.kubernetes.io/last-applied-configuration` annotation: the object it embeds (JSON in a
  string) is masked in turn, and an annotation that is not a JSON object is masked whole;
- every body of a request on `secrets` (the event's objectRef, or its requestURI when it has none): a
  Secret even when it does not say so (a merge patch), the `value` of every JSON-patch operation, each
  Table row's object, a body that is not an object at all;
- token-like fields (`token`, `password`, `client-key-data`, ...) anywhere.

Any JSON value is accepted: a field of an unexpected type is masked or left alone, never an exception.
"""

from __future__ import annotations

import json
from typing import Any

MASK = "***"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_TOKEN_KEYS = frozenset({"token", "password", "client-key-data", "client-certificate-data", "bearerToken",
                         "id-token", "refresh-token", "access-token", "secret"})
_DATA_KEYS = ("data", "stringData", "binaryData")
# deeper than any real object; a crafted body nested further is masked whole instead of recursing on
_MAX_DEPTH = 200


def mask(value: Any, *, secret: bool = False) -> Any:
    """`value` with every Secret's data and every token-like field replaced (in place where it can be;
    use the return value). `secret`: the value is (part of) a body of a request on secrets."""
    return _mask(value, secret, 0)


def _is_secret(obj: dict[str, Any]) -> bool:
    kind = obj.get("kind")
    if kind == "Secret":
        return True
    secret_type = obj.get("type")
    # a Secret without its kind (an item of a typed list): data plus a Secret's type
    return kind is None and "data" in obj and isinstance(secret_type, str) and (
        secret_type.startswith("kubernetes.io/") or secret_type in ("Opaque", "bootstrap.kubernetes.io/token"))


def _mask_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK for k in value}
    return MASK if value not in (None, "", [], {}) else value


def _is_patch(value: list[Any]) -> bool:
    return any(isinstance(op, dict) and "op" in op for op in value)


def _patch_op(op: dict[str, Any]) -> dict[str, Any]:
    out = dict(op)
    if out.get("value") not in (None, "", [], {}):
        out["value"] = MASK
    return out


def _mask(value: Any, secret: bool, depth: int) -> Any:
    """`secret`: `value` is part of a body of a request on secrets."""
    if depth > _MAX_DEPTH:
        return MASK
    if isinstance(value, list):
        if secret and _is_patch(value):  # a JSON patch of a Secret: every value it writes is the Secret's
            return [_patch_op(op) if isinstance(op, dict) else _mask(op, secret, depth + 1) for op in value]
        return [_mask(item, secret, depth + 1) for item in value]
    if not isinstance(value, dict):
        if secret and depth == 0 and isinstance(value, str) and value:
            return MASK  # a secrets request's body that is not JSON (a YAML apply patch, raw bytes)
        return value
    secret_obj = secret or _is_secret(value)
    if secret_obj:
        for key in _DATA_KEYS:
            if key in value:
                value[key] = _mask_data(value[key])
    items_secret = secret_obj or value.get("kind") == "SecretList"
    for key, item in list(value.items()):
        if key in _DATA_KEYS and secret_obj:
            continue
        if key in _TOKEN_KEYS and isinstance(item, str) and item:
            value[key] = MASK
        elif key == "annotations" and isinstance(item, dict):
            value[key] = _annotations(item, secret_obj, depth + 1)
        elif key == "items" and isinstance(item, list):
            value[key] = [_mask(i, items_secret, depth + 1) for i in item]
        elif isinstance(item, (dict, list)):
            value[key] = _mask(item, secret_obj, depth + 1)
    return value


def _annotations(notes: dict[str, Any], secret: bool, depth: int) -> dict[str, Any]:
    text = notes.get(LAST_APPLIED)
    if LAST_APPLIED in notes:
        notes[LAST_APPLIED] = _last_applied(text, secret, depth)
    for key, item in notes.items():
        if key != LAST_APPLIED and isinstance(item, (dict, list)):
            notes[key] = _mask(item, secret, depth + 1)
    return notes


def _last_applied(text: Any, secret: bool, depth: int) -> Any:
    """The annotation's embedded object (what `kubectl apply` last wrote: the whole Secret, data and all),
    masked and written back as JSON; anything else in it is masked whole."""
    if not isinstance(text, str) or not text:
        return text if text in (None, "") else MASK
    try:
        embedded = json.loads(text)
    except (ValueError, RecursionError):
        return MASK
    if not isinstance(embedded, dict):
        return MASK
    return json.dumps(_mask(embedded, secret, depth + 1), separators=(",", ":"))


def _about_secrets(doc: dict[str, Any]) -> bool:
    ref = doc.get("objectRef")
    resource = ref.get("resource") if isinstance(ref, dict) else None
    if isinstance(resource, str) and resource:
        return resource == "secrets"
    uri = doc.get("requestURI")
    if not isinstance(uri, str):
        return True  # nothing says what the request was about: assume the worst
    path = uri.split("?", 1)[0].rstrip("/").split("/")
    return "secrets" in path


def mask_event(doc: dict[str, Any]) -> dict[str, Any]:
    """An event's bodies masked. A body of a request on secrets is a Secret's even when it does not say so
    (a patch, a Table, a watch event): its data, patch values and embedded objects go."""
    secret = _about_secrets(doc)
    for key in ("requestObject", "responseObject"):
        if key in doc:
            doc[key] = mask(doc[key], secret=secret)
    return doc
