"""What every changing command shares: options, confirmation on /dev/tty, progress, results."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import typer

from installer.commands import common
from installer.errors import printable

YES = typer.Option(False, "--yes", "-y", help="apply without asking (required without a terminal).")
DRY_RUN = typer.Option(False, "--dry-run", help="show the policy and the manifest diff; change nothing.")


def _seconds(least: float, most: float) -> Any:
    """A callback refusing a number of seconds outside [least, most] (nan and inf included)."""
    def check(value: float) -> float:
        if not least <= value <= most:  # False for nan
            raise typer.BadParameter(f"must be between {least:g} and {most:g} seconds, not {value}")
        return value
    return check


TIMEOUT = typer.Option(120.0, "--timeout", metavar="SECONDS", callback=_seconds(1, 86400),
                       help="seconds to wait for the new API server, per node.")
# At least a second: the guard must outlive kaudit's own wait, or a killed kaudit leaves the change unguarded.
GUARD_GRACE = typer.Option(
    30.0, "--guard-grace", metavar="SECONDS", callback=_seconds(1, 86400),
    help="seconds after --timeout before the node-side guard restores the backup by itself."
)
BREAK_LOCK = typer.Option(False, "--break-lock", help="end a lock holder left behind by a run that is gone.")
PARALLEL = typer.Option(
    1, "--parallel", metavar="N", min=1,
    help="clusters changed at the same time (the nodes of one cluster: always one at a time)."
)


@dataclass(frozen=True)
class ChangeFlags:
    yes: bool
    dry_run: bool
    timeout: float
    guard_grace: float
    break_lock: bool
    output: str
    conn: common.Connection
    parallel: int = 1


def _change_flags(v: dict[str, Any]) -> ChangeFlags:
    return ChangeFlags(v["yes"], v["dry_run"], v["timeout"], v["guard_grace"], v["break_lock"], v["output"],
                       common.connection(v), v["parallel"])


# For enable, switch, disable and rollback: the change options, `--output` and the connection
# options, as `flags: ChangeFlags`.
change_options = common.shared_options((
    ("yes", bool, YES), ("dry_run", bool, DRY_RUN), ("timeout", float, TIMEOUT), ("guard_grace", float, GUARD_GRACE),
    ("break_lock", bool, BREAK_LOCK), ("parallel", int, PARALLEL), *common.NODE_OPTIONS,
), _change_flags, "flags")


def _confirm(yes: bool, output: str) -> Any:
    def confirm(node: str, diff: str) -> bool:
        if yes:
            return True
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            from installer.errors import InputError

            raise InputError("no terminal to ask on: pass --yes to apply the change", node=node) from None
        try:
            from installer.manifest.diff import colorize

            os.write(fd, f"\n{node}:\n{colorize(diff)}\nApply this change to {node}? [y/N] ".encode())
            answer = b""
            while not answer.endswith(b"\n") and (chunk := os.read(fd, 64)):
                answer += chunk
            return answer.decode(errors="replace").strip().lower() in ("y", "yes")
        finally:
            os.close(fd)

    return confirm


def _progress(output: str) -> Any:
    interactive = output == "text" and sys.stderr.isatty()

    def progress(node: str, message: str) -> None:
        if interactive or os.environ.get("KAUDIT_PROGRESS"):
            typer.echo(f"  {node}: {message}", err=True)

    return progress


def run(flags: ChangeFlags, targets: list[str], planner: Any, plan_input: Any, *, policy_text: Any = None) -> None:
    """Run the rollout, print the results, exit with the worst node's code."""
    from installer.change.phases import Options
    from installer.change.rollout import Rollout, run_rollout, worst_exit
    from installer.errors import KauditError
    from installer.targets.connect import open_transport

    common.check_output(flags.output)
    try:
        ssh = flags.conn.ssh_options()
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    options = Options(timeout=flags.timeout, guard_grace=flags.guard_grace, dry_run=flags.dry_run,
                      break_lock=flags.break_lock)
    job = Rollout(lambda t: open_transport(t, ssh), planner, plan_input, options,
                  _confirm(flags.yes, flags.output), _progress(flags.output))
    results = run_rollout(targets, job, flags.parallel)
    for w in dict.fromkeys(w for r in results for w in r.warnings):  # the same policy: once per run
        typer.echo(f"kaudit: {w}", err=True)
    for r in results:
        if r.exit_code == 3:  # the loudest error kaudit has, whatever the output format
            typer.secho(f"\n!!! {r.node}: THE CONTROL PLANE WAS NOT RESTORED. {printable(r.message)}\n", err=True,
                        fg="red", bold=True)
    if flags.output == "json":
        common.print_json("change", [r.to_json() for r in results], dryRun=flags.dry_run)
    else:
        for r in results:
            if flags.dry_run and r.diff is not None:
                if policy_text:
                    typer.echo(f"# policy for {r.node}:\n{policy_text()}")
                if sys.stdout.isatty():
                    from installer.manifest.diff import colorize

                    typer.echo(colorize(printable(r.diff, newlines=True)))  # the node's manifest
                else:
                    typer.echo(printable(r.diff, newlines=True))
            mark = {0: "ok", 1: "FAILED (restored)", 2: "refused", 3: "FAILED, NOT RESTORED", 130: "interrupted"}
            typer.echo(f"{r.node}: {mark.get(r.exit_code, 'error')}: {printable(r.message, newlines=True)}")
            for note in r.notes:
                typer.echo(f"  {printable(note, newlines=True)}")
            if r.verify:
                typer.echo(f"  audit check: {'ok' if r.verify['verified'] else 'not confirmed'}: "
                           f"{printable(str(r.verify['reason']))}")
            for line in r.log_lines:
                typer.echo(f"  kube-apiserver: {printable(line)}")  # the node's log: no terminal controls
            if r.backup and r.ok:
                typer.echo(f"  backup: {r.backup} (kaudit rollback {r.node} undoes this)")
        for caveat in dict.fromkeys(r.caveat for r in results if r.caveat and r.changed):
            typer.echo(f"note: {caveat}")
        if len({r.cluster for r in results}) > 1:
            typer.echo(summary_table(results))
    raise typer.Exit(worst_exit(results))


def summary_table(results: list[Any]) -> str:
    """One row per cluster: how many nodes changed, were already so, failed, or were left alone."""
    rows: dict[str, dict[str, int]] = {}
    for r in results:
        row = rows.setdefault(r.cluster or "-", {"changed": 0, "unchanged": 0, "failed": 0, "not changed": 0})
        if r.ok:
            row["changed" if r.changed else "unchanged"] += 1
        elif r.action == "not-changed":
            row["not changed"] += 1
        else:
            row["failed"] += 1
    width = max(len("cluster"), *(len(c) for c in rows))
    lines = [f"{'cluster':<{width}}  changed  unchanged  failed  not changed"]
    for cluster, row in rows.items():
        lines.append(f"{cluster:<{width}}  {row['changed']:>7}  {row['unchanged']:>9}  {row['failed']:>6}  "
                     f"{row['not changed']:>11}")
    return "\n".join(lines)
