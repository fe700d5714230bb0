"""`kaudit export --profile P --format kubeadm|minikube|kind`"""

from __future__ import annotations

import typer

from installer.commands.backend_options import option


def register(app: typer.Typer) -> None:
    app.command()(export)


def _complete_format(incomplete: str) -> list[str]:
    return [name for name in ("kubeadm", "minikube", "kind") if name.startswith(incomplete)]


def _read_webhook(path: str) -> str:
    """The webhook kubeconfig's text, checked as enable checks it."""
    from pathlib import Path

    from installer.errors import InputError
    from installer.policy.webhook import check_kubeconfig

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read --webhook-config {path}: {exc}") from None
    check_kubeconfig(data, path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--webhook-config {path} is not UTF-8 text") from None


def export(
    profile: str | None = typer.Option(
        None, "--profile", "-p", metavar="PROFILE", help="policy profile (see `kaudit profiles`)."
    ),
    policy_file: str | None = typer.Option(
        None, "--policy-file", metavar="FILE", help="export this policy file instead of a profile."
    ),
    sets: list[str] = typer.Option(  # noqa: B008
        [], "--set", "-s", metavar="NAME=VALUE", help="profile variable; lists comma-separated."
    ),
    fmt: str = typer.Option(
        ..., "--format", "-f", metavar="[kubeadm|minikube|kind]", help="the tool the cluster was made with.",
        autocompletion=_complete_format,
    ),
    kubernetes_version: str | None = typer.Option(
        None, "--kubernetes-version", metavar="X.Y",
        help="X.Y of the cluster: picks kubeadm's v1beta3 (< 1.31) or v1beta4 form."
    ),
    log_path: str | None = option("log_path", more_help="(default: the flavor's; minikube: only -)."),
    maxage: int | None = option("maxage"),
    maxbackup: int | None = option("maxbackup"),
    maxsize: int | None = option("maxsize"),
    log_format: str | None = option("log_format"),
    log_compress: bool | None = option("log_compress"),
    webhook_config: str | None = option("webhook_config"),
    webhook_mode: str | None = option("webhook_mode"),
    force: bool = typer.Option(
        False, "--force", help="accept a --policy-file that records bodies of Secrets or tokens."
    ),
    out_dir: str | None = typer.Option(
        None, "--out-dir", "--out", metavar="DIR",
        help="write each file under its own name into DIR (created if missing; the policy 0600) instead of "
        "printing.",
    ),
) -> None:
    """Print the declarative equivalent of `kaudit enable`, which survives kubeadm upgrade, minikube start
    and kind cluster re-creation: the configuration and the policy file to place beside it.

    Standard output is one YAML stream: the ClusterConfiguration (kubeadm) or kind Cluster (kind) document,
    then the Policy document, each under a comment naming its file. minikube's `minikube start
    --extra-config` command is a shell script, not YAML: it appears as comments (each line after "# "), so
    the stream holds only the Policy document. --out-dir writes the files themselves."""
    from installer.errors import InputError
    from installer.manifest import export as exporter
    from installer.manifest import settings as table
    from installer.policy import source as policy_source
    from installer.policy import validate as policy

    source = policy_source.PolicySource.from_options(profile=profile, sets=sets, policy_file=policy_file,
                                                     force=force)
    if fmt not in exporter.FORMATS:
        raise InputError(f"--format must be one of {', '.join(exporter.FORMATS)}, not {fmt!r}")
    table.check({"log_path": log_path, "maxage": maxage, "maxbackup": maxbackup, "maxsize": maxsize,
                 "log_format": log_format, "log_compress": log_compress, "webhook_config": webhook_config,
                 "webhook_mode": webhook_mode})
    webhook = None if webhook_config is None else _read_webhook(webhook_config)
    version: tuple[int, int] | None = None
    if kubernetes_version is not None:
        try:
            version = policy.parse_version(kubernetes_version)
        except ValueError as exc:
            raise InputError(f"--kubernetes-version: {exc}") from None
    checked = policy_source.check(source, version)
    for warning in checked.warnings:
        typer.echo(f"kaudit: {warning}", err=True)
    text, defaults = checked.text, checked.log_defaults
    settings = exporter.Settings(
        policy=text,
        profile=profile,
        kubernetes_version=version,
        log_path=log_path,
        maxage=defaults[0] if maxage is None else maxage,
        maxbackup=defaults[1] if maxbackup is None else maxbackup,
        maxsize=defaults[2] if maxsize is None else maxsize,
        log_format=log_format,
        log_compress=log_compress,
        webhook=webhook,
        webhook_mode=webhook_mode,
    )
    result = exporter.export(fmt, settings)
    if out_dir is None:
        typer.echo(result.to_text(), nl=False)
        return
    for path in result.write(out_dir):
        typer.echo(f"wrote {path}")
    for path in result.directories(out_dir):
        typer.echo(f"made directory {path}/ (the audit log's host side)")
