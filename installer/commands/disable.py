"""`kaudit disable TARGET...`: remove exactly what kaudit added; policies and logs stay."""

from __future__ import annotations

import typer

from installer.commands import changing, common


def register(app: typer.Typer) -> None:
    app.command()(disable)


def disable(
    targets: list[str] = common.TARGETS,
    yes: bool = changing.YES,
    dry_run: bool = changing.DRY_RUN,
    timeout: float = changing.TIMEOUT,
    guard_grace: float = changing.GUARD_GRACE,
    break_lock: bool = changing.BREAK_LOCK,
    parallel: int = changing.PARALLEL,
    output: str = common.OUTPUT,
    ssh_config: str | None = common.SSH_CONFIG,
    identity: str | None = common.IDENTITY,
    known_hosts: str | None = common.KNOWN_HOSTS,
    accept_new_host_key: bool = common.ACCEPT_NEW,
    sudo_password_stdin: bool = common.SUDO_PASSWORD_STDIN,
) -> None:
    """Turn auditing off: remove the flags, volumes and mounts kaudit added, and wait for the API server."""
    from installer.operations.plans import plan_disable

    flags = changing.ChangeFlags(yes, dry_run, timeout, guard_grace, break_lock, output,
                                 common.Connection(ssh_config, identity, known_hosts, accept_new_host_key,
                                                   sudo_password_stdin), parallel)
    changing.run(flags, targets, plan_disable, lambda _t: None)
