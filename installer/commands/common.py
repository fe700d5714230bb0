"""Options and output helpers shared by the node commands. Light imports only."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

SCHEMA_VERSION = 2  # docs/output.md: what changed at each version

TARGETS = typer.Argument(
    ...,
    metavar="TARGET",
    help="user@host[:port], ssh://user@host:port, an ~/.ssh/config alias, local, kind://[cluster][/node], "
    "minikube://[profile][/node], kube://CONTEXT (its control-plane nodes, from kubectl), or an Ansible YAML "
    "inventory file (each group one cluster). "
    "ssh targets named together are the control-plane nodes of one cluster.",
)
OUTPUT = typer.Option("text", "--output", "-o", metavar="[text|json]", help="json: the schema in docs/output.md.")
SSH_CONFIG = typer.Option(None, "-F", "--ssh-config", metavar="FILE", help="ssh config file (default ~/.ssh/config).")
IDENTITY = typer.Option(None, "-i", "--identity", metavar="FILE", help="private key file.")
KNOWN_HOSTS = typer.Option(None, "--known-hosts", metavar="FILE", help="known_hosts file (default ~/.ssh/known_hosts).")
ACCEPT_NEW = typer.Option(
    False, "--accept-new-host-key", help="accept and record the host key of a host not yet in known_hosts."
)
SUDO_PASSWORD_STDIN = typer.Option(
    False, "--sudo-password-stdin",
    help="read the sudo password from the first line of standard input (on a terminal: asked without echo).",
)
ASK_SUDO_PASSWORD = typer.Option(
    False, "--ask-sudo-password", "-K",
    help="ask for the sudo password before connecting, once for every node, without echo (as ansible -K). "
    "Without it kaudit asks on a terminal when a node's sudo wants a password.",
)
CONNECT_TIMEOUT = typer.Option(
    None, "--connect-timeout", metavar="S", min=1,
    help="seconds to wait for a node's SSH server (default: ConnectTimeout from the ssh config, else 10).",
)


@dataclass(frozen=True)
class Connection:
    ssh_config: str | None
    identity: str | None
    known_hosts: str | None
    accept_new_host_key: bool
    sudo_password_stdin: bool
    ask_sudo_password: bool = False
    connect_timeout: int | None = None

    def ssh_options(self) -> Any:
        """The run's SSH options; the sudo password read (or asked, -K) here, once, kept in memory only."""
        from installer.transport.ssh import SSHOptions, sudo_password

        return SSHOptions(
            config_file=self.ssh_config,
            identity_file=self.identity,
            known_hosts=self.known_hosts,
            accept_new_host_key=self.accept_new_host_key,
            sudo_password=sudo_password(from_stdin=self.sudo_password_stdin, ask=self.ask_sudo_password),
            connect_timeout=self.connect_timeout,
        )


# (parameter name, type, typer option): options several commands take, in the order --help lists them.
SharedOptions = tuple[tuple[str, Any, Any], ...]
CONNECTION_OPTIONS: SharedOptions = (
    ("ssh_config", str | None, SSH_CONFIG),
    ("identity", str | None, IDENTITY),
    ("known_hosts", str | None, KNOWN_HOSTS),
    ("accept_new_host_key", bool, ACCEPT_NEW),
    ("sudo_password_stdin", bool, SUDO_PASSWORD_STDIN),
    ("ask_sudo_password", bool, ASK_SUDO_PASSWORD),
    ("connect_timeout", int | None, CONNECT_TIMEOUT),
)


def shared_options(options: SharedOptions, gather: Callable[[dict[str, Any]], Any], into: str
                   ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command `options` after its own parameters, and hand it their values gathered into the
    one keyword argument `into`. typer builds a command's options from its signature, so without
    this every node command would repeat the same dozen parameters."""
    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(command, eval_str=True)
        own = [p for name, p in sig.parameters.items() if name != into]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                 for name, kind, default in options]

        @functools.wraps(command)
        def with_options(*args: Any, **kwargs: Any) -> None:
            values = {name: kwargs.pop(name) for name, _, _ in options}
            command(*args, **kwargs, **{into: gather(values)})

        params = [*own, *added]
        with_options.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in params}
        return with_options

    return decorate


@dataclass(frozen=True)
class NodeOptions:
    """What every command that reaches nodes takes: the output format and how to connect."""

    output: str
    conn: Connection


def _node_options(v: dict[str, Any]) -> NodeOptions:
    return NodeOptions(v["output"], connection(v))


def connection(v: dict[str, Any]) -> Connection:
    return Connection(v["ssh_config"], v["identity"], v["known_hosts"], v["accept_new_host_key"],
                      v["sudo_password_stdin"], v["ask_sudo_password"], v["connect_timeout"])


# For status and backups: `--output` and the connection options, as `opts: NodeOptions`.
NODE_OPTIONS: SharedOptions = (("output", str, OUTPUT), *CONNECTION_OPTIONS)
node_options = shared_options(NODE_OPTIONS, _node_options, "opts")


def kubernetes_version(value: str | None, default: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """`--kubernetes-version X.Y` parsed, or one line and exit 2."""
    from installer.policy.validate import parse_version

    try:
        return parse_version(value) if value else default
    except ValueError as exc:
        typer.echo(f"kaudit: --kubernetes-version: {exc}", err=True)
        raise typer.Exit(2) from None


def check_output(output: str) -> None:
    if output not in ("text", "json"):
        typer.echo(f"kaudit: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)


def print_json(command: str, nodes: list[dict[str, Any]], **extra: Any) -> None:
    doc = {"schemaVersion": SCHEMA_VERSION, "command": command, **extra, "nodes": nodes}
    typer.echo(json.dumps(doc, indent=2, sort_keys=False))
