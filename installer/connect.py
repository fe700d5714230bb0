"""Open the right transport for a target."""

from __future__ import annotations

from installer.errors import InputError
from installer.targets import Target
from installer.transport import Transport
from installer.transport.ssh import SSHOptions


def open_transport(target: Target, ssh: SSHOptions) -> Transport:
    """A connected transport (sudo already checked), or a NodeError naming the node and the cause."""
    if target.kind == "local":
        from installer.transport.local import LocalTransport

        return LocalTransport()
    if target.kind == "ssh":
        from installer.transport.ssh import SSHTransport

        transport = SSHTransport(target, ssh)
        transport.connect()
        return transport
    raise InputError(f"target {target.raw}: {target.kind}:// targets are not available in this version of kaudit")
