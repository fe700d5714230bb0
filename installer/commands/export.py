"""`kaudit export --profile P --format kubeadm|minikube|kind`"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command()(export)


def _complete_format(incomplete: str) -> list[str]:
    return [name for name in ("kubeadm", "minikube", "kind") if name.startswith(incomplete)]


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
    log_path: str | None = typer.Option(
        None, "--log-path", metavar="PATH",
        help="audit log path on the node, or - for the API server's stdout (minikube: only -)."
    ),
    maxage: int | None = typer.Option(
        None, "--log-maxage", metavar="DAYS", help="days to keep rotated logs (profile default)."
    ),
    maxbackup: int | None = typer.Option(
        None, "--log-maxbackup", metavar="N", help="rotated files to keep (profile default)."
    ),
    maxsize: int | None = typer.Option(
        None, "--log-maxsize", metavar="MB", help="MB before rotation (profile default)."
    ),
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
    from installer.policy import source as policy_source
    from installer.policy import validate as policy

    source = policy_source.PolicySource.from_options(profile=profile, sets=sets, policy_file=policy_file,
                                                     force=force)
    if fmt not in exporter.FORMATS:
        raise InputError(f"--format must be one of {', '.join(exporter.FORMATS)}, not {fmt!r}")
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
    )
    result = exporter.export(fmt, settings)
    if out_dir is None:
        typer.echo(result.to_text(), nl=False)
        return
    for path in result.write(out_dir):
        typer.echo(f"wrote {path}")
    for path in result.directories(out_dir):
        typer.echo(f"made directory {path}/ (the audit log's host side)")
