"""`kaudit logs` filters: what the user asked for, as an exact local predicate over the reader's events
(through the one matcher, `installer.auditlog.match`, which the detection catalogue uses too),
and the cheap part of it as fixed strings a node can `grep -F` for (kind nodes have no jq, no Python).

Filters are repeatable: the values of one filter are alternatives, different filters all apply.
A prefilter is only ever a superset of the exact filter: it keeps every line the exact filter could
keep (the API server writes compact JSON, `"verb":"get"`, and Go escapes only `"\\<>&` and control
characters in strings), so exact filtering happens locally on what crossed the wire.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.match import (
    SA_PREFIX,
    ResourceSpec,
    check,
    event_time,
    parse_time,
    status_code,
)
from installer.auditlog.reader import Event
from installer.errors import InputError, did_you_mean

LEVELS = ("Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# values that appear verbatim in Go's JSON encoding, so a fixed-string grep for them is exact enough
_GREP_SAFE = re.compile(r"^[A-Za-z0-9._:@/+=~-]+$")
_CODE = re.compile(r"^(\d{3}|[1-5]xx)$")

# The verbs the API server writes in an event: a resource request's (RequestInfo's), and a non-resource
# request's, which is its HTTP method in lower case; `proxy` is the old /api/v1/proxy/... paths' verb.
RESOURCE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
OTHER_VERBS = ("proxy", "post", "put", "head", "options")
VERBS = RESOURCE_VERBS + OTHER_VERBS

def normalize_verb(text: str) -> str:
    """--verb: one of the verbs the API server writes, whatever its case; else InputError with the nearest."""
    low = text.lower()
    if low in VERBS:
        return low
    raise InputError(f"--verb {text!r}: not a verb the API server writes{did_you_mean(low, VERBS)}; "
                     f"one of {', '.join(RESOURCE_VERBS)} (resources), {', '.join(OTHER_VERBS)} (other paths)")


def expand_user(value: str) -> str:
    """`ns:name` is the service account system:serviceaccount:ns:name; anything else is as given."""
    if value.count(":") == 1 and not value.startswith("system:"):
        ns, name = value.split(":")
        if ns and name:
            return SA_PREFIX + value
    return value


def _both(first: Callable[[Event], bool], then: Callable[[Event], bool]) -> Callable[[Event], bool]:
    return lambda e: first(e) and then(e)


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
            groups=split(groups), verbs=list(dict.fromkeys(normalize_verb(v) for v in split(verbs))),
            resources=[ResourceSpec.from_user(r) for r in split(resources)],
            namespaces=[n.strip() for item in namespaces for n in item.split(",")],  # "" = cluster-scoped
            names=split(names), codes=split(codes), levels=split(levels),
            stages=split(stages),
        )
        if f.since and f.until and f.until <= f.since:
            raise InputError("--until is not after --since: the window is empty")
        return f

    # ------------------------------------------------------------------ exact, local

    def window(self) -> list[Callable[[Event], bool]]:
        """--since and --until, as checks."""
        checks: list[Callable[[Event], bool]] = []
        if self.since:
            since = self.since
            checks.append(lambda e: event_time(e) >= since)
        if self.until:
            until = self.until
            checks.append(lambda e: event_time(e) < until)
        return checks

    def dimensions(self) -> list[tuple[str, Callable[[Event], bool]]]:
        """Every filter given but the window, as (option, check): `Misses` asks each apart. The checks are
        the one matcher's (`installer.auditlog.match.check`: exact, or a trailing `*` as a prefix)."""
        given = (("--user", "users", self.users), ("--group", "groups", self.groups), ("--verb", "verbs", self.verbs),
                 ("--resource", "resources", self.resources), ("--namespace", "namespaces", self.namespaces),
                 ("--name", "names", self.names), ("--code", "codes", self.codes), ("--level", "levels", self.levels),
                 ("--stage", "stages", self.stages))
        return [(option, check(name, values)) for option, name, values in given if values]

    def predicate(self) -> Callable[[Event], bool]:
        """Every check, in order (the window first), each only when the ones before it passed; chained
        by `and`, not by `all()` over a generator (about 0.3 µs an event)."""
        checks = self.window() + [check for _, check in self.dimensions()]
        if not checks:
            return lambda e: True
        combined = checks[-1]
        for one in reversed(checks[:-1]):
            combined = _both(one, combined)
        return combined

    def asked(self) -> list[tuple[str, list[str]]]:
        """(option, values) of every filter given, as kaudit understood them (verbs in lower case,
        resources by their plural, `ns:name` expanded): for the no-match note."""
        out: list[tuple[str, list[str]]] = []
        if self.since:
            out.append(("--since", [self.since]))
        if self.until:
            out.append(("--until", [self.until]))
        for option, values in (("--user", self.users), ("--group", self.groups), ("--verb", self.verbs),
                               ("--resource", [r.text() for r in self.resources]),
                               ("--namespace", [n or '""' for n in self.namespaces]), ("--name", self.names),
                               ("--code", self.codes), ("--level", self.levels), ("--stage", self.stages)):
            if values:
                out.append((option, list(values)))
        return out

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
        add(self.groups, lambda g: (f'"{g[:-1]}' if g.endswith("*") and safe(g[:-1]) else
                                    f'"{g}"' if safe(g) else None))
        add(self.resources, lambda r: f'"resource":"{r.resource}"' if r.resource != "*" and safe(r.resource) else None)
        add(self.namespaces, lambda n: (f'"namespace":"{n[:-1]}' if n.endswith("*") and safe(n[:-1]) else
                                        f'"namespace":"{n}"' if n and safe(n) else None))
        add(self.names, lambda n: (f'"name":"{n[:-1]}' if n.endswith("*") and safe(n[:-1]) else
                                   f'"name":"{n}"' if safe(n) else None))
        add(self.codes, lambda c: f'"code":{c[0]}' if c.endswith("xx") else f'"code":{c}')
        add(self.levels, lambda lv: f'"level":"{lv}"')
        add(self.stages, lambda st: f'"stage":"{st}"')
        return groups


