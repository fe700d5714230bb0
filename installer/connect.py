"""Open the right transport for a target."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import replace
from typing import TYPE_CHECKING

from installer.targets import Target
from installer.transport import Transport
from installer.transport.ssh import SSHOptions

if TYPE_CHECKING:
    from installer.flavors import NodeSpec


def open_transport(target: Target, ssh: SSHOptions) -> Transport:
    """A connected transport (sudo already checked), or a NodeError naming the node and the cause.

    kind:// and minikube:// targets must name one node (or stand for a cluster with a single
    control plane): `flavors.expand_cluster` turns a cluster target into its nodes first.
    """
    if target.kind == "local":
        from installer.transport.local import LocalTransport

        return LocalTransport()
    if target.kind == "ssh":
        from installer.transport.ssh import SSHTransport

        identity = getattr(target, "identity_file", None)  # inventory hosts carry their own key
        transport = SSHTransport(target, replace(ssh, identity_file=identity) if identity else ssh)
        transport.connect()
        return transport
    from installer import flavors

    return open_node(flavors.resolve_node(target), ssh)


def open_node(spec: NodeSpec, ssh: SSHOptions) -> Transport:
    """Open a node found by discovery."""
    if spec.via == "local":
        from installer.transport.local import LocalTransport

        local = LocalTransport()
        local.name = spec.name
        return local
    if spec.via == "docker":
        from installer.transport.docker import DockerExecTransport

        assert spec.container is not None
        return DockerExecTransport(spec.container, engine=spec.engine, display=spec.name)
    from installer.transport.ssh import SSHTransport

    # minikube's own host-key handling (no checking): see the flavors module docstring. The key
    # the node offers is accepted into a throwaway known_hosts file; the user's ~/.ssh/config is
    # not consulted (the address and key come from minikube), so the empty config is os.devnull.
    node = Target(raw=spec.name, kind="ssh", host=spec.host, user=spec.user, port=spec.port)
    options = replace(
        ssh,
        config_file=os.devnull,
        identity_file=spec.key_file,
        known_hosts=os.path.join(_scratch_dir(), "known_hosts"),
        accept_new_host_key=True,
    )
    transport = SSHTransport(node, options)
    transport.name = spec.name
    transport.connect()
    return transport


_SCRATCH: list[str] = []


def _scratch_dir() -> str:
    if not _SCRATCH:
        path = tempfile.mkdtemp(prefix="kaudit-minikube-")
        _SCRATCH.append(path)
        atexit.register(shutil.rmtree, path, True)
    return _SCRATCH[0]
