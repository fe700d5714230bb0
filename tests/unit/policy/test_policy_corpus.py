"""Every corpus policy against what the real Kubernetes 1.34 loader did with it.

- ERROR (the API server refused it): kaudit refuses it too, with a message about the same cause.
- ACCEPTED_WITH_WARNING (the API server dropped an unknown field and went on): kaudit refuses it,
  naming the dropped field, because the rule no longer means what its author wrote.
- OK: kaudit accepts it (lint findings are warnings, never errors, for user files).

Deliberate disagreement: only the ACCEPTED_WITH_WARNING files, by design (docs/design.md section 4,
"Stricter than the API server").
"""

from __future__ import annotations

import csv
import re

import pytest

from installer.policy.validate import check
from tests.corpus_files import CORPUS

VERDICTS = CORPUS / "policy-verdicts.tsv"



def _rows() -> list[tuple[str, str, str]]:
    if not VERDICTS.is_file():
        return []
    with VERDICTS.open(newline="", encoding="utf-8") as handle:
        return [(r["file"], r["real_loader_1.34"], r["message"]) for r in csv.DictReader(handle, delimiter="\t")]


ROWS = _rows()


def _expected_content(real_message: str) -> str:
    """What kaudit's message must mention, from the real loader's message."""
    if 'no kind "Policy" is registered for version' in real_message:
        return "removed in Kubernetes 1.24"
    if "failed decoding: yaml:" in real_message or "couldn't get version/kind" in real_message:
        return "not valid YAML"
    if 'Invalid value: "*"' in real_message:
        return 'group "*" is accepted only from Kubernetes 1.36'
    if "cannot unmarshal string" in real_message:
        return "expected a list, found a string"
    raise AssertionError(f"no expectation for {real_message!r}")


@pytest.mark.parametrize(("file", "verdict", "message"), ROWS, ids=[r[0].split("/")[-1][:3] for r in ROWS])
def test_corpus_policy_matches_the_real_loader(file: str, verdict: str, message: str) -> None:
    report = check((CORPUS / file).read_bytes(), kubernetes_version=(1, 34))
    text = "\n".join(str(e) for e in report.errors)
    if verdict == "OK":
        assert report.ok, text
        assert all(w.severity == "warning" for w in report.warnings)
    elif verdict == "ERROR":
        assert not report.ok
        assert _expected_content(message) in text, text
    elif verdict == "ACCEPTED_WITH_WARNING":
        dropped = re.search(r'unknown field "([^"]+)"', message)
        assert dropped, message
        assert not report.ok
        # the same field path as the API server's warning, said to be dropped
        matching = [e for e in report.errors if e.path == dropped.group(1)]
        assert matching, text
        assert "unknown field" in matching[0].message and "drop" in matching[0].message
    else:
        raise AssertionError(verdict)


def test_corpus_agreement_figures() -> None:
    """The closing note's numbers: refused/accepted per real verdict."""
    counts: dict[str, list[int]] = {}
    for file, verdict, _ in ROWS:
        ok = check((CORPUS / file).read_bytes(), kubernetes_version=(1, 34)).ok
        agree = ok if verdict == "OK" else not ok
        counts.setdefault(verdict, [0, 0])[0 if agree else 1] += 1
    assert len(ROWS) == 67
    assert counts == {"OK": [44, 0], "ERROR": [14, 0], "ACCEPTED_WITH_WARNING": [9, 0]}
