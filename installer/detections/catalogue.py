"""The detection catalogue (profiles/detections/*.yaml, shipped in the wheel as installer/profiles/detections):
loading, matching events, and what a policy lets a detection see.

An entry:

    - name: pod-exec                        # unique, kebab-case
      title: Command run in a pod
      why: one line: why an operator cares
      level: Metadata                       # the least level whose events carry what `match` reads
      match:                                # every key must hold; the values of a key are alternatives
        verbs: [create, get]
        resources: [pods/exec]              # R[.group][/sub], as `kaudit logs --resource`
        namespaces: [kube-system]
        names: [cluster-admin]
        users: [system:anonymous]           # every value: exact, or a trailing * as a prefix (as `kaudit logs`)
        not_users: ["system:*"]
        groups: [...]; not_groups: [...]
        codes: [2xx]; not_codes: [401]      # N or Nxx; an event without a code matches neither
        paths: ["/api/v1/nodes/*"]          # requestURI path; a trailing * is a prefix (not_paths too)
        stages: [ResponseComplete]
        annotations: {"authorization.k8s.io/decision": allow}   # exact value, or {contains: text}
        request:                            # conditions on the request body (needs level Request)
          - {path: spec.containers[*].securityContext.privileged, equals: true}
        response: [...]                     # on the response body (needs RequestResponse)
      burst: {count: 20, seconds: 60, by: user}   # a finding only when that many fall in the window
      rules:                                # the public rules it corresponds to
        - "Falco k8saudit: Attach/Exec Pod"

A body condition's `path` (or a list of alternative paths) walks dotted keys, `[*]` meaning any list
element; it holds when a value found `equals` the given one, `contains` it (a list member or a
substring), is `in` a list, starts with `prefix`, or simply `exists`.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.match import ResourceSpec, check, event_time, short_user, values_spec
from installer.auditlog.reader import Event
from installer.errors import InputError, did_you_mean
from installer.policy.evaluate import LEVEL_ORDER, Attributes, Evaluator

_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_MATCH_KEYS = frozenset({"verbs", "resources", "namespaces", "names", "users", "not_users", "groups",
                         "not_groups", "codes", "not_codes", "paths", "stages", "annotations", "request",
                         "response", "not_namespaces", "not_paths"})
# the keys the one matcher checks, in the order they are checked (cheap first)
_FIELD_KEYS = ("verbs", "stages", "resources", "namespaces", "not_namespaces", "names", "users", "not_users",
               "groups", "not_groups", "paths", "not_paths", "codes", "not_codes")
_OPS = frozenset({"equals", "contains", "in", "prefix", "exists"})
_LEVELS = ("Metadata", "Request", "RequestResponse")
_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# Resources that are not namespaced: a representative request for the blind-spot check has no namespace.
_CLUSTER_SCOPED = frozenset({
    "nodes", "namespaces", "persistentvolumes", "clusterroles", "clusterrolebindings", "customresourcedefinitions",
    "certificatesigningrequests", "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings", "tokenreviews", "subjectaccessreviews",
    "selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews", "priorityclasses",
    "storageclasses", "apiservices", "runtimeclasses", "podsecuritypolicies", "ingressclasses",
})


class _Annotations(msgspec.Struct):
    annotations: dict[str, str] = {}


class _Bodies(msgspec.Struct):
    requestObject: Any = None
    responseObject: Any = None
    sourceIPs: tuple[str, ...] = ()


_BODIES = msgspec.json.Decoder(_Bodies)
_ANNOTATIONS = msgspec.json.Decoder(dict[str, str])


@dataclass(frozen=True)
class Condition:
    paths: tuple[str, ...]
    op: str
    value: Any

    def holds(self, body: Any) -> bool:
        for path in self.paths:
            for found in _walk(body, _split(path)):
                if self._test(found):
                    return True
        return False

    def _test(self, v: Any) -> bool:
        if self.op == "exists":
            return v is not None and v != [] and v != {} and bool(self.value)
        if self.op == "equals":
            return bool(v == self.value)
        if self.op == "in":
            return v in self.value
        if self.op == "prefix":
            return isinstance(v, str) and v.startswith(self.value)
        if isinstance(v, list):
            return self.value in v
        return isinstance(v, str) and isinstance(self.value, str) and self.value in v


def _split(path: str) -> list[str]:
    return [p for p in re.split(r"\.|(?=\[\*\])", path) if p]


def _walk(value: Any, parts: list[str]) -> Iterable[Any]:
    if not parts:
        yield value
        return
    head, rest = parts[0], parts[1:]
    if head == "[*]":
        if isinstance(value, list):
            for item in value:
                yield from _walk(item, rest)
        return
    if isinstance(value, dict) and head in value:
        yield from _walk(value[head], rest)


@dataclass
class Detection:
    name: str
    title: str
    why: str
    level: str
    rules: tuple[str, ...]
    match: dict[str, Any]
    burst: dict[str, Any] | None = None
    source: str = ""
    resources: list[ResourceSpec] = field(default_factory=list)
    request: list[Condition] = field(default_factory=list)
    response: list[Condition] = field(default_factory=list)
    checks: list[Callable[[Event], bool]] = field(default_factory=list)  # the field keys of `match`, made once

    def __post_init__(self) -> None:
        m = self.match
        self.checks = [check(key.removeprefix("not_"), m[key] if key != "resources" else self.resources,
                             negate=key.startswith("not_"))
                       for key in _FIELD_KEYS if (key in m if key != "resources" else self.resources)]

    # ------------------------------------------------------------------ matching

    def matches(self, ev: Event, raw: bytes) -> bool:
        """Every key of `match` holds: the fields through the one matcher (`installer.auditlog.match`, as
        `kaudit logs` filters), then annotations and bodies."""
        for check_field in self.checks:  # a loop, not all() over a generator: it runs per event and detection
            if not check_field(ev):
                return False
        m = self.match
        if "annotations" in m:
            try:
                notes = _ANNOTATIONS.decode(ev.annotations) if ev.annotations else {}
            except (msgspec.DecodeError, msgspec.ValidationError):
                notes = {}
            for key, want in m["annotations"].items():
                have = notes.get(key)
                if have is None:
                    return False
                if isinstance(want, dict):
                    if str(want.get("contains", "")) not in have:
                        return False
                elif have != str(want):
                    return False
        if self.request or self.response:
            try:
                bodies = _BODIES.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                return False
            if self.request and not all(c.holds(bodies.requestObject) for c in self.request):
                return False
            if self.response and not all(c.holds(bodies.responseObject) for c in self.response):
                return False
        return True

    # ------------------------------------------------------------------ what a policy lets it see

    def representative(self) -> Attributes:
        """A request of the shape this detection watches, as the policy evaluation sees it."""
        m = self.match
        user = next((u for u in m.get("users", []) if not u.endswith("*")), "kaudit-probe-user")
        groups = tuple(g for g in m.get("groups", []) if not g.endswith("*")) or ("system:authenticated",)
        if user == "system:anonymous":
            groups = ("system:unauthenticated",)
        verb = (m.get("verbs") or ["get"])[0]
        if self.resources:
            r = self.resources[0]
            resource = r.resource if r.resource != "*" else "pods"
            sub = r.sub if r.sub not in (None, "*") else ""
            ns = ""
            if resource not in _CLUSTER_SCOPED:
                ns = (m.get("namespaces") or ["kaudit-probe"])[0]
            name = "" if verb in ("create", "list", "watch", "deletecollection") and not sub else \
                next((n for n in m.get("names", []) if not n.endswith("*")), "kaudit-probe")
            return Attributes(user, groups, verb, True, "", r.group or "", "v1", ns, resource, sub or "", name)
        path = (m.get("paths") or ["/"])[0].rstrip("*") or "/"
        return Attributes(user, groups, verb, False, path)


def _conditions(source: str, name: str, items: Any, what: str) -> list[Condition]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise InputError(f"{source}: detection {name}: {what} must be a list of conditions")
    out = []
    for item in items:
        if not isinstance(item, dict) or "path" not in item:
            raise InputError(f"{source}: detection {name}: each {what} condition needs a path")
        ops = [k for k in item if k in _OPS]
        extra = set(item) - _OPS - {"path"}
        if len(ops) != 1 or extra:
            raise InputError(f"{source}: detection {name}: a {what} condition has exactly one of "
                             f"{', '.join(sorted(_OPS))} (got {', '.join(sorted(item))})")
        paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
        out.append(Condition(tuple(str(p) for p in paths), ops[0], item[ops[0]]))
    return out


def parse(source: str, text: str) -> list[Detection]:
    from installer.yamlio import reader

    return from_data(source, reader("safe").load(text))


def from_data(source: str, data: Any) -> list[Detection]:
    """The detections of one catalogue file's parsed YAML (checked as `parse` checks them)."""
    items = data.get("detections") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{source}: expected a mapping with a `detections:` list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise InputError(f"{source}: each detection is a mapping")
        name = str(item.get("name", ""))
        if not _NAME.match(name):
            raise InputError(f"{source}: detection name {name!r} is not kebab-case")
        for key in ("title", "why", "level", "rules", "match"):
            if key not in item:
                raise InputError(f"{source}: detection {name}: missing {key}")
        unknown = set(item) - {"name", "title", "why", "level", "rules", "match", "burst"}
        if unknown:
            raise InputError(f"{source}: detection {name}: unknown field(s) {', '.join(sorted(unknown))}")
        level = str(item["level"])
        if level not in _LEVELS:
            raise InputError(f"{source}: detection {name}: level {level!r} is not one of {', '.join(_LEVELS)}")
        match = dict(item["match"] or {})
        bad = set(match) - _MATCH_KEYS
        if bad:
            raise InputError(f"{source}: detection {name}: unknown match key(s) {', '.join(sorted(bad))}")
        for key in ("users", "not_users", "groups", "not_groups", "names", "paths", "not_paths"):
            if key in match:
                match[f"_{key}"] = values_spec(match[key])
        for key in ("codes", "not_codes"):
            if key in match:
                match[key] = [str(c) for c in match[key]]
        for st in match.get("stages", []):
            if st not in _STAGES:
                raise InputError(f"{source}: detection {name}: unknown stage {st!r}")
        rules = item["rules"]
        if not isinstance(rules, list) or not rules:
            raise InputError(f"{source}: detection {name}: rules must name at least one public rule")
        burst = item.get("burst")
        if burst is not None and not (isinstance(burst, dict) and int(burst.get("count", 0)) > 1
                                      and float(burst.get("seconds", 0)) > 0 and burst.get("by") in
                                      ("user", "sourceIP")):
            raise InputError(f"{source}: detection {name}: burst needs count > 1, seconds > 0, by user|sourceIP")
        det = Detection(name, str(item["title"]), str(item["why"]), level, tuple(str(r) for r in rules), match,
                        burst, source, [ResourceSpec.parse(str(r)) for r in match.get("resources", [])],
                        _conditions(source, name, match.get("request"), "request"),
                        _conditions(source, name, match.get("response"), "response"))
        needs = "RequestResponse" if det.response else "Request" if det.request else "Metadata"
        if LEVEL_ORDER[level] < LEVEL_ORDER[needs]:
            raise InputError(f"{source}: detection {name}: it reads a body, so its level is at least {needs}")
        out.append(det)
    return out


