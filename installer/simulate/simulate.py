"""`kaudit simulate`: replay recorded audit events through candidate policies (issue 13 items 1-3, 5).

One pass over the events; each candidate's policy is applied with the attributes the API server had
(`evaluate`, itself cached per distinct attribute set) once per distinct key of the events (below), and
only counters are kept: memory stays flat in the input's size. What the log itself recorded is the
reference column.

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
  own event without bodies, status or annotations. A request that failed authentication is the
  exception: the API server writes it as one ResponseStarted event and nothing else
  (`pkg/endpoints/filters/authn_audit.go`), so it counts as a request and gets no other stage;
- requests the log's own policy dropped (level None) are not in the log at all: no candidate can be
  credited with them. The report says so.

How it stays fast: per event, only the decode (`reader.read_blocks`: a plain file's lines read in C, a
block at a time, decoded by msgspec into `reader.FastEvent`, bodies as raw bytes) and ONE lookup, by what
the event wrote (its verb, requestURI with the query, user as written, stage and level: `_raw`), which
gives the entry of its key, the distinct (verb, request path, user, stage, recorded level) of its hour,
to which the event adds its count and byte sizes (all linear). Each candidate's policy is then applied
once per distinct key (`_apply`), not once per event. (Measured against building the keys and sums with
`map`/`zip` and no Python statement per event, and against pyarrow's and polars' JSON readers:
bench/README.md, "kaudit simulate".)

What is kept, and for how long (memory does not grow with the log's length):
- for the whole run, per hour of the log: its events in the log and in each candidate (`eventsPerHour`);
- per hour, while it is read: the hour's table (one entry per distinct key: seven sums, the key's plan)
  and the lookup by what the events wrote. When a new hour starts, the tables of the hours before the
  previous one are applied to the counters and dropped (`_hour`): about two hours' keys are held, and
  at most `_MAX_KEYS` in all (past it, every table is applied at once);
- for the whole run, bounded: the caches of request paths, users, request attributes and plans
  (`_MAX_CACHE` entries each, then emptied), each candidate's evaluation cache (`evaluate.Evaluator`),
  the body sizes per (verb, resource) (as many as the API has resources), and the "top" counters per
  (user, verb, resource) (`_MAX_TOP`: past it, the largest half is kept: exact below it, a bounded
  heavy-hitters summary above).

Nothing here prints bodies: groups are (user, verb, resource), never request URIs or objects.
"""

from __future__ import annotations

import calendar
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter, itemgetter
from typing import Any, Protocol

import msgspec

from installer.auditlog.reader import ABSENT, AnyRecord, Block, LeanUser, ObjectRef, ReadStats
from installer.policy.evaluate import (
    LEVEL_ORDER,
    Decision,
    Evaluator,
    RequestInfo,
    request_info,
    request_variants,
)
from installer.policy.model import Policy

MIB = 1024 * 1024
DAY = 86_400.0
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
LEVELS = ("Metadata", "Request", "RequestResponse")
# Long-running requests also write ResponseStarted (pkg/endpoints/filters/audit.go: when the response
# starts, or faked when the connection closes first). kube-apiserver's check (pkg/controlplane/apiserver/
# config.go) is k8s.io/apiserver/pkg/server/filters/longrunning.go BasicLongRunningRequestCheck(verbs
# watch, proxy; subresources attach, exec, proxy, log, portforward), which also takes every non-resource
# path under /debug/pprof/ (the profiler streams).
_LONG_VERBS = frozenset({"watch", "proxy"})
_LONG_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
_LONG_PATH_PREFIX = "/debug/pprof/"
_READS = frozenset({"get", "list", "watch"})  # a GET carries no request body
_REQ_KEY = len(b'"requestObject":') + 1  # the key and its comma
_RESP_KEY = len(b'"responseObject":') + 1
_STATUS_KEY = len(b'"responseStatus":') + 1
_ANN_KEY = len(b'"annotations":') + 1
_MF_KEY = len(b'"managedFields":') + 1
_LIST_WATCH = frozenset({"list", "watch"})
TOP = 10
# A per-key table entry (a list, indexed by number in the hot loop): [0 events, 1 bytes (the lines as
# written), 2 request bodies' bytes, 3 response bodies' bytes, 4 status and annotations bytes (each with its
# key), 5 request managedFields bytes, 6 response managedFields bytes, 7 _Plan.mf_mask, 8 the _Plan]
_MAX_KEYS = 50_000  # distinct keys held in the tables (all hours) before they are folded into the counters
_MAX_CACHE = 50_000  # entries of each per-key cache (paths, users, request infos, plans) before it is emptied
_MAX_TOP = 20_000  # distinct (user, verb, resource) of a "top" counter before it keeps its _MAX_TOP // 2 largest
_STAGE_TIME = attrgetter("stageTimestamp")
_HOUR = itemgetter(slice(0, 13))  # "YYYY-MM-DDTHH" of a timestamp
_ObjectRefKey = tuple[str, bytes]
_OBJECT_REF = msgspec.json.Decoder(ObjectRef)
_USER = msgspec.json.Decoder(LeanUser)


