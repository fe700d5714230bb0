"""A mistyped profile or `--set` variable name gets one line naming the nearest one, in every command that
resolves profiles (issue 24: "no did-you-mean for profile and variable names"), from the user's install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kaudit_cli import kaudit


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("log") / "audit.log"
    path.write_text(json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a", "stage":
        "ResponseComplete", "requestURI": "/api/v1/namespaces/a/pods/p", "verb": "get",
        "user": {"username": "alice"}, "stageTimestamp": "2026-05-01T10:00:00.000000Z",
        "requestReceivedTimestamp": "2026-05-01T10:00:00.000000Z"}) + "\n")
    return path


PROFILE = "unknown profile 'recomended' (did you mean 'recommended'?); known profiles: minimal, recommended"
VARIABLE = "no variable 'exclude_namespace' (did you mean 'exclude_namespaces'?)"


@pytest.mark.parametrize(("args", "says"), [
    (["render", "recomended"], PROFILE),
    (["export", "--profile", "recomended", "--format", "kubeadm"], PROFILE),
    (["enable", "local://", "--profile", "recomended", "--dry-run"], PROFILE),
    (["switch", "local://", "--profile", "recomended", "--dry-run"], PROFILE),
    (["simulate", "{log}", "-p", "recomended"], PROFILE),
    (["render", "recommended", "--set", "exclude_namespace=ci"], VARIABLE),
    (["export", "-p", "cis", "--format", "kubeadm", "--set", "exclude_namespace=ci"], VARIABLE),
    (["simulate", "{log}", "-p", "recommended", "--set", "exclude_namespace=ci"],
     "no --profile candidate has a variable 'exclude_namespace' (did you mean 'exclude_namespaces'?)"),
    (["simulate", "{log}", "-p", "recommended", "--set", "recommended.exclude_namespace=ci"], VARIABLE),
    (["simulate", "{log}", "-p", "recommended", "--set", "recomended.exclude_namespaces=ci"],
     "'recomended' is not one of the --profile candidates (did you mean 'recommended'?)"),
])
def test_a_mistyped_name_gets_the_nearest_one(log: Path, args: list[str], says: str) -> None:
    run = kaudit(*(a.replace("{log}", str(log)) for a in args))
    assert run.code == 2, (run.out, run.err)
    assert says in run.err, run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err, run.err
