"""SSH transport (paramiko): one connection per node, reused for every step.

Host keys are checked against known_hosts: an unknown key is refused unless the user accepts it
explicitly (then recorded), a changed key is always refused. When the login user is not root,
every command runs under sudo: non-interactive, or with the password fed on the channel's stdin
(never argv or environment), and with a pty only where `requiretty` demands one. The password is
one `SudoPassword` per run: given once, or asked once on the terminal (no echo), kept in memory only.

A connection that fails is one line, as OpenSSH would say it (refused, timed out after N s, a port
that does not speak SSH and what it answered instead, authentication with the keys tried, a changed
host key); paramiko's own log output (tracebacks from its transport thread) is silenced.
"""

from __future__ import annotations

import base64
import errno
import getpass
import hashlib
import logging
import os
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.errors import InputError, NodeError, printable
from installer.targets.parse import Target, parse_target
from installer.transport import Result, Session, Transport, _StreamSession, sshconfig

if TYPE_CHECKING:
    import paramiko

_PROMPT = "[kaudit-sudo-prompt]"
# Does sudo run a command without a password? -k: a cached credential does not count.
_NO_PASSWORD_PROBE = "sudo -n -k -- id -u"  # noqa: S105 (a command, not a password)


DEFAULT_CONNECT_TIMEOUT = 10.0


def _ask_on_terminal(prompt: str) -> str | None:
    """`prompt` on the controlling terminal, the answer read without echo; None without a terminal
    (getpass would fall back to reading stdin with echo on: never)."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        return getpass.getpass(prompt)
    except EOFError:  # Ctrl-D: no password
        os.write(fd, b"\n")  # getpass ends the prompt's line only after an answer
        return None
    except KeyboardInterrupt:
        os.write(fd, b"\n")
        raise
    finally:
        os.close(fd)


class SudoPassword:
    """The sudo password of one run, in memory only (never argv, environment or a file): given once
    (`--sudo-password-stdin`), or asked once on the terminal the first time a node's sudo wants one
    (`ask`), then the same answer for every node of the run, as `ansible -K` does. Thread-safe: the
    clusters of a fleet connect in parallel, and only one of them asks."""

    def __init__(self, password: str | None = None, *, ask: bool = False) -> None:
        self._password = password
        self._ask = ask and password is None
        self.asked = False  # the terminal was asked (and the answer, maybe none, is the run's)
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the password, in a traceback or a log
        return "SudoPassword(<given>)" if self._password is not None else f"SudoPassword(ask={self._ask})"

    @property
    def can_ask(self) -> bool:
        return self._ask

    def get(self, prompt: str) -> str | None:
        """The password: the one given or asked before, else asked now (once) when a terminal may be asked."""
        with self._lock:
            if self._password is None and self._ask:
                self._ask = False  # once per run, whatever the answer
                self.asked = True
                self._password = _ask_on_terminal(prompt)
            return self._password


def sudo_password(*, from_stdin: bool, ask: bool) -> SudoPassword:
    """The run's sudo password from the options: `--sudo-password-stdin` reads the first line of stdin
    (without echo when stdin is a terminal), `-K` asks now on the terminal; with neither, a terminal
    is asked when a node's sudo wants a password, and only then."""
    if from_stdin and ask:
        raise InputError("--sudo-password-stdin and --ask-sudo-password (-K) both give the sudo password: use one")
    if ask or (from_stdin and _stdin_is_terminal()):
        password = _ask_on_terminal("[sudo] password (for every node of this run that asks): ")
        if password is None:
            raise InputError("--ask-sudo-password (-K) needs a terminal to ask on: "
                             "give the password on a pipe with --sudo-password-stdin")
        return SudoPassword(password)
    if from_stdin:
        import sys

        return SudoPassword(sys.stdin.readline().rstrip("\r\n"))
    return SudoPassword(ask=_stdin_is_terminal())


def _stdin_is_terminal() -> bool:
    import sys

    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


