"""`kaudit tune`: the audit policy to run, derived from the cluster's own traffic (issue 22).

Two passes over the same events:

1. `Traffic` sums the log by request class (user, verb, resource or non-resource path): events and
   bytes, and whether any of them failed authentication or authorization (401/403).
2. `plan_policy` (pure) writes the policy, in this order:
   - cut rules: the largest classes (by bytes) that no kept detection can read, to None, or to the
     highest level a kept detection reading them needs (`need_of`);
   - the secret-safe rule: Secrets, ConfigMaps and tokens at Metadata, never their bodies (the rule
     `enable`'s `--force` gate holds every policy to);
   - one rule per group of detections that read request bodies, at the level they need;
   - a catch-all at Metadata: traffic the log did not show is still recorded (unseen is not unneeded).
   RequestReceived is omitted policy-wide: every request is still recorded at ResponseComplete (or
   ResponseStarted, for long-running ones).

   The second pass (`Simulation`, the engine of `kaudit simulate`) evaluates the policy and its
   shadow: the same rules with each cut at the level the policy would give its requests without it.
   Cut rules never overlap (each user and resource or path is in one rule), and a cut only takes
   requests the rest of the policy records at Metadata, so the shadow's events and bytes written by
   rule i, less the policy's, are exactly what taking rule i out changes: what its comment claims,
   first match as the API server evaluates it. A rule that saves nothing is left out.

Which requests a detection can read is decided from its match (verbs, resources, users, groups,
paths). A cut rule names exact users: one is never broader than the users the log showed. Its one
blind spot, said in its comment: a policy cannot match on the response code, so the cut user's own
401/403s are not recorded either; classes that had any in the log are never cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.match import value_in
from installer.auditlog.reader import ABSENT, AnyRecord, Block, LeanUser
from installer.detections.catalogue import Detection
from installer.errors import InputError
from installer.policy.evaluate import LEVEL_ORDER, Attributes, Evaluator, request_info
from installer.policy.model import Policy

MAX_RULES = 25  # "short enough to review"
SENSITIVE: tuple[tuple[str, tuple[str, ...]], ...] = (("", ("secrets", "configmaps", "serviceaccounts/token")),
             ("authentication.k8s.io", ("tokenreviews", "tokenrequests")))
# A cut rule is proposed only when it saves at least this share of the log's bytes: smaller ones are
# not worth a reviewer's time.
MIN_SHARE = 0.002
# ... and only for traffic: a class seen fewer times than this (one person's few requests in a short
# log) is never cut, however large its share.
MIN_EVENTS = 10
_USER = msgspec.json.Decoder(LeanUser)
_DENIED = (b'"code":401', b'"code":403')
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*(?:/\s*d(?:ay)?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2,
          "gi": 1024**3, "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}


def parse_budget(text: str) -> int:
    """`--budget`: bytes per day, as 50MB/day, 1.5GiB, 200000000."""
    m = _SIZE.match(text)
    if not m:
        raise InputError(f"--budget {text!r}: expected a size per day, e.g. 50MB/day, 1.5GiB/day")
    unit = (m.group(2) or "").lower()
    if unit not in _UNITS:
        raise InputError(f"--budget {text!r}: unknown unit {m.group(2)!r} (B, KB, MB, GB, KiB, MiB, GiB)")
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise InputError(f"--budget {text!r}: must be more than 0 bytes a day")
    return value


# ------------------------------------------------------------------------------ pass 1: the traffic


@dataclass(frozen=True, order=True)
class TrafficClass:
    """Requests of one user and verb to one resource (group, resource[/subresource]) or one path."""

    user: str
    verb: str
    group: str  # "" for the core group and for non-resource paths
    resource: str  # "pods/status"; "" for a non-resource request
    path: str  # the non-resource path; "" for a resource request
    groups: tuple[str, ...] = field(compare=False, default=())

    @property
    def label(self) -> str:
        if not self.resource:
            return f"{self.user} {self.verb} {self.path}"
        base, _, sub = self.resource.partition("/")
        return f"{self.user} {self.verb} {base}{'.' + self.group if self.group else ''}{'/' + sub if sub else ''}"


@dataclass
class Volume:
    events: int = 0
    bytes: int = 0
    denied: int = 0  # 401/403 responses


class Traffic:
    """Pass 1: the log summed by `TrafficClass` (RequestReceived events left out: the tuned policy
    omits that stage), and the log's first and last timestamps."""

    def __init__(self) -> None:
        self.classes: dict[TrafficClass, Volume] = {}
        self.events = 0
        self.first = ""
        self.last = ""
        self._keys: dict[tuple[str, str, bytes], TrafficClass | None] = {}

    def read(self, blocks: Iterable[Block[Any]]) -> None:
        """The fast path (`reader.read_blocks`): per event, one key and one table entry; the class, the
        first and last times and the 401/403s are worked out per distinct key."""
        table: dict[tuple[str, str, bytes, str], list[Any]] = {}
        first = last = ""
        for block in blocks:
            nl = block.newline
            events = block.events
            if events:
                lo, hi = events[0].stageTimestamp, events[-1].stageTimestamp
                if lo and (not first or lo < first):
                    first = lo
                if hi > last:
                    last = hi
            for ev, size in zip(events, block.sizes, strict=True):
                stage = ev.stage
                if stage == "RequestReceived":
                    self.events += 1
                    continue
                status = ev.responseStatus
                key = (ev.verb, ev.requestURI, bytes(ev.user), "" if status is ABSENT else _code(bytes(status)))
                entry = table.get(key)
                if entry is None:
                    table[key] = [1, size + nl]
                else:
                    entry[0] += 1
                    entry[1] += size + nl
        if first and (not self.first or first < self.first):
            self.first = first
        if last > self.last:
            self.last = last
        for (verb, uri, user, code), (n, nbytes) in table.items():
            self._count(verb, uri.partition("?")[0], user, code, n, nbytes)

    def run(self, records: Iterable[AnyRecord[Any]]) -> None:
        for rec in records:
            self._add(rec.event, rec.size)

    def _add(self, ev: Any, size: int) -> None:
        self.events += 1
        ts = ev.stageTimestamp
        if ts and (not self.first or ts < self.first):
            self.first = ts
        if ts > self.last:
            self.last = ts
        if ev.stage == "RequestReceived":
            return
        status = ev.responseStatus
        code = "" if status is ABSENT else _code(bytes(status))
        self.events -= 1  # _count counts them
        self._count(ev.verb, ev.requestURI.partition("?")[0], bytes(ev.user), code, 1, size)

    def _count(self, verb: str, uri: str, user: bytes, code: str, n: int, nbytes: int) -> None:
        self.events += n
        key = (verb, uri, user)
        if key in self._keys:
            cls = self._keys[key]
        else:
            cls = self._keys[key] = _class_of(verb, uri, user)
        if cls is None:
            return
        vol = self.classes.get(cls)
        if vol is None:
            vol = self.classes[cls] = Volume()
        vol.events += n
        vol.bytes += nbytes
        if code in ("401", "403"):
            vol.denied += n