# --------------------------------------------------------------------------- kaudit's own requests

# What kaudit's node scripts send (installer/scripts/sh/lib/probe.sh): the readiness probe of a change
# and of `status`, and the verification request that shows a change's events reach the log.
OWN_AGENT = re.compile(r"^kaudit/[^ ]+ \((verify|probe)\)$")
_VERIFY_URI = re.compile(r"^/api/v1/namespaces/default/configmaps\?limit=1&kaudit-verify=[A-Za-z0-9._:-]+$")
_PROBE_URI = re.compile(r"^/(readyz|livez|healthz)(/[A-Za-z0-9._-]+)?(\?[A-Za-z0-9=&._-]*)?$")


class _Agent(msgspec.Struct):
    userAgent: str = ""


_AGENT = msgspec.json.Decoder(_Agent)


def own_request(ev: Event, raw: bytes) -> bool:
    """One of kaudit's own requests: its user agent AND its exact shape. Anyone can send that user agent,
    so the shape is what is left out: a `list` of at most one ConfigMap of `default` marked
    `kaudit-verify=ID`, or a `get` of /readyz, /livez or /healthz; a request of any other shape that
    claims to be kaudit's is shown like every other one."""
    if b"kaudit/" not in raw:
        return False
    try:
        agent = OWN_AGENT.match(_AGENT.decode(raw).userAgent)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    if agent is None:
        return False
    ref = ev.objectRef
    if agent.group(1) == "verify":
        return (ev.verb == "list" and ref is not None and ref.resource == "configmaps" and ref.namespace == "default"
                and not ref.apiGroup and not ref.name and not ref.subresource
                and bool(_VERIFY_URI.match(ev.requestURI)))
    return ev.verb == "get" and (ref is None or not ref.resource) and bool(_PROBE_URI.match(ev.requestURI))


