"""`kaudit simulate`: replay recorded audit events through candidate policies (issue 13 items 1-3, 5).

One pass over the events; each candidate evaluates every event with the attributes the API server had
(`evaluate`), cached per distinct attribute set, and keeps counters only: memory stays flat in the
input's size. What the log itself recorded is the reference column.

Bytes are honest:
- an event a candidate keeps at the log's level or lower is sized exactly: the line as written, minus
  the bodies above the candidate's level (`requestObject` below Request, `responseObject` below
  RequestResponse), minus `metadata.managedFields` of the kept bodies when the candidate omits them,
  with the `level` string's own length corrected;
- an event a candidate wants at a HIGHER level than the log recorded has an unknown body: it is
  estimated from the events of the same verb and resource that have bodies in the input, else
  counted as unknown and the bytes are "at least";
- a stage the log omitted entirely but the candidate keeps is counted as one such stage per request
  (RequestReceived for every request; ResponseStarted for long-running ones), sized from the request's
  own event without bodies, status or annotations;
- requests the log's own policy dropped (level None) are not in the log at all: no candidate can be
  credited with them. The report says so.

Nothing here prints bodies: groups are (user, verb, resource), never request URIs or objects.
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from installer.auditlog.evaluate import (
    LEVEL_ORDER,
    Decision,
    Evaluator,
    RequestInfo,
    request_info,
    request_variants,
)
from installer.auditlog.reader import Event, ReadStats, Record
from installer.policy.model import Policy

MIB = 1024 * 1024
DAY = 86_400.0
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
LEVELS = ("Metadata", "Request", "RequestResponse")
# k8s.io/apiserver/pkg/server/config.go: BasicLongRunningRequestCheck(verbs watch, proxy;
# subresources attach, exec, proxy, log, portforward): these requests also write ResponseStarted.
_LONG_VERBS = frozenset({"watch", "proxy"})
_LONG_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
_READS = frozenset({"get", "list", "watch"})  # a GET carries no request body
_REQ_KEY = len(b'"requestObject":') + 1  # the key and its comma
_RESP_KEY = len(b'"responseObject":') + 1
_STATUS_KEY = len(b'"responseStatus":') + 1
_ANN_KEY = len(b'"annotations":') + 1
_MF_KEY = len(b'"managedFields":') + 1
TOP = 10


class _Meta(msgspec.Struct):
    managedFields: msgspec.Raw = msgspec.Raw()


class _Body(msgspec.Struct):
    metadata: _Meta | None = None


_BODY = msgspec.json.Decoder(_Body)


def _managed_fields_bytes(raw: msgspec.Raw) -> int:
    """Bytes `metadata.managedFields` takes in a body (0 when absent); only bodies that name it are parsed."""
    if not raw or b'"managedFields"' not in bytes(raw):
        return 0
    try:
        body = _BODY.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0
    mf = body.metadata.managedFields if body.metadata else None
    return len(mf) + _MF_KEY if mf else 0


@dataclass(frozen=True)
class Rotation:
    maxage: int  # days; 0 keeps files of any age
    maxbackup: int  # 0 keeps every rotated file
    maxsize: int  # MB; 0: 100 MB before Kubernetes 1.36, no rotation from 1.36
    source: str  # where the flags came from: "profile", "node", "flags", "default"


@dataclass
class Candidate:
    name: str  # the profile name, or the --policy-file path as given
    policy: Policy
    rotation: Rotation
    kind: str = "profile"  # or "policy-file"
    sets: dict[str, str] = field(default_factory=dict)


def resource_label(verb: str, info: RequestInfo) -> str:
    if not info.resource_request:
        return info.path or "/"
    res = info.resource + (f".{info.api_group}" if info.api_group else "")
    return res + (f"/{info.subresource}" if info.subresource else "")


def _long_running(verb: str, info: RequestInfo) -> bool:
    return verb in _LONG_VERBS or (info.resource_request and info.subresource in _LONG_SUBRESOURCES)


@dataclass
class Tally:
    """What one column (a candidate, or the log itself) writes."""

    events: int = 0
    bytes: int = 0  # exact bytes
    estimated_bytes: int = 0  # bodies estimated from the input (events raised above the log's level)
    unknown_bodies: int = 0  # bodies that could not be estimated: bytes are "at least"
    stages: Counter[str] = field(default_factory=Counter)
    levels: Counter[str] = field(default_factory=Counter)
    hours: Counter[str] = field(default_factory=Counter)  # "YYYY-MM-DDTHH" -> events written
    requests: int = 0  # requests with at least one event written (level not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events, "requests": self.requests,
            "bytes": self.bytes + self.estimated_bytes, "bytesExact": self.bytes,
            "bytesEstimated": self.estimated_bytes, "unknownBodies": self.unknown_bodies,
            "bytesAtLeast": self.unknown_bodies > 0,
            "byStage": {s: self.stages[s] for s in STAGES if self.stages[s]},
            "byLevel": {lvl: self.levels[lvl] for lvl in LEVELS if self.levels[lvl]},
        }


class _Column:
    def __init__(self, candidate: Candidate, version: tuple[int, int] | None) -> None:
        self.candidate = candidate
        self.evaluator = Evaluator(candidate.policy, version)
        self.tally = Tally()
        self.rule_hits = [0] * len(candidate.policy.rules)
        self.no_rule = 0
        self.dropped: Counter[tuple[str, str, str]] = Counter()  # written by the log, not by the candidate
        self.dropped_events = 0
        self.raised: Counter[tuple[str, str, str]] = Counter()  # recorded at a higher level than the log
        self.raised_events = 0
        self.lowered_events = 0
        self.pending_bodies: Counter[tuple[str, str, str]] = Counter()  # (verb, resource, which) -> count
        self.synthetic: dict[str, list[int]] = {s: [0, 0] for s in ("RequestReceived", "ResponseStarted")}


class _BodySizes:
    """Sizes of bodies seen in the input per (verb, resource, which), to estimate bodies a log left out."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, str], list[int]] = {}

    def add(self, key: tuple[str, str, str], size: int) -> None:
        entry = self.sums.get(key)
        if entry is None:
            self.sums[key] = [size, 1]
        else:
            entry[0] += size
            entry[1] += 1

    def mean(self, key: tuple[str, str, str]) -> float | None:
        entry = self.sums.get(key)
        return entry[0] / entry[1] if entry else None


