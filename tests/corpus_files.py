"""The shared corpus (real audit policies and kube-apiserver manifests from public projects), vendored
verbatim under tests/corpus/ so the suite runs anywhere; see tests/corpus/README.md for provenance."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFESTS = CORPUS / "manifests"
POLICIES = CORPUS / "policies"
