"""`kaudit profiles`: the policy profiles kaudit ships, with their variables."""

from __future__ import annotations

import json

import typer


def register(app: typer.Typer) -> None:
    app.command(name="profiles")(profiles)


def profiles(
    output: str = typer.Option("text", "--output", "-o", metavar="[text|json]", help="text, or json."),
) -> None:
    """List the policy profiles: name, description, variables (with type and default) and log flags."""
    from installer.errors import KauditError
    from installer.policy.model import LATEST_KNOWN_VERSION
    from installer.policy.profiles import format_value, list_profiles
    from installer.policy.validate import log_budget

    if output not in ("text", "json"):
        typer.echo(f"kaudit: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)
    try:
        found = list_profiles()
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if output == "json":
        doc = {
            "schemaVersion": 1,
            "command": "profiles",
            "profiles": [
                {
                    "name": p.name,
                    "description": p.description,
                    "template": p.template,
                    "log": {"maxage": p.log.maxage, "maxbackup": p.log.maxbackup, "maxsize": p.log.maxsize},
                    "variables": [
                        {
                            "name": v.name,
                            "type": v.type,
                            "default": list(v.default) if isinstance(v.default, tuple) else v.default,
                            "help": v.help,
                        }
                        for v in p.variables
                    ],
                }
                for p in found
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    for i, p in enumerate(found):
        if i:
            typer.echo("")
        typer.echo(f"{p.name}")
        typer.echo(f"  {p.description}")
        typer.echo(
            f"  log flags: --audit-log-maxage={p.log.maxage} --audit-log-maxbackup={p.log.maxbackup} "
            f"--audit-log-maxsize={p.log.maxsize} ({log_budget(p.log.maxsize, p.log.maxbackup, LATEST_KNOWN_VERSION)})"
        )
        typer.echo("  variables:")
        width = max(len(v.name) for v in p.variables) if p.variables else 0
        for v in p.variables:
            default = format_value(v.default) or "(empty)"
            typer.echo(f"    {v.name:<{width}}  {v.type:<4}  default {default}: {v.help}")
    typer.echo("")
    typer.echo("Render one with: kaudit render PROFILE [--set name=value]... (lists comma-separated)")
