"""`kaudit inventory CONTEXT...`: the Ansible YAML inventory equivalent to `kube://CONTEXT` targets."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command(name="inventory")(inventory)


def inventory(
    contexts: list[str] = typer.Argument(  # noqa: B008
        ..., metavar="CONTEXT...", help="kubeconfig contexts (kube://CONTEXT is accepted too)."
    ),
) -> None:
    """Print an Ansible YAML inventory of the control-plane nodes of kube contexts: one group per context.

    The nodes are those `kube://CONTEXT` targets reach (kubectl --context CONTEXT get nodes -l
    node-role.kubernetes.io/control-plane: InternalIP, else Hostname), so `kaudit enable INVENTORY` and the
    kaudit.audit collection's playbooks run on the same nodes. Nothing is printed on stdout unless every
    context could be listed; exit 2 otherwise.
    """
    from installer.errors import KauditError
    from installer.targets import kube
    from installer.targets.parse import context_of

    found: list[tuple[str, list[kube.KubeNode]]] = []
    errors: list[KauditError] = []
    seen: set[str] = set()
    for raw in contexts:
        try:
            context = context_of(raw)
            if context in seen:
                continue
            seen.add(context)
            found.append((context, kube.list_control_plane(context)))
        except KauditError as exc:
            errors.append(exc)
    for error in errors:
        typer.echo(f"kaudit: {error}", err=True)
    if errors:
        raise typer.Exit(2)
    typer.echo(kube.inventory_text(found), nl=False)
