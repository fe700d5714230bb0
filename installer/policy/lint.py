"""Semantic lint of a valid audit Policy, evaluating rules in first-match order as the API server does.

The API server gives a request the level of the FIRST rule that matches it
(`k8s.io/apiserver/pkg/audit/policy/checker.go`); a request matching no rule gets level None.
The matching is reproduced here symbolically, over classes of requests rather than single
requests, to answer:

- can a request to the sensitive set (Secrets, ConfigMaps, TokenReviews, serviceaccounts/token)
  reach a rule that records its bodies, without an earlier rule catching it first?
- is there a catch-all rule, so nothing slips through unrecorded?
- is a rule shadowed by an earlier one that matches everything it matches?
- is the RequestReceived stage omitted (otherwise every request is written twice)?
- does a rule use `*` where the API server matches it literally (verbs, users, namespaces)?
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from installer.policy.model import (
    LATEST_KNOWN_VERSION,
    WILDCARD_GROUP_SINCE,
    Finding,
    GroupResources,
    Policy,
    Rule,
    Severity,
)

_BODY_LEVELS = {"Request": 1, "RequestResponse": 2}


@dataclass(frozen=True)
class SensitiveTarget:
    """A resource whose bodies carry secrets, and which verbs carry them in which direction."""

    label: str
    group: str
    resource: str
    subresource: str
    namespaced: bool
    verbs: tuple[str, ...]
    request_body_verbs: frozenset[str]  # recorded from level Request on
    response_body_verbs: frozenset[str]  # recorded at level RequestResponse

    @property
    def combined(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


_OBJECT_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_WRITES = frozenset({"create", "update", "patch"})

SENSITIVE_SET: tuple[SensitiveTarget, ...] = (
    SensitiveTarget("secrets", "", "secrets", "", True, _OBJECT_VERBS, _WRITES, frozenset(_OBJECT_VERBS)),
    SensitiveTarget("configmaps", "", "configmaps", "", True, _OBJECT_VERBS, _WRITES, frozenset(_OBJECT_VERBS)),
    SensitiveTarget(
        "tokenreviews (the request carries a token)",
        "authentication.k8s.io",
        "tokenreviews",
        "",
        False,
        ("create",),
        frozenset({"create"}),
        frozenset({"create"}),
    ),
    SensitiveTarget(
        "serviceaccounts/token (the response carries a token)",
        "",
        "serviceaccounts",
        "token",
        True,
        ("create",),
        frozenset(),
        frozenset({"create"}),
    ),
)


# --------------------------------------------------------------------------- matching helpers


def _resource_pattern_matches(pattern: str, resource: str, subresource: str) -> bool:
    from installer.policy.evaluate import resource_matches  # the one evaluator (checker.go)

    return resource_matches(pattern, resource, subresource)


def _group_matches(rule_group: str, group: str, version: tuple[int, int]) -> bool:
    from installer.policy.evaluate import group_matches

    return group_matches(rule_group, group, version)


def _target_match(rule: Rule, target: SensitiveTarget, verb: str, version: tuple[int, int]) -> str:
    """'none', 'some' or 'all': how many requests of `verb` on `target` the rule matches."""
    full = True
    if rule.users or rule.user_groups:
        full = False
    if rule.verbs and verb not in rule.verbs:
        return "none"
    kind = rule.kind
    if kind == "nonresource":
        return "none"
    if kind == "resource":
        if rule.namespaces:
            if not target.namespaced and "" not in rule.namespaces:
                return "none"
            if target.namespaced:
                full = False  # a list of namespaces never covers every namespace
        if rule.resources:
            best = "none"
            for gr in rule.resources:
                if not _group_matches(gr.group, target.group, version):
                    continue
                if not gr.resources:
                    best = "all"
                    break
                if any(_resource_pattern_matches(p, target.resource, target.subresource) for p in gr.resources):
                    if gr.resource_names:
                        best = "some"
                    else:
                        best = "all"
                        break
            if best == "none":
                return "none"
            if best == "some":
                full = False
    return "all" if full else "some"


def _subset(inner: tuple[str, ...], outer: tuple[str, ...]) -> bool:
    """Does a field restricted to `outer` (empty: anything) admit everything `inner` admits?"""
    if not outer:
        return True
    return bool(inner) and set(inner) <= set(outer)


def _pattern_covers(outer: str, inner: str) -> bool:
    """Does resource pattern `outer` match every resource pattern `inner` matches?"""
    if outer in ("*", inner):
        return True
    if outer.endswith("/*"):
        return inner.startswith(outer[:-1]) and inner != outer[:-1]
    if outer.startswith("*/"):
        return "/" in inner and inner.split("/", 1)[1] == outer[2:] and not inner.startswith("*/*")
    return False


def _url_covers(outer: str, inner: str) -> bool:
    if outer in ("*", inner):
        return True
    if outer.endswith("*"):
        return inner != "*" and inner.rstrip("*").startswith(outer[:-1])
    return False


def _gr_covers(outer: GroupResources, inner: GroupResources, res: str | None, version: tuple[int, int]) -> bool:
    if not _group_matches(outer.group, inner.group, version) and outer.group != inner.group:
        return False
    if not outer.resources:
        return True
    if res is None:  # the inner entry matches the whole group
        return False
    if not any(_pattern_covers(p, res) for p in outer.resources):
        return False
    return _subset(inner.resource_names, outer.resource_names)


def covers(outer: Rule, inner: Rule, version: tuple[int, int] = LATEST_KNOWN_VERSION) -> bool:
    """Does `outer` match every request `inner` matches? (Conservative: False when unsure.)"""
    if not (
        _subset(inner.users, outer.users)
        and _subset(inner.user_groups, outer.user_groups)
        and _subset(inner.verbs, outer.verbs)
    ):
        return False
    if outer.kind == "all":
        return True
    if inner.kind != outer.kind:
        return False
    if outer.kind == "nonresource":
        return all(any(_url_covers(o, i) for o in outer.non_resource_urls) for i in inner.non_resource_urls)
    if not _subset(inner.namespaces, outer.namespaces):
        return False
    if not outer.resources:
        return True
    if not inner.resources:
        return any(
            gr.group == "*"
            and version >= WILDCARD_GROUP_SINCE
            and (not gr.resources or "*" in gr.resources)
            and not gr.resource_names
            for gr in outer.resources
        )
    for igr in inner.resources:
        atoms: Iterable[str | None] = igr.resources or (None,)
        for res in atoms:
            if not any(_gr_covers(ogr, igr, res, version) for ogr in outer.resources):
                return False
    return True


# --------------------------------------------------------------------------- the lint


_SENSITIVE = "records bodies of the sensitive set,"
SENSITIVE_BODIES = "sensitive-bodies"  # the finding `--force` accepts (model.CODES)


def records_sensitive_bodies(finding: Finding) -> bool:
    """Whether `finding` is the lint's "records bodies of Secrets or tokens" (the one `--force` accepts):
    by its code, never its wording."""
    return finding.code == SENSITIVE_BODIES


def _sensitive_findings(policy: Policy, version: tuple[int, int], severity: Severity) -> list[Finding]:
    # rule index -> target label -> (verbs with request bodies recorded, verbs with response bodies)
    leaks: dict[int, dict[str, tuple[list[str], list[str]]]] = {}
    for target in SENSITIVE_SET:
        for verb in target.verbs:
            for i, rule in enumerate(policy.rules):
                how = _target_match(rule, target, verb, version)
                if how == "none":
                    continue
                level = _BODY_LEVELS.get(rule.level, 0)
                request = level >= 1 and verb in target.request_body_verbs
                response = level >= 2 and verb in target.response_body_verbs
                shadowed = any(covers(earlier, rule, version) for earlier in policy.rules[:i])
                if (request or response) and not shadowed:
                    req, resp = leaks.setdefault(i, {}).setdefault(target.label, ([], []))
                    if request:
                        req.append(verb)
                    if response:
                        resp.append(verb)
                if how == "all":
                    break
    out = []
    for i, per_target in sorted(leaks.items()):
        rule = policy.rules[i]
        parts = []
        for label, (req, resp) in per_target.items():
            what = []
            if req:
                what.append(f"request bodies of {', '.join(req)}")
            if resp:
                what.append(f"response bodies of {', '.join(resp)}")
            parts.append(f"{label}: {' and '.join(what)}")
        out.append(
            Finding(
                f"{rule.path}.level",
                f"level {rule.level} {_SENSITIVE} which reach this rule before any "
                f"rule keeping them at Metadata ({'; '.join(parts)}). Put a Metadata rule for secrets, "
                "configmaps, tokenreviews and serviceaccounts/token before it",
                severity,
                rule.line,
                SENSITIVE_BODIES,
            )
        )
    return out


def lint(
    policy: Policy,
    *,
    kubernetes_version: tuple[int, int] | None = None,
    own_profile: bool = False,
) -> list[Finding]:
    """Findings about a (valid) policy; sensitive-set bodies are errors when own_profile."""
    version = kubernetes_version or LATEST_KNOWN_VERSION
    out: list[Finding] = _sensitive_findings(policy, version, "error" if own_profile else "warning")

    if not any(rule.is_catch_all for rule in policy.rules):
        last = policy.rules[-1] if policy.rules else None
        out.append(
            Finding(
                "rules",
                "no catch-all rule: requests matching no rule are not recorded (level None). End the "
                "policy with a rule that has only a level, e.g. `- level: Metadata`",
                "warning",
                last.line if last else None,
                "no-catch-all",
            )
        )

    for i, rule in enumerate(policy.rules):
        for earlier in policy.rules[:i]:
            if covers(earlier, rule, version):
                what = "the same level" if earlier.level == rule.level else f"level {earlier.level}"
                out.append(
                    Finding(
                        rule.path,
                        f"never used: {earlier.path} comes first and matches every request this rule "
                        f"matches (giving {what}); remove it or move it up",
                        "warning",
                        rule.line,
                        "shadowed-rule",
                    )
                )
                break

    if "RequestReceived" not in policy.omit_stages:
        missing = [r for r in policy.rules if r.level != "None" and "RequestReceived" not in r.omit_stages]
        if missing:
            out.append(
                Finding(
                    "omitStages",
                    "the RequestReceived stage is not omitted"
                    + (f" (by {', '.join(r.path for r in missing[:4])}{' …' if len(missing) > 4 else ''})")
                    + ": every request is written twice, once when received and once when complete. "
                    "Add `omitStages: [RequestReceived]` at the top of the policy",
                    "warning",
                    None,
                    "request-received-kept",
                )
            )

    for rule in policy.rules:
        for field_name, values in (
            ("verbs", rule.verbs),
            ("users", rule.users),
            ("namespaces", rule.namespaces),
            ("userGroups", rule.user_groups),
        ):
            if "*" in values:
                out.append(
                    Finding(
                        f"{rule.path}.{field_name}",
                        f'"*" is not a wildcard in {field_name}: the API server compares it literally, so it '
                        f'matches only a {field_name[:-1]} named "*". Leave {field_name} out to match all',
                        "warning",
                        rule.line,
                        "literal-star",
                    )
                )
    return out