def _code(status: bytes) -> str:
    """The response code, as text ("" when none): only 401 and 403 matter here."""
    return "401" if _DENIED[0] in status else "403" if _DENIED[1] in status else "other"


def _class_of(verb: str, uri: str, raw_user: bytes) -> TrafficClass | None:
    try:
        user = _USER.decode(raw_user) if raw_user else LeanUser()
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not user.username or not uri:
        return None  # a failed authentication: no user a rule could name
    info = request_info(verb, uri)
    if info.resource_request:
        if not info.resource:
            return None  # a group's discovery document: too small to matter
        resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
        return TrafficClass(user.username, verb, info.api_group, resource, "", tuple(user.groups))
    return TrafficClass(user.username, verb, "", "", info.path, tuple(user.groups))


# ------------------------------------------------------------------------------ what detections read


def _reads(d: Detection, c: TrafficClass) -> bool:
    """Whether detection `d` can match some request of class `c` (false only when its match rules
    it out by verb, resource, path, user, group, or by codes the class never had)."""
    m = d.match
    if "verbs" in m and c.verb not in m["verbs"]:
        return False
    if c.resource:
        base, _, sub = c.resource.partition("/")
        if d.resources and not any(r.matches(base, c.group, sub) for r in d.resources):
            return False
    else:
        if d.resources:
            return False
        if "paths" in m and not value_in(c.path, m["_paths"]):
            return False
        if "not_paths" in m and value_in(c.path, m["_not_paths"]):
            return False
    if "users" in m and not value_in(c.user, m["_users"]):
        return False
    if "not_users" in m and value_in(c.user, m["_not_users"]):
        return False
    if "groups" in m and not any(value_in(g, m["_groups"]) for g in c.groups):
        return False
    return not ("not_groups" in m and any(value_in(g, m["_not_groups"]) for g in c.groups))


