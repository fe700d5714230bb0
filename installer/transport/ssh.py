"""SSH transport (paramiko): one connection per node, reused for every step.

Host keys are checked against known_hosts: an unknown key is refused unless the user accepts it
explicitly (then recorded), a changed key is always refused. When the login user is not root,
every command runs under sudo: non-interactive, or with the password fed on the channel's stdin
(never argv or environment), and with a pty only where `requiretty` demands one.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import NodeError
from installer.targets.parse import Target, parse_target
from installer.transport import Result, Session, Transport, _StreamSession, sshconfig

if TYPE_CHECKING:
    import paramiko

_PROMPT = "[kaudit-sudo-prompt]"
# Does sudo run a command without a password? -k: a cached credential does not count.
_NO_PASSWORD_PROBE = "sudo -n -k -- id -u"  # noqa: S105 (a command, not a password)


@dataclass(frozen=True)
class SSHOptions:
    config_file: str | None = None  # -F
    identity_file: str | None = None  # -i
    known_hosts: str | None = None  # --known-hosts
    accept_new_host_key: bool = False
    sudo_password: str | None = None
    connect_timeout: float = 10.0


def fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _host_key_policy(known_hosts: Path, accept_new: bool, node: str) -> Any:
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
            if not accept_new:
                raise NodeError(
                    f"unknown host key {key.get_name()} {fingerprint(key)} for {hostname} (not in {known_hosts}); "
                    "check it and re-run with --accept-new-host-key to record it",
                    node=node,
                )
            known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with known_hosts.open("a", encoding="utf-8") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")

    return Policy()


class SSHTransport(Transport):
    def __init__(self, target: Target, options: SSHOptions, via: str | None = None) -> None:
        super().__init__()
        self._via = via  # a hop of a ProxyJump chain: the hops before it (its own ssh config applies to the first)
        self.target = target
        self.options = options
        self.name = target.display
        self.user = ""
        self._client: paramiko.SSHClient | None = None
        self._hop: SSHTransport | None = None  # the jump host this connection goes through
        self._sudo_mode: str | None = None  # None (root), "n", "password", "pty"
        # With a pty: whether sudo prompts (then the password answers its prompt) or not.
        self._sudo_password_needed = False

    # -- connecting ---------------------------------------------------------------------------
    def connect(self) -> None:
        import paramiko

        assert self.target.host is not None
        config = sshconfig.lookup(sshconfig.load(self.options.config_file), self.target.host)
        host = config.hostname
        port = self.target.port or config.port
        self.user = self.target.user or config.user or getpass.getuser()
        known = Path(
            self.options.known_hosts
            or (config.known_hosts_files[0] if config.known_hosts_files else "~/.ssh/known_hosts")
        ).expanduser()
        client = paramiko.SSHClient()
        if known.is_file():
            client.load_host_keys(str(known))
        client.set_missing_host_key_policy(_host_key_policy(known, self.options.accept_new_host_key, self.name))
        keys = [self.options.identity_file] if self.options.identity_file else config.identity_files
        keys = [k for k in keys if k and os.path.exists(os.path.expanduser(k))]
        jump = self._via or config.proxy_jump
        sock: Any = None
        if jump:
            sock = self._proxy_sock(jump, host, port)
            self.address = f"{jump} -> {host}"
        elif config.proxy_command:
            sock = paramiko.ProxyCommand(config.proxy_command)  # as OpenSSH: never straight to HostName
            self.address = f"{config.proxy_command} -> {host}"
        else:
            self.address = host
        where = f"{host}:{port}"
        try:
            client.connect(
                host, port=port, username=self.user, key_filename=keys or None,  # type: ignore[arg-type]
                allow_agent=not config.identities_only,
                look_for_keys=not (self.options.identity_file or config.identities_only),
                timeout=self.options.connect_timeout, banner_timeout=self.options.connect_timeout,
                auth_timeout=self.options.connect_timeout, sock=sock,
            )
        except paramiko.BadHostKeyException as exc:
            raise NodeError(
                f"HOST KEY CHANGED for {where}: the server offers {fingerprint(exc.key)} but {known} "
                f"records {fingerprint(exc.expected_key)}; refusing to connect (possible man-in-the-middle)",
                node=self.name,
            ) from None
        except paramiko.AuthenticationException:
            how = f"key {self.options.identity_file}" if self.options.identity_file else "the agent and key files"
            raise NodeError(
                f"authentication failed for user {self.user} at {where} with {how}", node=self.name
            ) from None
        except NodeError:
            raise
        except TimeoutError:
            raise NodeError(f"cannot connect to {where}: timed out", node=self.name) from None
        except socket.gaierror as exc:
            raise NodeError(f"cannot resolve host {host}: {exc.strerror}", node=self.name) from None
        except paramiko.ssh_exception.NoValidConnectionsError:
            raise NodeError(f"cannot connect to {where}: connection refused", node=self.name) from None
        except (OSError, paramiko.SSHException) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise NodeError(f"cannot connect to {where}: {reason.lower()}", node=self.name) from None
        self._client = client
        self._detect_sudo()

    def _proxy_sock(self, jump: str, host: str, port: int) -> Any:
        """ProxyJump: a direct-tcpip channel through the last jump host, itself reached through the
        hops before it (`-J a,b`: a, then b, then the node), as OpenSSH does."""
        hops = [h.strip() for h in jump.split(",") if h.strip()]
        hop = SSHTransport(parse_target(hops[-1]), self.options, via=",".join(hops[:-1]))
        hop.connect_only()
        assert hop._client is not None
        self._hop = hop
        transport = hop._client.get_transport()
        assert transport is not None
        return transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0))

    def connect_only(self) -> None:
        saved = self._detect_sudo
        self._detect_sudo = lambda: None  # type: ignore[method-assign]
        try:
            self.connect()
        finally:
            self._detect_sudo = saved  # type: ignore[method-assign]

    def _detect_sudo(self) -> None:
        """Root needs no sudo; otherwise find the sudo mode that works, or say precisely why none does.

        Whether sudo asks for a password is probed first, without one (`sudo -n -k`: a cached
        credential does not count). Where it asks none, the password is never sent: sudo would not
        read it and the command would take it as its input (a NOPASSWD node once got the password
        line as its new manifest)."""
        if self.user == "root":
            self._sudo_mode = None
            return
        self._sudo_mode = "n"
        probe = self._exec(_NO_PASSWORD_PROBE, None, 30.0)
        if probe.rc == 0 and probe.text.strip() == "0":
            return
        err = probe.err.lower()
        if "tty" in err:
            self._sudo_mode = "pty"
            probe = self._exec(_NO_PASSWORD_PROBE, None, 30.0)
            if probe.rc == 0 and probe.text.strip().endswith("0"):
                self._sudo_password_needed = False
                return
            err = probe.err.lower() or probe.text.lower()
        if ("password is required" in err or "a terminal is required" in err) \
                and self.options.sudo_password is not None:
            if self._sudo_mode == "n":
                self._sudo_mode = "password"
            self._sudo_password_needed = True
            probe = self._exec(self._wrap("id -u"), None, 30.0)
            if probe.rc == 0 and probe.text.strip().endswith("0"):
                return
            err = probe.err.lower() or probe.text.lower()
        if "password is required" in err or "a terminal is required" in err:
            raise NodeError(
                f"sudo for {self.user} wants a password (or {self.user} may not use sudo at all): give the password "
                "with --sudo-password-stdin", node=self.name
            )
        if "incorrect password" in err or "sorry, try again" in err:
            raise NodeError(f"sudo for {self.user}: incorrect password", node=self.name)
        if "not in the sudoers" in err or "not allowed" in err or "may not run sudo" in err:
            raise NodeError(f"user {self.user} may not use sudo, and kaudit needs root on the node", node=self.name)
        raise NodeError(f"cannot become root with sudo as {self.user}: {probe.err or probe.text}", node=self.name)

    # -- running ------------------------------------------------------------------------------
    def _wrap(self, command: str) -> str:
        if self._sudo_mode is None:
            return command
        if self._sudo_mode == "n":
            return "sudo -n -- " + command
        if self._sudo_mode == "password":
            # -k: always ask, so the password line is always consumed by sudo, never by the command.
            return "sudo -S -k -p '' -- " + command
        prompt = shlex.quote(_PROMPT)
        if self._sudo_password_needed:
            return f"sudo -k -p {prompt} -- " + command
        return "sudo -n -- " + command

    def _run(self, command: str, stdin: bytes | None, timeout: float | None) -> Result:
        if self._sudo_mode == "pty" and stdin:
            return self._run_pty_with_data(command, stdin, timeout)
        return self._exec(self._wrap(command), stdin, timeout)

    def _run_pty_with_data(self, command: str, stdin: bytes, timeout: float | None) -> Result:
        # A pty mangles binary stdin: stage the data in a private file as the login user first.
        staged = self._exec('umask 077; t=$(mktemp) && cat > "$t" && printf %s "$t"', stdin, timeout, sudo_pty=False)
        if staged.rc != 0:
            raise NodeError(f"cannot stage data for sudo: {staged.err}", node=self.name)
        path = shlex.quote(staged.text.strip())
        return self._exec(f"{self._wrap(command)} < {path}; rc=$?; rm -f {path}; exit $rc", None, timeout)

    def _exec(self, command: str, stdin: bytes | None, timeout: float | None, *, sudo_pty: bool = True) -> Result:
        import paramiko

        if self._client is None:
            raise NodeError("not connected", node=self.name)
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise NodeError("the SSH connection was lost", node=self.name)
        try:
            chan = transport.open_session(timeout=self.options.connect_timeout)
            pty = sudo_pty and self._sudo_mode == "pty"
            if pty:
                chan.get_pty(term="dumb", width=4000)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if self._sudo_mode == "password" and not pty and self.options.sudo_password is not None:
                chan.sendall(self.options.sudo_password.encode() + b"\n")
            if pty and self._sudo_password_needed:
                self._answer_prompt(chan, timeout)
            if stdin:
                chan.sendall(stdin)
            if not pty:
                chan.shutdown_write()
            out = _read_all(chan.makefile("rb"))
            err = _read_all(chan.makefile_stderr("rb"))
            rc = chan.recv_exit_status()
            chan.close()
        except TimeoutError:
            raise NodeError(f"remote command timed out after {timeout} s", node=self.name) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise NodeError(_lost(exc), node=self.name) from None
        if rc == -1:
            raise NodeError("the SSH connection was lost", node=self.name)
        if pty:
            out = out.replace(b"\r\n", b"\n")
        return Result(rc, out, err)

    def _open(self, command: str) -> Session:
        if self._client is None or (transport := self._client.get_transport()) is None or not transport.is_active():
            raise NodeError("the SSH connection was lost", node=self.name)
        import paramiko

        try:
            chan = transport.open_session(timeout=self.options.connect_timeout)
            pty = self._sudo_mode == "pty"
            if pty:
                chan.get_pty(term="dumb", width=4000)
            chan.exec_command(self._wrap(command))
            if self._sudo_mode == "password" and self.options.sudo_password is not None:
                chan.sendall(self.options.sudo_password.encode() + b"\n")
            if pty and self._sudo_password_needed:
                self._answer_prompt(chan, 30.0)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise NodeError(_lost(exc), node=self.name) from None
        return _StreamSession(chan.makefile("rb"), chan.close)

    def _answer_prompt(self, chan: Any, timeout: float | None) -> None:
        """With a pty, sudo asks on the terminal: wait for our prompt, then answer it (echo is off)."""
        seen = b""
        deadline = time.monotonic() + (timeout or 30.0)
        while _PROMPT.encode() not in seen:
            if chan.exit_status_ready() and not chan.recv_ready():
                return
            if time.monotonic() > deadline:
                raise NodeError("sudo did not prompt for a password", node=self.name)
            if chan.recv_ready():
                seen += chan.recv(4096)
            else:
                time.sleep(0.01)
        assert self.options.sudo_password is not None
        chan.sendall(self.options.sudo_password.encode() + b"\n")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._hop is not None:
            self._hop.close()
        self._client = self._hop = None

    def disconnect_abruptly(self) -> None:
        """For fault-injection tests: drop the TCP connection without a goodbye."""
        if self._client is not None and (transport := self._client.get_transport()) is not None:
            transport.sock.close()


def _lost(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"the SSH connection was lost ({detail})" if detail else "the SSH connection was lost"


def _read_all(stream: Any) -> bytes:
    data: bytes = stream.read()
    return data
