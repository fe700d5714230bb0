"""`kaudit tune` end to end: sources read twice (the traffic, then the policy's evaluation), the
budget, and the outputs. The planning itself is pure (installer.simulate.tune)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import msgspec

from installer.auditlog.reader import LEAN_DECODER, ReadStats, local_sources, read_blocks
from installer.errors import InputError
from installer.manifest.settings import rotation_text
from installer.simulate import tune
from installer.simulate.run import DEFAULT_ROTATION, build_candidates, is_local
from installer.simulate.simulate import Candidate, Rotation, Simulation, history_days

SCHEMA_VERSION = 1
SHIPPED = ("minimal", "recommended", "cis", "security", "write-bodies", "all-bodies")


@contextmanager
def _spooled(sources: list[str]) -> Iterator[list[str]]:
    """stdin is read twice: kept in a private temporary file (0600: audit logs hold secrets) meanwhile."""
    if "-" not in sources:
        yield sources
        return
    import sys

    fd, path = tempfile.mkstemp(prefix="kaudit-tune-", suffix=".log")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield [path if s == "-" else s for s in sources]
    finally:
        os.unlink(path)


def tune_command(req: dict[str, Any], ssh_options: Callable[[], Any], stdout: IO[str], stderr: IO[str],
                 coverage: Callable[[Any, tuple[int, int]], dict[str, Any]]) -> int:
    from installer.detections import catalogue as detections
    from installer.policy.model import LATEST_KNOWN_VERSION

    sources: list[str] = req["sources"]
    local = [s for s in sources if is_local(s)]
    targets = [s for s in sources if not is_local(s)]
    if local and targets:
        raise InputError(f"give either log files or TARGETs, not both ({local[0]} is a file, {targets[0]} is not)")
    kept = _kept(detections.load(), req["keep"])
    budget = tune.parse_budget(req["budget"]) if req["budget"] else None
    version: tuple[int, int] = req["kubernetes_version"] or LATEST_KNOWN_VERSION
    with _spooled(local) as files:
        opened = None
        if targets:
            from installer.auditlog import node

            opened = node.raise_failures(node.open_logs(targets, ssh_options()))
            if req["kubernetes_version"] is None and opened.kubernetes_version:
                version = opened.kubernetes_version
        try:
            def feed(sink: Any, stats: ReadStats) -> None:
                if opened is not None:
                    sink.run(opened.records(stats, LEAN_DECODER))
                else:
                    sink.read(read_blocks(local_sources(files), stats))

            traffic = tune.Traffic()
            feed(traffic, ReadStats())
            if not traffic.classes:
                raise InputError(f"no audit events in {' '.join(sources)}: nothing to tune from "
                                 "(an empty log, or only RequestReceived events)")
            plan = tune.plan_policy(traffic, kept, version)
            stats = ReadStats()
            report = _evaluate(plan, version, feed, stats)
        finally:
            if opened is not None:
                opened.close()
    for rule, (events, nbytes) in zip(plan.cuts, _savings(plan, report), strict=True):
        rule.saves_events, rule.saves_bytes = events, nbytes
    # A rule that saves nothing is left out (the rules never overlap: the others' figures stay true).
    plan.cuts[:] = [r for r in plan.cuts if r.saves_bytes]
    # Cut rules never overlap (each user and resource or path is in one rule), so their order does not
    # change any verdict: the biggest saving first, for the reviewer.
    plan.cuts.sort(key=lambda r: (-(r.saves_bytes or 0), r.users, r.verbs, r.resources, r.paths))
    cands = report["candidates"]
    tuned = cands[0]
    profiles = cands[2:]
    per_day = tuned["bytesPerDay"] if tuned["bytesPerDay"] is not None else tuned["bytes"]
    if budget is not None and per_day > budget:
        raise InputError(_over_budget(traffic, kept, version, per_day, budget))
    doc = _document(plan, report, tuned, profiles, version, kept, coverage, stats)
    if req["output"] == "json":
        stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")
    else:
        stdout.write(doc["policy"])
        stderr.write(_summary_text(doc))
    return 0


def _kept(catalogue: tuple[Any, ...], keep: str | None) -> list[Any]:
    from installer.detections import catalogue as detections
    from installer.errors import did_you_mean

    if not keep or keep.strip().lower() == "cis":
        return list(catalogue)
    names = [n.strip() for n in keep.split(",") if n.strip()]
    known = [d.name for d in catalogue]
    for n in names:
        if n not in known and n.lower() != "cis":
            raise InputError(f"--keep {n!r}: no detection of that name{did_you_mean(n, known)} "
                             "(`kaudit logs --list-detections` lists them; `cis` keeps them all)")
    if any(n.lower() == "cis" for n in names):
        return list(catalogue)
    return detections.select(list(catalogue), names)


def _evaluate(plan: tune.Plan, version: tuple[int, int], feed: Callable[[Any, ReadStats], None],
              stats: ReadStats) -> dict[str, Any]:
    rotation = Rotation(*DEFAULT_ROTATION, "default")
    cands = [Candidate("tuned", tune.policy_of(plan.text([], claims=False), version), rotation, "policy-file"),
             Candidate("shadow", tune.policy_of(plan.text([], claims=False, shadow=True), version), rotation,
                       "policy-file")]
    cands += build_candidates(list(SHIPPED), [], [], (None, None, None), version)
    sim = Simulation(cands, version)
    feed(sim, stats)
    return sim.report(stats)


def _per_day(cand: dict[str, Any], key: str) -> int:
    value = cand[f"{key}PerDay"]
    return int(value if value is not None else cand[key])


def _savings(plan: tune.Plan, report: dict[str, Any]) -> list[tuple[int, int]]:
    """Per cut rule, (events, bytes) a day it saves: what the shadow's rule writes less what it writes."""
    tuned, shadow = report["candidates"][:2]
    span = report["input"]["spanSeconds"] or 0
    days = span / 86_400 if span >= 60 else 1.0
    return [(round((shadow["rules"][i]["eventsWritten"] - tuned["rules"][i]["eventsWritten"]) / days),
             round((shadow["rules"][i]["bytesWritten"] - tuned["rules"][i]["bytesWritten"]) / days))
            for i in range(len(plan.cuts))]


