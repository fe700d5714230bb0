"""~/.ssh/config lookup, with `Include` resolved (paramiko's parser has none)."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import paramiko


@dataclass(frozen=True)
class HostConfig:
    hostname: str
    port: int
    user: str | None
    identity_files: list[str] = field(default_factory=list)
    proxy_jump: str | None = None
    known_hosts_files: list[str] = field(default_factory=list)
    identities_only: bool = False  # IdentitiesOnly yes: the configured keys only, never the agent's others
    proxy_command: str | None = None  # tokens expanded (paramiko's lookup does %h, %p, %r)
    connect_timeout: float | None = None  # ConnectTimeout, seconds


def _expand_includes(path: Path, seen: set[Path], depth: int = 0) -> str:
    """Inline `Include` lines: relative paths are relative to ~/.ssh, globs allowed (ssh_config(5))."""
    if depth > 16 or path in seen or not path.is_file():
        return ""
    seen.add(path)
    out: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        words = line.strip().split(None, 1)
        if len(words) == 2 and words[0].lower() == "include":
            for pattern in words[1].split():
                pattern = os.path.expanduser(pattern)
                if not os.path.isabs(pattern):
                    pattern = str(Path("~/.ssh").expanduser() / pattern)
                for included in sorted(glob.glob(pattern)):
                    out.append(_expand_includes(Path(included), seen, depth + 1))
            continue
        out.append(line)
    return "\n".join(out)


def load(config_file: str | None) -> paramiko.SSHConfig:
    import paramiko

    path = Path(config_file).expanduser() if config_file else Path("~/.ssh/config").expanduser()
    return paramiko.SSHConfig.from_text(_expand_includes(path, set()))


def lookup(config: paramiko.SSHConfig, host: str) -> HostConfig:
    """The settings for `host`. Raises InputError for a setting kaudit cannot honour as OpenSSH would:
    it never connects some other way than the configuration says."""
    from installer.errors import InputError

    entry = config.lookup(host)
    identity = [os.path.expanduser(p) for p in entry.get("identityfile", [])]
    known = [os.path.expanduser(p) for p in str(entry.get("userknownhostsfile", "")).split() if p]
    port = str(entry.get("port", 22))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"ssh config: Port {port} for host {host} is not a port number")
    jump = entry.get("proxyjump")
    jump = None if jump is None or jump.lower() == "none" else jump
    command = entry.get("proxycommand")
    command = None if command is None or command.lower() == "none" else command
    if jump and command:
        raise InputError(f"ssh config: host {host} has both ProxyJump and ProxyCommand; OpenSSH uses whichever "
                         "comes first, which kaudit cannot tell: keep one")
    timeout = str(entry.get("connecttimeout", "")).strip()
    if timeout and (not timeout.isdigit() or int(timeout) == 0):
        raise InputError(f"ssh config: ConnectTimeout {timeout} for host {host} is not a number of seconds")
    return HostConfig(
        hostname=str(entry.get("hostname", host)),
        port=int(port),
        user=entry.get("user"),
        identity_files=identity,
        proxy_jump=jump,
        known_hosts_files=known,
        identities_only=str(entry.get("identitiesonly", "no")).lower() == "yes",
        proxy_command=command,
        connect_timeout=float(timeout) if timeout else None,
    )
