"""Options and output helpers shared by the node commands. Light imports only."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer

SCHEMA_VERSION = 1

TARGETS = typer.Argument(
    ...,
    metavar="TARGET",
    help="user@host[:port], ssh://user@host:port, an ~/.ssh/config alias, local, kind://[cluster][/node], "
    "minikube://[profile][/node], or an Ansible YAML inventory file (each group one cluster). "
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
    False, "--sudo-password-stdin", help="read the sudo password from the first line of standard input."
)


@dataclass(frozen=True)
class Connection:
    ssh_config: str | None
    identity: str | None
    known_hosts: str | None
    accept_new_host_key: bool
    sudo_password_stdin: bool

    def ssh_options(self) -> Any:
        from installer.transport.ssh import SSHOptions

        password = None
        if self.sudo_password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        return SSHOptions(
            config_file=self.ssh_config,
            identity_file=self.identity,
            known_hosts=self.known_hosts,
            accept_new_host_key=self.accept_new_host_key,
            sudo_password=password,
        )


def check_output(output: str) -> None:
    if output not in ("text", "json"):
        typer.echo(f"kaudit: --output must be text or json, not {output!r}", err=True)
        raise typer.Exit(2)


def print_json(command: str, nodes: list[dict[str, Any]], **extra: Any) -> None:
    doc = {"schemaVersion": SCHEMA_VERSION, "command": command, **extra, "nodes": nodes}
    typer.echo(json.dumps(doc, indent=2, sort_keys=False))
