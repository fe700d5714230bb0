"""Where a policy comes from: a profile with its variables, or a policy file. One immutable value used
by enable, switch, render and export, and the one rule that turns it into text a node may get: valid
for the API server of that version, and no Secret or token bodies recorded unless `--force`."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from installer.errors import InputError
from installer.manifest.settings import ROTATION_DEFAULTS
from installer.policy.model import Finding, PolicyReport

# What an audit log keeps when neither the profile nor the user says: the table's defaults.
FILE_LOG_DEFAULTS = ROTATION_DEFAULTS  # maxage days, maxbackup files, maxsize MB


@dataclass(frozen=True)
class CheckedPolicy:
    """A policy checked for one Kubernetes version: its text, log rotation defaults, and warnings."""

    text: str
    log_defaults: tuple[int, int, int]  # maxage, maxbackup, maxsize
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicySource:
    """A profile (rendered once: its text does not depend on the node) or a policy file (read once)."""

    text: str
    log_defaults: tuple[int, int, int]
    profile: str | None = None
    sets: tuple[tuple[str, str], ...] = ()
    policy_file: str | None = None
    force: bool = False  # accept a policy whose lint finds Secret or token bodies recorded

    @classmethod
    def from_options(cls, *, profile: str | None, sets: Sequence[str], policy_file: str | None,
                     force: bool = False) -> PolicySource:
        """From the command line's --profile/--set/--policy-file; InputError before any node is reached."""
        if (profile is None) == (policy_file is None):
            raise InputError("give exactly one of --profile or --policy-file")
        if profile is not None:
            from installer.policy.profiles import parse_sets

            return cls.of_profile(profile, parse_sets(list(sets)), force=force)
        assert policy_file is not None
        if sets:
            raise InputError("--set applies to profiles, not to --policy-file")
        try:
            with open(policy_file, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InputError(f"cannot read --policy-file {policy_file}: {why}") from None
        return cls(text=text, log_defaults=FILE_LOG_DEFAULTS, policy_file=policy_file, force=force)

    @classmethod
    def of_profile(cls, name: str, sets: Mapping[str, str] | None = None, *, force: bool = False) -> PolicySource:
        """A profile rendered with its variables (unknown profile, bad variables: InputError)."""
        from installer.policy import profiles

        rendered = profiles.render(name, dict(sets or {}))
        log = rendered.profile.log
        return cls(text=rendered.text, log_defaults=(log.maxage, log.maxbackup, log.maxsize), profile=name,
                   sets=tuple((sets or {}).items()), force=force)

    @property
    def label(self) -> str:
        """How messages name it: "profile cis", or the file as given."""
        return f"profile {self.profile}" if self.profile else (self.policy_file or "the policy file")

    def args(self) -> list[str]:
        """The command-line arguments that name this policy again (for `kaudit export`, hints)."""
        if self.profile is None:
            return ["--policy-file", self.policy_file or "FILE"]
        out = ["--profile", self.profile]
        for name, value in self.sets:
            out += ["--set", f"{name}={value}"]
        return out


def refusals(report: PolicyReport, force: bool) -> list[Finding]:
    """The `--force` rule, the one place enable, switch and validate take it from: a valid policy whose
    lint finds bodies of Secrets or tokens recorded is refused unless `force`. The findings that refuse it
    (empty: accepted, or already invalid for other reasons)."""
    from installer.policy.lint import records_sensitive_bodies

    if force or report.errors:
        return []
    return [w for w in report.warnings if records_sensitive_bodies(w)]


FORCE_HINT = "kaudit enable and switch refuse such a policy: fix it, or accept it with --force (here and there)"


def with_force_rule(report: PolicyReport, force: bool) -> PolicyReport:
    """`report` with the findings `refusals` names as errors (for `kaudit validate`: the verdict enable's)."""
    refused = refusals(report, force)
    if refused:
        report.warnings = [w for w in report.warnings if w not in refused]
        report.errors.extend(Finding(w.path, f"{w.message}; {FORCE_HINT}", "error", w.line, w.code) for w in refused)
        report.errors.sort(key=lambda f: f.line or 0)
    return report


def check(source: PolicySource, version: tuple[int, int] | None) -> CheckedPolicy:
    """The policy as a node of this Kubernetes version may get it, or InputError saying why not."""
    from installer.policy import validate

    report = validate.check(source.text, kubernetes_version=version, own_profile=source.profile is not None)
    if report.errors:
        details = "; ".join(f"{f.path}: {f.message}" if f.path else f.message for f in report.errors)
        raise InputError(f"{source.label} is not a valid audit policy for this API server: {details}")
    sensitive = refusals(report, source.force)
    if sensitive:
        raise InputError(f"{source.label} would record bodies of Secrets or tokens ({sensitive[0].path}: "
                         f"{sensitive[0].message}); fix the policy or pass --force")
    warnings = tuple(dict.fromkeys(
        f"{source.label}: warning: {w.path + ': ' if w.path else ''}{w.message}" for w in report.warnings))
    return CheckedPolicy(source.text, source.log_defaults, warnings)


@dataclass(frozen=True)
class Checks:
    """`check` memoised for one command run: every node of a fleet with the same Kubernetes version gets
    the same policy, checked once (a check costs about 0.1 s). Safe to share between --parallel threads."""

    source: PolicySource
    _done: dict[tuple[int, int] | None, CheckedPolicy] = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def __call__(self, version: tuple[int, int] | None) -> CheckedPolicy:
        with self._lock:
            if version not in self._done:
                self._done[version] = check(self.source, version)
            return self._done[version]