def _denied_only(d: Detection) -> bool:
    """A detection of failed requests only (codes all 401/403): it reads a class only if the class had
    such responses."""
    codes = d.match.get("codes") or ()
    return bool(codes) and all(str(code) in ("401", "403") for code in codes)


def need_of(c: TrafficClass, vol: Volume, kept: Sequence[Detection]) -> str:
    """The highest level any kept detection reading class `c` needs ("None" when none reads it)."""
    need = "None"
    for d in kept:
        if _denied_only(d) and not vol.denied:
            continue
        if _reads(d, c) and LEVEL_ORDER[d.level] > LEVEL_ORDER[need]:
            need = d.level
    if vol.denied and need == "None":
        need = "Metadata"  # denied requests stay visible to the burst detections
    return need


# ------------------------------------------------------------------------------ the policy


@dataclass
class CutRule:
    level: str
    users: tuple[str, ...]
    verbs: tuple[str, ...]
    group: str
    resources: tuple[str, ...]  # resource[/sub], or () with paths
    paths: tuple[str, ...]
    estimate: int  # the log's bytes of the classes it covers (for ranking only)
    labels: tuple[str, ...]  # the biggest classes it covers, for its comment
    base: str = "Metadata"  # the level its requests get without it
    saves_events: int | None = None  # per day (or per log when the log spans less than a minute)
    saves_bytes: int | None = None

    def yaml(self, shadow: bool = False) -> list[str]:
        out = [f"- level: {self.base if shadow else self.level}", f"  users: {_flow(self.users)}",
               f"  verbs: {_flow(self.verbs)}"]
        if self.resources:
            out += ["  resources:", f"  - group: {_q(self.group)}", f"    resources: {_flow(self.resources)}"]
        else:
            out.append(f"  nonResourceURLs: {_flow(self.paths)}")
        return out


@dataclass
class Plan:
    cuts: list[CutRule]
    raising: list[tuple[str, tuple[str, ...], list[tuple[str, tuple[str, ...]]], tuple[str, ...]]]
    kept: list[Detection]
    degraded: list[tuple[str, str]]  # (detection, why)

    def text(self, header: Sequence[str], claims: bool = True, shadow: bool = False) -> str:
        """The policy; `shadow`: each cut rule at the level its requests get without it (for measuring)."""
        lines = [f"# {h}" if h else "#" for h in header]
        lines += ["apiVersion: audit.k8s.io/v1", "kind: Policy",
                  "# Every request is recorded once it is answered; the RequestReceived copy adds nothing.",
                  "omitStages: [RequestReceived]", "rules:"]
        for rule in self.cuts:
            if claims:
                lines.append(f"# {_claim(rule)}")
            lines.append(f"#   ({', '.join(rule.labels)}{', ...' if len(rule.labels) >= 3 else ''})")
            if rule.level == "None":
                lines.append("#   No kept detection reads these; the users' own 401/403s go unrecorded too.")
            else:
                lines.append(f"#   The kept detections reading these need no more than {rule.level}.")
            lines += rule.yaml(shadow)
        lines.append("# Secrets, ConfigMaps and tokens: who and when, never their bodies.")
        lines.append("- level: Metadata")
        lines.append("  resources:")
        for group, resources in SENSITIVE:
            lines += [f"  - group: {_q(group)}", f"    resources: {_flow(resources)}"]
        for level, verbs, groups, names in self.raising:
            lines.append(f"# Read by: {', '.join(names)}.")
            lines += [f"- level: {level}", f"  verbs: {_flow(verbs)}", "  resources:"]
            for group, resources in groups:
                lines += [f"  - group: {_q(group)}", f"    resources: {_flow(resources)}"]
        lines.append("# Everything else, seen in this log or not: who did what, when, with what result.")
        lines.append("- level: Metadata")
        return "\n".join(lines) + "\n"