def catalogue_dir() -> Any:
    from installer.policy.profiles import profiles_dir

    return profiles_dir() / "detections"


def catalogue_files() -> list[tuple[str, str]]:
    """(name, text) of each catalogue file, in load order."""
    return [(entry.name, entry.read_text(encoding="utf-8"))
            for entry in sorted(catalogue_dir().iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".yaml") and not entry.name.startswith((".", "_"))]


def snapshot_source() -> str:
    """installer/detections/catalogue_snapshot.py: each catalogue file's parsed YAML as a Python literal, with the
    SHA-256 of the text it came from. The pure-Python YAML parser takes ~0.13 s on the catalogue; the
    snapshot's bytecode loads in well under a millisecond. `load` uses a file's snapshot only while its hash
    matches the file (else it parses the YAML); tests/unit/commands/test_startup.py keeps it current.
    Regenerate: `python -m installer.detections.catalogue --write-snapshot`."""
    import hashlib
    import pprint

    from installer.yamlio import reader

    files = catalogue_files()
    sources = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in files}
    data = {name: reader("safe").load(text) for name, text in files}
    return ('"""Generated by `python -m installer.detections.catalogue --write-snapshot` from profiles/detections/:\n'
            "do not edit. Each catalogue file's parsed YAML, and the SHA-256 of the text it was parsed from\n"
            '(installer.detections.catalogue.load uses an entry only while the file still has that hash)."""\n'
            "# ruff: noqa: E501\n\n"
            "from typing import Any\n\n"
            f"SOURCES: dict[str, str] = {pprint.pformat(sources, width=120, sort_dicts=False)}\n\n"
            f"DATA: dict[str, Any] = {pprint.pformat(data, width=120, sort_dicts=False)}\n")


