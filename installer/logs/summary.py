"""`kaudit logs --summary`: who and what fills the log, where the errors come from, events per minute,
and the busiest (user, verb, resource) groups — what to drop from a noisy policy, with the
`kaudit simulate` command that checks such a change before it is made."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from installer.auditlog.match import event_time, short_user, status_code
from installer.auditlog.reader import Event

TOP = 10
BARS = " ▁▂▃▄▅▆▇█"
WIDTH = 60


class _Source(msgspec.Struct):
    sourceIPs: tuple[str, ...] = ()


_SOURCE = msgspec.json.Decoder(_Source)


def _resource(ev: Event) -> str:
    ref = ev.objectRef
    if ref is None or not ref.resource:
        return ev.requestURI.split("?", 1)[0]
    text = ref.resource + (f".{ref.apiGroup}" if ref.apiGroup else "")
    return text + (f"/{ref.subresource}" if ref.subresource else "")


class Summary:
    def __init__(self) -> None:
        self.events = 0
        self.bytes = 0
        self.users: Counter[str] = Counter()
        self.verbs: Counter[str] = Counter()
        self.resources: Counter[str] = Counter()
        self.groups: Counter[tuple[str, str, str]] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()  # (class, user, source IP)
        self.minutes: Counter[str] = Counter()
        self.first = ""
        self.last = ""

    def add(self, ev: Event, raw: bytes) -> None:
        self.events += 1
        self.bytes += len(raw) + 1
        user = ev.user.username if ev.user and ev.user.username else "(unauthenticated)"
        res = _resource(ev)
        self.users[user] += 1
        self.verbs[ev.verb] += 1
        self.resources[res] += 1
        self.groups[(user, ev.verb, res)] += 1
        t = event_time(ev)
        if t:
            self.minutes[t[:16]] += 1
            if not self.first or t < self.first:
                self.first = t
            if t > self.last:
                self.last = t
        code = status_code(ev)
        if code >= 400:
            try:
                ips = _SOURCE.decode(raw).sourceIPs
            except (msgspec.DecodeError, msgspec.ValidationError):
                ips = ()
            self.errors[(f"{code // 100}xx", user, ips[0] if ips else "-")] += 1

    def per_minute(self) -> list[tuple[str, int]]:
        """Every minute from the first to the last, zeros included."""
        if not self.minutes:
            return []
        from datetime import datetime, timedelta

        start = datetime.strptime(min(self.minutes), "%Y-%m-%dT%H:%M")
        end = datetime.strptime(max(self.minutes), "%Y-%m-%dT%H:%M")
        out: list[tuple[str, int]] = []
        t = start
        while t <= end and len(out) < 100_000:
            key = t.strftime("%Y-%m-%dT%H:%M")
            out.append((key, self.minutes.get(key, 0)))
            t += timedelta(minutes=1)
        return out

    def to_json(self, targets: list[str]) -> dict[str, Any]:
        def top(c: Counter[str]) -> list[dict[str, Any]]:
            return [{"name": k, "events": n} for k, n in c.most_common(TOP)]

        target = " ".join(targets)
        busiest = []
        for (user, verb, res), n in self.groups.most_common(TOP):
            busiest.append({"user": user, "verb": verb, "resource": res, "events": n,
                            "share": round(n / self.events, 4) if self.events else 0.0})
        return {
            "events": self.events, "bytes": self.bytes, "first": self.first or None, "last": self.last or None,
            "users": top(self.users), "verbs": top(self.verbs), "resources": top(self.resources),
            "errors": [{"class": c, "user": u, "sourceIP": ip, "events": n}
                       for (c, u, ip), n in self.errors.most_common(TOP)],
            "perMinute": [{"minute": m, "events": n} for m, n in self.per_minute()],
            "busiest": busiest,
            "simulate": f"kaudit simulate {target} --policy-file CANDIDATE.yaml -p recommended",
        }


def sparkline(values: list[int], width: int = WIDTH) -> str:
    if not values:
        return ""
    if len(values) > width:  # fold into `width` columns
        step = len(values) / width
        values = [sum(values[int(i * step):int((i + 1) * step)]) for i in range(width)]
    peak = max(values) or 1
    return "".join(BARS[min(8, -(-v * 8 // peak))] for v in values)


def render_text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['events']} events, {doc['bytes']} bytes, {doc['first'] or '-'} .. {doc['last'] or '-'}", ""]

    def table(title: str, rows: list[dict[str, Any]]) -> None:
        lines.append(title)
        if not rows:
            lines.append("  -")
        for r in rows:
            lines.append(f"  {r['events']:>8}  {short_user(r['name']) if title == 'top users' else r['name']}")
        lines.append("")

    table("top users", doc["users"])
    table("top verbs", doc["verbs"])
    table("top resources", doc["resources"])
    lines.append("4xx/5xx sources")
    if not doc["errors"]:
        lines.append("  -")
    for e in doc["errors"]:
        lines.append(f"  {e['events']:>8}  {e['class']}  {short_user(e['user'])}  from {e['sourceIP']}")
    lines.append("")
    per = doc["perMinute"]
    if per:
        values = [p["events"] for p in per]
        lines.append(f"events per minute (peak {max(values)}, {len(values)} min)")
        lines.append(f"  {sparkline(values)}")
        lines.append(f"  {per[0]['minute']}Z .. {per[-1]['minute']}Z")
        lines.append("")
    lines.append("busiest (user, verb, resource)")
    for b in doc["busiest"]:
        lines.append(f"  {b['events']:>8}  {b['share'] * 100:5.1f}%  {short_user(b['user'])}  {b['verb']}  "
                     f"{b['resource']}")
    lines.append("")
    lines.append("To record less of a noisy group, add a `level: None` rule for it ahead of the others in a policy "
                 "file, and check what it changes first:")
    lines.append(f"  {doc['simulate']}")
    return "\n".join(lines) + "\n"
