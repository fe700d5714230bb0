"""The one event matcher: an audit event's fields and the rules a value matches them by, for `kaudit logs`
filters (`installer.logs.filters`) and the detection catalogue (`installer.detections`) alike.

The rule, for every string field (users, groups, namespaces, names, request paths; verbs, levels and stages
too): a value is matched exactly, or, when it ends in `*`, as a prefix (`system:*`, `/api/v1/nodes/*`; a
lone `*` is any value). A field's values are alternatives; `not_` fields (the catalogue's) hold when no
value matches. Multi-valued fields (a user's groups) match when any of them does. Resources are
`R[.group][/sub]` (`ResourceSpec`); codes are `N` or `Nxx`, and an event without a code (RequestReceived)
matches neither a code nor its negation. Times are the API server's fixed-width UTC text, so that text
order is time order (`parse_time` for what a user types, `event_time` for an event).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import msgspec

from installer.auditlog.reader import Event
from installer.errors import InputError

SA_PREFIX = "system:serviceaccount:"
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# kubectl's names for the built-in resources, as `kubectl get` takes them: plural (what the API server
# writes in objectRef.resource) -> singular and short names (kubectl api-resources).
_KUBECTL_NAMES: dict[str, tuple[str, ...]] = {
    "bindings": ("binding",), "componentstatuses": ("componentstatus", "cs"), "configmaps": ("configmap", "cm"),
    "endpoints": ("ep",), "events": ("event", "ev"), "limitranges": ("limitrange", "limits"),
    "namespaces": ("namespace", "ns"), "nodes": ("node", "no"),
    "persistentvolumeclaims": ("persistentvolumeclaim", "pvc"), "persistentvolumes": ("persistentvolume", "pv"),
    "pods": ("pod", "po"), "podtemplates": ("podtemplate",), "replicationcontrollers": ("replicationcontroller", "rc"),
    "resourcequotas": ("resourcequota", "quota"), "secrets": ("secret",), "serviceaccounts": ("serviceaccount", "sa"),
    "services": ("service", "svc"),
    "mutatingwebhookconfigurations": ("mutatingwebhookconfiguration",),
    "validatingwebhookconfigurations": ("validatingwebhookconfiguration",),
    "validatingadmissionpolicies": ("validatingadmissionpolicy",),
    "validatingadmissionpolicybindings": ("validatingadmissionpolicybinding",),
    "customresourcedefinitions": ("customresourcedefinition", "crd", "crds"), "apiservices": ("apiservice",),
    "controllerrevisions": ("controllerrevision",), "daemonsets": ("daemonset", "ds"),
    "deployments": ("deployment", "deploy"), "replicasets": ("replicaset", "rs"),
    "statefulsets": ("statefulset", "sts"),
    "selfsubjectreviews": ("selfsubjectreview",), "tokenreviews": ("tokenreview",),
    "localsubjectaccessreviews": ("localsubjectaccessreview",),
    "selfsubjectaccessreviews": ("selfsubjectaccessreview",), "selfsubjectrulesreviews": ("selfsubjectrulesreview",),
    "subjectaccessreviews": ("subjectaccessreview",), "horizontalpodautoscalers": ("horizontalpodautoscaler", "hpa"),
    "cronjobs": ("cronjob", "cj"), "jobs": ("job",), "certificatesigningrequests": ("certificatesigningrequest", "csr"),
    "leases": ("lease",), "endpointslices": ("endpointslice",), "flowschemas": ("flowschema",),
    "prioritylevelconfigurations": ("prioritylevelconfiguration",), "ingressclasses": ("ingressclass",),
    "ingresses": ("ingress", "ing"), "networkpolicies": ("networkpolicy", "netpol"),
    "runtimeclasses": ("runtimeclass",), "poddisruptionbudgets": ("poddisruptionbudget", "pdb"),
    "clusterrolebindings": ("clusterrolebinding",), "clusterroles": ("clusterrole",),
    "rolebindings": ("rolebinding",), "roles": ("role",), "priorityclasses": ("priorityclass", "pc"),
    "csidrivers": ("csidriver",), "csinodes": ("csinode",), "csistoragecapacities": ("csistoragecapacity",),
    "storageclasses": ("storageclass", "sc"), "volumeattachments": ("volumeattachment",),
}
RESOURCE_NAMES: dict[str, str] = {alias: plural for plural, aliases in _KUBECTL_NAMES.items() for alias in aliases}


def resource_name(text: str) -> str:
    """A resource as the API server writes it, from what `kubectl get` takes: `secret` and `Secret` are
    secrets, `po` pods, `deploy` deployments; any other name (a custom resource's plural) as given, in
    lower case (resource names are)."""
    low = text.lower()
    return RESOURCE_NAMES.get(low, low)


class _Status(msgspec.Struct):
    code: int = 0


_STATUS = msgspec.json.Decoder(_Status)


def status_code(ev: Event) -> int:
    """responseStatus.code, 0 when the event has none (RequestReceived)."""
    raw = ev.responseStatus
    if not raw:
        return 0
    try:
        return _STATUS.decode(raw).code
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0


_CANONICAL_SECONDS: dict[str, bool] = {}  # "YYYY-MM-DDTHH:MM:SS." -> the regex's verdict on it


def _canonical(ts: str) -> bool:
    """`ts` is in the API server's fixed-width UTC form (what `_RFC3339_UTC` matches, without a final
    newline): the regex runs once per second of time, and per event only the length, the `Z` and the
    fraction's six decimal digits are looked at (the regex on every timestamp cost about 1 µs, several
    times an event). False is not a verdict: callers then take the regex's way."""
    if len(ts) != 27 or ts[26] != "Z" or not ts[20:26].isdecimal():  # isdecimal: what \d takes
        return False
    head = ts[:20]
    ok = _CANONICAL_SECONDS.get(head)
    if ok is None:
        if len(_CANONICAL_SECONDS) > 10_000:
            _CANONICAL_SECONDS.clear()
        ok = _CANONICAL_SECONDS[head] = _RFC3339_UTC.match(head + "000000Z") is not None
    return ok


