"""`kaudit simulate` end to end: candidates, sources, one pass, the chosen output.

Kept apart from the typer command (installer/commands/simulate.py) so tests drive it directly. Profiles
and validation are imported here, inside the functions that use them; a TARGET's nodes are read through
`installer.auditlog.node`, imported only when a TARGET is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import IO, Any

import msgspec

from installer.auditlog.match import parse_time
from installer.auditlog.reader import (
    LEAN_DECODER_WITH_ID,
    AnyRecord,
    LeanRecord,
    ReadStats,
    local_sources,
    read_as,
    read_blocks,
)
from installer.errors import InputError, did_you_mean
from installer.manifest.settings import ROTATION_DEFAULTS
from installer.policy.evaluate import Decision
from installer.simulate.simulate import Candidate, Rotation, Simulation

DEFAULT_ROTATION = ROTATION_DEFAULTS  # the table's (installer/manifest/settings.py)
SCHEMA_VERSION = 1
_INVENTORY_SUFFIXES = (".yml", ".yaml", ".ini")


def _split_sets(sets: list[str], profiles: list[str]) -> dict[str, dict[str, str]]:
    from installer.policy.profiles import load_profile, parse_sets

    per: dict[str, dict[str, str]] = {p: {} for p in profiles}
    for item in sets:
        name, eq, _ = item.partition("=")
        scope, dot, var = name.rpartition(".")
        if eq and dot and scope:
            if scope not in per:
                raise InputError(f"--set {item!r}: {scope!r} is not one of the --profile candidates"
                                 f"{did_you_mean(scope, per)}")
            per[scope].update(parse_sets([f"{var}={item.partition('=')[2]}"]))
            continue
        parsed = parse_sets([item])
        (var_name,) = parsed
        takers = [p for p in profiles if load_profile(p).variable(var_name) is not None]
        if not takers:
            known = [v.name for p in profiles for v in load_profile(p).variables]
            raise InputError(f"--set {item!r}: no --profile candidate has a variable {var_name!r}"
                             f"{did_you_mean(var_name, known)}")
        for p in takers:
            per[p].update(parsed)
    return per


def candidate_order(kinds: list[str] | None, profiles: list[str], policy_files: list[str]) -> list[tuple[str, str]]:
    """(kind, name) of every candidate in command-line order: `kinds` is "profile" or "policy-file" per
    occurrence, as the command line had them; without it (or if it does not fit the lists) the profiles
    come first. A profile given twice is one candidate, where it first appeared."""
    grouped = [("profile", p) for p in profiles] + [("policy-file", f) for f in policy_files]
    if kinds is None or sorted(kinds) != sorted(k for k, _ in grouped):
        ordered = grouped
    else:
        names = {"profile": iter(profiles), "policy-file": iter(policy_files)}
        ordered = [(k, next(names[k])) for k in kinds]
    seen: set[str] = set()
    out = []
    for kind, name in ordered:
        if kind == "profile":
            if name in seen:
                continue
            seen.add(name)
        out.append((kind, name))
    return out


def build_candidates(profiles: list[str], sets: list[str], policy_files: list[str],
                     rotation: tuple[int | None, int | None, int | None],
                     version: tuple[int, int], node_rotation: tuple[int, int, int] | None = None,
                     kinds: list[str] | None = None) -> list[Candidate]:
    """Candidates in command-line order (`candidate_order`), validated (strictly, as `kaudit validate`):
    an invalid one is exit 2 before any reading."""
    from installer.policy.profiles import load_profile, render
    from installer.policy.validate import check

    def rot(defaults: tuple[int, int, int], source: str) -> Rotation:
        given = [g if g is not None else d for g, d in zip(rotation, defaults, strict=True)]
        src = "flags" if any(g is not None for g in rotation) else source
        return Rotation(given[0], given[1], given[2], src)

    out: list[Candidate] = []
    per_profile = _split_sets(sets, list(dict.fromkeys(profiles)))
    for kind, name in candidate_order(kinds, profiles, policy_files):
        if kind == "profile":
            profile = load_profile(name)
            rendered = render(name, per_profile[name])
            report = check(rendered.text, kubernetes_version=version)
            if not report.ok or report.policy is None:
                raise InputError(f"profile {name!r} renders an invalid policy: {report.errors[0]}")
            log = profile.log
            out.append(Candidate(name, report.policy, rot((log.maxage, log.maxbackup, log.maxsize), "profile"),
                                 "profile", per_profile[name]))
            continue
        try:
            with open(name, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
        report = check(data, kubernetes_version=version)
        if not report.ok or report.policy is None:
            raise InputError(f"{name}: not a valid audit policy: {report.errors[0]} (see `kaudit validate {name}`)")
        defaults, source = (node_rotation, "node") if node_rotation else (DEFAULT_ROTATION, "default")
        out.append(Candidate(name, report.policy, rot(defaults, source), "policy-file"))
    return out


def is_local(source: str) -> bool:
    if source == "-":
        return True
    if os.path.isdir(source):
        return True
    if source.endswith(_INVENTORY_SUFFIXES):
        return False  # an Ansible inventory: TARGETs
    if os.path.exists(source):
        return True
    # a path that is not there: say so, rather than failing to parse it as a target
    return "://" not in source and ("/" in source or source.endswith((".log", ".gz", ".json", ".jsonl")))


def simulate_command(req: dict[str, Any], ssh_options: Callable[[], Any], stdout: IO[str],
                     coverage: Callable[[Any, tuple[int, int]], dict[str, Any]] | None = None) -> int:
    """The whole command; returns the exit code (KauditError for bad input). `coverage` gives each
    candidate's CIS 3.2.2 coverage (installer.detections.coverage.summary, handed in by the command: this
    module is below the catalogue, whose filters use its parse_time)."""
    from installer.policy.model import LATEST_KNOWN_VERSION

    sources: list[str] = req["sources"]
    local = [s for s in sources if is_local(s)]
    targets = [s for s in sources if not is_local(s)]
    if local and targets:
        raise InputError(f"give either log files or TARGETs, not both ({local[0]} is a file, {targets[0]} is not)")
    since = parse_time(req["since"]) if req["since"] else None
    until = parse_time(req["until"]) if req["until"] else None
    stats = ReadStats()
    notes: list[str] = []
    output = req["output"]
    records: Iterable[LeanRecord] | None = None
    version: tuple[int, int] = req["kubernetes_version"] or LATEST_KNOWN_VERSION
    closers: list[Callable[[], None]] = []
    node_rotation = None
    if targets:
        from installer.auditlog import node

        opened = node.raise_failures(node.open_logs(targets, ssh_options()))
        closers.append(opened.close)
        records = opened.records(stats, LEAN_DECODER_WITH_ID)
        if req["kubernetes_version"] is None and opened.kubernetes_version:
            version = opened.kubernetes_version
        node_rotation = opened.rotation
    elif output == "events":
        records = read_as(local_sources(local), LEAN_DECODER_WITH_ID, stats)
    try:
        candidates = build_candidates(req["profiles"], req["sets"], req["policy_files"], req["rotation"], version,
                                      node_rotation, req.get("order"))
        on_event = _events_writer(candidates, stdout) if output == "events" else None
        sim = Simulation(candidates, version, since, until, on_event)
        if records is not None:  # one by one: -o events (input order), or TARGETs merged by time
            sim.run(records)
        else:  # the fast path: blocks of events
            sim.read(read_blocks(local_sources(local), stats))
    finally:
        for close in closers:
            close()
    if output == "events":
        return 0
    report = sim.report(stats)
    report["notes"] = notes + report["notes"]
    if coverage is not None:
        for cand_json, cand in zip(report["candidates"], candidates, strict=True):
            cand_json["coverage"] = coverage(cand.policy, version)
    if output == "json":
        doc = {"schemaVersion": SCHEMA_VERSION, "command": "simulate",
               "kubernetesVersion": f"{version[0]}.{version[1]}", **report}
        stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")
    else:
        from installer.simulate.text import render_text

        render_text(report, stdout)
    return 0


def _events_writer(candidates: list[Candidate], stdout: IO[str]) -> Callable[[AnyRecord[Any], list[Decision]], None]:
    encode = msgspec.json.Encoder().encode
    names = [c.name for c in candidates]
    write = stdout.write

    def on_event(rec: AnyRecord[Any], decisions: list[Decision]) -> None:
        ev = rec.event
        for name, d in zip(names, decisions, strict=True):
            written = d.level != "None" and ev.stage not in d.omit_stages
            write(encode({"source": rec.source, "line": rec.line, "auditID": ev.auditID, "stage": ev.stage,
                          "policy": name, "level": d.level, "rule": d.rule, "written": written}).decode() + "\n")

    return on_event