def _epoch(ts: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:].rstrip("Z")[:7])
    except ValueError:
        return None


def history_days(rotation: Rotation, bytes_per_day: float | None,
                 version: tuple[int, int]) -> tuple[float | None, str]:
    """(days, why): (maxbackup + 1) x maxsize / bytes per day, capped by maxage; None when unbounded."""
    maxsize = rotation.maxsize or (0 if version >= (1, 36) else 100)  # 0: no rotation from 1.36
    size_bound = float((rotation.maxbackup + 1) * maxsize * MIB) if maxsize and rotation.maxbackup else None
    by_size = size_bound / bytes_per_day if size_bound is not None and bytes_per_day else None
    age = float(rotation.maxage) if rotation.maxage else None
    if by_size is None and age is None:
        return None, "unbounded (no size or age limit)"
    if by_size is None:
        return age, "maxage"
    if age is not None and age <= by_size:
        return age, "maxage"
    return by_size, "size"


@dataclass
class Simulation:
    """Feed records with `add`; then `report()`."""

    candidates: list[Candidate]
    kubernetes_version: tuple[int, int]
    since: str | None = None  # compared with stageTimestamp as text (both RFC 3339 UTC, microseconds)
    until: str | None = None
    on_event: Callable[[Record, list[Decision]], None] | None = None  # -o events

    def __post_init__(self) -> None:
        self.columns = [_Column(c, self.kubernetes_version) for c in self.candidates]
        self.log = Tally()
        self.bodies = _BodySizes()
        self.first = ""
        self.last = ""
        self.filtered_out = 0
        self.log_stages: Counter[str] = Counter()
        self._infos: dict[tuple[str, str], tuple[tuple[RequestInfo, ...], str, bool]] = {}

    # ------------------------------------------------------------------ one event

    def _info(self, ev: Event) -> tuple[tuple[RequestInfo, ...], str, bool]:
        verb = ev.verb
        uri = ev.requestURI
        if "?" in uri and not (verb in ("list", "watch") and "fieldSelector" in uri):
            uri = uri[:uri.index("?")]
        key = (verb, uri)
        found = self._infos.get(key)
        if found is None:
            if uri or ev.objectRef is None:
                info = request_info(verb, uri)
            else:  # no requestURI (never written by a real API server): the objectRef is all there is
                ref = ev.objectRef
                name = "" if verb in ("create", "list", "watch") and not ref.subresource else ref.name
                info = RequestInfo(True, "", ref.apiGroup, ref.apiVersion, ref.namespace, ref.resource,
                                   ref.subresource, name)
            found = (request_variants(info), resource_label(verb, info), _long_running(verb, info))
            if len(self._infos) > 500_000:
                self._infos.clear()
            self._infos[key] = found
        return found

    def add(self, rec: Record) -> None:
        ev = rec.event
        ts = ev.stageTimestamp or ev.requestReceivedTimestamp
        if (self.since and ts < self.since) or (self.until and ts >= self.until):
            self.filtered_out += 1
            return
        if ts:
            if not self.first or ts < self.first:
                self.first = ts
            if ts > self.last:
                self.last = ts
        variants, label, long_running = self._info(ev)
        info = variants[0]
        user = ev.user
        if user is not None and (user.username or user.groups):
            username: str | None = user.username
            groups = user.groups
        else:
            username, groups = None, ()
        stage = ev.stage
        log_level = ev.level
        size = rec.size
        final = stage in ("ResponseComplete", "Panic")
        req_raw, resp_raw = ev.requestObject, ev.responseObject
        req_size = len(req_raw) + _REQ_KEY if req_raw else 0
        resp_size = len(resp_raw) + _RESP_KEY if resp_raw else 0

        log = self.log
        log.events += 1
        log.bytes += size
        log.stages[stage] += 1
        log.levels[log_level] += 1
        hour = ts[:13]
        log.hours[hour] += 1
        self.log_stages[stage] += 1
        if final:
            log.requests += 1
        log_rank = LEVEL_ORDER.get(log_level, 0)
        if final and info.resource_request:
            if log_rank >= 2:
                self.bodies.add((ev.verb, label, "request"), req_size)
            if log_rank >= 3:
                self.bodies.add((ev.verb, label, "response"), resp_size)

        decisions = []
        for col in self.columns:
            d = col.evaluator.decide_request(username, groups, ev.verb, variants)  # type: ignore[arg-type]
            decisions.append(d)
            if d.rule is None:
                col.no_rule += 1
            else:
                col.rule_hits[d.rule] += 1
            level = d.level
            if level == "None" or stage in d.omit_stages:
                col.dropped[(username or "(unauthenticated)", ev.verb, label)] += 1
                col.dropped_events += 1
                continue
            t = col.tally
            t.events += 1
            t.stages[stage] += 1
            t.levels[level] += 1
            t.hours[hour] += 1
            if final:
                t.requests += 1
            rank = LEVEL_ORDER[level]
            out = size + len(level) - len(log_level)
            if rank < log_rank:
                col.lowered_events += 1
            if rank < 2:
                out -= req_size
            if rank < 3:
                out -= resp_size
            if d.omit_managed_fields:
                if rank >= 2 and req_raw:
                    out -= _managed_fields_bytes(req_raw)
                if rank >= 3 and resp_raw:
                    out -= _managed_fields_bytes(resp_raw)
            if rank > log_rank:
                col.raised_events += 1
                col.raised[(username or "(unauthenticated)", ev.verb, label)] += 1
                if final and info.resource_request:
                    if log_rank < 2 <= rank and ev.verb not in _READS:
                        col.pending_bodies[(ev.verb, label, "request")] += 1
                    if log_rank < 3 <= rank and ev.verb != "watch":
                        col.pending_bodies[(ev.verb, label, "response")] += 1
            t.bytes += out
            if final:
                # the stages this request would also write, in case the log omitted them (settled in report)
                meta = size - req_size - resp_size + len(level) - len(log_level)
                if ev.responseStatus:
                    meta -= len(ev.responseStatus) + _STATUS_KEY
                if ev.annotations:
                    meta -= len(ev.annotations) + _ANN_KEY
                for extra in ("RequestReceived", "ResponseStarted"):
                    if extra in d.omit_stages or (extra == "ResponseStarted" and not long_running):
                        continue
                    s = col.synthetic[extra]
                    s[0] += 1
                    s[1] += meta + len(extra) - len(stage)
        if self.on_event is not None:
            self.on_event(rec, decisions)

    def run(self, records: Iterable[Record]) -> None:
        add = self.add
        for rec in records:
            add(rec)

    # ------------------------------------------------------------------ the report

    def _span(self) -> float | None:
        a, b = _epoch(self.first), _epoch(self.last)
        return (b - a) if a is not None and b is not None else None

    def report(self, stats: ReadStats | None = None) -> dict[str, Any]:
        span = self._span()
        days = span / DAY if span and span >= 60 else None
        notes = [
            "Requests the log's own policy dropped (level None) or whose stages it omitted are not in the log: "
            "no candidate is credited with them. For a complete sample, record everything for a while, e.g. "
            "`kaudit switch TARGET --profile all-bodies` for an hour, then switch back, and simulate that log.",
        ]
        if days is None:
            notes.append("the log spans less than a minute: no per-day figures")
        log_json = self.log.to_json()
        log_json["eventsPerDay"] = round(self.log.events / days) if days else None
        log_json["bytesPerDay"] = round(self.log.bytes / days) if days else None
        log_json["eventsPerHour"] = dict(sorted(self.log.hours.items()))
        cands = []
        for col in self.columns:
            t = col.tally
            for key, count in col.pending_bodies.items():
                mean = self.bodies.mean(key)
                if mean is None:
                    t.unknown_bodies += count
                else:
                    t.estimated_bytes += round(mean * count)
            synthetic = {}
            for stage_name, (count, nbytes) in col.synthetic.items():
                if not count:
                    continue
                if self.log_stages[stage_name] == 0:
                    t.events += count
                    t.bytes += nbytes
                    t.stages[stage_name] += count
                    synthetic[stage_name] = {"events": count, "bytes": nbytes}
                elif t.stages[stage_name] < count:
                    # the log has this stage for some requests only: the missing ones are not estimated
                    synthetic[stage_name] = {"events": 0, "bytes": 0, "partial": True}
            per_day_bytes = (t.bytes + t.estimated_bytes) / days if days else None
            hist_days, bound = history_days(col.candidate.rotation, per_day_bytes, self.kubernetes_version)
            policy = col.candidate.policy
            ev = col.evaluator
            rules = [{"index": i, "level": r.level, "hits": col.rule_hits[i], "line": r.line}
                     for i, r in enumerate(policy.rules)]
            j = t.to_json()
            j.update(
                eventsPerDay=round(t.events / days) if days else None,
                bytesPerDay=round(per_day_bytes) if per_day_bytes is not None else None,
                historyDays=round(hist_days, 1) if hist_days is not None else None,
                historyBound=bound,
                eventsPerHour=dict(sorted(t.hours.items())),
            )
            cands.append({
                "name": col.candidate.name,
                "kind": col.candidate.kind,
                "rotation": {"maxage": col.candidate.rotation.maxage, "maxbackup": col.candidate.rotation.maxbackup,
                             "maxsize": col.candidate.rotation.maxsize, "source": col.candidate.rotation.source},
                **j,
                "stagesAdded": synthetic,
                "stopsWriting": {"events": col.dropped_events, "top": _top(col.dropped)},
                "startsWriting": {"eventsAtHigherLevel": col.raised_events, "top": _top(col.raised),
                                  "stagesAdded": sum(v["events"] for v in synthetic.values())},
                "lowerLevelEvents": col.lowered_events,
                "rules": rules,
                "rulesNeverFired": [i for i, n in enumerate(col.rule_hits) if n == 0],
                "noRuleMatched": col.no_rule,
                "cache": {"distinct": ev.distinct, "hits": ev.hits, "misses": ev.misses,
                          "hitRate": round(ev.hits / (ev.hits + ev.misses), 4) if ev.hits + ev.misses else None},
            })
        read = {}
        if stats is not None:
            read = {"sources": stats.sources, "lines": stats.lines, "events": stats.events, "bytes": stats.bytes,
                    "skippedLines": stats.bad_lines, "skippedWhere": stats.bad_where,
                    "notEvents": stats.not_events}
        return {
            "input": {**read, "filteredOut": self.filtered_out, "first": self.first or None,
                      "last": self.last or None, "spanSeconds": round(span, 3) if span is not None else None},
            "log": log_json,
            "candidates": cands,
            "notes": notes,
        }


def _top(counter: Counter[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"user": u, "verb": v, "resource": r, "events": n} for (u, v, r), n in counter.most_common(TOP)]