def _over_budget(traffic: tune.Traffic, kept: list[Any], version: tuple[int, int], per_day: int, budget: int) -> str:
    """Which detections the budget would cost: given up one at a time, the one whose cuts save the most
    first (estimated from the log's own bytes), until the estimate fits."""
    days = _span_days(traffic)
    remaining = list(kept)
    gone: list[str] = []
    estimate = float(per_day)
    base = _cut_bytes(traffic, remaining, version)
    while estimate > budget and remaining:
        best = None
        for d in remaining:
            trial = [k for k in remaining if k is not d]
            gain = (_cut_bytes(traffic, trial, version) - base) / days
            if best is None or gain > best[0]:
                best = (gain, d, trial)
        assert best is not None
        gain, d, trial = best
        if gain <= 0:
            break
        gone.append(d.name)
        remaining, estimate, base = trial, estimate - gain, base + gain * days
    have = tune._size(per_day)
    if estimate > budget:
        return (f"--budget {tune._size(budget)}/day cannot be met: the tuned policy writes {have} a day on this log, "
                f"and giving up detections would not bring it under (most of it is traffic recorded at Metadata)")
    return (f"--budget {tune._size(budget)}/day cannot be met with these detections: the tuned policy writes {have} "
            f"a day on this log; it would have to give up {', '.join(gone)} (about {tune._size(estimate)} a day "
            f"then). Re-run with --keep naming the detections to keep")


def _cut_bytes(traffic: tune.Traffic, kept: list[Any], version: tuple[int, int]) -> float:
    plan = tune.plan_policy(traffic, kept, version, max_rules=10_000)
    return float(sum(r.estimate for r in plan.cuts))


def _span_days(traffic: tune.Traffic) -> float:
    from installer.simulate.simulate import _epoch

    lo, hi = _epoch(traffic.first), _epoch(traffic.last)
    span = (hi - lo) if lo is not None and hi is not None else 0.0
    return span / 86_400 if span >= 60 else 1.0


