"""The policy source: one value for enable, switch, render and export, with the --force rule in one place."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from installer.errors import InputError
from installer.policy import source
from installer.policy.source import Checks, PolicySource

SECRET_BODIES = """apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
"""


def test_profile_is_rendered_once_with_its_variables_and_log_defaults() -> None:
    s = PolicySource.from_options(profile="cis", sets=["exclude_namespaces=ci,staging"], policy_file=None)
    assert s.profile == "cis" and s.sets == (("exclude_namespaces", "ci,staging"),)
    assert "staging" in s.text
    assert "kind: Policy" in s.text and s.log_defaults[0] > 0
    assert s.args()[:2] == ["--profile", "cis"] and "--set" in s.args()
    assert s.label == "profile cis"


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"profile": None, "sets": [], "policy_file": None}, "give exactly one of --profile or --policy-file"),
    ({"profile": "cis", "sets": [], "policy_file": "p.yaml"}, "give exactly one of --profile or --policy-file"),
    ({"profile": None, "sets": ["a=b"], "policy_file": "p.yaml"}, "--set applies to profiles"),
    ({"profile": "no-such-profile", "sets": [], "policy_file": None}, "no-such-profile"),
    ({"profile": None, "sets": [], "policy_file": "/nonexistent/p.yaml"}, "cannot read --policy-file /nonexistent"),
])
def test_bad_options_are_one_input_error(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(InputError, match=None) as err:
        PolicySource.from_options(**kwargs)  # type: ignore[arg-type]
    assert says in err.value.message and "\n" not in err.value.message


def test_secret_bodies_need_force_and_warnings_are_values(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(SECRET_BODIES)
    plain = PolicySource.from_options(profile=None, sets=[], policy_file=str(path))
    with pytest.raises(InputError, match=r"would record bodies of Secrets or tokens.*pass --force"):
        source.check(plain, (1, 34))
    forced = PolicySource.from_options(profile=None, sets=[], policy_file=str(path), force=True)
    checked = source.check(forced, (1, 34))
    assert checked.text == SECRET_BODIES and checked.log_defaults == source.FILE_LOG_DEFAULTS
    assert checked.warnings and all(w.startswith(f"{path}: warning: ") for w in checked.warnings)
    assert len(set(checked.warnings)) == len(checked.warnings)


def test_an_invalid_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    with pytest.raises(InputError, match=f"{path} is not a valid audit policy"):
        source.check(PolicySource.from_options(profile=None, sets=[], policy_file=str(path)), None)


def test_checks_are_shared_by_threads_and_run_once_per_version(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int] | None] = []
    real = source.check

    def counting(s: PolicySource, version: tuple[int, int] | None) -> source.CheckedPolicy:
        calls.append(version)
        return real(s, version)

    monkeypatch.setattr(source, "check", counting)
    checks = Checks(PolicySource.of_profile("minimal"))
    results: list[source.CheckedPolicy] = []
    threads = [threading.Thread(target=lambda v=v: results.append(checks(v))) for v in [(1, 30), (1, 34)] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == [(1, 30), (1, 34)] and len(results) == 8


POLICIES = {
    "secret bodies": SECRET_BODIES,
    "secret bodies after a Metadata rule for them": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
    "- level: Metadata\n  resources: [{resources: [secrets, configmaps, serviceaccounts/token]},"
    " {group: authentication.k8s.io, resources: [tokenreviews]}]\n- level: RequestResponse\n",
    "no catch-all": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verbs: [get]\n",
    "invalid": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n",
}


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("force", [False, True])
def test_validate_gives_the_verdict_enable_gives(tmp_path: Path, name: str, force: bool) -> None:
    """Issue 24 item 7: `kaudit validate` passed a policy recording Secret bodies that `enable
    --policy-file` refused. Both take the --force rule from source.refusals."""
    from installer.policy.validate import check

    path = tmp_path / "p.yaml"
    path.write_text(POLICIES[name])
    try:
        source.check(PolicySource.from_options(profile=None, sets=[], policy_file=str(path), force=force), (1, 34))
        enable_accepts = True
    except InputError:
        enable_accepts = False
    report = source.with_force_rule(check(POLICIES[name], kubernetes_version=(1, 34)), force)
    assert report.ok == enable_accepts
    assert enable_accepts == (name != "invalid" and (force or name != "secret bodies"))
