"""`kaudit logs` filters: what the user asked for, as an exact local predicate over the reader's events,
and the cheap part of it as fixed strings a node can `grep -F` for (kind nodes have no jq, no Python).

Filters are repeatable: the values of one filter are alternatives, different filters all apply.
A prefilter is only ever a superset of the exact filter: it keeps every line the exact filter could
keep (the API server writes compact JSON, `"verb":"get"`, and Go escapes only `"\\<>&` and control
characters in strings), so exact filtering happens locally on what crossed the wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import msgspec

from installer.auditlog.reader import Event
from installer.errors import InputError

LEVELS = ("Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
SA_PREFIX = "system:serviceaccount:"
# values that appear verbatim in Go's JSON encoding, so a fixed-string grep for them is exact enough
_GREP_SAFE = re.compile(r"^[A-Za-z0-9._:@/+=~-]+$")
_CODE = re.compile(r"^(\d{3}|[1-5]xx)$")
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


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


def normalize_time(ts: str) -> str:
    """An event timestamp as the fixed-width UTC text `parse_time` gives, so that text order is time order."""
    if _RFC3339_UTC.match(ts):
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
    return not ts or bool(_RFC3339_UTC.match(normalize_time(ts)))


def event_time(ev: Event) -> str:
    return normalize_time(ev.stageTimestamp or ev.requestReceivedTimestamp)


def expand_user(value: str) -> str:
    """`ns:name` is the service account system:serviceaccount:ns:name; anything else is as given."""
    if value.count(":") == 1 and not value.startswith("system:"):
        ns, name = value.split(":")
        if ns and name:
            return SA_PREFIX + value
    return value


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

    def matches(self, resource: str, group: str, sub: str) -> bool:
        if self.resource != "*" and self.resource != resource:
            return False
        if self.group is not None and self.group != group:
            return False
        if self.sub is None:
            return not sub
        return self.sub == "*" or self.sub == sub


def _code_matches(spec: str, code: int) -> bool:
    if spec.endswith("xx"):
        return code // 100 == int(spec[0])
    return code == int(spec)


@dataclass
class Filters:
    since: str | None = None  # UTC text, as parse_time gives
    until: str | None = None
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    resources: list[ResourceSpec] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, *, since: str | None = None, until: str | None = None, users: Sequence[str] = (),
              groups: Sequence[str] = (), verbs: Sequence[str] = (), resources: Sequence[str] = (),
              namespaces: Sequence[str] = (), names: Sequence[str] = (), codes: Sequence[str] = (),
              levels: Sequence[str] = (), stages: Sequence[str] = ()) -> Filters:
        """From the command line; bad values are InputError (exit 2). Values may be comma-separated."""
        from installer.auditlog.run import parse_time

        def split(values: Sequence[str]) -> list[str]:
            return [v.strip() for item in values for v in item.split(",") if v.strip()]

        for c in split(codes):
            if not _CODE.match(c):
                raise InputError(f"--code {c!r}: expected a status code (403) or a class (4xx, 5xx)")
        for lv in split(levels):
            if lv not in LEVELS:
                raise InputError(f"--level {lv!r}: one of {', '.join(LEVELS)}")
        for st in split(stages):
            if st not in STAGES:
                raise InputError(f"--stage {st!r}: one of {', '.join(STAGES)}")
        f = cls(
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
            users=[expand_user(u) for u in split(users)],
            groups=split(groups), verbs=split(verbs),
            resources=[ResourceSpec.parse(r) for r in split(resources)],
            namespaces=[n.strip() for item in namespaces for n in item.split(",")],  # "" = cluster-scoped
            names=split(names), codes=split(codes), levels=split(levels),
            stages=split(stages),
        )
        if f.since and f.until and f.until <= f.since:
            raise InputError("--until is not after --since: the window is empty")
        return f

    # ------------------------------------------------------------------ exact, local

    def predicate(self) -> Callable[[Event], bool]:
        checks: list[Callable[[Event], bool]] = []
        if self.since:
            since = self.since
            checks.append(lambda e: event_time(e) >= since)
        if self.until:
            until = self.until
            checks.append(lambda e: event_time(e) < until)
        if self.users:
            exact = {u for u in self.users if not u.endswith("*")}
            prefixes = tuple(u[:-1] for u in self.users if u.endswith("*"))
            checks.append(lambda e: (n := (e.user.username if e.user else "")) in exact
                          or bool(prefixes and n.startswith(prefixes)))
        if self.groups:
            groups = set(self.groups)
            checks.append(lambda e: e.user is not None and any(g in groups for g in e.user.groups))
        if self.verbs:
            verbs = set(self.verbs)
            checks.append(lambda e: e.verb in verbs)
        if self.resources:
            specs = self.resources
            checks.append(lambda e: e.objectRef is not None and any(
                s.matches(e.objectRef.resource, e.objectRef.apiGroup, e.objectRef.subresource) for s in specs))
        if self.namespaces:
            nss = set(self.namespaces)
            checks.append(lambda e: e.objectRef is not None and e.objectRef.namespace in nss)
        if self.names:
            names = set(self.names)
            checks.append(lambda e: e.objectRef is not None and e.objectRef.name in names)
        if self.codes:
            codes = self.codes
            checks.append(lambda e: (c := status_code(e)) != 0 and any(_code_matches(s, c) for s in codes))
        if self.levels:
            levels = set(self.levels)
            checks.append(lambda e: e.level in levels)
        if self.stages:
            stages = set(self.stages)
            checks.append(lambda e: e.stage in stages)
        if not checks:
            return lambda e: True
        if len(checks) == 1:
            return checks[0]
        return lambda e: all(c(e) for c in checks)

    # ------------------------------------------------------------------ cheap, on the node

    def grep_groups(self) -> list[list[str]]:
        """Fixed strings per filter (alternatives), every group must match: `grep -F` on the node. A filter
        whose values cannot be written as a safe fixed string is left to the exact filter."""
        groups: list[list[str]] = []

        def add(values: Sequence[Any], render: Callable[[Any], str | None]) -> None:
            out = []
            for v in values:
                s = render(v)
                if s is None:
                    return
                out.append(s)
            if out:
                groups.append(out)

        def safe(text: str) -> bool:
            return bool(_GREP_SAFE.match(text))

        add(self.verbs, lambda v: f'"verb":"{v}"' if safe(v) else None)
        add(self.users, lambda u: (f'"username":"{u[:-1]}' if u.endswith("*") and safe(u[:-1]) else
                                   f'"username":"{u}"' if safe(u) else None))
        add(self.groups, lambda g: f'"{g}"' if safe(g) else None)
        add(self.resources, lambda r: f'"resource":"{r.resource}"' if r.resource != "*" and safe(r.resource) else None)
        add(self.namespaces, lambda n: f'"namespace":"{n}"' if n and safe(n) else None)
        add(self.names, lambda n: f'"name":"{n}"' if safe(n) else None)
        add(self.codes, lambda c: f'"code":{c[0]}' if c.endswith("xx") else f'"code":{c}')
        add(self.levels, lambda lv: f'"level":"{lv}"')
        add(self.stages, lambda st: f'"stage":"{st}"')
        return groups
