"""Validation with the API server's rules (stricter where it is lax), lint, log budget, upgrade."""

from __future__ import annotations

import textwrap

import pytest

from installer.policy.model import LATEST_KNOWN_VERSION, Finding, PolicyReport
from installer.policy.validate import check, log_budget, parse, parse_version, upgrade

HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"


def doc(body: str, head: str = HEAD) -> str:
    return head + textwrap.dedent(body).lstrip("\n")


def errors(report: PolicyReport) -> dict[str, Finding]:
    return {e.path: e for e in report.errors}


def warnings(report: PolicyReport) -> dict[str, Finding]:
    return {w.path: w for w in report.warnings}


# --------------------------------------------------------------------------- accepted


def test_a_minimal_policy_is_valid_without_findings() -> None:
    report = check(doc("rules:\n- level: Metadata\n"))
    assert report.ok and not report.warnings
    assert report.policy is not None and len(report.policy.rules) == 1


def test_bytes_with_bom_and_crlf_are_read() -> None:
    report = check(("\ufeff" + doc("rules:\n- level: Metadata\n")).replace("\n", "\r\n").encode())
    assert report.ok, report.errors


def test_default_version_is_the_latest_known() -> None:
    assert LATEST_KNOWN_VERSION >= (1, 36)
    assert check(doc('rules:\n- level: Metadata\n  resources: [{group: "*"}]\n')).ok


# --------------------------------------------------------------------------- document shape


