"""The audit Policy: parse, validate with the API server's rules (stricter where it is lax), lint.

Reading follows what kube-apiserver does with `--audit-policy-file`
(`k8s.io/apiserver/pkg/audit/policy/reader.go`): YAML with YAML 1.1 scalars (`on`, `yes`, `no`
are booleans, `0777` is an integer), converted to JSON and decoded into `audit.k8s.io/v1`
types, then `pkg/apis/audit/validation`. Where the real loader only logs a warning and falls
back to lenient decoding (unknown and duplicate fields, which it drops), kaudit reports an
error naming the dropped field: the API server would have silently widened or narrowed a rule.

Everything here is a pure function of the document's bytes and options.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from installer.errors import nearest
from installer.policy.model import (
    LATEST_KNOWN_VERSION,
    LEVELS,
    STAGES,
    V1_ONLY_SINCE,
    WILDCARD_GROUP_SINCE,
    Finding,
    GroupResources,
    Policy,
    PolicyReport,
    Rule,
)

if TYPE_CHECKING:
    from ruamel.yaml.nodes import Node

__all__ = [
    "LATEST_KNOWN_VERSION",
    "Finding",
    "Policy",
    "PolicyReport",
    "check",
    "format_version",
    "log_budget",
    "parse",
    "parse_version",
    "upgrade",
]

API_VERSION = "audit.k8s.io/v1"
REMOVED_API_VERSIONS = ("audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")

_TAG_NAMES = {
    "tag:yaml.org,2002:str": "a string",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a timestamp",
}
_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"


def parse_version(text: str) -> tuple[int, int]:
    """`1.34`, `v1.34.2` or `1.34.0-gke.1` -> (1, 34). ValueError when it is not a version."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", text.strip())
    if not match:
        raise ValueError(f"not a Kubernetes version: {text!r} (expected X.Y, e.g. 1.34)")
    return int(match.group(1)), int(match.group(2))