# --------------------------------------------------------------------------- nothing matched


def _values(option: str, ev: Event) -> list[str]:
    """The event's values for one filter: what the no-match note offers instead."""
    ref = ev.objectRef
    if option == "--user":
        return [ev.user.username] if ev.user and ev.user.username else []
    if option == "--group":
        return list(ev.user.groups) if ev.user else []
    if option == "--verb":
        return [ev.verb] if ev.verb else []
    if option == "--resource":
        if ref is None or not ref.resource:
            return []
        return [ref.resource + (f".{ref.apiGroup}" if ref.apiGroup else "") + (f"/{ref.subresource}"
                                                                               if ref.subresource else "")]
    if option == "--namespace":
        return [ref.namespace] if ref is not None and ref.namespace else []
    if option == "--name":
        return [ref.name] if ref is not None and ref.name else []
    if option == "--code":
        code = status_code(ev)
        return [str(code)] if code else []
    if option == "--level":
        return [ev.level] if ev.level else []
    if option == "--stage":
        return [ev.stage] if ev.stage else []
    return []


_LABELS = {"--user": "users", "--group": "groups", "--verb": "verbs", "--resource": "resources",
           "--namespace": "namespaces", "--name": "names", "--code": "codes", "--level": "levels",
           "--stage": "stages"}
SHOWN = 5


class Misses:
    """When a filter set matched no event: a second look at the window's events (read without the node's
    prefilter) for the values the log does hold, nearest first. Values of the events that fail one
    filter only (and match every other) come first: change that one filter and they match."""

    def __init__(self, filters: Filters, limit: int = 1_000_000) -> None:
        self.filters, self.limit = filters, limit
        self.window = filters.window()
        self.dims = filters.dimensions()
        self.asked = dict(filters.asked())
        self.seen = 0
        self.near: dict[str, Counter[str]] = {o: Counter() for o, _ in self.dims}
        self.every: dict[str, Counter[str]] = {o: Counter() for o, _ in self.dims}

    @property
    def full(self) -> bool:
        return self.seen >= self.limit

    def add(self, ev: Event) -> None:
        if not all(check(ev) for check in self.window):
            return
        self.seen += 1
        failed = [option for option, check in self.dims if not check(ev)]
        for option, _ in self.dims:
            self.every[option].update(_values(option, ev))
        if len(failed) == 1:
            self.near[failed[0]].update(_values(failed[0], ev))

    def _nearest(self, option: str, counts: Counter[str]) -> str:
        import difflib

        asked = [a.rstrip("*").lower() for a in self.asked.get(option, []) if a.rstrip("*")]

        def key(value: str) -> tuple[bool, float, int]:
            low = value.lower()
            contains = any(a in low or low in a for a in asked)
            ratio = max((difflib.SequenceMatcher(None, a, low).ratio() for a in asked), default=0.0)
            return (not contains, -ratio, -counts[value])

        ranked = sorted(counts, key=key)
        return ", ".join(ranked[:SHOWN]) + (", ..." if len(ranked) > SHOWN else "")

    def head(self) -> str:
        asked = " ".join(f"{option} {','.join(values)}" for option, values in self.filters.asked())
        return f"no event matched {asked}" if asked else "no event"

    def message(self) -> str:
        head = self.head()
        where = "in the window" if self.window else "in the log"
        if self.full:
            where += f" (its first {self.seen} events)"
        if not self.seen:
            return f"{head}: there is no event {where}" if self.window else f"{head}: the log holds no event"
        parts = [f"{_LABELS[o]} of the events that match the other filters: {self._nearest(o, c)}"
                 for o, c in self.near.items() if c and len(self.dims) > 1]
        if not parts:
            parts = [f"{_LABELS[o]} {where}: {self._nearest(o, c)}" for o, c in self.every.items() if c]
        if not parts:
            return f"{head}; none of the {self.seen} events {where} has such a field"
        return f"{head}; " + "; ".join(parts)
