"""simulate's memory does not grow with the log (issue 21 item 1): the hours' tables are applied and
dropped as the log moves on, the "top" counters are bounded; none of it changes a figure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from installer.auditlog import reader
from installer.simulate import simulate
from installer.simulate.simulate import Simulation
from tests.unit.simulate.test_simulate import POLICY_META, POLICY_RR, _figures, candidate, event, write


def _report(path: Path, **patches: Any) -> tuple[dict[str, Any], Simulation]:
    sim = Simulation([candidate(POLICY_META, "meta"), candidate(POLICY_RR, "rr")], (1, 36))
    stats = reader.ReadStats()
    sim.read(reader.read_blocks(reader.local_sources([str(path)]), stats))
    return sim.report(stats), sim


def _hours_log(tmp_path: Path) -> Path:
    events = []
    i = 0
    for hour in range(10, 16):
        for minute in range(0, 60, 7):
            for user in ("alice", "bob"):
                i += 1
                events.append(event(i, user=user, uri=f"/api/v1/namespaces/a/pods/p{minute % 3}?limit={i}",
                                    ts=f"2026-05-01T{hour}:{minute:02d}:00.000000Z"))
        if hour == 13:  # late: an event of 11h after 13h began, and one of 10h (its table is gone)
            events.append(event(10_000, ts="2026-05-01T11:59:59.999999Z"))
            events.append(event(10_001, ts="2026-05-01T10:30:00.000000Z"))
    return write(tmp_path / "a.log", *events)


def test_hours_are_folded_as_the_log_moves_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = _hours_log(tmp_path)
    held: list[int] = []
    fold = Simulation._fold

    def watch(self: Simulation, hours: list[str] | None = None) -> None:
        held.append(len(self._tables))
        fold(self, hours)

    monkeypatch.setattr(Simulation, "_fold", watch)
    monkeypatch.setattr(reader, "BLOCK_BYTES", 2048)  # blocks of a couple of events
    folded, _ = _report(log)
    assert max(held) <= 4  # the hour read, the one before it, and the two late events' own
    monkeypatch.setattr(Simulation, "_fold", fold)
    monkeypatch.setattr(simulate, "_MAX_KEYS", 10**9)
    monkeypatch.setattr(Simulation, "_hour", lambda self, hour: self._tables.setdefault(hour, {}))
    whole, _ = _report(log)  # every table held to the end, as before
    assert _figures(folded) == _figures(whole)
    assert folded["candidates"][0]["eventsPerHour"]["2026-05-01T10"] == 19


def test_top_counters_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulate, "_MAX_TOP", 10)
    counter: Counter[tuple[str, str, str]] = Counter({("u", "get", f"r{i}"): i for i in range(30)})
    simulate._prune(counter)
    assert len(counter) == 5 and min(counter.values()) == 25
    assert simulate._top(counter)[0] == {"user": "u", "verb": "get", "resource": "r29", "events": 29}
