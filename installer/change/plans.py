"""What each command wants a node to look like: pure functions of the node's facts and the user's inputs.

Render + validate + lint the policy, then read + patch + validate the manifest. No I/O here
except reading a user's local files, which happens before any node is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from installer.change.phases import Desired
from installer.errors import NodeError
from installer.node import facts as nodefacts
from installer.node import layout
from installer.policy.source import Checks, PolicySource

if TYPE_CHECKING:
    from installer.manifest.read import Manifest


@dataclass(frozen=True)
class EnableInput:
    """What `enable`/`switch` were asked for: the same for every node, shared by --parallel threads."""

    policy: PolicySource
    log_path: str = layout.LOG_PATH
    maxage: int | None = None
    maxbackup: int | None = None
    maxsize: int | None = None
    log_format: str | None = None
    log_compress: bool | None = None
    webhook_config: bytes | None = None
    webhook_mode: str | None = None
    webhook_source: str | None = None  # the user's path of the webhook config, for the `kaudit export` command
    adopt: bool = False
    switch_only: bool = False  # `kaudit switch`: refuse when auditing is off
    checks: Checks = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", Checks(self.policy))


def _version_of(info: Any) -> tuple[int, int] | None:
    v = info.kubernetes_version
    return (int(v[0]), int(v[1])) if v else None


def export_args(inp: EnableInput) -> str:
    """The `kaudit export` arguments that reproduce this enable's policy and backend settings."""
    import shlex

    from installer.manifest import settings

    return shlex.join(inp.policy.args() + settings.export_args({
        "log_path": inp.log_path, "maxage": inp.maxage, "maxbackup": inp.maxbackup, "maxsize": inp.maxsize,
        "log_format": inp.log_format, "log_compress": inp.log_compress,
        "webhook_config": inp.webhook_source or ("FILE" if inp.webhook_config else None),
        "webhook_mode": inp.webhook_mode}) + (["--force"] if inp.policy.force else []))


def plan_enable(facts: nodefacts.NodeFacts, before: Manifest, inp: EnableInput) -> Desired:
    from installer.manifest.patch import AuditConfig, patch_manifest
    from installer.manifest.validate import validate_pod

    info = before.info
    if inp.switch_only and not info.audit.flags:
        raise NodeError("auditing is off here: `switch` changes a running audit setup; use `enable`")
    checked = inp.checks(_version_of(info))
    text, (maxage, maxbackup, maxsize) = checked.text, checked.log_defaults
    policy_bytes = text.encode()
    policy_path = layout.policy_path(policy_bytes)
    webhook_path = layout.webhook_config_path(inp.webhook_config) if inp.webhook_config else None
    config = AuditConfig(
        policy_file=policy_path,
        profile=inp.policy.profile,
        log_path=inp.log_path,
        maxage=inp.maxage if inp.maxage is not None else maxage,
        maxbackup=inp.maxbackup if inp.maxbackup is not None else maxbackup,
        maxsize=inp.maxsize if inp.maxsize is not None else maxsize,
        log_format=inp.log_format,
        log_compress=inp.log_compress,
        webhook_config_file=webhook_path,
        webhook_mode=inp.webhook_mode if webhook_path else None,
    )
    from installer.manifest.patch import log_path_problem

    problem = log_path_problem(inp.log_path, facts.static_pod_path)  # the node's own static pod path
    if problem:
        raise NodeError(problem)
    after = patch_manifest(before, config, adopt=inp.adopt)
    notes = []
    if config.log_path and config.log_path != "-" and config.maxsize is not None and config.maxbackup is not None:
        from installer.policy.validate import LATEST_KNOWN_VERSION, log_budget

        notes.append("audit log: " + log_budget(config.maxsize, config.maxbackup,
                                                _version_of(info) or LATEST_KNOWN_VERSION))
    problems = validate_pod(after, _version_of(info))
    if problems:
        already = [p for p in problems if p in validate_pod(before, _version_of(info))]
        if already:  # not kaudit's doing: say where the problem is
            raise NodeError(f"the manifest on the node is not valid as it is, kaudit leaves it alone: "
                            f"{'; '.join(already)}")
        raise NodeError(f"the patched manifest would not be valid: {'; '.join(problems)}")
    profile = inp.policy.profile
    what = f"profile {profile}" if profile else f"policy {inp.policy.policy_file}"
    if info.audit.managed:
        was = info.audit.profile or "a custom policy"
        summary = f"switch auditing from {was} to {what}" if was != profile or not profile else \
            f"update auditing with {what}"
        op = "switch"
    else:
        summary, op = f"enable auditing with {what}", "enable"
    return Desired(
        op=op,
        after=after,
        summary=summary,
        profile=profile,
        policy=(policy_path, policy_bytes),
        webhook=(webhook_path, inp.webhook_config) if webhook_path and inp.webhook_config else None,
        policy_text=text,
        notes=notes,
        warnings=checked.warnings,
        export_args=export_args(inp),
    )


def plan_disable(facts: nodefacts.NodeFacts, before: Manifest, _: object) -> Desired:
    from installer.manifest.patch import unpatch_manifest

    info = before.info
    if not info.audit.managed:
        if info.audit.flags:
            raise NodeError("the audit configuration here was not added by kaudit; kaudit leaves it alone "
                            f"({'; '.join(info.audit.foreign) or ', '.join(info.audit.flags)})")
        return Desired(op="disable", after=before, summary="auditing is already off")
    return Desired(op="disable", after=unpatch_manifest(before),
                   summary=f"disable auditing (was {info.audit.profile or 'a custom policy'})")


@dataclass
class RollbackInput:
    backup_id: str
    manifest: bytes
    files: list[tuple[str, bytes]]


def restores_text(audit_on: object, profile: object, policy: str | None, webhook: str | None = None) -> str:
    """`auditing off`, or `auditing on, profile P, policy PATH[, webhook PATH]` (None: not recorded)."""
    if audit_on is None and profile is None and policy is None:
        return "(not recorded)"
    if not audit_on and policy is None:
        return "auditing off"
    parts = ["auditing on", f"profile {profile}" if profile else "no kaudit profile (a policy set up by hand)"]
    if policy:
        parts.append(f"policy {policy}")
    if webhook:
        parts.append(f"webhook {webhook}")
    return ", ".join(parts)


def plan_rollback(facts: nodefacts.NodeFacts, before: Manifest, inp: RollbackInput) -> Desired:
    from installer.manifest.read import load

    policy = next(((p, d) for p, d in inp.files if "/policy-" in p), None)
    webhook = next(((p, d) for p, d in inp.files if "/webhook-" in p), None)
    after = before if inp.manifest == before.data else load(inp.manifest)
    audit = after.info.audit
    held = {p.flag: p.host_path for p in audit.paths if p.host_path}
    what = restores_text(bool(audit.flags), audit.profile, held.get("--audit-policy-file"),
                         held.get("--audit-webhook-config-file"))
    return Desired(op="rollback", after=after, summary=f"restore backup {inp.backup_id} ({what})",
                   policy=policy, webhook=webhook, profile=audit.profile)