@dataclass(frozen=True)
class SSHOptions:
    config_file: str | None = None  # -F
    identity_file: str | None = None  # -i
    known_hosts: str | None = None  # --known-hosts
    accept_new_host_key: bool = False
    # a password, or the run's SudoPassword (shared by every node: `replace` keeps the same object)
    sudo_password: str | SudoPassword | None = field(default=None, repr=False)
    connect_timeout: float | None = None  # --connect-timeout; else ssh_config's ConnectTimeout; else 10 s


def _quiet_paramiko() -> None:
    """paramiko logs a failed handshake with its traceback from its transport thread; with no handler
    configured, Python prints that on stderr. kaudit says what failed in one line instead."""
    logger = logging.getLogger("paramiko")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


class _RecordingSocket(socket.socket):
    """A TCP socket that keeps the first bytes it receives: what a port that does not speak SSH
    answered, for the one-line error."""

    seen = b""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if len(self.seen) < 256:
            self.seen += data[: 256 - len(self.seen)]
        return data


def _dial(host: str, port: int, timeout: float, where: str, node: str) -> _RecordingSocket:
    """A TCP connection to host:port (each address it resolves to, as OpenSSH tries them), or the
    one-line reason none could be made."""
    try:
        addresses = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NodeError(f"cannot resolve host {host}: {exc.strerror}", node=node) from None
    failure: OSError | None = None
    for family, kind, proto, _name, address in addresses:
        sock = _RecordingSocket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            failure = failure if isinstance(failure, ConnectionRefusedError) else exc
            continue
        return sock
    raise NodeError(f"cannot connect to {where}: {_socket_reason(failure, timeout)}", node=node)


def _socket_reason(exc: BaseException | None, timeout: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens on that port)"
    if isinstance(exc, TimeoutError):
        return f"connection timed out after {_seconds(timeout)} s"
    if isinstance(exc, OSError) and exc.errno == errno.EHOSTUNREACH:
        return "no route to host (host unreachable)"
    if isinstance(exc, OSError) and exc.errno == errno.ENETUNREACH:
        return "network is unreachable"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).lower() if exc else "no address to connect to"


def _seconds(value: float) -> str:
    return f"{value:g}"


# Ports a control-plane node serves that are not SSH: named when the banner exchange fails there.
_KNOWN_PORTS = {6443: "the Kubernetes API server's", 8443: "the Kubernetes API server's (minikube)",
                443: "HTTPS", 2379: "etcd's", 10250: "the kubelet's", 10257: "the controller manager's",
                10259: "the scheduler's"}


