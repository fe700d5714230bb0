"""`kaudit rollback TARGET... [--to BACKUP]` and `kaudit backups TARGET`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from installer.commands import changing, common
from installer.errors import printable

if TYPE_CHECKING:
    from installer.change.history import Backup


def register(app: typer.Typer) -> None:
    app.command()(rollback)
    app.command()(backups)


@changing.change_options
def rollback(
    targets: list[str] = common.TARGETS,
    to: str | None = typer.Option(
        None, "--to", metavar="BACKUP", help="backup id (see `kaudit backups`); default: undo the last kaudit "
        "operation. `original` is the manifest before kaudit first changed it."
    ),
    *,
    flags: changing.ChangeFlags,
) -> None:
    """Restore a backup byte for byte: by default the state before the last kaudit operation."""
    from installer.change.history import last_operation, read_backup
    from installer.change.plans import plan_rollback
    from installer.targets.connect import NodeContext

    def plan_input(node: NodeContext) -> object:
        return read_backup(node, to or last_operation(node))  # from the node's own state directory

    changing.run(flags, targets, plan_rollback, plan_input)


@common.node_options
def backups(targets: list[str] = common.TARGETS, *, opts: common.NodeOptions) -> None:
    """List the backups kaudit keeps on each node (the pinned original and the last 10)."""
    from installer.change.history import list_backups
    from installer.targets.connect import NodeContext, visit_nodes

    output = opts.output
    common.check_output(output)
    ssh = opts.conn.ssh_options()

    texts: dict[str, list[str]] = {}

    def read(node: NodeContext, _cluster: str) -> dict[str, object]:
        items = list_backups(node)
        texts[node.name] = [_backup_line(b) for b in items]
        return {"node": node.name, "ok": True, "backups": [b.to_json() for b in items]}

    def failed(name: str, _cluster: str | None, message: str) -> dict[str, object]:
        return {"node": name, "ok": False, "error": message}

    nodes = visit_nodes(targets, ssh, read, failed)
    code = 0 if all(n["ok"] for n in nodes) else 2
    if output == "json":
        common.print_json("backups", nodes)
    else:
        for n in nodes:
            if not n["ok"]:
                typer.echo(printable(f"{n['node']}: ERROR {n['error']}"))
                continue
            typer.echo(f"{n['node']}:")
            for line in texts.get(str(n["node"]), []):
                typer.echo(printable(line))  # the node's backup records
    raise typer.Exit(code)


def _backup_line(b: Backup) -> str:
    """`ID  WHEN  restores: auditing on, profile P, policy PATH  (taken before: SUMMARY)`."""
    from datetime import datetime, timezone

    created = b.meta.get("created")
    when = (datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
            if isinstance(created, (int, float)) else "?")
    what = b.meta.get("summary") or b.meta.get("op") or "?"
    taken = "the manifest before kaudit first changed the node, pinned" if b.pinned else f"taken before: {what}"
    return f"  {b.id}  {when}  restores: {b.restores()}  ({taken})"
