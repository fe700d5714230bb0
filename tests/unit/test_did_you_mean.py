"""installer.errors.did_you_mean: the one did-you-mean suffix of messages naming an unknown word."""

from __future__ import annotations

from installer.errors import did_you_mean


def test_nearest_choice_is_named() -> None:
    assert did_you_mean("recomended", ["minimal", "recommended", "cis"]) == " (did you mean 'recommended'?)"


def test_other_case_wins() -> None:
    assert did_you_mean("MINIMAL", ["minimum", "minimal"]) == " (did you mean 'minimal'?)"
    assert did_you_mean("SECRETS", ["secrets", "pods"]) == " (did you mean 'secrets'?)"


def test_nothing_near_is_empty() -> None:
    assert did_you_mean("zzzz", ["minimal", "recommended"]) == ""
    assert did_you_mean("x", []) == ""