def _not_ssh(seen: bytes, elapsed: float, timeout: float, port: int) -> str:
    """Why the SSH banner exchange failed, from what the port sent instead (OpenSSH:
    `kex_exchange_identification`)."""
    if not seen and elapsed >= timeout * 0.9:
        return (f"connection timed out after {_seconds(timeout)} s: the port accepted the connection "
                "but sent no SSH banner")
    if not seen:
        answer = "it closed the connection without an SSH banner"
    else:
        first = seen.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")
        answer = f"it answered {printable(first if len(first) <= 60 else first[:57] + '...')!r}"
    known = f"; {port} is usually {_KNOWN_PORTS[port]} port, SSH's is 22" if port in _KNOWN_PORTS else ""
    return f"the port does not speak SSH ({answer}{known})"


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
        given = options.sudo_password
        self._sudo = given if isinstance(given, SudoPassword) else SudoPassword(given)
        self._password: str | None = None  # the sudo password, once a node's sudo wants one
        self._host = ""
        self._timeout = options.connect_timeout or DEFAULT_CONNECT_TIMEOUT

    # -- connecting ---------------------------------------------------------------------------
    def connect(self) -> None:
        import paramiko

        _quiet_paramiko()
        assert self.target.host is not None
        config = sshconfig.lookup(sshconfig.load(self.options.config_file), self.target.host)
        host = config.hostname
        port = self.target.port or config.port
        self.user = self.target.user or config.user or getpass.getuser()
        self._host = host
        timeout = self.options.connect_timeout or config.connect_timeout or DEFAULT_CONNECT_TIMEOUT
        self._timeout = timeout
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
        look_for_keys = not (self.options.identity_file or config.identities_only)
        jump = self._via or config.proxy_jump
        where = f"{host}:{port}"
        sock: Any = None
        if jump:
            sock = self._proxy_sock(jump, host, port)
            self.address = f"{jump} -> {host}"
        elif config.proxy_command:
            sock = paramiko.ProxyCommand(config.proxy_command)  # as OpenSSH: never straight to HostName
            self.address = f"{config.proxy_command} -> {host}"
        else:
            sock = _dial(host, port, timeout, where, self.name)
            self.address = host
        started = time.monotonic()
        try:
            try:
                client.connect(
                    host, port=port, username=self.user, key_filename=keys or None,  # type: ignore[arg-type]
                    allow_agent=not config.identities_only, look_for_keys=look_for_keys,
                    # the banner within `timeout`; the whole handshake a little longer, so that a silent
                    # port ends as a banner timeout (paramiko would go on to "No existing session")
                    timeout=timeout + 5, banner_timeout=timeout, auth_timeout=timeout, sock=sock,
                )
            except paramiko.BadHostKeyException as exc:
                raise NodeError(
                    f"HOST KEY CHANGED for {where}: the server offers {fingerprint(exc.key)} but {known} "
                    f"records {fingerprint(exc.expected_key)}; refusing to connect (possible man-in-the-middle)",
                    node=self.name,
                ) from None
            except paramiko.AuthenticationException as exc:
                raise NodeError(
                    _auth_failed(exc, self.user, where, keys, self.options.identity_file is not None,
                                 allow_agent=not config.identities_only, look_for_keys=look_for_keys),
                    node=self.name,
                ) from None
            except NodeError:
                raise
            except (OSError, EOFError, paramiko.SSHException) as exc:
                seen = sock.seen if isinstance(sock, _RecordingSocket) else b""
                reason = _handshake_failed(exc, seen, time.monotonic() - started, timeout, port)
                raise NodeError(f"cannot connect to {where}: {reason}", node=self.name) from None
        except BaseException:
            self._client = client
            self.close()  # and with it paramiko's transport thread, and the jump host's connection
            raise
        self._client = client
        self._detect_sudo()

    def _proxy_sock(self, jump: str, host: str, port: int) -> Any:
        """ProxyJump: a direct-tcpip channel through the last jump host, itself reached through the
        hops before it (`-J a,b`: a, then b, then the node), as OpenSSH does."""
        hops = [h.strip() for h in jump.split(",") if h.strip()]
        hop = SSHTransport(parse_target(hops[-1]), self.options, via=",".join(hops[:-1]))
        try:
            hop.connect_only()
        except NodeError as exc:  # named as the node's: which node the jump host was for
            raise NodeError(f"jump host {exc.node or hops[-1]}: {exc.message}", node=self.name) from None
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
        wants_password = "password is required" in err or "a terminal is required" in err
        if wants_password:
            self._password = self._sudo.get(f"[sudo] password for {self.user}@{self._host or self.name}: ")
        if wants_password and self._password is not None:
            if self._sudo_mode == "n":
                self._sudo_mode = "password"
            self._sudo_password_needed = True
            probe = self._exec(self._wrap("id -u"), None, 30.0)
            if probe.rc == 0 and probe.text.strip().endswith("0"):
                return
            err = probe.err.lower() or probe.text.lower()
        if wants_password and self._password is None and self._sudo.asked:
            raise NodeError(f"sudo for {self.user} wants a password, and none was given at the prompt", node=self.name)
        if "password is required" in err or "a terminal is required" in err:
            raise NodeError(
                f"sudo for {self.user} wants a password (or {self.user} may not use sudo at all): run kaudit on a "
                "terminal (it asks once, without echo), or give the password with --sudo-password-stdin",
                node=self.name,
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
            chan = transport.open_session(timeout=self._timeout)
            pty = sudo_pty and self._sudo_mode == "pty"
            if pty:
                chan.get_pty(term="dumb", width=4000)
            chan.settimeout(timeout)
            chan.exec_command(command)
            if self._sudo_mode == "password" and not pty and self._password is not None:
                chan.sendall(self._password.encode() + b"\n")
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
            chan = transport.open_session(timeout=self._timeout)
            pty = self._sudo_mode == "pty"
            if pty:
                chan.get_pty(term="dumb", width=4000)
            chan.exec_command(self._wrap(command))
            if self._sudo_mode == "password" and self._password is not None:
                chan.sendall(self._password.encode() + b"\n")
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
        assert self._password is not None
        chan.sendall(self._password.encode() + b"\n")

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


def _handshake_failed(exc: BaseException, seen: bytes, elapsed: float, timeout: float, port: int) -> str:
    """A failure between the TCP connection and authentication, in one line."""
    import paramiko

    text = str(exc).strip()
    if isinstance(exc, paramiko.ssh_exception.IncompatiblePeer) and "version" in text.lower():
        return f"the server speaks an SSH protocol kaudit does not ({text})"
    if isinstance(exc, paramiko.SSHException) and (
            text.startswith(("Error reading SSH protocol banner", "Indecipherable protocol version"))):
        return _not_ssh(seen, elapsed, timeout, port)
    if isinstance(exc, paramiko.SSHException) and text in ("No existing session", "Negotiation failed."):
        if elapsed >= timeout:
            return f"connection timed out after {_seconds(timeout)} s during the SSH handshake"
        return "the server closed the connection during the SSH handshake"
    if isinstance(exc, paramiko.ssh_exception.ProxyCommandFailure):
        return f"the ProxyCommand {exc.command!r} failed ({str(exc.error).lower()})"
    if isinstance(exc, TimeoutError):
        return f"connection timed out after {_seconds(timeout)} s"
    if isinstance(exc, EOFError | ConnectionResetError):
        return "the server closed the connection during the SSH handshake"
    if isinstance(exc, paramiko.ssh_exception.IncompatiblePeer):
        return f"no algorithm in common with the server ({' '.join(text.split())})"
    if isinstance(exc, OSError):
        return _socket_reason(exc, timeout)
    return " ".join(text.split()).rstrip(".").lower() or type(exc).__name__


def _default_keys() -> list[str]:
    """The key files paramiko tries by itself (look_for_keys), as OpenSSH does: those that exist."""
    names = ("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")
    return [p for n in names if os.path.isfile(p := os.path.expanduser(f"~/.ssh/{n}"))]


def _auth_failed(exc: BaseException, user: str, where: str, keys: list[str], explicit: bool, *,
                 allow_agent: bool, look_for_keys: bool) -> str:
    """Authentication failed: for whom, where, and what was tried (OpenSSH's `Permission denied (publickey)`)."""
    import paramiko

    if isinstance(exc, paramiko.PasswordRequiredException):
        return (f"the private key for {user} at {where} is encrypted and kaudit does not ask for passphrases: "
                "add it to ssh-agent (ssh-add KEY)")
    tried = [f"key {k}" for k in dict.fromkeys([*keys, *([] if explicit or not look_for_keys else _default_keys())])]
    if allow_agent and os.environ.get("SSH_AUTH_SOCK"):
        tried.append("the ssh-agent's keys")
    what = ", ".join(tried) if tried else "no key (none given with -i or IdentityFile, no agent, no ~/.ssh/id_*)"
    message = f"authentication failed for user {user} at {where} (permission denied; tried {what})"
    if isinstance(exc, paramiko.BadAuthenticationType) and exc.allowed_types:
        message += f"; the server accepts only {', '.join(exc.allowed_types)}"
    return message


def _lost(exc: BaseException) -> str:
    detail = str(exc).strip()
    return f"the SSH connection was lost ({detail})" if detail else "the SSH connection was lost"


def _read_all(stream: Any) -> bytes:
    data: bytes = stream.read()
    return data
