"""Where things are, for tests anywhere under tests/ (they mirror the package, so `__file__` depths vary)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAKES = TESTS / "fakes"
GOLDEN = TESTS / "golden"
