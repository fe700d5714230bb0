"""The API server's audit policy evaluation, exactly, as a pure function of a request's attributes.

Two halves, both read from k8s.io/apiserver:

- `request_attributes`: what the audit filter knew when it evaluated the policy. The verb,
  API group and version, namespace, resource, subresource and name come from the request PATH
  (`pkg/endpoints/request/requestinfo.go`), not from the event's `objectRef`: a create on a
  collection had no name then, although `objectRef.name` carries the new object's name afterwards
  (`pkg/audit/request.go` fills it in from the decoded object). The user is the AUTHENTICATED one
  (`user` in the event): the audit filter runs before impersonation, so `impersonatedUser` plays
  no part. Non-resource requests are matched on the percent-decoded path of `requestURI`, the
  query dropped (Go's `URL.Path`).
- `Evaluator`: `pkg/audit/policy/checker.go`: first matching rule wins; no match is level None
  with the policy's own omitStages; a rule's omitStages is the union of the policy's and its own;
  a rule's omitManagedFields overrides the policy's only when set.

Audit logs repeat the same attributes millions of times, so `Evaluator.decide` caches per
distinct attribute set (only the attributes the policy can look at make up the key).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

from installer.policy.model import LATEST_KNOWN_VERSION, WILDCARD_GROUP_SINCE, Policy, Rule

LEVEL_ORDER = {"None": 0, "Metadata": 1, "Request": 2, "RequestResponse": 3}

# requestinfo.go: RequestInfoFactory{APIPrefixes: {"api", "apis"}, GrouplessAPIPrefixes: {"api"}}
_API_PREFIXES = frozenset({"api", "apis"})
_GROUPLESS_PREFIXES = frozenset({"api"})
_SPECIAL_VERBS = frozenset({"proxy", "watch"})  # /api/v1/watch/..., /api/v1/proxy/...
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


class Attributes(NamedTuple):
    """authorizer.Attributes as the audit filter built them (`GetAuthorizerAttributes`)."""

    user: str | None  # None: no authenticated user in the context (a failed authentication)
    groups: tuple[str, ...]
    verb: str
    resource_request: bool
    path: str  # percent-decoded, no query: what nonResourceURLs are matched against
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


class RequestInfo(NamedTuple):
    resource_request: bool
    path: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


def _valid_path_segment_name(name: str) -> bool:
    # apimachinery/pkg/api/validation/path.IsValidPathSegmentName
    return name not in (".", "..") and "/" not in name and "%" not in name


def _field_selector_name(query: str) -> str:
    """The name a list/watch selects with `fieldSelector=metadata.name=X` (or `==`), else ''."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key.replace("+", " ")) != "fieldSelector":
            continue
        selector = unquote(value.replace("+", " "))
        for term in selector.split(","):
            field, op, wanted = term.partition("==")
            if not op:
                field, op, wanted = term.partition("=")
            if op and not field.endswith("!") and field.strip() == "metadata.name":
                wanted = wanted.strip()
                return wanted if _valid_path_segment_name(wanted) else ""
        return ""  # requestinfo.go reads the first fieldSelector value only
    return ""


def request_info(verb: str, request_uri: str) -> RequestInfo:
    """requestinfo.go's NewRequestInfo, given the final kube verb (the event's `verb`) instead of the HTTP
    method: the event's verb already is what NewRequestInfo made of the method, `?watch` and a missing name."""
    raw_path, _, query = request_uri.partition("?")
    path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
    parts = [p for p in path.strip("/").split("/")] if path.strip("/") else []
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return RequestInfo(False, path)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in _GROUPLESS_PREFIXES:
        if len(parts) < 3:  # /apis/{group}/{version} is a discovery (non-resource) request
            return RequestInfo(False, path)
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    via_prefix = ""
    if parts[0] in _SPECIAL_VERBS and len(parts) >= 2:
        via_prefix, parts = parts[0], parts[1:]
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        # /namespaces/{ns}: a Namespace's own requests keep resource "namespaces" and name {ns}, and
        # the namespace is {ns} too; /namespaces/{ns}/{resource}/... moves on to the resource.
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    # the proxy verb takes no subresource (specialVerbsNoSubresources)
    subresource = parts[2] if len(parts) >= 3 and (via_prefix or verb) != "proxy" else ""
    if not name and verb in ("list", "watch") and not via_prefix and query:
        # a list or watch with fieldSelector=metadata.name=X has Name X (newer requestinfo.go):
        # resourceNames rules match it
        name = _field_selector_name(query)
    return RequestInfo(True, path, group, version, namespace, resource, subresource, name)


def attributes(user: str | None, groups: tuple[str, ...], verb: str, info: RequestInfo) -> Attributes:
    return Attributes(user, groups, verb, *info)


# --------------------------------------------------------------------------- matching (checker.go)


def group_matches(rule_group: str, group: str, kubernetes_version: tuple[int, int] = LATEST_KNOWN_VERSION) -> bool:
    """`gr.Group == apiGroup`; `group: "*"` matches every group only where the API server accepts it."""
    return rule_group == group or (rule_group == "*" and kubernetes_version >= WILDCARD_GROUP_SINCE)


