"""The audit Policy as kaudit reads it: plain immutable data, shared by validation and lint.

Kept free of YAML and Jinja2 so the lint (`policy_lint`) and the simulator-independent tests
can build policies by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]

LEVELS: tuple[str, ...] = ("None", "Metadata", "Request", "RequestResponse")
STAGES: tuple[str, ...] = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")

# The newest Kubernetes minor whose audit-policy rules kaudit knows. `validate` checks against
# it unless told otherwise; `enable` passes the node's own version.
LATEST_KNOWN_VERSION: tuple[int, int] = (1, 36)
# Only audit.k8s.io/v1 is served from this version on.
V1_ONLY_SINCE: tuple[int, int] = (1, 24)
# `group: "*"` in a rule's resources is accepted (and matches every group) from this version on.
WILDCARD_GROUP_SINCE: tuple[int, int] = (1, 36)

# Every finding's code (`kaudit validate -o json` lists them; docs/output.md). "invalid": the API server
# would refuse the policy (validate.py); the others are the lint's (lint.py), warnings unless said.
CODES = {
    "invalid": "the API server rejects the policy (or the file is not one)",
    "sensitive-bodies": "records bodies of Secrets, ConfigMaps or tokens (refused unless --force)",
    "no-catch-all": "requests matching no rule are not recorded",
    "shadowed-rule": "a rule no request reaches: an earlier rule matches all it matches",
    "request-received-kept": "RequestReceived is not omitted: every request is written twice",
    "literal-star": '"*" in verbs, users, namespaces or userGroups matches only the literal name "*"',
}


@dataclass(frozen=True)
class Finding:
    """One problem found in a policy, placed by its field path (e.g. `rules[3].omitStages[0]`)."""

    path: str
    message: str
    severity: Severity = "error"
    line: int | None = None  # 1-based line in the document, when known
    code: str = "invalid"  # stable: scripts and the --force gate test it, never the wording (CODES)

    def __str__(self) -> str:
        where = self.path or "(document)"
        if self.line is not None:
            where = f"{where} (line {self.line})"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    path: str = ""


@dataclass(frozen=True)
class Rule:
    level: str = ""
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None
    path: str = ""
    line: int | None = None

    @property
    def kind(self) -> Literal["resource", "nonresource", "all"]:
        """Which requests the rule can match, as the API server's `ruleMatches` decides."""
        if self.namespaces or self.resources:
            return "resource"
        if self.non_resource_urls:
            return "nonresource"
        return "all"

    @property
    def is_catch_all(self) -> bool:
        return not (self.users or self.user_groups or self.verbs) and self.kind == "all"

    def describe(self, width: int = 80) -> str:
        """The rule in one short line, for reports that name rules (simulate's rule hits): its level,
        then what it matches, e.g. `Metadata secrets,configmaps`, `None users=system:apiserver`,
        `None groups=system:nodes verbs=get,update leases.coordination.k8s.io`, `Metadata (every
        request)`; long lists shortened (`a,b,c,+4`), the whole cut at `width` with an ellipsis."""
        def few(values: tuple[str, ...] | list[str], n: int) -> str:
            return ",".join(values[:n]) + (f",+{len(values) - n}" if len(values) > n else "")

        parts = [self.level or "(no level)"]
        for key, values in (("users", self.users), ("groups", self.user_groups), ("verbs", self.verbs),
                            ("namespaces", self.namespaces)):
            if values:
                parts.append(f"{key}={few(values, 5 if key == 'verbs' else 1)}")
        resources: list[str] = []
        for gr in self.resources:
            suffix = f".{gr.group}" if gr.group else ""
            names = f"[{','.join(gr.resource_names)}]" if gr.resource_names else ""
            if gr.resources:
                resources.extend(f"{r}{suffix}{names}" for r in gr.resources)
            else:
                resources.append(f"*{suffix}" if gr.group else "*(core)")
        if resources:
            parts.append(few(resources, 3))
        if self.non_resource_urls:
            parts.append(few(self.non_resource_urls, 3))
        if len(parts) == 1:
            parts.append("(every request)")
        if self.omit_stages:
            parts.append(f"omitStages={','.join(self.omit_stages)}")
        text = " ".join(parts)
        return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Policy:
    api_version: str = "audit.k8s.io/v1"
    kind: str = "Policy"
    rules: tuple[Rule, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False
    name: str = ""


@dataclass
class PolicyReport:
    """What `check` found: errors make the policy unusable, warnings are worth a look."""

    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    policy: Policy | None = None

    @property
    def ok(self) -> bool:
        return not self.errors
