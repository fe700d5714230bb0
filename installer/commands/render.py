"""`kaudit render PROFILE [--set name=value]...`: print the policy a profile produces."""

from __future__ import annotations

import typer

from installer.commands import common

SETS = typer.Option(
    [], "--set", "-s", metavar="NAME=VALUE", help="set a variable; lists comma-separated (a,b). Repeatable."
)


def register(app: typer.Typer) -> None:
    app.command(name="render")(render)


def render(
    profile: str = typer.Argument(..., help="profile name (see `kaudit profiles`)."),
    sets: list[str] = SETS,
    kubernetes_version: str | None = typer.Option(
        None, "--kubernetes-version", metavar="X.Y", help="check the result against this Kubernetes version (X.Y)."
    ),
) -> None:
    """Print the audit policy PROFILE renders to, validated and linted.

    Exit 2 on an unknown profile or variable, or a value of the wrong type (the valid ones are listed).
    """
    from installer.errors import KauditError
    from installer.policy.profiles import parse_sets
    from installer.policy.source import PolicySource
    from installer.policy.validate import check

    version = common.kubernetes_version(kubernetes_version)
    try:
        source = PolicySource.of_profile(profile, parse_sets(sets))
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    # Every finding, not just the first: render is where a profile's author looks at them.
    report = check(source.text, kubernetes_version=version, own_profile=True)
    if not report.ok:
        typer.echo(f"kaudit: profile {profile!r} rendered an unusable policy with these variables:", err=True)
        for finding in report.errors:
            typer.echo(f"  error: {finding}", err=True)
        raise typer.Exit(2)
    for finding in report.warnings:
        typer.echo(f"kaudit: warning: {finding}", err=True)
    typer.echo(source.text, nl=False)
    _print_coverage(report.policy, version)


def _print_coverage(policy: object, version: tuple[int, int] | None) -> None:
    """CIS 3.2.2 coverage (installer/detections/coverage.py), on stderr: stdout stays the policy alone."""
    from installer.detections.coverage import coverage_lines, summary
    from installer.errors import KauditError

    try:
        cov = summary(policy, version)
    except KauditError as exc:
        typer.echo(f"kaudit: no CIS 3.2.2 coverage: {exc}", err=True)
        return
    for line in coverage_lines(cov):
        typer.echo(f"kaudit: {line}", err=True)