def _claim(rule: CutRule) -> str:
    if rule.saves_bytes is None or rule.saves_events is None:
        return "saves (not measured)"
    return f"saves {rule.saves_events:,} events and {_size(rule.saves_bytes)} a day on this log"


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _flow(items: Iterable[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _q(s: str) -> str:
    return '""' if s == "" else (s if re.fullmatch(r"[A-Za-z0-9/][A-Za-z0-9_./-]*", s) else '"' + s.replace(
        "\\", "\\\\").replace('"', '\\"') + '"')


def raising_rules(kept: Sequence[Detection]
                  ) -> tuple[list[tuple[str, tuple[str, ...], list[tuple[str, tuple[str, ...]]], tuple[str, ...]]],
                             list[tuple[str, str]]]:
    """Rules for the detections that read request or response bodies: one per (level, verbs), their
    resources grouped by API group. A detection that reads the body of a Secret, ConfigMap or token is
    degraded (recorded at Metadata): no secret-safe policy records those bodies."""
    sensitive = {(g, r) for g, rs in SENSITIVE for r in rs}
    merged: dict[tuple[str, tuple[str, ...]], tuple[dict[str, set[str]], list[str]]] = {}
    degraded: list[tuple[str, str]] = []
    for d in kept:
        if LEVEL_ORDER[d.level] <= LEVEL_ORDER["Metadata"]:
            continue
        specs = [(r.group or "", r.resource + (f"/{r.sub}" if r.sub else "")) for r in d.resources]
        if not specs or any(s in sensitive for s in specs):
            degraded.append((d.name, f"reads the {d.level} body of {', '.join(r for _, r in specs) or 'any request'}"
                             ", which a secret-safe policy never records"))
            continue
        verbs = tuple(sorted(d.match.get("verbs") or ("create", "update", "patch")))
        groups, names = merged.setdefault((d.level, verbs), ({}, []))
        for group, resource in specs:
            groups.setdefault(group, set()).add(resource)
        names.append(d.name)
    rules = []
    for (level, verbs), (groups, names) in sorted(merged.items(), key=lambda kv: (-LEVEL_ORDER[kv[0][0]], kv[0][1])):
        rules.append((level, verbs, [(g, tuple(sorted(rs))) for g, rs in sorted(groups.items())], tuple(names)))
    return rules, degraded


def plan_policy(traffic: Traffic, kept: Sequence[Detection], version: tuple[int, int] | None,
                max_rules: int = MAX_RULES) -> Plan:
    """The policy's rules (pure: the same traffic gives the same plan)."""
    raising, degraded = raising_rules(kept)
    base = Plan([], raising, list(kept), degraded)
    from installer.policy.validate import parse

    report = parse(base.text([]), kubernetes_version=version)
    assert report.policy is not None, report.errors
    evaluator = Evaluator(report.policy, version)
    total = sum(v.bytes for v in traffic.classes.values()) or 1
    # Per class: the level the base policy gives it, and the level the kept detections need.
    targets: dict[TrafficClass, str] = {}
    for cls, vol in traffic.classes.items():
        # Only requests the rest of the policy records at Metadata are cut: their bytes without the cut
        # are exact in any log (no body to estimate), so each claim is measured, not guessed.
        if vol.events >= MIN_EVENTS and _level(evaluator, cls) == "Metadata" and need_of(cls, vol, kept) == "None":
            targets[cls] = "None"
    rules = _merge(traffic, targets, kept)
    rules = [r for r in rules if r.estimate >= MIN_SHARE * total]
    rules.sort(key=lambda r: (-r.estimate, r.users, r.verbs, r.resources, r.paths))
    room = max(0, max_rules - 2 - len(raising))
    return Plan(rules[:room], raising, list(kept), degraded)


def _level(evaluator: Evaluator, c: TrafficClass) -> str:
    base, _, sub = c.resource.partition("/")
    attrs = Attributes(c.user, c.groups, c.verb, bool(c.resource), c.path, c.group, "v1", "", base, sub, "")
    return evaluator.evaluate(attrs).level


def _merge(traffic: Traffic, targets: dict[TrafficClass, str], kept: Sequence[Detection]) -> list[CutRule]:
    """Classes with a cut, grouped into rules: first one rule per (level, user, resource or path) with
    its verbs, then those with the same level, verbs and resource merged across users, each merge kept
    only if every (user, verb, resource) it covers may still be cut to that level."""
    groups: dict[tuple[str, str, str, str, str], list[TrafficClass]] = {}
    for cls in sorted(targets):
        groups.setdefault((targets[cls], cls.user, cls.group, cls.resource, cls.path), []).append(cls)
    user_groups = {c.user: c.groups for c in traffic.classes}
    rules: list[CutRule] = []
    for (level, user, group, resource, path), classes in sorted(groups.items()):
        verbs = tuple(sorted({c.verb for c in classes}))
        rules.append(_rule(traffic, level, (user,), verbs, group, resource, path, classes))
    # across users: same level, verbs and resource
    by_shape: dict[tuple[str, tuple[str, ...], str, str, str], list[CutRule]] = {}
    for r in rules:
        by_shape.setdefault((r.level, r.verbs, r.group, r.resources[0] if r.resources else "",
                             r.paths[0] if r.paths else ""), []).append(r)
    out: list[CutRule] = []
    for (level, verbs, group, resource, path), same in sorted(by_shape.items()):
        if len(same) == 1:
            out.append(same[0])
            continue
        users = tuple(sorted({u for r in same for u in r.users}))
        if _cuttable(users, verbs, group, resource, path, level, user_groups, kept, traffic):
            classes = [c for c in targets if c.user in users and c.verb in verbs and c.group == group
                       and c.resource == resource and c.path == path]
            out.append(_rule(traffic, level, users, verbs, group, resource, path, classes))
        else:
            out.extend(same)
    return out


def _cuttable(users: tuple[str, ...], verbs: tuple[str, ...], group: str, resource: str, path: str, level: str,
              user_groups: dict[str, tuple[str, ...]], kept: Sequence[Detection], traffic: Traffic) -> bool:
    for user in users:
        for verb in verbs:
            c = TrafficClass(user, verb, group, resource, path, user_groups.get(user, ()))
            vol = traffic.classes.get(c, Volume())
            if LEVEL_ORDER[need_of(c, vol, kept)] > LEVEL_ORDER[level]:
                return False
    return True


def _rule(traffic: Traffic, level: str, users: tuple[str, ...], verbs: tuple[str, ...], group: str, resource: str,
          path: str, classes: list[TrafficClass]) -> CutRule:
    sized = sorted(classes, key=lambda c: (-traffic.classes[c].bytes, c))
    return CutRule(level, users, verbs, group, (resource,) if resource else (), (path,) if path else (),
                   sum(traffic.classes[c].bytes for c in classes), tuple(c.label for c in sized[:3]))


def policy_of(text: str, version: tuple[int, int] | None) -> Policy:
    from installer.policy.validate import parse

    report = parse(text, kubernetes_version=version)
    if report.policy is None or not report.ok:
        raise AssertionError(f"kaudit tune wrote an invalid policy: {report.errors}")
    return report.policy
