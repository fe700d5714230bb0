"""`kaudit validate FILE`: check an audit policy as the API server would, and stricter."""

from __future__ import annotations

import json
import sys

import typer

from installer.commands import common


def register(app: typer.Typer) -> None:
    app.command(name="validate")(validate)


def validate(
    file: str = typer.Argument(..., metavar="FILE", help="policy file, or - for standard input."),
    kubernetes_version: str | None = typer.Option(
        None, "--kubernetes-version", metavar="X.Y",
        help="the API server's version, X.Y (default: the newest kaudit knows)."
    ),
    strict: bool = typer.Option(False, "--strict", help="treat warnings as errors."),
    force: bool = typer.Option(
        False, "--force", help="accept a policy that records bodies of Secrets or tokens, as `enable --force` does."
    ),
    upgrade: bool = typer.Option(
        False, "--upgrade", help="print the file converted from audit.k8s.io/v1beta1 or v1alpha1 to v1."
    ),
    output: str = typer.Option("text", "--output", "-o", metavar="[text|json]", help="text, or json."),
) -> None:
    """Validate an audit policy file: exit 0 valid, 1 invalid (every error with its place), 2 unreadable.

    The verdict is the one `kaudit enable --policy-file` gives: the rules of the API server's own
    loader, except that unknown and duplicate fields, which the API server drops with a mere warning,
    are errors here; and a policy that records bodies of Secrets or tokens is invalid unless --force,
    as enable refuses it unless --force. Other lint findings (no catch-all, shadowed rules,
    RequestReceived kept) are warnings. A valid policy's CIS 3.2.2 coverage follows: the detections
    it keeps, degrades or loses.
    """
    from installer.policy.model import LATEST_KNOWN_VERSION
    from installer.policy.source import with_force_rule
    from installer.policy.validate import check, format_version
    from installer.policy.validate import upgrade as upgrade_text

    common.check_output(output)
    version = common.kubernetes_version(kubernetes_version, LATEST_KNOWN_VERSION)
    assert version is not None
    try:
        if file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        typer.echo(f"kaudit: cannot read {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None

    name = "<stdin>" if file == "-" else file
    if upgrade:
        try:
            data = upgrade_text(data).encode("utf-8")
        except ValueError as exc:
            typer.echo(f"kaudit: {name}: {exc}", err=True)
        else:
            typer.echo(data.decode("utf-8"), nl=False)
        report = with_force_rule(check(data, kubernetes_version=version, strict=strict), force)
        for finding in report.errors:
            typer.echo(f"kaudit: {name}: error: {finding}", err=True)
        for finding in report.warnings:
            typer.echo(f"kaudit: {name}: warning: {finding}", err=True)
        raise typer.Exit(0 if report.ok else 1)

    report = with_force_rule(check(data, kubernetes_version=version, strict=strict), force)
    cov = _coverage(report.policy, version) if report.ok else None
    if output == "json":
        doc = {
            "schemaVersion": 1,
            "command": "validate",
            "file": name,
            "kubernetesVersion": format_version(version),
            "valid": report.ok,
            "rules": len(report.policy.rules) if report.policy else None,
            "errors": [_finding_json(f) for f in report.errors],
            "warnings": [_finding_json(f) for f in report.warnings],
            "coverage": cov,
        }
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(0 if report.ok else 1)

    for finding in report.errors:
        typer.echo(f"{name}: error: {finding}")
    for finding in report.warnings:
        typer.echo(f"{name}: warning: {finding}")
    if report.ok:
        rules = len(report.policy.rules) if report.policy else 0
        extra = f", {len(report.warnings)} warning(s)" if report.warnings else ""
        typer.echo(f"{name}: valid audit policy for Kubernetes {format_version(version)} ({rules} rules{extra})")
        if cov is not None:
            from installer.detections.coverage import coverage_lines

            typer.echo("\n".join(coverage_lines(cov)))
        raise typer.Exit(0)
    typer.echo(f"{name}: INVALID: {len(report.errors)} error(s) (checked for Kubernetes {format_version(version)})")
    raise typer.Exit(1)


def _coverage(policy: object, version: tuple[int, int]) -> dict[str, object] | None:
    """CIS 3.2.2: what the policy lets each detection see (installer/detections/coverage.py)."""
    from installer.detections.coverage import summary
    from installer.errors import KauditError

    try:
        return summary(policy, version)
    except KauditError as exc:  # the shipped catalogue unreadable: the validation still stands
        typer.echo(f"kaudit: no CIS 3.2.2 coverage: {exc}", err=True)
        return None


def _finding_json(finding: object) -> dict[str, object]:
    from installer.policy.model import Finding

    assert isinstance(finding, Finding)
    return {"code": finding.code, "path": finding.path, "line": finding.line, "message": finding.message,
            "severity": finding.severity}
