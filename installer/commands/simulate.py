"""`kaudit simulate SOURCE... (--profile P | --policy-file FILE)...`: replay a real audit log through
candidate policies. Thin: the work is in installer.simulate."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

from installer.commands import common

if TYPE_CHECKING:
    from typer._click.core import Context  # typer's own click (vendored): what parse_args is given

_ORDER = "kaudit.simulate.order"
_KINDS = {"profiles": "profile", "policy_files": "policy-file"}


class SimulateCommand(TyperCommand):
    """Candidates in command-line order: typer hands `--profile` and `--policy-file` over as two lists, so
    the order of their occurrences is taken from click's own parser (one entry per occurrence, values
    attached or not, `--` respected) and kept in the context for the command."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        except Exception:  # a bad command line: the parse below reports it
            order = []
        ctx.meta[_ORDER] = [_KINDS[p.name] for p in order if p.name in _KINDS]
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    app.command(name="simulate", cls=SimulateCommand)(simulate)


def simulate(
    ctx: typer.Context,
    sources: list[str] = typer.Argument(  # noqa: B008
        ..., metavar="SOURCE...",
        help="an audit log (JSON lines), rotated files (.gz included), a directory of them, - for stdin, "
        "or any kaudit TARGET (its control-plane nodes' logs, read over SSH and merged by time).",
    ),
    profiles: list[str] = typer.Option(  # noqa: B008
        [], "--profile", "-p", metavar="PROFILE", help="a candidate profile (see `kaudit profiles`). Repeatable."
    ),
    sets: list[str] = typer.Option(  # noqa: B008
        [], "--set", "-s", metavar="[PROFILE.]NAME=VALUE",
        help="a profile variable; PROFILE. limits it to that profile, else it applies to every --profile "
        "that has the variable. Repeatable.",
    ),
    policy_files: list[str] = typer.Option(  # noqa: B008
        [], "--policy-file", metavar="FILE", help="a candidate policy file. Repeatable."
    ),
    kubernetes_version: str | None = typer.Option(
        None, "--kubernetes-version", metavar="X.Y",
        help="the API server's version (default: the node's for a TARGET, else the newest kaudit knows).",
    ),
    since: str | None = typer.Option(
        None, "--since", metavar="T", help="only events from T on: RFC 3339 (2026-05-01T10:00:00Z), a date, "
        "or a duration ago (90m, 6h, 7d)."
    ),
    until: str | None = typer.Option(None, "--until", metavar="T", help="only events before T (as --since)."),
    log_maxage: int | None = typer.Option(None, "--log-maxage", metavar="DAYS",
                                          help="rotation for every candidate (default: the profile's)."),
    log_maxbackup: int | None = typer.Option(None, "--log-maxbackup", metavar="N"),
    log_maxsize: int | None = typer.Option(None, "--log-maxsize", metavar="MB"),
    output: str = typer.Option("text", "--output", "-o", metavar="[text|json|events]",
                               help="text, json (docs/output.md), or events (one line per event and candidate)."),
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
    ask_sudo_password: bool = common.ASK_SUDO_PASSWORD,
    connect_timeout: int | None = common.CONNECT_TIMEOUT,
) -> None:
    """Replay an audit log through candidate policies: events, bytes and days of history per policy,
    and what each would stop or start recording.

    Several candidates are compared side by side with what the log itself recorded: per candidate,
    the requests it would no longer record at all (level None) apart from the stage events it drops
    of requests it still records (omitStages), what it records at a higher level, and each rule's
    hits, the rule named by its index and a short description (`#3 Metadata secrets,configmaps`). Each event is
    evaluated as the API server evaluated it (the authenticated user; verb, resource and name from
    the request path; first match wins). Nothing is written to disk, and no request or response
    body is ever printed. Exit 2 on bad input (not an audit log, the legacy format, an unknown profile).
    """
    from installer.detections.coverage import summary as coverage
    from installer.errors import KauditError
    from installer.simulate import run as simulate_run

    if output not in ("text", "json", "events"):
        typer.echo(f"kaudit: --output must be text, json or events, not {output!r}", err=True)
        raise typer.Exit(2)
    if not profiles and not policy_files:
        typer.echo("kaudit: simulate needs at least one candidate: --profile P or --policy-file FILE", err=True)
        raise typer.Exit(2)
    version = common.kubernetes_version(kubernetes_version)
    conn = common.Connection(ssh_config, identity, known_hosts, accept_new_host_key, sudo_password_stdin,
                             ask_sudo_password, connect_timeout)
    request: dict[str, Any] = {
        "sources": sources, "profiles": profiles, "sets": sets, "policy_files": policy_files,
        "kubernetes_version": version, "since": since, "until": until,
        "rotation": (log_maxage, log_maxbackup, log_maxsize), "output": output,
        "order": ctx.meta.get(_ORDER),
    }
    try:
        code = simulate_run.simulate_command(request, conn.ssh_options, sys.stdout, coverage)
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:  # `| head`: the reader went away
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        typer.echo("kaudit: interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)
