"""`kaudit tune SOURCE... [--keep cis|NAME,...] [--budget SIZE/day]`: the audit policy to run, derived
from the cluster's own traffic. Thin: the work is in installer.simulate.tune and tune_run."""

from __future__ import annotations

import sys
from typing import Any

import typer

from installer.commands import common


def register(app: typer.Typer) -> None:
    app.command(name="tune")(tune)


def tune(
    sources: list[str] = typer.Argument(  # noqa: B008
        ..., metavar="SOURCE...",
        help="an audit log (JSON lines), rotated files (.gz included), a directory of them, - for stdin, "
        "or any kaudit TARGET (its control-plane nodes' logs, read over SSH).",
    ),
    keep: str | None = typer.Option(
        None, "--keep", metavar="cis|NAME,...",
        help="the detections the policy must keep (default: cis, the whole CIS 3.2.2 catalogue; "
        "`kaudit logs --list-detections` lists them).",
    ),
    budget: str | None = typer.Option(
        None, "--budget", metavar="SIZE/day",
        help="fit this many bytes a day on this log (e.g. 50MB/day), or refuse and name the detections "
        "it would cost.",
    ),
    kubernetes_version: str | None = typer.Option(
        None, "--kubernetes-version", metavar="X.Y",
        help="the API server's version (default: the node's for a TARGET, else the newest kaudit knows).",
    ),
    output: str = typer.Option("yaml", "--output", "-o", metavar="[yaml|json]",
                               help="yaml: the policy on stdout, the comparison on stderr; json: both as "
                               "data (docs/output.md)."),
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
    ask_sudo_password: bool = common.ASK_SUDO_PASSWORD,
    connect_timeout: int | None = common.CONNECT_TIMEOUT,
) -> None:
    """Print the audit policy to run, derived from the cluster's own traffic: every selected detection
    kept at the level it needs, Secret, ConfigMap and token bodies never recorded, unseen traffic at
    Metadata, and the request classes no detection reads cut, each cut rule commented with the events
    and bytes a day it saves on this log.

    stderr compares it with the log and each shipped profile (events, bytes, days of history at
    30/10/100 rotation, CIS 3.2.2 coverage). The result is a policy like any other: `kaudit validate`,
    `kaudit simulate --policy-file` and `kaudit enable --policy-file` take it unchanged. Exit 2 on bad
    input (an empty log, an unknown detection, a budget no policy keeping the detections meets)."""
    from installer.detections.coverage import summary as coverage
    from installer.errors import KauditError
    from installer.simulate import tune_run

    if output not in ("yaml", "json"):
        typer.echo(f"kaudit: --output must be yaml or json, not {output!r}", err=True)
        raise typer.Exit(2)
    version = common.kubernetes_version(kubernetes_version)
    conn = common.Connection(ssh_config, identity, known_hosts, accept_new_host_key, sudo_password_stdin,
                             ask_sudo_password, connect_timeout)
    request: dict[str, Any] = {"sources": sources, "keep": keep, "budget": budget,
                               "kubernetes_version": version, "output": output}
    try:
        code = tune_run.tune_command(request, conn.ssh_options, sys.stdout, sys.stderr, coverage)
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        typer.echo("kaudit: interrupted", err=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)
