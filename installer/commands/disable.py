"""`kaudit disable TARGET...`: remove exactly what kaudit added; policies and logs stay."""

from __future__ import annotations

import typer

from installer.commands import changing, common


def register(app: typer.Typer) -> None:
    app.command()(disable)


@changing.change_options
def disable(targets: list[str] = common.TARGETS, *, flags: changing.ChangeFlags) -> None:
    """Turn auditing off: remove the flags, volumes and mounts kaudit added, and wait for the API server."""
    from installer.change.plans import plan_disable

    changing.run(flags, targets, plan_disable, lambda _node: None)