def _parsed(name: str, text: str) -> Any:
    """A catalogue file's parsed YAML: from the snapshot when it is of this very text, else parsed now."""
    import hashlib

    from installer.detections import catalogue_snapshot

    if catalogue_snapshot.SOURCES.get(name) == hashlib.sha256(text.encode("utf-8")).hexdigest():
        return catalogue_snapshot.DATA[name]
    from installer.yamlio import reader

    return reader("safe").load(text)


@functools.cache  # the shipped files do not change while kaudit runs; an immutable tuple, safe to share
def load() -> tuple[Detection, ...]:
    """Every detection of the catalogue, in file then entry order (names unique)."""
    out: list[Detection] = []
    for name, text in catalogue_files():
        out.extend(from_data(name, _parsed(name, text)))
    seen: set[str] = set()
    for d in out:
        if d.name in seen:
            raise InputError(f"{d.source}: detection {d.name} is defined twice")
        seen.add(d.name)
    return tuple(out)


def select(catalogue: Sequence[Detection], names: list[str]) -> list[Detection]:
    if not names:
        return list(catalogue)
    by = {d.name: d for d in catalogue}
    wanted = [n.strip() for item in names for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by]
    if unknown:
        raise InputError(f"--detect {unknown[0]!r}: no detection of that name{did_you_mean(unknown[0], by)}; "
                         f"`kaudit logs --list-detections` lists the {len(by)} (a word right after --detect is a "
                         "NAME, so write TARGETs first)")
    return [by[n] for n in dict.fromkeys(wanted)]