def format_version(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


# --------------------------------------------------------------------------- YAML reading


def _compose(text: str) -> tuple[list[Node], Finding | None]:
    """YAML 1.1 node trees of every document, or a finding saying where the YAML is broken."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    # A fresh reader each time: a reused one forgets the 1.1 version after its first document.
    yaml = YAML(typ="rt", pure=True)
    yaml.version = (1, 1)  # the API server's go-yaml reads YAML 1.1 scalars
    try:
        docs = [doc for doc in yaml.compose_all(text) if doc is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        return [], Finding("", f"not valid YAML: {what}", "error", line)
    except YAMLError as exc:
        return [], Finding("", f"not valid YAML: {exc}", "error", None)
    return docs, None


def _tag(node: Node) -> str:
    tag = node.tag
    return str(getattr(tag, "value", tag))


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _describe(node: Node) -> str:
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        name = _TAG_NAMES.get(_tag(node), f"a value tagged {_tag(node)}")
        if _tag(node) == _NULL:
            return name
        return f"{name} ({node.value!r})"
    return "an unknown node"


def _join(path: str, child: str) -> str:
    return f"{path}.{child}" if path else child


class _Decoder:
    """Decodes node trees into the model, collecting every problem with its path and line."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def error(self, path: str, message: str, node: Node | None) -> None:
        self.findings.append(Finding(path, message, "error", _line(node) if node is not None else None))

    # --- scalars and lists

    def is_null(self, node: Node) -> bool:
        from ruamel.yaml.nodes import ScalarNode

        return isinstance(node, ScalarNode) and _tag(node) == _NULL

    def string(self, node: Node, path: str) -> str | None:
        from ruamel.yaml.nodes import ScalarNode

        if self.is_null(node):
            return ""  # JSON null into a Go string leaves it empty
        if isinstance(node, ScalarNode) and _tag(node) == _STR:
            return str(node.value)
        hint = ""
        if isinstance(node, ScalarNode) and _tag(node) in (_BOOL, "tag:yaml.org,2002:int"):
            hint = f' (YAML 1.1 reads {node.value} as {_TAG_NAMES[_tag(node)][2:]}: quote it, "{node.value}")'
        self.error(path, f"expected a string, found {_describe(node)}{hint}", node)
        return None

    def boolean(self, node: Node, path: str) -> bool | None:
        from ruamel.yaml.nodes import ScalarNode

        if self.is_null(node):
            return None
        if isinstance(node, ScalarNode) and _tag(node) == _BOOL:
            return str(node.value).lower() in ("true", "yes", "on", "y")
        self.error(path, f"expected a boolean (true or false), found {_describe(node)}", node)
        return None

    def sequence(self, node: Node, path: str) -> list[tuple[Node, str]] | None:
        from ruamel.yaml.nodes import SequenceNode

        if self.is_null(node):
            return []
        if isinstance(node, SequenceNode):
            return [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        self.error(path, f"expected a list, found {_describe(node)}", node)
        return None

    def strings(self, node: Node, path: str) -> tuple[str, ...]:
        items = self.sequence(node, path)
        if items is None:
            return ()
        out = []
        for item, item_path in items:
            value = self.string(item, item_path)
            if value is not None:
                out.append(value)
        return tuple(out)

    # --- mappings

    def mapping(
        self,
        node: Node,
        path: str,
        known: tuple[str, ...],
        *,
        what: str,
        misplaced: dict[str, str] | None = None,
    ) -> dict[str, tuple[Node, str]] | None:
        """Fields of a mapping by name; unknown and duplicate fields are errors."""
        from ruamel.yaml.nodes import MappingNode, ScalarNode

        if self.is_null(node):
            return {}
        if not isinstance(node, MappingNode):
            self.error(path, f"expected {what} (a mapping), found {_describe(node)}", node)
            return None
        fields: dict[str, tuple[Node, str]] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in self._merged_pairs(node, path):
            if isinstance(key_node, ScalarNode) and _tag(key_node) == _STR:
                key = str(key_node.value)
            elif isinstance(key_node, ScalarNode):
                # go-yaml turns a non-string key into its text (`on:` -> "true").
                key = str(key_node.value)
                if _tag(key_node) == _BOOL:
                    key = "true" if key.lower() in ("true", "yes", "on", "y") else "false"
            else:
                self.error(path, f"a key of {what} must be a string, found {_describe(key_node)}", key_node)
                continue
            field_path = _join(path, key)
            if key in fields:
                self.error(
                    field_path,
                    f'duplicate field "{key}" (first at line {first_line[key]}): the API server keeps only '
                    "the last one and ignores the other with a mere warning; remove one",
                    key_node,
                )
                continue
            if key not in known:
                self.error(field_path, self._unknown_message(key, known, what, misplaced), key_node)
                continue
            fields[key] = (value_node, field_path)
            first_line[key] = _line(key_node)
        return fields

    def _merged_pairs(self, node: Node, path: str) -> list[tuple[Node, Node]]:
        """Key/value pairs with YAML merge keys (`<<: *anchor`) expanded as go-yaml does."""
        from ruamel.yaml.nodes import MappingNode, SequenceNode

        own: list[tuple[Node, Node]] = []
        merged: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if _tag(key_node) == _MERGE:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for source in sources:
                    if isinstance(source, MappingNode):
                        merged.extend(self._merged_pairs(source, path))
                    else:
                        self.error(path, "a merge key (<<) must refer to a mapping", key_node)
            else:
                own.append((key_node, value_node))
        own_keys = {str(k.value) for k, _ in own}
        return own + [(k, v) for k, v in merged if str(k.value) not in own_keys]

    @staticmethod
    def _unknown_message(key: str, known: tuple[str, ...], what: str, misplaced: dict[str, str] | None) -> str:
        message = (
            f'unknown field "{key}" in {what}: the API server would drop it with only a warning, '
            "silently changing what this part of the policy matches"
        )
        if misplaced and key in misplaced:
            return f"{message}; {misplaced[key]}"
        close = nearest(key, known)
        if close:
            message += f'; did you mean "{close}"?'
        else:
            message += f"; known fields: {', '.join(known)}"
        return message


_POLICY_FIELDS = ("apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields")
_RULE_FIELDS = (
    "level",
    "users",
    "userGroups",
    "verbs",
    "resources",
    "namespaces",
    "nonResourceURLs",
    "omitStages",
    "omitManagedFields",
)
_GROUP_RESOURCES_FIELDS = ("group", "resources", "resourceNames")
_METADATA_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)
_RULE_FIELD_IN_GROUP = {
    name: f'"{name}" belongs to the rule, not to an entry of its resources list: move it up one level '
    "(as written, the rule matches every " + ("verb" if name == "verbs" else name) + ")"
    for name in ("verbs", "users", "userGroups", "namespaces", "level", "omitStages", "nonResourceURLs")
}
_RULE_FIELD_IN_GROUP["resource"] = 'did you mean "resources"? As written, the entry matches every resource of its group'
_RULE_FIELD_IN_GROUP["resourceName"] = 'did you mean "resourceNames"? As written, the entry matches every name'
_MISPLACED_IN_POLICY = {name: f'"{name}" is a metadata field: indent it under metadata' for name in _METADATA_FIELDS}
_MISPLACED_IN_POLICY["rule"] = 'did you mean "rules"?'
_MISPLACED_IN_POLICY["Rules"] = 'field names are case-sensitive: "rules"'

_MISPLACED_IN_RULE = {
    "resource": 'did you mean "resources"? As written, the rule matches every resource',
    "user": 'did you mean "users"? As written, the rule matches every user',
    "namespace": 'did you mean "namespaces"? As written, the rule matches every namespace',
    "verb": 'did you mean "verbs"? As written, the rule matches every verb',
    "group": '"group" belongs inside an entry of "resources" (resources: [{group: ..., resources: [...]}])',
    "resourceNames": '"resourceNames" belongs inside an entry of "resources", next to its group',
}


def _decode(root: Node, dec: _Decoder) -> Policy | None:
    fields = dec.mapping(root, "", _POLICY_FIELDS, what="the Policy", misplaced=_MISPLACED_IN_POLICY)
    if fields is None:
        return None
    api_version = kind = name = ""
    if "apiVersion" in fields:
        api_version = dec.string(*fields["apiVersion"]) or ""
    if "kind" in fields:
        kind = dec.string(*fields["kind"]) or ""
    if "metadata" in fields:
        meta = dec.mapping(*fields["metadata"], _METADATA_FIELDS, what="metadata")
        if meta and "name" in meta:
            name = dec.string(*meta["name"]) or ""
        for key in ("generateName", "namespace", "selfLink", "uid", "resourceVersion"):
            if meta and key in meta:
                dec.string(*meta[key])
        for key in ("labels", "annotations"):
            if meta and key in meta:
                _decode_string_map(dec, *meta[key])
    omit_stages: tuple[str, ...] = ()
    if "omitStages" in fields:
        omit_stages = dec.strings(*fields["omitStages"])
    omit_managed = False
    if "omitManagedFields" in fields:
        omit_managed = bool(dec.boolean(*fields["omitManagedFields"]))
    rules: list[Rule] = []
    if "rules" in fields:
        items = dec.sequence(*fields["rules"])
        for item, item_path in items or []:
            rule = _decode_rule(item, item_path, dec)
            if rule is not None:
                rules.append(rule)
    return Policy(api_version, kind, tuple(rules), omit_stages, omit_managed, name)


def _decode_string_map(dec: _Decoder, node: Node, path: str) -> None:
    from ruamel.yaml.nodes import MappingNode

    if dec.is_null(node):
        return
    if not isinstance(node, MappingNode):
        dec.error(path, f"expected a mapping of strings, found {_describe(node)}", node)
        return
    for key_node, value_node in node.value:
        dec.string(value_node, _join(path, str(key_node.value)))


def _decode_rule(node: Node, path: str, dec: _Decoder) -> Rule | None:
    fields = dec.mapping(node, path, _RULE_FIELDS, what="a rule", misplaced=_MISPLACED_IN_RULE)
    if fields is None:
        return None
    values: dict[str, Any] = {}
    for key, target in (
        ("users", "users"),
        ("userGroups", "user_groups"),
        ("verbs", "verbs"),
        ("namespaces", "namespaces"),
        ("nonResourceURLs", "non_resource_urls"),
        ("omitStages", "omit_stages"),
    ):
        if key in fields:
            values[target] = dec.strings(*fields[key])
    level = ""
    if "level" in fields:
        level = dec.string(*fields["level"]) or ""
    if "omitManagedFields" in fields:
        values["omit_managed_fields"] = dec.boolean(*fields["omitManagedFields"])
    groups: list[GroupResources] = []
    if "resources" in fields:
        for item, item_path in dec.sequence(*fields["resources"]) or []:
            gr = dec.mapping(
                item, item_path, _GROUP_RESOURCES_FIELDS, what="a resources entry", misplaced=_RULE_FIELD_IN_GROUP
            )
            if gr is None:
                continue
            group = (dec.string(*gr["group"]) or "") if "group" in gr else ""
            resources = dec.strings(*gr["resources"]) if "resources" in gr else ()
            names = dec.strings(*gr["resourceNames"]) if "resourceNames" in gr else ()
            groups.append(GroupResources(group, resources, names, item_path))
    return Rule(level=level, resources=tuple(groups), path=path, line=_line(node), **values)


# --------------------------------------------------------------------------- API-server rules


def _validate(policy: Policy, version: tuple[int, int], line_of: Callable[[str], int | None]) -> list[Finding]:
    """The checks of `pkg/apis/audit/validation` and `reader.go`, version-aware, with better paths."""
    out: list[Finding] = []

    def err(path: str, message: str) -> None:
        out.append(Finding(path, message, "error", line_of(path)))

    if not policy.api_version:
        err("apiVersion", f"apiVersion is missing: it must be {API_VERSION}")
    elif policy.api_version in REMOVED_API_VERSIONS:
        if version >= V1_ONLY_SINCE:
            err(
                "apiVersion",
                f"{policy.api_version} was removed in Kubernetes 1.24 (this check targets "
                f"{format_version(version)}); only {API_VERSION} is accepted. "
                "`kaudit validate --upgrade FILE` prints the file converted to v1",
            )
    elif policy.api_version != API_VERSION:
        err("apiVersion", f"unknown apiVersion {policy.api_version!r}: it must be {API_VERSION}")
    if not policy.kind:
        err("kind", "kind is missing: it must be Policy")
    elif policy.kind != "Policy":
        err("kind", f"kind {policy.kind!r} is not an audit policy: it must be Policy")

    out.extend(_stages(policy.omit_stages, "omitStages", line_of))
    if not policy.rules:
        err("rules", "a policy needs at least one rule (the API server refuses one with 0 rules)")
    for rule in policy.rules:
        p = rule.path
        if not rule.level:
            err(f"{p}.level", f"level is required: one of {', '.join(LEVELS)}")
        elif rule.level not in LEVELS:
            close = nearest(rule.level, LEVELS)
            hint = f' (did you mean "{close}"?)' if close else ""
            err(f"{p}.level", f"unsupported level {rule.level!r}{hint}: one of {', '.join(LEVELS)}")
        for i, url in enumerate(rule.non_resource_urls):
            if url == "*":
                continue
            if not url.startswith("/"):
                err(f"{p}.nonResourceURLs[{i}]", f"non-resource URL {url!r} must be * or begin with '/'")
            if url and "*" in url[:-1]:
                err(
                    f"{p}.nonResourceURLs[{i}]",
                    f"non-resource URL {url!r}: a wildcard '*' may only be the last character",
                )
        for gr in rule.resources:
            if gr.group == "*":
                if version < WILDCARD_GROUP_SINCE:
                    err(
                        f"{gr.path}.group",
                        f'group "*" is accepted only from Kubernetes {format_version(WILDCARD_GROUP_SINCE)} '
                        f"(this check targets {format_version(version)}): list the groups, or leave out "
                        "resources to match every group",
                    )
            elif gr.group and not (len(gr.group) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(gr.group)):
                hint = ""
                if "/" in gr.group:
                    hint = f" (a group has no version: {gr.group.split('/')[0]!r})"
                err(
                    f"{gr.path}.group",
                    f'group {gr.group!r} is not "" (the core group) or a lowercase DNS-1123 subdomain{hint}',
                )
            if gr.resource_names and not gr.resources:
                err(f"{gr.path}.resourceNames", "resourceNames needs at least one resource in resources")
        if rule.non_resource_urls and (rule.resources or rule.namespaces):
            err(
                f"{p}.nonResourceURLs",
                "a rule cannot apply to both non-resource URLs and resources or namespaces: split it in two",
            )
        out.extend(_stages(rule.omit_stages, f"{p}.omitStages", line_of))
    return out


def _stages(stages: tuple[str, ...], path: str, line_of: Callable[[str], int | None]) -> list[Finding]:
    out = []
    for i, stage in enumerate(stages):
        if stage not in STAGES:
            close = nearest(stage, STAGES)
            hint = f' (did you mean "{close}"?)' if close else ""
            out.append(
                Finding(
                    f"{path}[{i}]",
                    f"unknown stage {stage!r}{hint}: allowed stages are {', '.join(STAGES)}",
                    "error",
                    line_of(f"{path}[{i}]") or line_of(path),
                )
            )
    return out


def _line_index(root: Node) -> dict[str, int]:
    """Path -> 1-based line for every node, so validation findings can say where they are."""
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    index: dict[str, int] = {}

    def walk(node: Node, path: str) -> None:
        index.setdefault(path, _line(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                child = _join(path, str(key.value))
                index.setdefault(child, _line(key))
                walk(value, child)
                index[child] = _line(key)
        elif isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    walk(root, "")
    return index


# --------------------------------------------------------------------------- public API


def _text(text: str | bytes) -> tuple[str | None, Finding | None]:
    if isinstance(text, bytes):
        if text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        try:
            return text.decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return None, Finding("", f"not UTF-8 text (byte {exc.start}): the API server reads UTF-8 YAML")
    return text, None


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def parse(text: str | bytes, *, kubernetes_version: tuple[int, int] | None = None) -> PolicyReport:
    """Read and validate a policy with the API server's rules (no lint). `policy` is set when decodable."""
    version = kubernetes_version or LATEST_KNOWN_VERSION
    report = PolicyReport()
    decoded, problem = _text(text)
    if problem or decoded is None:
        report.errors.append(problem or Finding("", "unreadable"))
        return report
    docs, problem = _compose(decoded)
    if problem:
        report.errors.append(problem)
        return report
    if not docs:
        report.errors.append(Finding("", "the document is empty: no Policy in it"))
        return report
    if len(docs) > 1:
        report.errors.append(
            Finding(
                "",
                f"the file holds {len(docs)} YAML documents; the API server reads only the first and "
                "ignores the rest: keep one Policy per file",
                "error",
                _line(docs[1]),
            )
        )
    dec = _Decoder()
    policy = _decode(docs[0], dec)
    report.errors.extend(dec.findings)
    if policy is None:
        return report
    index = _line_index(docs[0])

    def line_of(path: str) -> int | None:
        while path:
            if path in index:
                return index[path]
            parent = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", path)
            path = "" if parent == path else parent
        return None

    # A field that could not be decoded already has its error: no follow-on error for it.
    bad = {f.path for f in dec.findings}
    report.errors.extend(f for f in _validate(policy, version, line_of) if not any(_within(f.path, b) for b in bad))
    report.errors.sort(key=lambda f: f.line or 0)
    report.policy = policy
    return report


def check(
    text: str | bytes,
    *,
    kubernetes_version: tuple[int, int] | None = None,
    own_profile: bool = False,
    strict: bool = False,
) -> PolicyReport:
    """Validate and lint a policy.

    own_profile: a rule recording bodies of the sensitive set is an error (kaudit's own profiles
    must never do it) instead of a warning. strict: every warning becomes an error.
    """
    from installer.policy.lint import lint

    version = kubernetes_version or LATEST_KNOWN_VERSION
    report = parse(text, kubernetes_version=version)
    if report.ok and report.policy is not None:
        for finding in lint(report.policy, kubernetes_version=version, own_profile=own_profile):
            (report.errors if finding.severity == "error" else report.warnings).append(finding)
    if strict and report.warnings:
        report.errors.extend(
            Finding(w.path, f"{w.message} (a warning, refused by --strict)", "error", w.line, w.code)
            for w in report.warnings
        )
        report.warnings = []
    return report


def upgrade(text: str | bytes) -> str:
    """The policy with a removed apiVersion (v1beta1, v1alpha1) rewritten to audit.k8s.io/v1.

    The Policy types did not change shape between those versions, so the conversion is the
    apiVersion line alone; comments and layout are kept. ValueError when there is nothing to do.
    """
    decoded, problem = _text(text)
    if decoded is None:
        raise ValueError(problem.message if problem else "unreadable")
    pattern = re.compile(
        r"^(?P<lead>\s*(?:---\s*)?)apiVersion(?P<sep>\s*:\s*)(?P<q>[\"']?)(?P<v>audit\.k8s\.io/v1(?:alpha1|beta1))(?P=q)",
        re.MULTILINE,
    )
    match = pattern.search(decoded)
    if not match:
        raise ValueError(f"no apiVersion {' or '.join(REMOVED_API_VERSIONS)} line found: nothing to upgrade")
    start, end = match.span("v")
    return decoded[:start] + API_VERSION + decoded[end:]


# --------------------------------------------------------------------------- log rotation budget

_MB = 1024 * 1024


def log_budget_mb(maxsize: int, maxbackup: int, kubernetes_version: tuple[int, int]) -> int | None:
    """Upper bound of disk use of the audit log in MB, or None when it is unbounded."""
    if maxsize < 0 or maxbackup < 0:
        raise ValueError("maxsize and maxbackup cannot be negative")
    if maxsize == 0:
        if kubernetes_version >= (1, 36):
            return None  # no rotation at all: one ever-growing file
        maxsize = 100  # lumberjack's default size
    if maxbackup == 0:
        return None  # every rotated file is kept
    return maxsize * (maxbackup + 1)


def _size(mb: int) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb} MB"


def log_budget(maxsize: int, maxbackup: int, kubernetes_version: tuple[int, int]) -> str:
    """A human description of the disk the audit log may take with these rotation flags."""
    version = format_version(kubernetes_version)
    if maxsize == 0 and kubernetes_version >= (1, 36):
        return (
            f"--audit-log-maxsize=0 means no rotation from Kubernetes 1.36 (this is {version}): "
            "one file that grows without limit; set a size"
        )
    size = maxsize or 100
    note = " (maxsize 0 means 100 MB before Kubernetes 1.36)" if maxsize == 0 else ""
    if maxbackup == 0:
        return (
            f"files of up to {size} MB{note}, and --audit-log-maxbackup=0 keeps every rotated file: "
            "no upper bound except --audit-log-maxage"
        )
    budget = log_budget_mb(maxsize, maxbackup, kubernetes_version)
    assert budget is not None
    return (
        f"up to {_size(budget)} on disk: {maxbackup + 1} files (the live one and {maxbackup} rotated) "
        f"of up to {size} MB{note}"
    )
