"""The simulator's own audit policy loader and matcher.

Written from the behaviour of k8s.io/apiserver/pkg/audit/policy (reader.go, checker.go) and
pkg/apis/audit/validation, NOT from kaudit's code: a test of kaudit's policy logic through the
simulator must be able to fail. Like the real loader, unknown fields are dropped with a warning
(lenient fallback), not refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_POLICY_FIELDS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
_RULE_FIELDS = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                "omitStages", "omitManagedFields"}
_GR_FIELDS = {"group", "resources", "resourceNames"}


class PolicyError(ValueError):
    pass


@dataclass
class GroupResources:
    group: str = ""
    resources: list[str] = field(default_factory=list)
    resource_names: list[str] = field(default_factory=list)


@dataclass
class Rule:
    level: str
    users: list[str] = field(default_factory=list)
    user_groups: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    resources: list[GroupResources] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    non_resource_urls: list[str] = field(default_factory=list)
    omit_stages: list[str] = field(default_factory=list)


@dataclass
class Policy:
    rules: list[Rule]
    omit_stages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Attributes:
    """What the audit filter knows about a request (k8s RequestInfo + user)."""

    user: str | None
    groups: list[str]
    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def _strlist(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise PolicyError(f"failed decoding: {where}: expected a list of strings, got {v!r}")
    return list(v)


def _str(v: Any, where: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):  # YAML 1.1: `level: on` is a bool and fails to decode
        raise PolicyError(f"failed decoding: {where}: expected a string, got {v!r}")
    return v


def load_policy(data: bytes, *, group_wildcard: bool = False) -> Policy:
    y = YAML(typ="safe", pure=True)
    y.version = (1, 1)
    try:
        doc = y.load(data)
    except Exception as e:
        raise PolicyError(f"failed decoding: {e}") from e
    if not isinstance(doc, dict):
        raise PolicyError("failed decoding: Object 'Kind' is missing")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not kind:
        raise PolicyError("failed decoding: Object 'Kind' is missing")
    if api_version != "audit.k8s.io/v1" or kind != "Policy":
        raise PolicyError(f'failed decoding: no kind "{kind}" is registered for version "{api_version}"')
    warnings = [f"unknown field {k!r}" for k in doc if k not in _POLICY_FIELDS]
    rules_raw = doc.get("rules")
    if rules_raw is not None and not isinstance(rules_raw, list):
        raise PolicyError("failed decoding: rules: expected a list")
    errs: list[str] = []
    pol_omit = _strlist(doc.get("omitStages"), "omitStages")
    errs += [f"omitStages: Unsupported value: {s!r}" for s in pol_omit if s not in STAGES]
    rules: list[Rule] = []
    for i, r in enumerate(rules_raw or []):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            raise PolicyError(f"failed decoding: {where}: expected a mapping")
        warnings += [f"{where}: unknown field {k!r}" for k in r if k not in _RULE_FIELDS]
        grs = []
        res_raw = r.get("resources")
        if res_raw is not None and not isinstance(res_raw, list):
            raise PolicyError(f"failed decoding: {where}.resources: expected a list")
        for j, g in enumerate(res_raw or []):
            gw = f"{where}.resources[{j}]"
            if not isinstance(g, dict):
                raise PolicyError(f"failed decoding: {gw}: expected a mapping")
            warnings += [f"{gw}: unknown field {k!r}" for k in g if k not in _GR_FIELDS]
            grs.append(GroupResources(_str(g.get("group"), gw + ".group"),
                                      _strlist(g.get("resources"), gw + ".resources"),
                                      _strlist(g.get("resourceNames"), gw + ".resourceNames")))
        rule = Rule(
            level=_str(r.get("level"), where + ".level"),
            users=_strlist(r.get("users"), where + ".users"),
            user_groups=_strlist(r.get("userGroups"), where + ".userGroups"),
            verbs=_strlist(r.get("verbs"), where + ".verbs"),
            resources=grs,
            namespaces=_strlist(r.get("namespaces"), where + ".namespaces"),
            non_resource_urls=_strlist(r.get("nonResourceURLs"), where + ".nonResourceURLs"),
            omit_stages=_strlist(r.get("omitStages"), where + ".omitStages"),
        )
        errs += _validate_rule(rule, where, group_wildcard)
        rules.append(rule)
    if errs:
        raise PolicyError("failed to validate policy: [" + ", ".join(errs) + "]")
    if not rules:
        raise PolicyError("loaded illegal policy with 0 rules")
    return Policy(rules, pol_omit, warnings)


def _validate_rule(r: Rule, where: str, group_wildcard: bool) -> list[str]:
    errs = []
    if r.level == "":
        errs.append(f"{where}.level: Required value")
    elif r.level not in LEVELS:
        errs.append(f"{where}.level: Unsupported value: {r.level!r}")
    errs += [f"{where}.omitStages: Unsupported value: {s!r}" for s in r.omit_stages if s not in STAGES]
    if r.non_resource_urls and (r.resources or r.namespaces):
        errs.append(f"{where}.nonResourceURLs: Invalid value: rules cannot apply to non-resource URLs "
                    "as well as resources")
    for u in r.non_resource_urls:
        if u != "*" and not u.startswith("/"):
            errs.append(f"{where}.nonResourceURLs: Invalid value: {u!r}: non-resource URL rules must begin with '/'")
        if "*" in u[:-1]:
            errs.append(f"{where}.nonResourceURLs: Invalid value: {u!r}: '*' only as a trailing wildcard")
    for j, g in enumerate(r.resources):
        if g.group and not (group_wildcard and g.group == "*") and not _DNS1123_SUB.match(g.group):
            errs.append(f"{where}.resources[{j}].group: Invalid value: {g.group!r}")
        if g.resource_names and not g.resources:
            errs.append(f"{where}.resources[{j}].resourceNames: Invalid value: using resourceNames "
                        "requires at least one resource")
    return errs


# --- matching (checker.go) -------------------------------------------------------------------------

def evaluate(policy: Policy, a: Attributes, *, group_wildcard: bool = False) -> tuple[str, set[str]]:
    """(level, omitted stages) of the first matching rule; no match -> None."""
    for r in policy.rules:
        if _rule_matches(r, a, group_wildcard):
            return r.level, set(policy.omit_stages) | set(r.omit_stages)
    return "None", set(policy.omit_stages)


def _rule_matches(r: Rule, a: Attributes, group_wildcard: bool) -> bool:
    if r.users and (a.user is None or a.user not in r.users):
        return False
    if r.user_groups and not any(g in r.user_groups for g in a.groups):
        return False
    if r.verbs and a.verb not in r.verbs:  # no wildcard for verbs in the real checker
        return False
    if r.namespaces or r.resources:
        return _matches_resource(r, a, group_wildcard)
    if r.non_resource_urls:
        return _matches_non_resource(r, a)
    return True


def _matches_non_resource(r: Rule, a: Attributes) -> bool:
    if a.resource_request:
        return False
    for spec in r.non_resource_urls:
        if spec == "*" or spec == a.path:
            return True
        if spec.endswith("*") and a.path.startswith(spec[:-1]):
            return True
    return False


def _matches_resource(r: Rule, a: Attributes, group_wildcard: bool) -> bool:
    if not a.resource_request:
        return False
    if r.namespaces and a.namespace not in r.namespaces:
        return False
    if not r.resources:
        return True
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    for g in r.resources:
        if not (g.group == a.api_group or (group_wildcard and g.group == "*")):
            continue
        if not g.resources:
            return True
        for res in g.resources:
            if g.resource_names and a.name not in g.resource_names:
                continue
            if res == combined or res == "*":
                return True
            if a.subresource and res.startswith("*/") and a.subresource == res[2:]:
                return True
            if res.endswith("/*") and a.resource == res[:-2]:
                return True
    return False


# --- request info (k8s RequestInfoFactory, simplified) ---------------------------------------------

_NS_SUBRESOURCES = {"status", "finalize"}


def request_attributes(method: str, path: str, query: dict[str, list[str]], user: str | None,
                       groups: list[str]) -> Attributes:
    m = method.upper()
    parts = [p for p in path.split("/") if p]
    a = Attributes(user=user, groups=groups, verb=m.lower(), path=path)
    if not parts or parts[0] not in ("api", "apis"):
        return a
    if parts[0] == "api":
        if len(parts) < 2:
            return a
        a.api_group, a.api_version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            return a
        a.api_group, a.api_version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return a
    a.resource_request = True
    if rest[0] == "watch":  # deprecated /watch/ paths
        rest, watch = rest[1:], True
    else:
        watch = query.get("watch", [""])[0] in ("true", "1")
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        a.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NS_SUBRESOURCES:
            rest = rest[2:]
    if rest:
        a.resource = rest[0]
    if len(rest) > 1:
        a.name = rest[1]
    if len(rest) > 2:
        a.subresource = rest[2]
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(m, "get")
    if m in ("GET", "HEAD"):
        verb = "watch" if watch else ("get" if a.name else "list")
    elif m == "DELETE" and not a.name:
        verb = "deletecollection"
    a.verb = verb
    return a