# --------------------------------------------------------------------------- hunting


@dataclass
class _Tally:
    count: int = 0
    first: str = ""
    last: str = ""
    users: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    windows: dict[str, deque[str]] = field(default_factory=dict)
    burst_hit: bool = False


def _seconds(ts: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class Hunt:
    """Run detections over events: one finding per detection that matched (requests counted once, by auditID)."""

    def __init__(self, catalogue: list[Detection]) -> None:
        self.catalogue = catalogue
        self.tallies = {d.name: _Tally() for d in catalogue}

    def add(self, ev: Event, raw: bytes) -> None:
        for d in self.catalogue:
            if not d.matches(ev, raw):
                continue
            t = self.tallies[d.name]
            if ev.auditID:
                if ev.auditID in t.seen:
                    continue
                t.seen.add(ev.auditID)
            when = event_time(ev)
            user = ev.user.username if ev.user and ev.user.username else "(unauthenticated)"
            if d.burst is not None:
                key = user
                if d.burst["by"] == "sourceIP":
                    try:
                        ips = _BODIES.decode(raw).sourceIPs
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        ips = ()
                    key = ips[0] if ips else "-"
                window = t.windows.setdefault(key, deque())
                now = _seconds(when)
                window.append(when)
                while window and now - _seconds(window[0]) > float(d.burst["seconds"]):
                    window.popleft()
                if len(window) >= int(d.burst["count"]):
                    t.burst_hit = True
            t.count += 1
            t.users[user] += 1
            if not t.first or when < t.first:
                t.first = when
            if when > t.last:
                t.last = when

    def findings(self) -> list[dict[str, Any]]:
        out = []
        for d in self.catalogue:
            t = self.tallies[d.name]
            if not t.count or (d.burst is not None and not t.burst_hit):
                continue
            out.append({"name": d.name, "title": d.title, "why": d.why, "level": d.level, "rules": list(d.rules),
                        "events": t.count, "firstSeen": t.first, "lastSeen": t.last,
                        "topUsers": [{"user": u, "events": n} for u, n in t.users.most_common(5)]})
        return out


def coverage(catalogue: list[Detection], policy: Any, kubernetes_version: tuple[int, int] | None = None
             ) -> list[dict[str, Any]]:
    """What a policy (installer.policy.model.Policy) lets each detection see, by its first-match evaluation
    of the detection's request shape: `kept` (recorded at the level it needs, in a stage it reads),
    `degraded` (recorded, but without the body it reads) or `lost` (not recorded). For simulate's
    per-candidate report and validate/render's CIS 3.2.2 coverage."""
    evaluator = Evaluator(policy, kubernetes_version)
    out = []
    for d in catalogue:
        decision = evaluator.evaluate(d.representative())
        stages = set(d.match.get("stages", [])) or {"ResponseComplete", "ResponseStarted", "Panic"}
        omitted = stages <= decision.omit_stages
        if decision.level == "None" or omitted:
            state = "lost"
        elif LEVEL_ORDER[decision.level] < LEVEL_ORDER[d.level]:
            state = "degraded"
        else:
            state = "kept"
        out.append({"detection": d.name, "state": state, "recorded": decision.level, "needs": d.level,
                    "rule": decision.rule, "stagesOmitted": omitted})
    return out


def blind_spots(catalogue: list[Detection], nodes: list[tuple[str, bytes | None, Any]]) -> list[dict[str, Any]]:
    """Per node whose policy could be read: the detections whose request shape its policy records below
    the level they need (blind: not recorded at all; degraded: recorded without the body they read)."""
    from installer.policy.validate import check

    out: list[dict[str, Any]] = []
    for node, policy_bytes, info in nodes:
        if policy_bytes is None:
            out.append({"node": node, "detection": None, "recorded": None, "needs": None,
                        "note": "the node's policy file could not be read: blind spots unknown"})
            continue
        version = getattr(info, "kubernetes_version", None)
        report = check(policy_bytes, kubernetes_version=version)
        if report.policy is None:
            out.append({"node": node, "detection": None, "recorded": None, "needs": None,
                        "note": "the node's policy does not parse: blind spots unknown"})
            continue
        for c in coverage(catalogue, report.policy, version):
            if c["state"] == "kept":
                continue
            kind = "blind" if c["state"] == "lost" else "degraded"
            rule = f"rule {c['rule']}" if c["rule"] is not None else "no rule"
            out.append({"node": node, "detection": c["detection"], "recorded": c["recorded"], "needs": c["needs"],
                        "rule": c["rule"], "kind": kind,
                        "note": (f"the policy records this shape at {c['recorded']} ({rule}); {c['detection']} "
                                 f"needs {c['needs']}" + (" and the stages it reads are omitted"
                                                          if c["stagesOmitted"] else ""))})
    return out


def render_text(findings: list[dict[str, Any]], blind: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    if not findings:
        lines.append("no findings")
    for f in findings:
        users = ", ".join(f"{short_user(u['user'])} ({u['events']})" for u in f["topUsers"])
        lines.append(f"{f['name']}: {f['title']} — {f['events']} event(s), {f['firstSeen']} .. {f['lastSeen']}")
        lines.append(f"  why: {f['why']}")
        lines.append(f"  users: {users}")
        lines.append(f"  rules: {'; '.join(f['rules'])}")
    if blind:
        lines.append("")
        lines.append("blind spots (the node's policy records less than a detection needs):")
        for b in blind:
            lines.append(f"  {b['node']}: {b['detection'] + ': ' if b['detection'] else ''}{b['note']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m installer.detections.catalogue --write-snapshot
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--write-snapshot"]:
        Path(__file__).with_name("catalogue_snapshot.py").write_text(snapshot_source(), encoding="utf-8")
