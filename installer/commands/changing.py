"""What every changing command shares: options, confirmation on /dev/tty, progress, results."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import typer

from installer.commands import common

YES = typer.Option(False, "--yes", "-y", help="apply without asking (required without a terminal).")
DRY_RUN = typer.Option(False, "--dry-run", help="show the policy and the manifest diff; change nothing.")
TIMEOUT = typer.Option(120.0, "--timeout", help="seconds to wait for the new API server, per node.")
GUARD_GRACE = typer.Option(
    30.0, "--guard-grace", help="seconds after --timeout before the node-side guard restores the backup by itself."
)
BREAK_LOCK = typer.Option(False, "--break-lock", help="end a lock holder left behind by a run that is gone.")


@dataclass(frozen=True)
class ChangeFlags:
    yes: bool
    dry_run: bool
    timeout: float
    guard_grace: float
    break_lock: bool
    output: str
    conn: common.Connection


def _confirm(yes: bool, output: str) -> Any:
    def confirm(node: str, diff: str) -> bool:
        if yes:
            return True
        try:
            tty = open("/dev/tty", "r+", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            from installer.errors import InputError

            raise InputError("no terminal to ask on: pass --yes to apply the change", node=node) from None
        with tty:
            tty.write(f"\n{node}:\n{diff}\nApply this change to {node}? [y/N] ")
            tty.flush()
            return tty.readline().strip().lower() in ("y", "yes")

    return confirm


def _progress(output: str) -> Any:
    interactive = output == "text" and sys.stderr.isatty()

    def progress(node: str, message: str) -> None:
        if interactive or os.environ.get("KAUDIT_PROGRESS"):
            typer.echo(f"  {node}: {message}", err=True)

    return progress


def run(flags: ChangeFlags, targets: list[str], planner: Any, plan_input: Any, *, policy_text: Any = None,
        warnings: list[str] | None = None) -> None:
    """Run the rollout, print the results, exit with the worst node's code."""
    from installer.connect import open_transport
    from installer.errors import KauditError
    from installer.operations.change import Options
    from installer.operations.rollout import run_rollout, worst_exit

    common.check_output(flags.output)
    try:
        ssh = flags.conn.ssh_options()
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    options = Options(timeout=flags.timeout, guard_grace=flags.guard_grace, dry_run=flags.dry_run,
                      break_lock=flags.break_lock)
    results = run_rollout(
        targets, lambda t: open_transport(t, ssh), planner, plan_input, options,
        _confirm(flags.yes, flags.output), _progress(flags.output),
    )
    for w in warnings or []:
        typer.echo(f"kaudit: {w}", err=True)
    if flags.output == "json":
        common.print_json("change", [r.to_json() for r in results], dryRun=flags.dry_run)
    else:
        for r in results:
            if flags.dry_run and r.diff is not None:
                if policy_text:
                    typer.echo(f"# policy for {r.node}:\n{policy_text()}")
                typer.echo(r.diff)
            mark = {0: "ok", 1: "FAILED (restored)", 2: "refused", 3: "FAILED, NOT RESTORED", 130: "interrupted"}
            typer.echo(f"{r.node}: {mark.get(r.exit_code, 'error')}: {r.message}")
            if r.verify:
                typer.echo(f"  audit check: {'ok' if r.verify['verified'] else 'not confirmed'}: {r.verify['reason']}")
            for line in r.log_lines:
                typer.echo(f"  kube-apiserver: {line}")
            if r.backup and r.ok:
                typer.echo(f"  backup: {r.backup} (kaudit rollback {r.node} undoes this)")
    raise typer.Exit(worst_exit(results))