def normalize_time(ts: str) -> str:
    """An event timestamp as the fixed-width UTC text `parse_time` gives, so that text order is time order."""
    if _canonical(ts) or _RFC3339_UTC.match(ts):
        return ts
    try:
        parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, ValueError):  # a crafted time past year 9999 in UTC
        return ts


def well_formed_time(ts: str) -> bool:
    """An event's timestamp kaudit can sort and count by: absent, or an RFC 3339 time."""
    return not ts or _canonical(ts) or bool(_RFC3339_UTC.match(normalize_time(ts)))


def event_time(ev: Event) -> str:
    ts = ev.stageTimestamp or ev.requestReceivedTimestamp
    return ts if _canonical(ts) else normalize_time(ts)


def parse_time(value: str, *, now: float | None = None) -> str:
    """--since/--until: RFC 3339, a date, or a duration ago, as the log's own timestamp text (UTC, µs)."""
    text = value.strip()
    m = _DURATION.match(text)
    if m:
        t = (now if now is not None else time.time()) - float(m.group(1)) * _UNITS[m.group(2)]
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{value!r}: expected a time such as 2026-05-01T10:00:00Z, 2026-05-01, or 90m / 6h / 7d ago"
                         ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_user(name: str) -> str:
    return name[len(SA_PREFIX):] if name.startswith(SA_PREFIX) else name


