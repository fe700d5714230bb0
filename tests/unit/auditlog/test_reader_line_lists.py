"""read_blocks on a plain file reads line lists in C (`reader._file_line_lists`): a line longer than
MAX_LINE is cut there and the rest of it dropped as it is read, so memory stays bounded (issue 21 item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.auditlog import reader
from tests import auditgen


@pytest.mark.parametrize("long_at", [0, 3, 9])
@pytest.mark.parametrize("block_bytes", [4096, 1 << 20])
def test_a_huge_line_is_cut_and_the_rest_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, long_at: int,
                                              block_bytes: int) -> None:
    monkeypatch.setattr(reader, "MAX_LINE", 5000)
    monkeypatch.setattr(reader, "BLOCK_BYTES", block_bytes)
    lines = list(auditgen.lines(40))[:10]
    assert len(lines) == 10 and all(len(line) < 5000 for line in lines)
    lines.insert(long_at, b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","x":"' + b"a" * 9_999 + b'"}\n')
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines))
    stats = reader.ReadStats()
    events = [ev for block in reader.read_blocks(reader.local_sources([str(log)]), stats) for ev in block.events]
    assert len(events) == 10
    assert stats.bad_lines == 1 and stats.bad_where == [f"{log}:{long_at + 1}"]
    assert stats.lines == 11


def test_line_lists_are_for_plain_files_only(tmp_path: Path) -> None:
    import gzip

    data = b"".join(list(auditgen.lines(40))[:5])
    (tmp_path / "a.log").write_bytes(data)
    (tmp_path / "b.log.gz").write_bytes(gzip.compress(data))
    plain = reader._file_line_lists(str(tmp_path / "a.log"))
    assert plain is not None and [len(lines) for lines, _ in plain] == [5]
    assert reader._file_line_lists(str(tmp_path / "b.log.gz")) is None
    stats = reader.ReadStats()
    got = [b.fast for b in reader.read_blocks(reader.local_sources([str(tmp_path)]), stats)]
    assert got == [True, True] and stats.events == 10
