"""`kaudit status TARGET...`"""

from __future__ import annotations

import typer

from installer.commands import common
from installer.errors import printable


def register(app: typer.Typer) -> None:
    app.command()(status)


@common.node_options
def status(targets: list[str] = common.TARGETS, *, opts: common.NodeOptions) -> None:
    """Show each node's audit configuration, the running API server's flags, and its readiness.

    Exit 0 when every node could be read (whatever its state), 2 otherwise.
    """
    from installer.change.status import run_status
    from installer.change.status_text import render_text

    common.check_output(opts.output)
    results = run_status(targets, opts.conn.ssh_options())
    if opts.output == "json":
        common.print_json("status", [r.to_json() for r in results])
    else:
        for r in results:
            typer.echo(printable(render_text(r), newlines=True))  # journal, flags, paths: the node's text
    raise typer.Exit(0 if all(r.ok for r in results) else 2)