@dataclass(frozen=True)
class ResourceSpec:
    """`R[.group][/sub]`: `pods` is pods without a subresource (as in a policy), `pods/*` pods and all
    of its subresources, `*/exec` every resource's exec, `deployments.apps/scale` with its group."""

    resource: str
    group: str | None
    sub: str | None  # None: no subresource; "*": any (or none)

    @classmethod
    def parse(cls, text: str) -> ResourceSpec:
        base, slash, sub = text.partition("/")
        resource, dot, group = base.partition(".")
        if not resource or (slash and not sub) or (dot and not group) or "/" in sub:
            raise InputError(f"--resource {text!r}: expected RESOURCE[.GROUP][/SUBRESOURCE], e.g. pods/exec, "
                             "deployments.apps, */scale")
        return cls(resource, group if dot else None, sub if slash else None)

    @classmethod
    def from_user(cls, text: str) -> ResourceSpec:
        """--resource: `parse`, with kubectl's singular and short names for the resource (`secret`, `po/exec`,
        `deploy.apps`) and any case, as `kubectl get` takes them."""
        spec = cls.parse(text)
        resource = spec.resource if spec.resource == "*" else resource_name(spec.resource)
        sub = spec.sub.lower() if spec.sub else spec.sub
        return cls(resource, spec.group.lower() if spec.group else spec.group, sub)

    def text(self) -> str:
        return (self.resource + (f".{self.group}" if self.group is not None else "")
                + (f"/{self.sub}" if self.sub is not None else ""))

    def matches(self, resource: str, group: str, sub: str) -> bool:
        if self.resource != "*" and self.resource != resource:
            return False
        if self.group is not None and self.group != group:
            return False
        if self.sub is None:
            return not sub
        return self.sub == "*" or self.sub == sub


def code_matches(spec: str, code: int) -> bool:
    if spec.endswith("xx"):
        return code // 100 == int(spec[0])
    return code == int(spec)




# --------------------------------------------------------------------------- the matcher

Spec = tuple[frozenset[str], tuple[str, ...]]  # exact values, prefixes (a value's text before its final `*`)


def values_spec(values: Iterable[str]) -> Spec:
    """The rule: `v*` is the prefix `v`, anything else exact."""
    vs = [str(v) for v in values]
    return frozenset(v for v in vs if not v.endswith("*")), tuple(v[:-1] for v in vs if v.endswith("*"))


def value_in(value: str, spec: Spec) -> bool:
    exact, prefixes = spec
    return value in exact or bool(prefixes and value.startswith(prefixes))


def one_of(values: Iterable[str]) -> Callable[[str], bool]:
    """`value_in` for one field's values, as a check (a set lookup when no value is a prefix)."""
    exact, prefixes = values_spec(values)
    if not prefixes:
        return exact.__contains__
    return lambda v: v in exact or v.startswith(prefixes)


FIELDS = ("users", "groups", "verbs", "resources", "namespaces", "names", "codes", "levels", "stages", "paths")


def check(name: str, values: Sequence[object], *, negate: bool = False) -> Callable[[Event], bool]:
    """The check of one field (one of FIELDS) against its values (alternatives); `negate`: no value matches
    (a catalogue's `not_` key). Codes: an event without one fails both ways."""
    if name == "codes":
        codes = [str(c) for c in values]
        if negate:
            return lambda e: (c := status_code(e)) != 0 and not any(code_matches(s, c) for s in codes)
        return lambda e: (c := status_code(e)) != 0 and any(code_matches(s, c) for s in codes)
    pos: Callable[[Event], bool]
    if name == "resources":
        specs = [v if isinstance(v, ResourceSpec) else ResourceSpec.parse(str(v)) for v in values]
        pos = lambda e: e.objectRef is not None and any(  # noqa: E731
            s.matches(e.objectRef.resource, e.objectRef.apiGroup, e.objectRef.subresource) for s in specs)
    else:
        ok = one_of(str(v) for v in values)
        if name == "users":
            pos = lambda e: ok(e.user.username if e.user else "")  # noqa: E731
        elif name == "groups":
            pos = lambda e: e.user is not None and any(ok(g) for g in e.user.groups)  # noqa: E731
        elif name == "namespaces":
            pos = lambda e: e.objectRef is not None and ok(e.objectRef.namespace)  # noqa: E731
        elif name == "names":
            pos = lambda e: e.objectRef is not None and ok(e.objectRef.name)  # noqa: E731
        elif name == "verbs":
            pos = lambda e: ok(e.verb)  # noqa: E731
        elif name == "levels":
            pos = lambda e: ok(e.level)  # noqa: E731
        elif name == "stages":
            pos = lambda e: ok(e.stage)  # noqa: E731
        elif name == "paths":
            pos = lambda e: ok(e.requestURI.split("?", 1)[0])  # noqa: E731
        else:
            raise ValueError(f"no event field {name!r}")
    if negate:
        return lambda e: not pos(e)
    return pos
