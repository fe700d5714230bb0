"""Profiles: definitions, rendering (every variable combination is valid and lint-clean), goldens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.errors import InputError
from installer.policy.model import LATEST_KNOWN_VERSION, Policy, Rule
from installer.policy.profiles import Profile, Variable, list_profiles, load_profile, parse_sets, render, split_resource
from installer.policy.validate import check, parse
from tests.paths import GOLDEN

REQUIRED = ("minimal", "recommended", "cis", "security", "write-bodies", "all-bodies")
COMMON_VARIABLES = {
    "exclude_namespaces": "list",
    "ignore_users": "list",
    "ignore_groups": "list",
    "extra_metadata_resources": "list",
    "omit_request_received": "bool",
}
PROFILES = [p.name for p in list_profiles()]


# --------------------------------------------------------------------------- definitions


def test_the_required_profiles_exist_in_order() -> None:
    assert tuple(PROFILES[: len(REQUIRED)]) == REQUIRED


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_has_the_common_variables(name: str) -> None:
    profile = load_profile(name)
    types = {v.name: v.type for v in profile.variables}
    for variable, vtype in COMMON_VARIABLES.items():
        assert types.get(variable) == vtype, (name, variable)
    assert profile.description and len(profile.description) < 200
    assert all(v.help for v in profile.variables)
    assert profile.log.maxsize > 0 and profile.log.maxbackup > 0


def test_cis_profile_names_the_benchmark_and_meets_its_log_items() -> None:
    cis = load_profile("cis")
    assert "CIS Kubernetes Benchmark v1.10" in cis.description
    # kube-bench cis-1.10 1.2.17-1.2.19: maxage >= 30, maxbackup >= 10, maxsize >= 100
    assert (cis.log.maxage, cis.log.maxbackup, cis.log.maxsize) == (30, 10, 100)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="unknown profile 'nope'; known profiles: minimal, recommended"):
        load_profile("nope")
    with pytest.raises(InputError, match=r"unknown profile 'recomended' \(did you mean 'recommended'\?\); known"):
        load_profile("recomended")
    with pytest.raises(InputError, match=r"unknown profile 'CIS' \(did you mean 'cis'\?\)"):
        load_profile("CIS")


# --------------------------------------------------------------------------- variables


def test_parse_sets() -> None:
    assert parse_sets(["a=1", "b=x,y", "a=2", "c="]) == {"a": "2", "b": "x,y", "c": ""}
    for bad in ("novalue", "=x", "1a=b"):
        with pytest.raises(InputError, match="expected name=value"):
            parse_sets([bad])


def test_unknown_variable_lists_the_valid_ones() -> None:
    with pytest.raises(InputError) as info:
        render("cis", {"exclude_namespace": "x"})
    message = str(info.value)
    assert "has no variable 'exclude_namespace' (did you mean 'exclude_namespaces'?)" in message
    assert "exclude_namespaces (list" in message and "omit_request_received (bool, default true)" in message


@pytest.mark.parametrize(
    ("sets", "content"),
    [
        ({"omit_request_received": "maybe"}, "expected a boolean"),
        ({"exclude_namespaces": "Bad_NS"}, "'Bad_NS' is not allowed"),
        ({"extra_metadata_resources": "pods/log,Deployments"}, "'Deployments' is not allowed"),
        ({"ignore_users": "a\nb"}, "is not allowed"),
    ],
)
def test_wrong_values_are_refused_with_the_valid_variables(sets: dict[str, str], content: str) -> None:
    with pytest.raises(InputError) as info:
        render("recommended", sets)
    assert content in str(info.value)
    assert "valid variables:" in str(info.value)


def test_lists_are_comma_separated_trimmed_and_deduplicated() -> None:
    rendered = render("minimal", {"exclude_namespaces": " ci, staging ,ci,"})
    assert rendered.variables["exclude_namespaces"] == ("ci", "staging")
    assert 'namespaces: ["ci", "staging"]' in rendered.text


def test_split_resource() -> None:
    assert split_resource("pods") == ("", "pods")
    assert split_resource("pods/log") == ("", "pods/log")
    assert split_resource("deployments.apps/scale") == ("apps", "deployments/scale")
    assert split_resource("leases.coordination.k8s.io") == ("coordination.k8s.io", "leases")


def test_values_cannot_inject_yaml() -> None:
    rendered = render("minimal", {"ignore_users": 'x"] level: RequestResponse #,\u00e9\u2603'})
    report = parse(rendered.text)
    assert report.ok and report.policy is not None
    assert report.policy.rules[0].users == ('x"] level: RequestResponse #', "\u00e9\u2603")


def test_header_names_profile_and_variables() -> None:
    text = render("security", {"ignore_groups": "ops"}).text
    assert text.startswith("# Audit policy rendered by kaudit from profile 'security'.\n")
    assert "#   ignore_groups = ops   (set)\n" in text
    assert "#   body_namespaces = kube-system\n" in text
    assert "--audit-log-maxage=30 --audit-log-maxbackup=10 --audit-log-maxsize=200" in text


def test_a_template_missing_a_variable_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """StrictUndefined: a variable the template uses but the profile does not define fails the render."""
    import installer.policy.profiles as profiles

    (tmp_path / "t.yaml.j2").write_text("rules: {{ not_defined }}\n")
    monkeypatch.setattr(profiles, "templates_dir", lambda: tmp_path)
    profiles._environment.cache_clear()
    fake = Profile("fake", "d", "t.yaml.j2", (), profiles.LogDefaults(1, 1, 1))
    monkeypatch.setattr(profiles, "load_profile", lambda name: fake)
    try:
        with pytest.raises(InputError, match="'not_defined' is undefined"):
            profiles.render("fake")
    finally:
        profiles._environment.cache_clear()


# --------------------------------------------------------------------------- every combination


def _values(variable: Variable) -> st.SearchStrategy[str]:
    if variable.type == "bool":
        return st.sampled_from(["true", "false", "yes", "no", "on", "off", "1", "0", "True"])
    if variable.type == "int":
        return st.integers(0, 10_000).map(str)
    item: st.SearchStrategy[str]
    if variable.name in ("exclude_namespaces", "body_namespaces"):
        item = st.one_of(
            st.sampled_from(["default", "kube-system", "kube-public", "ci", "staging", "0", "a-b"]),
            st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?\Z"),
        )
    elif variable.name == "extra_metadata_resources":
        item = st.sampled_from(
            [
                "secrets",
                "*",
                "pods",
                "pods/log",
                "pods/exec",
                "*.apps",
                "deployments.apps/scale",
                "leases.coordination.k8s.io",
                "events",
                "tokenreviews.authentication.k8s.io",
                "*/status",
            ]
        )
    else:
        item = (
            st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=","), min_size=1)
            .map(str.strip)
            .filter(bool)
        )
        item = st.one_of(st.sampled_from(["system:kube-proxy", "system:nodes", "*", "alice", "system:apiserver"]), item)
    return st.lists(item, max_size=4).map(",".join)


def _assignments(profile: Profile) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional={v.name: _values(v) for v in profile.variables})


@pytest.mark.parametrize("name", PROFILES)
def test_every_variable_combination_renders_a_valid_lint_clean_policy(name: str) -> None:
    profile = load_profile(name)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_assignments(profile))
    def run(sets: dict[str, str]) -> None:
        rendered = render(name, sets)
        for version in ((1, 24), (1, 34), LATEST_KNOWN_VERSION):
            report = check(rendered.text, kubernetes_version=version, own_profile=True)
            assert report.ok, (sets, [str(e) for e in report.errors])
        assert report.policy is not None
        _assert_sensitive_never_recorded_with_bodies(report.policy)
        assert report.policy.rules[-1].is_catch_all

    run()


# An independent, concrete check of first-match evaluation (not the lint's symbolic one): each
# request to the sensitive set, by an ordinary user, gets a level without bodies.
SENSITIVE_REQUESTS = [
    ("", "secrets", "", verb, ns)
    for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
    for ns in ("default", "kube-system", "")
] + [
    ("", "configmaps", "", "update", "kube-system"),
    ("", "configmaps", "", "create", "default"),
    ("authentication.k8s.io", "tokenreviews", "", "create", ""),
    ("", "serviceaccounts", "token", "create", "default"),
    ("", "serviceaccounts", "token", "create", "kube-system"),
]


def _concrete_level(policy: Policy, group: str, resource: str, sub: str, verb: str, ns: str) -> str:
    def matches(rule: Rule) -> bool:
        if rule.users and "alice" not in rule.users:
            return False
        if rule.user_groups and not {"system:authenticated", "devs"} & set(rule.user_groups):
            return False
        if rule.verbs and verb not in rule.verbs:
            return False
        if not (rule.namespaces or rule.resources):
            return not rule.non_resource_urls
        if rule.namespaces and ns not in rule.namespaces:
            return False
        if not rule.resources:
            return True
        full = f"{resource}/{sub}" if sub else resource
        for gr in rule.resources:
            if gr.group != group:
                continue
            if not gr.resources:
                return True
            for res in gr.resources:
                if res in (full, "*") or (sub and res == f"*/{sub}") or res == f"{resource}/*":
                    return True
        return False

    return next((r.level for r in policy.rules if matches(r)), "None")


def _assert_sensitive_never_recorded_with_bodies(policy: Policy) -> None:
    for request in SENSITIVE_REQUESTS:
        assert _concrete_level(policy, *request) in ("None", "Metadata"), request


# --------------------------------------------------------------------------- goldens

GOLDEN_CASES: list[tuple[str, str, dict[str, str]]] = [(name, name, {}) for name in REQUIRED] + [
    (
        "recommended-with-variables",
        "recommended",
        {
            "exclude_namespaces": "ci,staging",
            "ignore_users": "system:serviceaccount:ci:runner",
            "ignore_groups": "loadtest",
            "extra_metadata_resources": "leases.coordination.k8s.io,pods/log",
            "omit_request_received": "false",
        },
    ),
]


@pytest.mark.parametrize(("golden", "name", "sets"), GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_golden(golden: str, name: str, sets: dict[str, str]) -> None:
    """Rendered text is stable; regenerate with KAUDIT_UPDATE_GOLDEN=1 after a deliberate change."""
    path = GOLDEN / f"{golden}.yaml"
    text = render(name, sets).text
    if os.environ.get("KAUDIT_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden {path}: run with KAUDIT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")
    assert check(path.read_bytes(), own_profile=True, strict=(golden == name)).ok