@pytest.mark.parametrize(
    ("text", "path", "content"),
    [
        ("kind: Policy\nrules: [{level: Metadata}]\n", "apiVersion", "apiVersion is missing"),
        ("apiVersion: audit.k8s.io/v2\nkind: Policy\nrules: [{level: Metadata}]\n", "apiVersion", "unknown apiVersion"),
        ("apiVersion: audit.k8s.io/v1\nrules: [{level: Metadata}]\n", "kind", "kind is missing"),
        ("apiVersion: audit.k8s.io/v1\nkind: Pod\nrules: [{level: Metadata}]\n", "kind", "must be Policy"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\n", "rules", "at least one rule"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "rules", "at least one rule"),
        ("- level: Metadata\n", "", "expected the Policy (a mapping), found a list"),
        ("# only a comment\n", "", "empty"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  verbs: [get\n", "", "not valid YAML"),
    ],
)
def test_document_errors(text: str, path: str, content: str) -> None:
    report = check(text)
    assert not report.ok
    assert path in errors(report), report.errors
    assert content in errors(report)[path].message


def test_removed_api_versions_point_to_upgrade() -> None:
    report = check(doc("rules:\n- level: Metadata\n", head="apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n"))
    message = errors(report)["apiVersion"].message
    assert "removed in Kubernetes 1.24" in message and "--upgrade" in message
    # before 1.24 the API server still served v1beta1
    assert check(
        doc("rules:\n- level: Metadata\n", head="apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n"),
        kubernetes_version=(1, 23),
    ).ok


def test_several_documents_are_refused() -> None:
    report = check(doc("rules:\n- level: Metadata\n") + "---\n" + doc("rules:\n- level: None\n"))
    assert "YAML documents" in report.errors[0].message
    assert report.errors[0].line == 7


# --------------------------------------------------------------------------- strict decoding


def test_unknown_field_is_an_error_naming_the_dropped_field() -> None:
    report = check(doc("rules:\n- level: None\n  resource: [secrets]\n- level: Metadata\n"))
    finding = errors(report)["rules[0].resource"]
    assert 'unknown field "resource"' in finding.message
    assert "matches every resource" in finding.message
    assert finding.line == 6
    assert str(finding).startswith("rules[0].resource (line 6): ")


def test_verbs_inside_a_resources_entry_is_explained() -> None:
    report = check(doc("rules:\n- level: Request\n  resources:\n  - group: ''\n    verbs: [get]\n"))
    message = errors(report)["rules[0].resources[0].verbs"].message
    assert "belongs to the rule" in message and "every verb" in message


def test_unknown_field_suggests_the_close_name() -> None:
    report = check(doc("rules:\n- level: Metadata\n  userGroup: [a]\n"))
    assert 'did you mean "userGroups"' in errors(report)["rules[0].userGroup"].message


def test_duplicate_fields_are_errors_with_the_first_place() -> None:
    report = check(doc("rules:\n- level: None\n  verbs: [get]\n  verbs: [create]\n- level: Metadata\n"))
    finding = errors(report)["rules[0].verbs"]
    assert 'duplicate field "verbs" (first at line 6)' in finding.message
    assert finding.line == 7


def test_metadata_fields_are_checked() -> None:
    assert check(doc("metadata:\n  name: p\n  creationTimestamp: null\nrules:\n- level: Metadata\n")).ok
    report = check(doc("metadata:\n  nmae: p\nrules:\n- level: Metadata\n"))
    assert "metadata.nmae" in errors(report)


def test_merge_keys_are_expanded_like_go_yaml() -> None:
    text = doc("""
        rules:
        - &base
          level: Metadata
          verbs: [get]
        - <<: *base
          level: None
        - level: Metadata
        """)
    report = parse(text)
    assert report.ok, report.errors
    assert report.policy is not None
    assert [r.level for r in report.policy.rules] == ["Metadata", "None", "Metadata"]
    assert report.policy.rules[1].verbs == ("get",)


# --------------------------------------------------------------------------- YAML 1.1 scalars and types


def test_yaml_1_1_booleans_are_not_strings() -> None:
    report = check(doc("rules:\n- level: Metadata\n  verbs: [get, on]\n"))
    finding = errors(report)["rules[0].verbs[1]"]
    assert "expected a string, found a boolean ('on')" in finding.message
    assert 'quote it, "on"' in finding.message


def test_yaml_1_1_booleans_fill_bool_fields() -> None:
    report = parse(doc("omitManagedFields: yes\nrules:\n- level: Metadata\n  omitManagedFields: off\n"))
    assert report.ok, report.errors
    assert report.policy is not None
    assert report.policy.omit_managed_fields is True
    assert report.policy.rules[0].omit_managed_fields is False


def test_octal_looking_namespace_is_a_number() -> None:
    report = check(doc("rules:\n- level: None\n  namespaces: [0777]\n- level: Metadata\n"))
    assert "expected a string, found a number ('0777')" in errors(report)["rules[0].namespaces[0]"].message


@pytest.mark.parametrize(
    ("body", "path", "content"),
    [
        (
            "rules:\n- level: Metadata\n  resources: ${known_apis}\n",
            "rules[0].resources",
            "expected a list, found a string",
        ),
        ("rules:\n- level: Metadata\n  verbs: get\n", "rules[0].verbs", "expected a list"),
        ("rules: {level: Metadata}\n", "rules", "expected a list, found a mapping"),
        ("rules:\n- Metadata\n", "rules[0]", "expected a rule (a mapping)"),
        (
            "rules:\n- level: Metadata\n  omitManagedFields: 'true'\n",
            "rules[0].omitManagedFields",
            "expected a boolean",
        ),
        ("rules:\n- level: 1\n", "rules[0].level", "expected a string, found a number"),
    ],
)
def test_wrong_types(body: str, path: str, content: str) -> None:
    report = check(doc(body))
    assert content in errors(report)[path].message, report.errors


def test_null_values_decode_as_empty_like_the_api_server() -> None:
    report = parse(doc("rules:\n- level: Metadata\n  verbs:\n  users: ~\n"))
    assert report.ok, report.errors


# --------------------------------------------------------------------------- API-server rules


def test_every_error_is_listed_with_its_place() -> None:
    text = doc(
        """
        omitStages: [RequestRecieved]
        rules:
        - level: Metadta
          omitStages: [ResponseStarted, Done]
        - verbs: [get]
        - level: None
          nonResourceURLs: [healthz, "/he*lth", "*", "/ok*"]
          namespaces: [default]
        - level: Metadata
          resources:
          - group: rbac.authorization.k8s.io/v1
          - group: Apps
          - group: ""
            resourceNames: [x]
        """,
        head="apiVersion: audit.k8s.io/v1\nkind: Policy\n",
    )
    found = errors(check(text))
    assert 'did you mean "RequestReceived"' in found["omitStages[0]"].message
    assert 'did you mean "Metadata"' in found["rules[0].level"].message
    assert "allowed stages are" in found["rules[0].omitStages[1]"].message
    assert "level is required" in found["rules[1].level"].message
    assert "must be * or begin with '/'" in found["rules[2].nonResourceURLs[0]"].message
    assert "only be the last character" in found["rules[2].nonResourceURLs[1]"].message
    assert "rules[2].nonResourceURLs[2]" not in found and "rules[2].nonResourceURLs[3]" not in found
    assert "both non-resource URLs and resources or namespaces" in found["rules[2].nonResourceURLs"].message
    assert "a group has no version: 'rbac.authorization.k8s.io'" in found["rules[3].resources[0].group"].message
    assert "DNS-1123" in found["rules[3].resources[1].group"].message
    assert "needs at least one resource" in found["rules[3].resources[2].resourceNames"].message
    assert all(f.line for f in found.values())
    assert len(found) == 10


def test_wildcard_group_depends_on_the_version() -> None:
    text = doc('rules:\n- level: Metadata\n  resources:\n  - group: "*"\n    resources: [secrets]\n')
    report = check(text, kubernetes_version=(1, 35))
    message = errors(report)["rules[0].resources[0].group"].message
    assert 'group "*" is accepted only from Kubernetes 1.36' in message and "1.35" in message
    assert check(text, kubernetes_version=(1, 36)).ok


# --------------------------------------------------------------------------- lint


SENSITIVE_META = """
- level: Metadata
  resources:
  - group: ""
    resources: [secrets, configmaps, serviceaccounts/token]
  - group: authentication.k8s.io
    resources: [tokenreviews]
"""


@pytest.mark.parametrize(
    ("rule", "what"),
    [
        ("- level: RequestResponse\n  resources: [{group: '', resources: [secrets]}]\n", "secrets"),
        ("- level: Request\n  resources: [{group: '', resources: ['*']}]\n", "secrets"),
        ("- level: Request\n  resources: [{group: ''}]\n", "configmaps"),
        (
            "- level: RequestResponse\n  resources: [{group: '', resources: ['serviceaccounts/*']}]\n",
            "serviceaccounts/token",
        ),
        ("- level: RequestResponse\n  resources: [{group: '', resources: ['*/token']}]\n", "serviceaccounts/token"),
        ("- level: Request\n  namespaces: ['']\n", "tokenreviews"),
        ("- level: Request\n  users: [admin]\n", "secrets"),
        ("- level: RequestResponse\n  verbs: [get]\n", "secrets: response bodies of get"),
        ("- level: Request\n", "tokenreviews (the request carries a token): request bodies of create"),
    ],
)
def test_sensitive_bodies_are_found_through_every_route(rule: str, what: str) -> None:
    text = doc("rules:\n" + rule + "- level: Metadata\n")
    report = check(text)
    assert report.ok  # a warning for user files
    finding = warnings(report)["rules[0].level"]
    assert what in finding.message
    own = check(text, own_profile=True)
    assert not own.ok and "rules[0].level" in errors(own)


def test_wildcard_group_reaches_the_sensitive_set_from_1_36() -> None:
    text = doc('rules:\n- level: Request\n  resources: [{group: "*", resources: [secrets]}]\n- level: Metadata\n')
    assert "secrets" in warnings(check(text, kubernetes_version=(1, 36)))["rules[0].level"].message


@pytest.mark.parametrize(
    "rule",
    [
        "- level: RequestResponse\n  resources: [{group: '', resources: [pods]}]\n",
        "- level: Request\n  verbs: [get, list, watch]\n",  # reads carry no request body
        "- level: Request\n  verbs: [deletecollection]\n",
        "- level: RequestResponse\n  resources: [{group: apps}]\n",
        "- level: RequestResponse\n  nonResourceURLs: ['*']\n",
        "- level: Request\n  resources: [{group: '', resources: [serviceaccounts/token]}]\n",  # token: response
        "- level: Request\n  namespaces: [default]\n  resources: [{group: authentication.k8s.io}]\n",  # cluster-scoped
    ],
)
def test_rules_that_record_no_sensitive_body(rule: str) -> None:
    report = check(doc("rules:\n" + rule + "- level: Metadata\n"), own_profile=True)
    assert report.ok, report.errors


def test_an_earlier_metadata_rule_protects_later_body_rules() -> None:
    report = check(doc("rules:" + SENSITIVE_META + "- level: RequestResponse\n"), own_profile=True)
    assert report.ok, report.errors


def test_an_earlier_partial_rule_does_not_protect() -> None:
    text = doc(
        "rules:\n- level: Metadata\n  users: [alice]\n  resources: [{group: '', resources: [secrets]}]\n"
        "- level: RequestResponse\n"
    )
    assert "secrets" in errors(check(text, own_profile=True))["rules[1].level"].message


def test_missing_catch_all_is_a_warning() -> None:
    report = check(doc("rules:\n- level: Metadata\n  verbs: [get]\n"))
    assert report.ok
    assert "requests matching no rule are not recorded" in warnings(report)["rules"].message


def test_shadowed_rule_is_a_warning() -> None:
    text = doc("""
        rules:
        - level: None
          resources: [{group: "", resources: [events]}]
        - level: Metadata
          users: [bob]
          verbs: [get]
          resources: [{group: "", resources: [events, pods]}]
        - level: Request
          users: [bob]
          resources: [{group: ""}]
        - level: RequestResponse
          users: [bob]
          verbs: [get]
          namespaces: [default]
          resources: [{group: "", resources: [pods/log], resourceNames: [x]}]
        - level: Metadata
        - level: Request
          verbs: [create]
        """)
    found = warnings(check(text))
    assert "rules[1]" not in found  # only partly covered (pods)
    assert "never used: rules[2] comes first" in found["rules[3]"].message
    assert "never used: rules[4] comes first" in found["rules[5]"].message


def test_request_received_not_omitted_is_a_warning() -> None:
    text = doc("rules:\n- level: Metadata\n", head="apiVersion: audit.k8s.io/v1\nkind: Policy\n")
    assert "RequestReceived stage is not omitted" in warnings(check(text))["omitStages"].message
    per_rule = doc(
        "rules:\n- level: None\n- level: Metadata\n  omitStages: [RequestReceived]\n",
        head="apiVersion: audit.k8s.io/v1\nkind: Policy\n",
    )
    assert "omitStages" not in warnings(check(per_rule))


def test_star_is_literal_in_verbs() -> None:
    report = check(doc("rules:\n- level: Metadata\n  verbs: ['*']\n- level: Metadata\n"))
    assert "not a wildcard in verbs" in warnings(report)["rules[0].verbs"].message


def test_strict_turns_warnings_into_errors() -> None:
    text = doc("rules:\n- level: Metadata\n  verbs: [get]\n")
    report = check(text, strict=True)
    assert not report.ok and not report.warnings
    assert "refused by --strict" in errors(report)["rules"].message


# --------------------------------------------------------------------------- budget, upgrade, versions


def test_log_budget() -> None:
    assert "up to 1.1 GB" in log_budget(100, 10, (1, 34))
    assert "11 files" in log_budget(100, 10, (1, 34))
    assert "keeps every rotated file" in log_budget(100, 0, (1, 34))
    assert "100 MB before Kubernetes 1.36" in log_budget(0, 10, (1, 35))
    assert "up to 1.1 GB" in log_budget(0, 10, (1, 35))
    assert "no rotation" in log_budget(0, 10, (1, 36))
    assert "up to 200 MB" in log_budget(100, 1, (1, 36))


def test_upgrade_rewrites_only_the_api_version() -> None:
    text = "# keep me\napiVersion: audit.k8s.io/v1beta1 # old\nkind: Policy\nrules:\n- level: Metadata\n"
    upgraded = upgrade(text)
    assert upgraded == text.replace("v1beta1", "v1")
    assert check(upgraded).ok
    with pytest.raises(ValueError, match="nothing to upgrade"):
        upgrade(upgraded)


@pytest.mark.parametrize(("text", "expected"), [("1.34", (1, 34)), ("v1.30.2", (1, 30)), ("1.29.0-gke.1", (1, 29))])
def test_parse_version(text: str, expected: tuple[int, int]) -> None:
    assert parse_version(text) == expected


def test_parse_version_refuses_junk() -> None:
    with pytest.raises(ValueError, match=r"X\.Y"):
        parse_version("latest")


def test_a_rule_describes_itself_in_one_short_line() -> None:
    """What simulate shows beside each rule's hits (issue 24: rule hits were bare indexes)."""
    report = parse(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "- level: Metadata\n  resources: [{resources: [secrets, configmaps]}]\n"
        "- level: None\n  userGroups: [system:nodes]\n  verbs: [get, update]\n"
        "  resources: [{group: coordination.k8s.io, resources: [leases]}]\n"
        "- level: None\n  users: [a, b, c]\n  nonResourceURLs: [/healthz*, /livez*, /readyz*, /version]\n"
        "- level: Request\n  namespaces: [kube-system]\n  resources: [{group: apps}, {}]\n"
        "- level: RequestResponse\n  omitStages: [ResponseStarted]\n"
    )
    assert report.policy is not None, report.errors
    assert [r.describe() for r in report.policy.rules] == [
        "Metadata secrets,configmaps",
        "None groups=system:nodes verbs=get,update leases.coordination.k8s.io",
        "None users=a,+2 /healthz*,/livez*,/readyz*,+1",
        "Request namespaces=kube-system *.apps,*(core)",
        "RequestResponse (every request) omitStages=ResponseStarted",
    ]
    assert report.policy.rules[1].describe(width=20) == "None groups=system:…"
