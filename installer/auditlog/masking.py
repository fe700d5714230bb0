"""Body fields that must never reach a terminal or a file, even with `--bodies`: a Secret's data, and
tokens (TokenReview and TokenRequest carry one, kubeconfigs and webhook configs can)."""

from __future__ import annotations

from typing import Any

MASK = "***"
_TOKEN_KEYS = frozenset({"token", "password", "client-key-data", "client-certificate-data", "bearerToken",
                         "id-token", "refresh-token", "access-token", "secret"})


def mask(value: Any) -> Any:
    """`value` with every Secret's data/stringData and every token-like field replaced, in place."""
    if isinstance(value, dict):
        if value.get("kind") == "Secret" or ("data" in value and value.get("type", "").startswith("kubernetes.io/")):
            for key in ("data", "stringData"):
                if isinstance(value.get(key), dict):
                    value[key] = {k: MASK for k in value[key]}
        for key, item in value.items():
            if key in _TOKEN_KEYS and isinstance(item, str) and item:
                value[key] = MASK
            else:
                mask(item)
        if value.get("kind") == "SecretList" and isinstance(value.get("items"), list):
            for item in value["items"]:
                if isinstance(item, dict):
                    item.setdefault("kind", "Secret")
                    mask(item)
    elif isinstance(value, list):
        for item in value:
            mask(item)
    return value


def mask_event(doc: dict[str, Any]) -> dict[str, Any]:
    """An event's bodies masked. A body of a Secret request is a Secret even when it does not say so
    (a patch): every string value in it goes."""
    ref = doc.get("objectRef") or {}
    for key in ("requestObject", "responseObject"):
        if key not in doc:
            continue
        if ref.get("resource") == "secrets":
            doc[key] = _mask_all_data(doc[key])
        else:
            mask(doc[key])
    return doc


def _mask_all_data(body: Any) -> Any:
    if isinstance(body, dict):
        for key in ("data", "stringData"):
            if isinstance(body.get(key), dict):
                body[key] = {k: MASK for k in body[key]}
        for key, item in body.items():
            if key not in ("data", "stringData"):
                body[key] = _mask_all_data(item) if isinstance(item, (dict, list)) else item
        return mask(body)
    if isinstance(body, list):
        return [_mask_all_data(b) for b in body]
    return body
