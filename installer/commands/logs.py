"""`kaudit logs TARGET...`: read, merge, filter and follow a cluster's audit events; hunt with the
detection catalogue. Thin: the work is in installer.logs.logs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer
from typer.core import TyperCommand

from installer.commands import common

if TYPE_CHECKING:
    from typer._click.core import Context  # typer's own click (vendored): what parse_args is given

# What a bare `--detect` stands for: the whole catalogue.
ALL_DETECTIONS = ""


class LogsCommand(TyperCommand):
    """`--detect [NAME]`: typer has no option whose value is optional, so a `--detect` with no value (the
    last word, or followed by another option) is given the value meaning "the whole catalogue" before
    parsing, as click's `flag_value` would. A word after `--detect` is its NAME: TARGETs go first."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, bare_detect(args))


def bare_detect(args: list[str]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        if arg == "--detect" and (i + 1 == len(args) or args[i + 1].startswith("-")):
            arg = "--detect=" + ALL_DETECTIONS
        out.append(arg)
    return out


def register(app: typer.Typer) -> None:
    app.command(name="logs", cls=LogsCommand)(logs)


def _list_detections(value: bool) -> None:
    if not value:
        return
    import installer.detections.catalogue as detections
    from installer.errors import KauditError

    try:
        catalogue = detections.load()
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    width = max(len(d.name) for d in catalogue)
    for d in catalogue:
        typer.echo(f"{d.name:<{width}}  {d.level:<15}  {d.title}")
    raise typer.Exit(0)


def logs(
    targets: list[str] = common.TARGETS,
    since: str | None = typer.Option(
        None, "--since", metavar="DURATION|TIME",
        help="only events from then on: 90m, 6h, 7d ago, or RFC 3339 (2026-05-01T10:00:00Z) or a date."),
    until: str | None = typer.Option(None, "--until", metavar="TIME", help="only events before TIME (as --since)."),
    users: list[str] = typer.Option(  # noqa: B008
        [], "--user", metavar="U",
        help="user name; ns:name is the service account system:serviceaccount:ns:name; a trailing * is a prefix."),
    groups: list[str] = typer.Option(  # noqa: B008
        [], "--group", metavar="G", help="one of the user's groups; a trailing * is a prefix (system:*)."),
    verbs: list[str] = typer.Option(  # noqa: B008
        [], "--verb", metavar="V", help="get, list, watch, create, update, patch, delete, deletecollection (any "
        "case); post, put, head, options, proxy for other paths. An unknown verb is refused."),
    resources: list[str] = typer.Option(  # noqa: B008
        [], "--resource", metavar="R[.group][/sub]",
        help="pods (no subresource), pods/exec, pods/* (pods and its subresources), */scale, deployments.apps; "
        "kubectl's singular and short names too (secret, po, svc, cm, deploy)."),
    namespaces: list[str] = typer.Option(  # noqa: B008
        [], "--namespace", "-n", metavar="NS", help="the object's namespace; \"\" is cluster-scoped; a trailing * is "
        "a prefix."),
    names: list[str] = typer.Option(  # noqa: B008
        [], "--name", metavar="N", help="the object's name; a trailing * is a prefix."),
    codes: list[str] = typer.Option([], "--code", metavar="N|4xx|5xx", help="response code or class."),  # noqa: B008
    levels: list[str] = typer.Option([], "--level", metavar="L", help="Metadata, Request, RequestResponse."),  # noqa: B008
    stages: list[str] = typer.Option(  # noqa: B008
        [], "--stage", metavar="S", help="RequestReceived, ResponseStarted, ResponseComplete, Panic."),
    follow: bool = typer.Option(False, "--follow", "-f", help="print new events as they are written (Ctrl-C ends)."),
    detect: list[str] = typer.Option(  # noqa: B008
        [], "--detect", metavar="[NAME]", help="run the detection catalogue over the selected events: all of it, "
        "or only NAME (repeat --detect, or NAME,NAME); --list-detections shows the names."),
    list_detections: bool = typer.Option(
        False, "--list-detections", callback=_list_detections, is_eager=True, expose_value=False,
        help="print the catalogue (name, level it needs, title) and exit."),
    fail_on_findings: bool = typer.Option(False, "--fail-on-findings", help="exit 1 when a detection found something."),
    summary: bool = typer.Option(False, "--summary", help="top users, verbs, resources, error sources, events per "
                                 "minute, the busiest groups."),
    bodies: bool = typer.Option(False, "--bodies", help="-o json: keep request/response bodies (Secret data and "
                                "tokens masked even then)."),
    utc: bool = typer.Option(False, "--utc", help="times in UTC, ending in Z (default: local time with its "
                             "offset, e.g. +02:00)."),
    include_kaudit: bool = typer.Option(False, "--include-kaudit", help="keep kaudit's own probe and verification "
                                        "requests (left out by default, and counted on stderr)."),
    save: str | None = typer.Option(None, "--save", metavar="DIR", help="also write the selected events to DIR "
                                    "(made 0700), one 0600 JSON-lines file per node; nothing is written without it."),
    output: str = common.OUTPUT,
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
    ask_sudo_password: bool = common.ASK_SUDO_PASSWORD,
    connect_timeout: int | None = common.CONNECT_TIMEOUT,
) -> None:
    """Who did what, and when: every control-plane node's audit log (current and rotated files, .gz too),
    merged by time, filtered.

    Filters repeat; the values of one filter are alternatives, different filters all apply. Text
    shows one line per event and never a request or response body. kaudit's own requests (its
    readiness probes and the verification request of each change: their user agent and shape) are
    left out unless --include-kaudit, and counted in one line on stderr. When no event matched,
    stdout stays empty and one line on stderr says so, with the nearest values the log holds.
    Exit 0 when every node was read (whether or not an event matched), 1 with --fail-on-findings
    when a detection found something, 2 on bad input or a node that could not be read (or was lost
    during --follow), 130 interrupted.
    """
    from installer.errors import KauditError
    from installer.logs import logs as logs_run
    from installer.logs.filters import Filters

    if output not in ("text", "json"):
        typer.echo(f"kaudit: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)
    conn = common.Connection(ssh_config, identity, known_hosts, accept_new_host_key, sudo_password_stdin,
                             ask_sudo_password, connect_timeout)
    try:
        filters = Filters.build(since=since, until=until, users=users, groups=groups, verbs=verbs,
                                resources=resources, namespaces=namespaces, names=names, codes=codes,
                                levels=levels, stages=stages)
        req = logs_run.Request(
            targets=targets, filters=filters, output=output, utc=utc, follow=follow, summary=summary,
            detect=_detections(detect), fail_on_findings=fail_on_findings,
            bodies=bodies, color=logs_run.pick_color(sys.stdout), save=save, include_kaudit=include_kaudit)
        code = logs_run.logs_command(req, conn.ssh_options, sys.stdout)
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _detections(values: list[str]) -> list[str] | None:
    """None without --detect; [] for the whole catalogue (a bare --detect among them); else the names."""
    if not values:
        return None
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if any(v == ALL_DETECTIONS for v in values) or not names:
        return []
    return names
