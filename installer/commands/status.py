"""`kaudit status TARGET...`"""

from __future__ import annotations

import typer

from installer.commands import common


def register(app: typer.Typer) -> None:
    app.command()(status)


def status(
    targets: list[str] = common.TARGETS,
    output: str = common.OUTPUT,
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
) -> None:
    """Show each node's audit configuration, the running API server's flags, and its readiness.

    Exit 0 when every node could be read (whatever its state), 2 otherwise.
    """
    from installer.operations.status import run_status
    from installer.render_status import render_text

    common.check_output(output)
    conn = common.Connection(ssh_config, identity, known_hosts, accept_new_host_key, sudo_password_stdin)
    results = run_status(targets, conn.ssh_options())
    if output == "json":
        common.print_json("status", [r.to_json() for r in results])
    else:
        for r in results:
            typer.echo(render_text(r))
    raise typer.Exit(0 if all(r.ok for r in results) else 2)
