"""What every changing command shares: options, confirmation on /dev/tty, progress, results."""

from __future__ import annotations

import os
import re
import shlex
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
QUIET = typer.Option(
    False, "--quiet", "-q",
    help="no progress lines, and no note on what undoes a live edit (also KAUDIT_QUIET=1)."
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
    quiet: bool = False


def _change_flags(v: dict[str, Any]) -> ChangeFlags:
    quiet = v["quiet"] or os.environ.get("KAUDIT_QUIET", "") not in ("", "0")
    return ChangeFlags(v["yes"], v["dry_run"], v["timeout"], v["guard_grace"], v["break_lock"], v["output"],
                       common.connection(v), v["parallel"], quiet)


# For enable, switch, disable and rollback: the change options, `--output` and the connection
# options, as `flags: ChangeFlags`.
change_options = common.shared_options((
    ("yes", bool, YES), ("dry_run", bool, DRY_RUN), ("timeout", float, TIMEOUT), ("guard_grace", float, GUARD_GRACE),
    ("break_lock", bool, BREAK_LOCK), ("parallel", int, PARALLEL), ("quiet", bool, QUIET), *common.NODE_OPTIONS,
), _change_flags, "flags")


def _ask(node: str, text: str) -> bool:
    """`text` and a [y/N] question on the terminal (/dev/tty, whatever stdin and stdout are)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        from installer.errors import InputError

        raise InputError("no terminal to ask on: pass --yes to apply the change", node=node) from None
    try:
        os.write(fd, text.encode())
        answer = b""
        while not answer.endswith(b"\n") and (chunk := os.read(fd, 64)):
            answer += chunk
        return answer.decode(errors="replace").strip().lower() in ("y", "yes")
    finally:
        os.close(fd)


def _confirm(yes: bool, output: str) -> Any:
    def confirm(node: str, diff: str) -> bool:
        if yes:
            return True
        from installer.manifest.diff import colorize

        return _ask(node, f"\n{node}:\n{colorize(printable(diff, newlines=True))}\nApply this change to {node}? [y/N] ")

    return confirm


def cluster_question(cluster: str, planned: list[Any]) -> str:
    """The one question for a cluster (rollout.Planned per node, in rollout order): what each node would do,
    each distinct diff once with the nodes it is for, and the nodes named in the question."""
    from installer.manifest.diff import colorize

    if len(planned) == 1:
        p = planned[0]
        return f"\n{p.node}:\n{colorize(printable(p.diff, newlines=True))}\nApply this change to {p.node}? [y/N] "
    to_change = [p.node for p in planned if p.diff]
    lines = [f"\n{cluster}: {len(planned)} control-plane nodes, changed one at a time (each only while the others "
             "are healthy, each healthy before the next):"]
    lines += [f"  {p.node}: {printable(p.would)}" if p.diff else f"  {p.node}: already so, nothing to change"
              for p in planned]
    # Nodes differ in their context lines (advertise address, ports): the same added and removed lines is the
    # same change, shown once (with the first node's context).
    diffs: dict[tuple[str, ...], list[Any]] = {}
    for p in planned:
        if p.diff:
            changed = tuple(ln for ln in p.diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---"))
            diffs.setdefault(changed, []).append(p)
    for group in diffs.values():
        who = "every node" if len(diffs) == 1 and len(group) > 1 else ", ".join(p.node for p in group)
        shown = f" (as on {group[0].node})" if len(group) > 1 else ""
        lines.append(f"\nthe change on {who}{shown}:\n{colorize(printable(group[0].diff, newlines=True)).rstrip()}")
    lines.append(f"\nApply this change to {', '.join(to_change)}? [y/N] ")
    return "\n".join(lines)


def _confirm_cluster(yes: bool) -> Any:
    if yes:
        return None

    def confirm(cluster: str, planned: list[Any]) -> bool:
        return _ask(planned[0].node if len(planned) == 1 else cluster, cluster_question(cluster, planned))

    return confirm


_WAITED = re.compile(r"^(?P<state>.*) \((?P<secs>\d+) s of (?P<limit>\d+) s\)$")


class Progress:
    """Progress lines on stderr: on a terminal (or with KAUDIT_PROGRESS=1), none with --quiet. The wait line
    ("waiting for ... (12 s of 120 s)") comes each second: on a terminal it is rewritten in place, elsewhere a
    line is printed when the state changes and every 10 s."""

    def __init__(self, output: str, quiet: bool) -> None:
        self.terminal = output == "text" and sys.stderr.isatty()
        self.on = not quiet and (self.terminal or bool(os.environ.get("KAUDIT_PROGRESS")))
        self.open: str | None = None  # the node whose wait line is open (no newline yet), on a terminal
        self.said: dict[str, tuple[str, int]] = {}  # node -> (state, seconds) last printed elsewhere

    def __call__(self, node: str, message: str) -> None:
        if not self.on:
            return
        message = printable(message)
        waited = _WAITED.match(message)
        if self.terminal and waited is not None and self.open in (None, node):
            sys.stderr.write(f"\r\x1b[K  {node}: {message}")
            sys.stderr.flush()
            self.open = node
            return
        if waited is not None and not self.terminal:
            state, secs = waited["state"], int(waited["secs"])
            last = self.said.get(node)
            if last is not None and last[0] == state and secs - last[1] < 10:
                return
            self.said[node] = (state, secs)
        self.close()
        typer.echo(f"  {node}: {message}", err=True)

    def close(self) -> None:
        """End an open wait line."""
        if self.open is not None:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = None


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
    progress = Progress(flags.output, flags.quiet)
    job = Rollout(lambda t: open_transport(t, ssh), planner, plan_input, options,
                  _confirm(flags.yes, flags.output), progress, _confirm_cluster(flags.yes))
    try:
        results = run_rollout(targets, job, flags.parallel)
    finally:
        progress.close()
    for w in dict.fromkeys(w for r in results for w in r.warnings):  # the same policy: once per run
        typer.echo(f"kaudit: {w}", err=True)
    for r in results:
        if r.exit_code == 3:  # the loudest error kaudit has, whatever the output format
            what = ("THE CONTROL PLANE WAS NOT RESTORED" if r.changed
                    else "ITS API SERVER IS NOT HEALTHY, EVEN WITH THE PREVIOUS MANIFEST")
            typer.secho(f"\n!!! {r.node}: {what}. {printable(r.message)}\n", err=True, fg="red", bold=True)
    stopped = stopped_rollouts(results, targets, sys.argv)
    if flags.output == "json":
        common.print_json("change", [r.to_json() for r in results], dryRun=flags.dry_run, stopped=stopped)
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
            typer.echo(f"{r.node}: {_mark(r)}: {printable(r.message, newlines=True)}")
            for note in r.notes:
                typer.echo(f"  {printable(note, newlines=True)}")
            if r.verify:
                typer.echo(f"  audit check: {'ok' if r.verify['verified'] else 'not confirmed'}: "
                           f"{printable(str(r.verify['reason']))}")
            for line in r.log_lines:
                typer.echo(f"  kube-apiserver: {printable(line)}")  # the node's log: no terminal controls
            if r.backup and r.ok:
                typer.echo(f"  backup: {r.backup} (kaudit rollback {r.node} undoes this)")
        for stop in stopped:
            typer.echo(stopped_text(stop))
        if not flags.quiet:
            for note in dict.fromkeys(_short_caveat(r) for r in results if r.caveat and r.changed):
                typer.echo(note)  # once per run, whatever the number of nodes
        if len({r.cluster for r in results}) > 1:
            typer.echo(summary_table(results))
    raise typer.Exit(worst_exit(results))


_UNDONE_BY = {
    "kubeadm": "`kubeadm upgrade` regenerates the manifest without it",
    "minikube": "`minikube start` rewrites the manifest without it",
    "kind": "a recreated kind cluster starts without it",
}


def _short_caveat(r: Any) -> str:
    """The caveat in two lines (README "Making it permanent" has the rest; `--output json` the whole text)."""
    undone = _UNDONE_BY.get(r.flavor or "", "the flavor's own tools may rewrite the manifest without it")
    return (f"note: this is a live edit: {undone}. To make it permanent: `{r.permanent}`\n"
            "      (README \"Making it permanent\"; -q or KAUDIT_QUIET=1 leaves this note out)")


def _mark(r: Any) -> str:
    """The word before a node's message: what happened to it."""
    if r.exit_code == 3:
        return "FAILED, NOT RESTORED" if r.changed else "FAILED, RESTORED BUT NOT HEALTHY"
    base = {0: "ok", 1: "FAILED (restored)", 2: "refused", 130: "interrupted"}.get(r.exit_code)
    if r.exit_code == 4:
        base = {"failed-restored": "FAILED (restored)", "not-changed": "not changed"}.get(r.action, r.action)
        return f"{base}, rollout stopped"
    return base or "error"


_CHANGING = ("enable", "switch", "disable", "rollback")
# Options that take a value, and those of them (with the flags) that say how to reach the nodes.
_CONNECTION = {"-F", "--ssh-config", "-i", "--identity", "--known-hosts"}
_CONNECTION_FLAGS = {"--accept-new-host-key", "--sudo-password-stdin"}


def rerun_commands(argv: list[str], targets: list[str], remaining: list[str], changed: list[str]
                   ) -> tuple[str | None, str]:
    """(the command that finishes a stopped rollout, the one that undoes it): this run's command line with the
    remaining nodes as targets; `kaudit rollback` of the changed nodes with this run's connection options."""
    command = next((i for i, a in enumerate(argv) if a in _CHANGING), None)
    if command is None:
        finish = None
        rest: list[str] = []
    else:
        rest = list(argv[command + 1:])
        for t in targets:  # the targets as typed: the other arguments are options
            if t in rest:
                rest.remove(t)
        finish = shlex.join(["kaudit", argv[command], *remaining, *rest])
    conn: list[str] = []
    i = 0
    while i < len(rest):
        a = rest[i]
        name = a.split("=", 1)[0]
        if name in _CONNECTION and "=" not in a and i + 1 < len(rest):
            conn += [a, rest[i + 1]]
            i += 1
        elif name in _CONNECTION or a in _CONNECTION_FLAGS:
            conn.append(a)
        i += 1
    return finish, shlex.join(["kaudit", "rollback", *changed, *conn])


def stopped_rollouts(results: list[Any], targets: list[str], argv: list[str]) -> list[dict[str, Any]]:
    """Per cluster whose rollout stopped part-way: where, the nodes changed and not, and the two ways out."""
    from installer.change.rollout import changed_nodes

    out: list[dict[str, Any]] = []
    for cluster in dict.fromkeys(r.cluster for r in results if r.stopped_at):
        members = [r for r in results if r.cluster == cluster]
        changed = changed_nodes(members)
        left = [r.node for r in members if r.stopped_at]
        finish, undo = rerun_commands(argv, targets, left, changed)
        at = next(r.stopped_at for r in members if r.stopped_at)
        out.append({"cluster": cluster, "at": at, "changed": changed, "notChanged": left, "finish": finish,
                    "undo": undo})
    return out


def stopped_text(stop: dict[str, Any]) -> str:
    changed, left = " ".join(stop["changed"]), " ".join(stop["notChanged"])
    finish = f"`{stop['finish']}`" if stop["finish"] else f"the same command on {left}"
    return printable(
        f"ROLLOUT STOPPED at {stop['at']}: the cluster {stop['cluster']} is mixed: changed {changed}; not changed "
        f"{left}.\n  to finish it: {finish}\n  to undo it:   `{stop['undo']}`", newlines=True)


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
