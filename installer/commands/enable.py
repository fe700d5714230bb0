"""`kaudit enable` and `kaudit switch`: converge nodes to a policy profile (or a policy file)."""

from __future__ import annotations

from pathlib import Path

import typer

from installer.commands import changing, common
from installer.commands.backend_options import option
from installer.manifest import settings


def register(app: typer.Typer) -> None:
    app.command("enable")(enable)
    # The same command, but it refuses a node where auditing is off (typer tells them apart by name).
    app.command("switch", help="Like enable, but refuses a node where auditing is off.")(enable)


def _common_enable(
    targets: list[str], profile: str | None, sets: list[str], policy_file: str | None, log_path: str,
    log_maxage: int | None, log_maxbackup: int | None, log_maxsize: int | None, log_format: str | None,
    log_compress: bool | None, webhook_config: str | None, webhook_mode: str | None, adopt: bool, force: bool,
    flags: changing.ChangeFlags, switch_only: bool,
) -> None:
    from installer.change.plans import EnableInput, plan_enable
    from installer.errors import InputError, KauditError
    from installer.policy.source import PolicySource

    try:
        source = PolicySource.from_options(profile=profile, sets=sets, policy_file=policy_file, force=force)
        settings.check({"log_path": log_path, "maxage": log_maxage, "maxbackup": log_maxbackup,
                        "maxsize": log_maxsize, "log_format": log_format, "log_compress": log_compress,
                        "webhook_config": webhook_config, "webhook_mode": webhook_mode})
        webhook: bytes | None = None
        if webhook_config is not None:
            try:
                webhook = Path(webhook_config).read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read --webhook-config {webhook_config}: {exc}") from None
            from installer.policy.webhook import check_kubeconfig

            check_kubeconfig(webhook, webhook_config)
        inp = EnableInput(
            policy=source, log_path=log_path, maxage=log_maxage, maxbackup=log_maxbackup, maxsize=log_maxsize,
            log_format=log_format, log_compress=log_compress, webhook_config=webhook, webhook_mode=webhook_mode,
            adopt=adopt, switch_only=switch_only, webhook_source=webhook_config,
        )
        inp.checks(None)  # an invalid policy, or Secret bodies without --force: refused before any node is reached
    except KauditError as exc:
        typer.echo(f"kaudit: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None

    changing.run(flags, targets, plan_enable, lambda _node: inp, policy_text=lambda: source.text)


PROFILE = typer.Option(None, "--profile", "-p", metavar="PROFILE", help="policy profile (see `kaudit profiles`).")
SETS = typer.Option([], "--set", "-s", metavar="NAME=VALUE", help="profile variable; lists comma-separated.")
POLICY_FILE = typer.Option(
    None, "--policy-file", metavar="FILE", help="a custom audit policy file instead of a profile."
)
LOG_PATH = option("log_path", settings.BY_NAME["log_path"].default)
MAXAGE = option("maxage")
MAXBACKUP = option("maxbackup")
MAXSIZE = option("maxsize")
LOG_FORMAT = option("log_format")
LOG_COMPRESS = option("log_compress")
WEBHOOK = option("webhook_config")
WEBHOOK_MODE = option("webhook_mode")
ADOPT = typer.Option(False, "--adopt", help="take over audit flags and volumes that kaudit did not add.")
FORCE = typer.Option(False, "--force", help="accept a --policy-file that records bodies of Secrets or tokens.")


@changing.change_options
def enable(
    ctx: typer.Context,
    targets: list[str] = common.TARGETS,
    profile: str | None = PROFILE,
    sets: list[str] = SETS,
    policy_file: str | None = POLICY_FILE,
    log_path: str = LOG_PATH,
    log_maxage: int | None = MAXAGE,
    log_maxbackup: int | None = MAXBACKUP,
    log_maxsize: int | None = MAXSIZE,
    log_format: str | None = LOG_FORMAT,
    log_compress: bool | None = LOG_COMPRESS,
    webhook_config: str | None = WEBHOOK,
    webhook_mode: str | None = WEBHOOK_MODE,
    adopt: bool = ADOPT,
    force: bool = FORCE,
    *,
    flags: changing.ChangeFlags,
) -> None:
    """Turn auditing on (or converge to another profile), wait for the new API server, roll back on failure."""
    _common_enable(targets, profile, sets, policy_file, log_path, log_maxage, log_maxbackup, log_maxsize, log_format,
                   log_compress, webhook_config, webhook_mode, adopt, force, flags,
                   switch_only=ctx.info_name == "switch")