def resource_matches(pattern: str, resource: str, subresource: str) -> bool:
    """One entry of a rule's `resources` against a request's resource and subresource (checker.go)."""
    if pattern == "*":
        return True
    if subresource:
        if pattern == f"{resource}/{subresource}":
            return True
        # "*/scale" matches every resource's scale subresource
        if pattern.startswith("*/") and pattern[2:] == subresource:
            return True
    elif pattern == resource:  # "pods" does not match pods/log: the combined resource is compared
        return True
    # "pods/*" matches pods' subresources AND plain pods: checker.go compares only the part before "/*"
    return pattern.endswith("/*") and pattern[:-2] == resource


def path_matches(path: str, spec: str) -> bool:
    """nonResourceURLs: `*`, an exact path, or a trailing `*` as a plain text prefix (`/api*` matches `/apis/x`)."""
    if spec == "*" or spec == path:
        return True
    # strings.TrimRight(spec, "*"): every trailing star goes
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def rule_matches(rule: Rule, attrs: Attributes, kubernetes_version: tuple[int, int] = LATEST_KNOWN_VERSION) -> bool:
    """checker.go ruleMatches. `*` is literal in users, userGroups, verbs and namespaces (hasString)."""
    if rule.users and (attrs.user is None or attrs.user not in rule.users):
        return False
    if rule.user_groups and (attrs.user is None or not any(g in rule.user_groups for g in attrs.groups)):
        return False
    if rule.verbs and attrs.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        if not attrs.resource_request:
            return False
        # cluster-scoped requests and all-namespace lists have namespace "": `namespaces: [""]` matches them
        if rule.namespaces and attrs.namespace not in rule.namespaces:
            return False
        if not rule.resources:
            return True
        for gr in rule.resources:
            if not group_matches(gr.group, attrs.api_group, kubernetes_version):
                continue
            if not gr.resources:  # the whole group, subresources included (resourceNames not consulted)
                return True
            # hasString(ResourceNames, name): a request without a name (a create on a collection, a
            # list) never matches a rule listing names, unless the list holds "" itself.
            if gr.resource_names and attrs.name not in gr.resource_names:
                continue
            if any(resource_matches(p, attrs.resource, attrs.subresource) for p in gr.resources):
                return True
        return False
    if rule.non_resource_urls:
        if attrs.resource_request:
            return False
        return any(path_matches(attrs.path, spec) for spec in rule.non_resource_urls)
    return True


def request_variants(info: RequestInfo) -> tuple[RequestInfo, RequestInfo, RequestInfo, RequestInfo]:
    """`info` with what a policy may not look at blanked, for cache keys: (full, without the name,
    without name and non-resource path, without the non-resource path). A resource request's path is
    never matched, so it is always blanked."""
    if info.resource_request:
        full = info._replace(path="") if info.path else info
        anon = full._replace(name="") if full.name else full
        return full, anon, anon, full
    blind = _NON_RESOURCE
    return info, info, blind, blind


_NON_RESOURCE = RequestInfo(False, "")


class Decision(NamedTuple):
    level: str
    omit_stages: frozenset[str]
    omit_managed_fields: bool
    rule: int | None  # 0-based index of the matching rule; None when no rule matched


class Evaluator:
    """A policy's first-match evaluation (checker.go NewPolicyRuleEvaluator / EvaluatePolicyRule), cached."""

    def __init__(self, policy: Policy, kubernetes_version: tuple[int, int] | None = None) -> None:
        self.policy = policy
        self.version = kubernetes_version or LATEST_KNOWN_VERSION
        base = frozenset(policy.omit_stages)
        self._decisions = [
            Decision(
                rule.level,
                base | frozenset(rule.omit_stages),
                policy.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields,
                i,
            )
            for i, rule in enumerate(policy.rules)
        ]
        self._default = Decision("None", base, policy.omit_managed_fields, None)
        # The attributes any rule can look at: the rest stay out of the cache key.
        rules = policy.rules
        uses_name = any(gr.resource_names for r in rules for gr in r.resources)
        uses_path = any(r.non_resource_urls for r in rules)
        self._variant = (0 if uses_path else 3) if uses_name else (1 if uses_path else 2)
        self._uses_user = any(r.users or r.user_groups for r in rules)
        self._cache: dict[tuple[object, ...], Decision] = {}
        self.hits = 0
        self.misses = 0

    def decide_request(self, user: str | None, groups: tuple[str, ...], verb: str,
                       variants: tuple[RequestInfo, RequestInfo, RequestInfo, RequestInfo]) -> Decision:
        """The decision for a request given `request_variants(request_info(...))`: the fast path of a log."""
        info = variants[self._variant]
        key: tuple[object, ...] = (user, groups, verb, info) if self._uses_user else (verb, info)
        found = self._cache.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        decision = self.evaluate(Attributes(user, groups, verb, *info))
        if len(self._cache) > 1_000_000:  # a pathological log: stay bounded
            self._cache.clear()
        self._cache[key] = decision
        return decision

    def decide(self, attrs: Attributes) -> Decision:
        """Cached `evaluate`."""
        info = RequestInfo(*attrs[3:])
        return self.decide_request(attrs.user, attrs.groups, attrs.verb, request_variants(info))

    def evaluate(self, attrs: Attributes) -> Decision:
        """Uncached: the first rule that matches, else level None."""
        for i, rule in enumerate(self.policy.rules):
            if rule_matches(rule, attrs, self.version):
                return self._decisions[i]
        return self._default

    @property
    def distinct(self) -> int:
        """Distinct attribute sets this policy told apart so far."""
        return len(self._cache)
