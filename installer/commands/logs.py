"""`kaudit logs TARGET...`: read, merge, filter and follow a cluster's audit events; hunt with the
detection catalogue. Thin: the work is in installer.auditlog.logs."""

from __future__ import annotations

import sys

import typer

from installer.commands import common


def register(app: typer.Typer) -> None:
    app.command(name="logs")(logs)


def logs(
    targets: list[str] = common.TARGETS,
    since: str | None = typer.Option(
        None, "--since", metavar="DURATION|TIME",
        help="only events from then on: 90m, 6h, 7d ago, or RFC 3339 (2026-05-01T10:00:00Z) or a date."),
    until: str | None = typer.Option(None, "--until", metavar="TIME", help="only events before TIME (as --since)."),
    users: list[str] = typer.Option(  # noqa: B008
        [], "--user", metavar="U",
        help="user name; ns:name is the service account system:serviceaccount:ns:name; a trailing * is a prefix."),
    groups: list[str] = typer.Option([], "--group", metavar="G", help="one of the user's groups."),  # noqa: B008
    verbs: list[str] = typer.Option([], "--verb", metavar="V", help="get, list, watch, create, ...")  # noqa: B008
    ,
    resources: list[str] = typer.Option(  # noqa: B008
        [], "--resource", metavar="R[.group][/sub]",
        help="pods (no subresource), pods/exec, pods/* (pods and its subresources), */scale, deployments.apps."),
    namespaces: list[str] = typer.Option([], "--namespace", "-n", metavar="NS"),  # noqa: B008
    names: list[str] = typer.Option([], "--name", metavar="N", help="the object's name."),  # noqa: B008
    codes: list[str] = typer.Option([], "--code", metavar="N|4xx|5xx", help="response code or class."),  # noqa: B008
    levels: list[str] = typer.Option([], "--level", metavar="L", help="Metadata, Request, RequestResponse."),  # noqa: B008
    stages: list[str] = typer.Option(  # noqa: B008
        [], "--stage", metavar="S", help="RequestReceived, ResponseStarted, ResponseComplete, Panic."),
    follow: bool = typer.Option(False, "--follow", "-f", help="print new events as they are written (Ctrl-C ends)."),
    detect: bool = typer.Option(False, "--detect", help="run the detection catalogue (all, or those named by "
                                "--detection) over the selected events."),
    detection: list[str] = typer.Option(  # noqa: B008
        [], "--detection", metavar="NAME", help="a detection to run (implies --detect). Repeatable."),
    fail_on_findings: bool = typer.Option(False, "--fail-on-findings", help="exit 1 when a detection found something."),
    summary: bool = typer.Option(False, "--summary", help="top users, verbs, resources, error sources, events per "
                                 "minute, the busiest groups."),
    bodies: bool = typer.Option(False, "--bodies", help="-o json: keep request/response bodies (Secret data and "
                                "tokens masked even then)."),
    utc: bool = typer.Option(False, "--utc", help="times in UTC (default: local time)."),
    save: str | None = typer.Option(None, "--save", metavar="DIR", help="also write the selected events to DIR "
                                    "(made 0700), one 0600 JSON-lines file per node; nothing is written without it."),
    output: str = common.OUTPUT,
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
) -> None:
    """Who did what, and when: every control-plane node's audit log (current and rotated files, .gz too),
    merged by time, filtered.

    Filters repeat; the values of one filter are alternatives, different filters all apply. Text
    shows one line per event and never a request or response body. Exit 0 when every node was read,
    1 with --fail-on-findings when a detection found something, 2 on bad input or a node that could
    not be read (or was lost during --follow), 130 interrupted.
    """
    from installer.auditlog import logs as logs_run
    from installer.auditlog.filters import Filters
    from installer.errors import KauditError

    if output not in ("text", "json"):
        typer.echo(f"kaudit: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)
    conn = common.Connection(ssh_config, identity, known_hosts, accept_new_host_key, sudo_password_stdin)
    try:
        filters = Filters.build(since=since, until=until, users=users, groups=groups, verbs=verbs,
                                resources=resources, namespaces=namespaces, names=names, codes=codes,
                                levels=levels, stages=stages)
        req = logs_run.Request(
            targets=targets, filters=filters, output=output, utc=utc, follow=follow, summary=summary,
            detect=list(detection) if (detect or detection) else None, fail_on_findings=fail_on_findings,
            bodies=bodies, color=logs_run.pick_color(sys.stdout), save=save)
        code = logs_run.logs_command(req, conn.ssh_options, sys.stdout)
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)
