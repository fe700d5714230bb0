"""Files an operator hands kaudit for a fleet of test nodes: an Ansible YAML inventory, a merged known_hosts."""

from __future__ import annotations

from pathlib import Path

from tests.node.node import TestNode


def inventory_file(path: Path, clusters: dict[str, list[TestNode]]) -> Path:
    lines = ["all:", "  children:"]
    for name, nodes in clusters.items():
        lines += [f"    {name}:", "      hosts:"]
        for i, n in enumerate(nodes):
            lines += [
                f"        {name}-cp{i}:",
                f"          ansible_host: {n.host}",
                f"          ansible_port: {n.ssh_port}",
                "          ansible_user: kadmin",
                f"          ansible_ssh_private_key_file: {n.key_path}",
            ]
    path.write_text("\n".join(lines) + "\n")
    return path


def known_hosts_file(path: Path, nodes: list[TestNode]) -> Path:
    path.write_text("".join(n.known_hosts.read_text() for n in nodes))
    return path