class _Meta(msgspec.Struct):
    managedFields: msgspec.Raw = msgspec.Raw()


class _Body(msgspec.Struct):
    metadata: _Meta | None = None


_BODY = msgspec.json.Decoder(_Body)


def _managed_fields_bytes(raw: msgspec.Raw) -> int:
    """Bytes `metadata.managedFields` takes in a body, its key and comma included (0 when absent). The
    body is decoded as it is: looking for the key first (a copy and a search) cost more than it saved,
    and cutting the body after its metadata first measured no faster."""
    try:
        body = _BODY.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 0
    mf = body.metadata.managedFields if body.metadata else None
    return len(mf) + _MF_KEY if mf else 0


class SimEvent(Protocol):
    """What simulate reads of an event: reader.FastEvent (the fast path) or reader.SimEvent (the rest)."""

    @property
    def level(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def requestURI(self) -> str: ...
    @property
    def verb(self) -> str: ...
    @property
    def user(self) -> msgspec.Raw: ...
    @property
    def stageTimestamp(self) -> str: ...
    @property
    def responseStatus(self) -> msgspec.Raw: ...
    @property
    def requestObject(self) -> msgspec.Raw: ...
    @property
    def responseObject(self) -> msgspec.Raw: ...
    @property
    def annotations(self) -> msgspec.Raw: ...


def _received(ev: SimEvent) -> str:
    """stageTimestamp, else requestReceivedTimestamp (a FastEvent always has the first)."""
    return ev.stageTimestamp or str(getattr(ev, "requestReceivedTimestamp", ""))


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
    if verb in _LONG_VERBS:
        return True
    if info.resource_request:
        return info.subresource in _LONG_SUBRESOURCES
    return info.path.startswith(_LONG_PATH_PREFIX)


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
        self.rule_written = [[0, 0] for _ in candidate.policy.rules]  # per rule: events and exact bytes written
        self.no_rule = 0
        self.dropped: Counter[tuple[str, str, str]] = Counter()  # written by the log, not by the candidate
        self.dropped_events = 0
        # of those: requests the candidate no longer records at all (level None) ...
        self.unrecorded: Counter[tuple[str, str, str]] = Counter()
        self.unrecorded_events = 0
        self.unrecorded_requests = 0
        # ... and stage events of requests it still records (the stage in omitStages)
        self.stage_dropped: Counter[tuple[str, str, str, str]] = Counter()
        self.stage_dropped_by_stage: Counter[str] = Counter()
        self.raised: Counter[tuple[str, str, str]] = Counter()  # recorded at a higher level than the log
        self.raised_events = 0
        self.lowered_events = 0
        self.pending_bodies: Counter[tuple[str, str, str]] = Counter()  # (verb, resource, which) -> count
        self.synthetic: dict[str, list[int]] = {s: [0, 0] for s in ("RequestReceived", "ResponseStarted")}


class _BodySizes:
    """Sizes of bodies seen in the input per (verb, resource, which), to estimate bodies a log left out."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, str], list[int]] = {}

    def add(self, key: tuple[str, str, str], size: int, count: int = 1) -> None:
        entry = self.sums.get(key)
        if entry is None:
            self.sums[key] = [size, count]
        else:
            entry[0] += size
            entry[1] += count

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


class _Plan:
    """What every event of one (verb, request path, user) gets: the request's attributes, its label in
    the reports, and each candidate's decision (`Evaluator.decide_request`, itself cached)."""

    __slots__ = ("authenticated", "decisions", "label", "long_running", "mf_mask", "resource_request", "user")

    def __init__(self, decisions: tuple[Decision, ...], label: str, long_running: bool, resource_request: bool,
                 user: str | None) -> None:
        self.decisions = decisions
        self.label = label
        self.long_running = long_running
        self.resource_request = resource_request
        self.authenticated = user is not None
        self.user = user or "(unauthenticated)"
        # 1: some candidate keeps the request body without managedFields; 2: the response body
        self.mf_mask = 0
        for d in decisions:
            if d.omit_managed_fields:
                rank = LEVEL_ORDER[d.level]
                self.mf_mask |= (1 if rank >= 2 else 0) | (2 if rank >= 3 else 0)


_Key = tuple[str, "str | _ObjectRefKey", bytes, str, str]  # verb, path, user (as written), stage, recorded level


@dataclass
class Simulation:
    """Feed events with `read(blocks)` (the fast path) or `add(record)` one by one (`-o events`, TARGETs);
    then `report()`."""

    candidates: list[Candidate]
    kubernetes_version: tuple[int, int]
    since: str | None = None  # compared with stageTimestamp as text (both RFC 3339 UTC, microseconds)
    until: str | None = None
    on_event: Callable[[AnyRecord[Any], list[Decision]], None] | None = None  # -o events

    def __post_init__(self) -> None:
        self.columns = [_Column(c, self.kubernetes_version) for c in self.candidates]
        self.log = Tally()
        self.bodies = _BodySizes()
        self.first = ""
        self.last = ""
        self.filtered_out = 0
        self.log_stages: Counter[str] = Counter()
        self._infos: dict[tuple[str, str | _ObjectRefKey], tuple[tuple[RequestInfo, ...], str, bool]] = {}
        self._plans: dict[tuple[str, str | _ObjectRefKey, bytes], _Plan] = {}
        self._paths: dict[str, str] = {}  # requestURI -> the path the keys hold (_path), one object per path
        self._users: dict[bytes, bytes] = {}  # the user as written -> one object per distinct user
        # hour ("YYYY-MM-DDTHH") -> key -> [packed sizes, managedFields mask, request mF bytes, response mF
        # bytes, plan]
        self._tables: dict[str, dict[_Key, list[Any]]] = {}
        # hour -> (verb, requestURI as written, user as written, stage, level) -> the entry of its key in
        # _tables[hour]: the fast path's one lookup per event (`_add_fast`)
        self._raw: dict[str, dict[tuple[str, str, bytes, str, str], list[Any]]] = {}
        self._keys = 0
        self.keys_applied = 0  # distinct keys the candidates were applied to, over the run
        self.events_seen = 0

    # ------------------------------------------------------------------ per event: one table update

    def read(self, blocks: Iterable[Block[Any]]) -> None:
        """Every block of `reader.read_blocks`. The garbage collector waits meanwhile: the loop makes no
        reference cycles, and its collections of the young tuples and lists cost about 5%."""
        add = self.add_events
        enabled = gc.isenabled()
        gc.disable()
        try:
            for block in blocks:
                add(block.events, block.sizes, block.newline, block.fast)
        finally:
            if enabled:
                gc.enable()

    def run(self, records: Iterable[AnyRecord[Any]]) -> None:
        add = self.add
        for rec in records:
            add(rec)

    def add(self, rec: AnyRecord[Any]) -> None:
        """One record (a LeanEvent, or one with an auditID for `on_event`)."""
        ev = rec.event
        ts = _received(ev)
        if (self.since and ts < self.since) or (self.until and ts >= self.until):
            self.filtered_out += 1
            return
        self._times(ts, ts)
        self._add_hour(ts[:13], [ev], [rec.size])
        if self._keys > _MAX_KEYS:
            self._fold()
        if self.on_event is not None:
            plan = self._plan(ev.verb, self._path(ev), bytes(ev.user))
            self.on_event(rec, list(plan.decisions))

    def add_events(self, events: Sequence[SimEvent], sizes: list[int], newline: int, fast: bool = False) -> None:
        """A block of events and their sizes (less `newline` each, as `reader.Block` has them); `fast`: the
        events are reader.FastEvents (every one has a requestURI)."""
        if not events:
            return
        if newline:
            sizes = list(map(newline.__add__, sizes))
        times = list(map(_STAGE_TIME, events))
        lo, hi = min(times), max(times)
        since, until = self.since, self.until
        add = self._add_fast if fast else self._add_hour
        if lo and not (since and lo < since) and not (until and hi >= until):
            self._times(lo, hi)
            if lo[:13] == hi[:13]:
                add(lo[:13], events, sizes)
            else:  # the block crosses an hour: each hour's events apart, in the order they came
                of_hour = list(map(_HOUR, times))
                for hour in dict.fromkeys(of_hour):
                    mine = list(map(hour.__eq__, of_hour))
                    add(hour, list(compress(events, mine)), list(compress(sizes, mine)))
            if self._keys > _MAX_KEYS:
                self._fold()
            return
        # --since/--until cut the block, or an event has no stageTimestamp: sort it out
        hours: dict[str, tuple[list[SimEvent], list[int]]] = {}
        for ev, size in zip(events, sizes, strict=True):
            ts = _received(ev)
            if (since and ts < since) or (until and ts >= until):
                self.filtered_out += 1
                continue
            self._times(ts, ts)
            group = hours.get(ts[:13])
            if group is None:
                group = hours[ts[:13]] = ([], [])
            group[0].append(ev)
            group[1].append(size)
        for hour, (evs, szs) in hours.items():
            add(hour, evs, szs)
        if self._keys > _MAX_KEYS:
            self._fold()

    def _times(self, lo: str, hi: str) -> None:
        if lo and (not self.first or lo < self.first):
            self.first = lo
        if hi > self.last:
            self.last = hi

    @staticmethod
    def _path(ev: SimEvent) -> str | _ObjectRefKey:
        """The request path the key holds: the query dropped, unless it may name the object (a list or
        watch with a fieldSelector: requestinfo.go takes metadata.name from it)."""
        uri = ev.requestURI
        if "?" in uri:
            path, _, query = uri.partition("?")
            if ev.verb not in _LIST_WATCH or "fieldSelector" not in query:
                return path
            return uri
        if not uri:  # no requestURI (never written by a real API server): the objectRef is all there is
            return ("objectRef", bytes(getattr(ev, "objectRef", ABSENT)))
        return uri

    def _hour(self, hour: str) -> dict[_Key, list[Any]]:
        """The table of an hour. A new hour folds the tables of the hours before it but the last one (whose
        late events, stamped before the hour turned but written after it, still find it): a log is in
        time order, so memory holds the keys of about two hours, whatever the log's length. An event that
        comes later still starts a new table for its hour: every figure is a sum, none changes."""
        table = self._tables.get(hour)
        if table is None:
            older = sorted(h for h in self._tables if h < hour)[:-1]
            if older:
                self._fold(older)
            table = self._tables[hour] = {}
        return table

    def _add_fast(self, hour: str, events: Sequence[SimEvent], sizes: list[int]) -> None:
        """The hot loop, for reader.FastEvents (every event has a requestURI): per event, one lookup by
        what the event wrote (`_raw`: the requestURI and the user as written), which gives the entry of
        its key in the hour's table, and its count and sizes added to the entry. `sizes` are the lines'
        sizes as written, newline included."""
        raw = self._raw.get(hour)
        if raw is None or hour not in self._tables:
            self._hour(hour)
            raw = self._raw[hour] = {}
        absent = ABSENT
        mf = _managed_fields_bytes
        for ev, size in zip(events, sizes, strict=True):
            rkey = (ev.verb, ev.requestURI, bytes(ev.user), ev.stage, ev.level)
            try:
                entry = raw[rkey]
            except KeyError:
                entry = self._raw_entry(hour, raw, rkey)
            entry[0] += 1
            entry[1] += size
            body = ev.requestObject
            if body is not absent:
                entry[2] += len(body) + _REQ_KEY
                if entry[7] & 1:
                    entry[5] += mf(body)
            body = ev.responseObject
            if body is not absent:
                entry[3] += len(body) + _RESP_KEY
                if entry[7] & 2:
                    entry[6] += mf(body)
            body = ev.responseStatus
            if body is not absent:
                entry[4] += len(body) + _STATUS_KEY
            body = ev.annotations
            if body is not absent:
                entry[4] += len(body) + _ANN_KEY

    def _raw_entry(self, hour: str, raw: dict[tuple[str, str, bytes, str, str], list[Any]],
                   rkey: tuple[str, str, bytes, str, str]) -> list[Any]:
        """The entry of the key of what an event wrote (first seen this hour), remembered in `raw`."""
        verb, uri, user, stage, level = rkey
        path = self._paths.get(uri)
        if path is None:
            path = self._new_path_of(verb, uri)
        user = self._users.get(user) or self._new_user(user)
        key = (verb, path, user, stage, level)
        table = self._tables[hour]
        entry = table.get(key)
        if entry is None:
            entry = table[key] = self._entry(key)
        if len(raw) > _MAX_KEYS:
            raw.clear()
        raw[rkey] = entry
        return entry

    def _new_path_of(self, verb: str, uri: str) -> str:
        """`_path` of a non-empty requestURI, remembered as `_new_path` does."""
        path = uri
        if "?" in uri:
            path, _, query = uri.partition("?")
            if verb in _LIST_WATCH and "fieldSelector" in query:
                path = uri
        if "fieldSelector" not in uri:
            if len(self._paths) > _MAX_CACHE:
                self._paths.clear()
            self._paths[uri] = path
        return path

    def _add_hour(self, hour: str, events: Sequence[SimEvent], sizes: list[int]) -> None:
        """The per-line path's loop (reader.LeanEvents, which may lack a requestURI): per event, its key,
        and its count and sizes added to the key's entry. The path and the user in a key are the one
        object `_paths` and `_users` hold for each: they are hashed once, and compared by identity."""
        table = self._hour(hour)
        paths, users = self._paths, self._users
        absent = ABSENT
        for ev, size in zip(events, sizes, strict=True):
            uri = ev.requestURI
            path = paths.get(uri)
            if path is None:
                path = self._new_path(ev)
            user = bytes(ev.user)
            user = users.get(user) or self._new_user(user)
            key = (ev.verb, path, user, ev.stage, ev.level)
            try:
                entry = table[key]
            except KeyError:
                entry = table[key] = self._entry(key)
            entry[0] += 1
            entry[1] += size
            body = ev.requestObject
            if body is not absent:
                entry[2] += len(body) + _REQ_KEY
                if entry[7] & 1:
                    entry[5] += _managed_fields_bytes(body)
            body = ev.responseObject
            if body is not absent:
                entry[3] += len(body) + _RESP_KEY
                if entry[7] & 2:
                    entry[6] += _managed_fields_bytes(body)
            body = ev.responseStatus
            if body is not absent:
                entry[4] += len(body) + _STATUS_KEY
            body = ev.annotations
            if body is not absent:
                entry[4] += len(body) + _ANN_KEY

    def _new_path(self, ev: SimEvent) -> Any:
        path = self._path(ev)
        # Only a path that does not depend on the verb is remembered by URI alone: not one with a
        # fieldSelector (a list keeps it, a create drops it), nor an objectRef key (no URI at all).
        if isinstance(path, str) and "fieldSelector" not in ev.requestURI:
            if len(self._paths) > _MAX_CACHE:
                self._paths.clear()
            self._paths[ev.requestURI] = path
        return path

    def _new_user(self, user: bytes) -> bytes:
        if len(self._users) > _MAX_CACHE:
            self._users.clear()
        self._users[user] = user
        return user

    def _entry(self, key: _Key) -> list[Any]:
        self._keys += 1
        plan = self._plan(key[0], key[1], key[2])
        return [0, 0, 0, 0, 0, 0, 0, plan.mf_mask, plan]

    # ------------------------------------------------------------------ per distinct key

    def _info(self, verb: str, path: str | _ObjectRefKey) -> tuple[tuple[RequestInfo, ...], str, bool]:
        key = (verb, path)
        found = self._infos.get(key)
        if found is None:
            if isinstance(path, str):
                info = request_info(verb, path)
            else:
                try:
                    ref = _OBJECT_REF.decode(path[1]) if path[1] else ObjectRef()
                except (msgspec.DecodeError, msgspec.ValidationError):
                    ref = ObjectRef()
                name = "" if verb in ("create", "list", "watch") and not ref.subresource else ref.name
                info = RequestInfo(True, "", ref.apiGroup, ref.apiVersion, ref.namespace, ref.resource,
                                   ref.subresource, name)
            found = (request_variants(info), resource_label(verb, info), _long_running(verb, info))
            if len(self._infos) > _MAX_CACHE:
                self._infos.clear()
            self._infos[key] = found
        return found

    def _plan(self, verb: str, path: str | _ObjectRefKey, raw_user: bytes) -> _Plan:
        pkey = (verb, path, raw_user)
        plan = self._plans.get(pkey)
        if plan is None:
            variants, label, long_running = self._info(verb, path)
            try:
                user: LeanUser | None = _USER.decode(raw_user) if raw_user else None
            except (msgspec.DecodeError, msgspec.ValidationError):
                user = None
            if user is not None and (user.username or user.groups):
                username: str | None = user.username
                groups = user.groups
            else:
                username, groups = None, ()
            decisions = tuple(col.evaluator.decide_request(username, groups, verb, variants)  # type: ignore[arg-type]
                              for col in self.columns)
            plan = _Plan(decisions, label, long_running, variants[0].resource_request, username)
            if len(self._plans) > _MAX_CACHE:
                self._plans.clear()
            self._plans[pkey] = plan
        return plan

    def _fold(self, hours: list[str] | None = None) -> None:
        """Apply every candidate to every key of the tables of `hours` (default: all), once per key, then
        drop those tables; keep each "top" counter bounded."""
        for hour in list(self._tables) if hours is None else hours:
            table = self._tables.pop(hour)
            self._raw.pop(hour, None)
            for key, entry in table.items():
                self._apply(hour, key, entry)
            self.keys_applied += len(table)
            self._keys -= len(table)
        for col in self.columns:
            for counter in (col.dropped, col.unrecorded, col.stage_dropped, col.raised):
                if len(counter) > _MAX_TOP:
                    _prune(counter)

    def _apply(self, hour: str, key: _Key, entry: list[Any]) -> None:
        """The counters of `n` events of one key, given their sizes' sums: what `add` did per event before,
        now per key (every quantity is a sum, so the result is the same)."""
        n, size, req_size, resp_size, other, mf_req, mf_resp, _, plan = entry
        verb, _, _, stage, log_level = key
        label = plan.label
        user = plan.user
        # the request's last event: ResponseComplete or Panic, or the one ResponseStarted event the API
        # server writes for a request that failed authentication (pkg/endpoints/filters/authn_audit.go:
        # no user, no RequestReceived, no ResponseComplete)
        final = stage in ("ResponseComplete", "Panic")
        failed_authentication = stage == "ResponseStarted" and not plan.authenticated
        requests = n if final or failed_authentication else 0
        self.events_seen += n

        log = self.log
        log.events += n
        log.bytes += size
        log.stages[stage] += n
        log.levels[log_level] += n
        log.hours[hour] += n
        self.log_stages[stage] += n
        log.requests += requests
        log_rank = LEVEL_ORDER.get(log_level, 0)
        if final and plan.resource_request:
            if log_rank >= 2:
                self.bodies.add((verb, label, "request"), req_size, n)
            if log_rank >= 3:
                self.bodies.add((verb, label, "response"), resp_size, n)

        for col, d in zip(self.columns, plan.decisions, strict=True):
            if d.rule is None:
                col.no_rule += n
            else:
                col.rule_hits[d.rule] += n
            level = d.level
            if level == "None" or stage in d.omit_stages:
                col.dropped[(user, verb, label)] += n
                col.dropped_events += n
                if level == "None":
                    col.unrecorded[(user, verb, label)] += n
                    col.unrecorded_events += n
                    col.unrecorded_requests += requests
                else:  # still recorded, without this stage's event
                    col.stage_dropped[(user, verb, label, stage)] += n
                    col.stage_dropped_by_stage[stage] += n
                continue
            t = col.tally
            t.events += n
            t.stages[stage] += n
            t.levels[level] += n
            t.hours[hour] += n
            t.requests += requests
            rank = LEVEL_ORDER[level]
            relevel = n * (len(level) - len(log_level))
            out = size + relevel
            if rank < log_rank:
                col.lowered_events += n
            if rank < 2:
                out -= req_size
            if rank < 3:
                out -= resp_size
            if d.omit_managed_fields:
                if rank >= 2:
                    out -= mf_req
                if rank >= 3:
                    out -= mf_resp
            if rank > log_rank:
                col.raised_events += n
                col.raised[(user, verb, label)] += n
                if final and plan.resource_request:
                    if log_rank < 2 <= rank and verb not in _READS:
                        col.pending_bodies[(verb, label, "request")] += n
                    if log_rank < 3 <= rank and verb != "watch":
                        col.pending_bodies[(verb, label, "response")] += n
            t.bytes += out
            if d.rule is not None:
                w = col.rule_written[d.rule]
                w[0] += n
                w[1] += out
            if final:
                # the stages these requests would also write, in case the log omitted them (settled in report)
                meta = size - req_size - resp_size - other + relevel
                for extra in ("RequestReceived", "ResponseStarted"):
                    if extra in d.omit_stages or (extra == "ResponseStarted" and not plan.long_running):
                        continue
                    s = col.synthetic[extra]
                    s[0] += n
                    s[1] += meta + n * (len(extra) - len(stage))

    # ------------------------------------------------------------------ the report

    def _span(self) -> float | None:
        a, b = _epoch(self.first), _epoch(self.last)
        return (b - a) if a is not None and b is not None else None

    def report(self, stats: ReadStats | None = None) -> dict[str, Any]:
        self._fold()
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
            rules = [{"index": i, "level": r.level, "hits": col.rule_hits[i],
                      "eventsWritten": col.rule_written[i][0], "bytesWritten": col.rule_written[i][1], "line": r.line,
                      "summary": r.describe()} for i, r in enumerate(policy.rules)]
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
                "stopsRecording": {"requests": col.unrecorded_requests, "events": col.unrecorded_events,
                                   "top": _top(col.unrecorded)},
                "stagesDropped": {"events": sum(col.stage_dropped_by_stage.values()),
                                  "byStage": {s: col.stage_dropped_by_stage[s] for s in STAGES
                                              if col.stage_dropped_by_stage[s]},
                                  "top": _top_stages(col.stage_dropped)},
                "startsWriting": {"eventsAtHigherLevel": col.raised_events, "top": _top(col.raised),
                                  "stagesAdded": sum(v["events"] for v in synthetic.values())},
                "lowerLevelEvents": col.lowered_events,
                "rules": rules,
                "rulesNeverFired": [i for i, n in enumerate(col.rule_hits) if n == 0],
                "noRuleMatched": col.no_rule,
                # misses: the times the policy was evaluated; every other event was answered from the
                # per-key tables or the evaluation cache
                "cache": {"distinct": ev.distinct, "keys": self.keys_applied,
                          "hits": self.events_seen - ev.misses, "misses": ev.misses,
                          "hitRate": round(1 - ev.misses / self.events_seen, 4) if self.events_seen else None},
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


def _prune(counter: Counter[Any]) -> None:
    """Keep the _MAX_TOP // 2 largest counts: a "top" list stays bounded however many distinct (user, verb,
    resource) a log has. Exact below _MAX_TOP distinct; beyond, a group that is never among the largest
    half at a prune can be missed or under-counted in the top ten (a bounded-memory heavy-hitters
    summary, as lossy counting is)."""
    kept = counter.most_common(_MAX_TOP // 2)
    counter.clear()
    counter.update(dict(kept))


def _top(counter: Counter[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [{"user": u, "verb": v, "resource": r, "events": n} for (u, v, r), n in counter.most_common(TOP)]


def _top_stages(counter: Counter[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    return [{"user": u, "verb": v, "resource": r, "stage": s, "events": n}
            for (u, v, r, s), n in counter.most_common(TOP)]