def _document(plan: tune.Plan, report: dict[str, Any], tuned: dict[str, Any], profiles: list[dict[str, Any]],
              version: tuple[int, int], kept: list[Any], coverage: Callable[[Any, tuple[int, int]], dict[str, Any]],
              stats: ReadStats) -> dict[str, Any]:
    inp = report["input"]
    days = (inp["spanSeconds"] or 0) / 86_400
    cov = coverage(tune.policy_of(plan.text([], claims=False), version), version)
    kept_names = {d.name for d in kept}
    lost_kept = [n for n in cov["lostDetections"] if n in kept_names]
    header = [
        f"kaudit tune: from {stats.events:,} events, {inp['first']} to {inp['last']}"
        + (f" ({days:.1f} days)" if days * 86_400 >= 60 else ""),
        f"Keeps {len(kept) - len(plan.degraded) - len(lost_kept)} of the {len(kept)} selected detections "
        "(CIS 3.2.2 catalogue) at the level each needs.",
        *[f"Degraded: {name}: {why}." for name, why in plan.degraded],
        *[f"Lost: {name}." for name in lost_kept],
        f"Writes {tuned['eventsPerDay'] or tuned['events']:,} events and "
        f"{tune._size(_per_day(tuned, 'bytes'))} a day on this log"
        + ("" if tuned["eventsPerDay"] is not None else " (the log spans under a minute: per log, not per day)")
        + ".",
        "Each cut rule below says what it saves; delete one to record that traffic again.",
        "",
    ]
    text = plan.text(header)
    rotation = Rotation(*DEFAULT_ROTATION, "default")

    def row(name: str, cand: dict[str, Any] | None, policy: Any | None, events: int, nbytes: int) -> dict[str, Any]:
        hist, _ = history_days(rotation, nbytes if days * 86_400 >= 60 else None, version)
        out: dict[str, Any] = {"name": name, "eventsPerDay": events, "bytesPerDay": nbytes,
                               "historyDays": round(hist, 1) if hist is not None else None}
        if policy is not None:
            c = coverage(policy, version)
            out["coverage"] = {k: c[k] for k in ("kept", "degraded", "lost")}
        if cand is not None:
            out["bytesAtLeast"] = cand["bytesAtLeast"]
        return out

    log = report["log"]
    rows = [row("log", None, None, int(log["eventsPerDay"] or log["events"]), int(log["bytesPerDay"] or log["bytes"])),
            row("tuned", tuned, tune.policy_of(text, version), _per_day(tuned, "events"), _per_day(tuned, "bytes"))]
    from installer.policy.profiles import render
    for cand in profiles:
        rows.append(row(cand["name"], cand, tune.policy_of(render(cand["name"], {}).text, version),
                        _per_day(cand, "events"), _per_day(cand, "bytes")))
    return {
        "schemaVersion": SCHEMA_VERSION, "command": "tune", "kubernetesVersion": f"{version[0]}.{version[1]}",
        "policy": text,
        "input": {"events": stats.events, "first": inp["first"], "last": inp["last"], "spanSeconds": inp["spanSeconds"],
                  "perDay": days * 86_400 >= 60},
        "rules": [{"index": i, "level": r.level, "users": list(r.users), "verbs": list(r.verbs), "group": r.group,
                   "resources": list(r.resources), "nonResourceURLs": list(r.paths), "covers": list(r.labels),
                   "savesEventsPerDay": r.saves_events, "savesBytesPerDay": r.saves_bytes}
                  for i, r in enumerate(plan.cuts)],
        "coverage": cov,
        "degraded": [{"detection": n, "why": w} for n, w in plan.degraded],
        "compare": rows,
    }


def _summary_text(doc: dict[str, Any]) -> str:
    per = "a day" if doc["input"]["perDay"] else "in this log"
    lines = [f"kaudit tune: {doc['input']['events']:,} events read; events and bytes {per}, days of history at "
             f"{rotation_text()} rotation, CIS 3.2.2 coverage (kept/degraded/lost):"]
    lines.append(f"  {'':<14}{'events':>12}{'bytes':>12}{'history':>10}  coverage")
    for r in doc["compare"]:
        cov = r.get("coverage")
        cov_text = f"{cov['kept']}/{cov['degraded']}/{cov['lost']}" if cov else "-"
        hist = f"{r['historyDays']:.1f} d" if r["historyDays"] is not None else "-"
        at_least = ">= " if r.get("bytesAtLeast") else ""
        lines.append(f"  {r['name']:<14}{r['eventsPerDay']:>12,}{at_least + tune._size(r['bytesPerDay']):>12}"
                     f"{hist:>10}  {cov_text}")
    for d in doc["degraded"]:
        lines.append(f"  degraded: {d['detection']}: {d['why']}")
    lines.append(f"  {len(doc['rules'])} cut rules; each one's comment in the policy says what it saves.")
    return "\n".join(lines) + "\n"
