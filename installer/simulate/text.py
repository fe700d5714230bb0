"""`kaudit simulate -o text`: the comparison as a rich table, and events per hour as a small bar chart.

Shows users, verbs and resources only: never request URIs, bodies or tokens; every string of the
report (they come from the log) without terminal control characters (`clean_doc`).
"""

from __future__ import annotations

from typing import IO, Any

from installer.errors import clean_doc

_BARS = " ▁▂▃▄▅▆▇█"
_MAX_BARS = 48


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _num(n: int | float | None) -> str:
    return "-" if n is None else f"{n:,.0f}"


def sparkline(hours: dict[str, int], keys: list[str]) -> str:
    if not keys:
        return ""
    per = max(1, -(-len(keys) // _MAX_BARS))  # hours per bar
    values = [sum(hours.get(k, 0) for k in keys[i:i + per]) for i in range(0, len(keys), per)]
    top = max(values) or 1
    return "".join(_BARS[min(8, round(v / top * 8))] if v else _BARS[0] for v in values)


def render_text(report: dict[str, Any], out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from installer.detections.coverage import coverage_lines

    report = clean_doc(report)
    console = Console(file=out, width=max(100, min(160, 30 + 22 * (1 + len(report["candidates"])))),
                      highlight=False, markup=False, emoji=False, soft_wrap=True)
    log = report["log"]
    cands = report["candidates"]
    inp = report["input"]
    console.print(f"{inp.get('events', log['events']):,} events read from {len(inp.get('sources') or [])} source(s), "
                  f"{inp.get('first') or '-'} to {inp.get('last') or '-'}"
                  + (f"; {inp['filteredOut']:,} outside --since/--until" if inp.get("filteredOut") else ""))
    table = Table(show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("the log", justify="right")
    for c in cands:
        table.add_column(c["name"], justify="right")

    def row(label: str, logv: str, fn: Any) -> None:
        table.add_row(label, logv, *(fn(c) for c in cands))

    def at_least(c: dict[str, Any], value: float | None) -> str:
        """A size, marked as a lower bound when bodies are unknown; "-" (no figure) stays a bare "-"."""
        return ("≥ " + _size(value)) if c["bytesAtLeast"] and value is not None else _size(value)

    row("requests written", _num(log["requests"]), lambda c: _num(c["requests"]))
    row("events written", _num(log["events"]), lambda c: _num(c["events"]))
    for stage in ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"):
        if log["byStage"].get(stage) or any(c["byStage"].get(stage) for c in cands):
            row(f"  {stage}", _num(log["byStage"].get(stage, 0)), lambda c, s=stage: _num(c["byStage"].get(s, 0)))
    for level in ("Metadata", "Request", "RequestResponse"):
        if log["byLevel"].get(level) or any(c["byLevel"].get(level) for c in cands):
            row(f"  {level}", _num(log["byLevel"].get(level, 0)), lambda c, s=level: _num(c["byLevel"].get(s, 0)))
    row("bytes", _size(log["bytes"]), lambda c: at_least(c, c["bytes"]))
    row("events / day", _num(log["eventsPerDay"]), lambda c: _num(c["eventsPerDay"]))
    row("bytes / day", _size(log["bytesPerDay"]), lambda c: at_least(c, c["bytesPerDay"]))
    row("rotation (age/backups/MB)", "", lambda c: "{maxage}/{maxbackup}/{maxsize}".format(**c["rotation"]))
    row("days of history", "", lambda c: "unbounded" if c["historyDays"] is None else
        f"{c['historyDays']:.1f}" + (" (maxage)" if c["historyBound"] == "maxage" else ""))
    row("requests no longer recorded", "", lambda c: _num(c["stopsRecording"]["requests"]))
    row("stage events dropped", "", lambda c: _num(c["stagesDropped"]["events"]))
    row("higher level (events)", "", lambda c: _num(c["startsWriting"]["eventsAtHigherLevel"]))
    row("stages added (events)", "", lambda c: _num(c["startsWriting"]["stagesAdded"]))
    row("rules never fired", "", lambda c: f"{len(c['rulesNeverFired'])} of {len(c['rules'])}")
    if all("coverage" in c for c in cands):
        row("CIS 3.2.2 kept/degraded/lost", "",
            lambda c: "{kept}/{degraded}/{lost}".format(**c["coverage"]))
    console.print(table)

    keys = sorted(set(log["eventsPerHour"]).union(*(c["eventsPerHour"] for c in cands)))
    if len(keys) > 1:
        console.print(f"events per hour, {keys[0]}:00 to {keys[-1]}:59 UTC (each bar its own scale)")
        width = max(len("the log"), *(len(c["name"]) for c in cands))
        console.print(f"  {'the log':<{width}}  {sparkline(log['eventsPerHour'], keys)}")
        for c in cands:
            console.print(f"  {c['name']:<{width}}  {sparkline(c['eventsPerHour'], keys)}")

    for c in cands:
        console.print()
        console.print(f"[{c['name']}]")
        gone = c["stopsRecording"]
        if gone["top"]:
            console.print(f"  would no longer record {gone['requests']:,} request(s) (level None; {gone['events']:,} "
                          "events in the log); top user, verb, resource:")
            for g in gone["top"]:
                console.print(f"    {g['events']:>9,}  {g['user']}  {g['verb']}  {g['resource']}")
        staged = c["stagesDropped"]
        if staged["top"]:
            by_stage = ", ".join(f"{n:,} {stage}" for stage, n in staged["byStage"].items())
            console.print(f"  would drop {by_stage} event(s) of requests it still records (omitStages); "
                          "top user, verb, resource, stage:")
            for g in staged["top"]:
                console.print(f"    {g['events']:>9,}  {g['user']}  {g['verb']}  {g['resource']}  {g['stage']}")
        if c["startsWriting"]["top"]:
            console.print("  would record at a higher level than the log (top user, verb, resource):")
            for g in c["startsWriting"]["top"]:
                console.print(f"    {g['events']:>9,}  {g['user']}  {g['verb']}  {g['resource']}")
        for stage, v in c["stagesAdded"].items():
            if v.get("partial"):
                console.print(f"  keeps {stage}, which the log has for some requests only: not estimated")
            else:
                console.print(f"  would add {v['events']:,} {stage} events ({_size(v['bytes'])}) the log omits")
        if "coverage" in c:
            for line in coverage_lines(c["coverage"], width=console.width - 2):
                console.print("  " + line)
        if c["unknownBodies"]:
            console.print(f"  {c['unknownBodies']:,} bodies the log did not record and no event in it shows: "
                          "bytes are at least the figure above")
        console.print("  rule hits (events; #index from 0, first match wins):")
        for line in rule_lines(c["rules"], c["noRuleMatched"]):
            console.print("    " + line)
    if inp.get("skippedLines"):
        where = ", ".join(inp["skippedWhere"][:5]) + (" …" if inp["skippedLines"] > 5 else "")
        console.print(f"\nskipped {inp['skippedLines']:,} truncated or unreadable line(s): {where}")
    for note in report["notes"]:
        console.print(f"\nnote: {note}")


def rule_lines(rules: list[dict[str, Any]], no_rule: int = 0) -> list[str]:
    """Each rule with its hits: `     1,234  #3 Metadata secrets,configmaps (line 12)`; a rule with no
    hit says "never fired"; events no rule matched last."""
    out = []
    for r in rules:
        hits = f"{r['hits']:>10,}" if r["hits"] else f"{'never fired':>10}"
        where = f" (line {r['line']})" if r.get("line") else ""
        what = r.get("summary") or r.get("level") or ""
        out.append(f"{hits}  #{r['index']} {what}{where}")
    if no_rule:
        out.append(f"{no_rule:>10,}  no rule matched (level None)")
    return out
