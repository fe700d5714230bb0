"""TestNode: a control-plane node made of real parts (sshd, sudo, users, a kubelet/API-server simulator)
in its own mount and PID namespaces, so kaudit works on the real default paths. See README.md.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from . import records, seed
from . import systemd as systemd_parts

HERE = Path(__file__).resolve().parent
SUDO_PASSWORD = "kaudit-sudo-pw"
# Directories and files of the host that each node replaces with its own (bind mounts).
# /var/log as a whole (it holds /var/log/kubernetes and /var/log/pods): manifests such as kops' mount
# /var/log itself, and the simulator must never write into the host's.
NODE_DIRS = ("/etc/kubernetes", "/var/log", "/var/lib/kaudit", "/var/lib/kubelet", "/var/lib/minikube", "/home",
             "/etc/sudoers.d", "/run/sudo")
NODE_FILES = ("/etc/passwd", "/etc/shadow", "/etc/group")
USERS = ("root", "kadmin", "kpw", "ktty", "knosudo", "docker")  # docker: minikube's login user
DEFAULT_STATIC_POD_PATH = "/etc/kubernetes/manifests"
MANIFEST_NAME = "kube-apiserver.yaml"
AUDIT_LOG = "/var/log/kubernetes/audit/audit.log"
SUDOERS = """\
# test node sudo rules (docs/design.md section 6)
kadmin ALL=(ALL) NOPASSWD: ALL
kpw ALL=(ALL) ALL
Defaults:kpw timestamp_timeout=0
ktty ALL=(ALL) NOPASSWD: ALL
Defaults:ktty requiretty
docker ALL=(ALL) NOPASSWD: ALL
"""

T = TypeVar("T")
_port_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


PORT_CLAIMS = Path("/tmp/kaudit-testnode-ports")


def _claim(port: int) -> bool:
    """Claim a port across processes (xdist workers, other test runs)."""
    return claim(str(port))


def claim(name: str) -> bool:
    """Claim NAME across processes: a file under PORT_CLAIMS naming the owner pid; a claim whose owner
    is gone is stale and taken over."""
    PORT_CLAIMS.mkdir(exist_ok=True)
    f = PORT_CLAIMS / name
    for _ in range(2):
        try:
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                owner = int(f.read_text() or "0")
            except (OSError, ValueError):
                return False
            if owner and Path(f"/proc/{owner}").exists():
                return False
            f.unlink(missing_ok=True)  # the owner is gone: a stale claim
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def release_port(port: int) -> None:
    with _port_lock:
        _ports_handed_out.discard(port)
    (PORT_CLAIMS / str(port)).unlink(missing_ok=True)


def free_port() -> int:
    """A port nobody listens on now, never handed out twice by this process, and outside the
    ephemeral range: there, the source port of any outgoing connection (ssh, curl, the tests' own
    requests) could take it before the instance binds, and the instance would crash-loop."""
    lo, hi = _ephemeral_range()
    candidates = [(10000, lo - 1)] if lo > 11000 else [(hi + 1, 65535)]
    with _port_lock:
        for _ in range(200):
            start, end = candidates[0]
            port = random.randint(start, end)
            if port in _ports_handed_out or not _claim(port):
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    (PORT_CLAIMS / str(port)).unlink(missing_ok=True)
                    continue
            _ports_handed_out.add(port)
            return port
    raise RuntimeError("no free port")


def missing_requirements() -> str | None:
    """Why test nodes cannot run here (None when they can)."""
    if os.geteuid() != 0:
        return "test nodes need root (mount and PID namespaces, bind mounts, sshd, sudo)"
    for tool in ("/usr/sbin/sshd", "unshare", "nsenter", "mount", "ssh-keygen", "openssl", "sudo"):
        if shutil.which(tool) is None:
            return f"test nodes need {tool} (apt-get install openssh-server sudo util-linux openssl)"
    return None


class TestNode:
    """One node. Use `TestNode.start(...)`; `stop()` (or the context manager) tears it all down."""

    __test__ = False  # not a pytest test class
    host = "127.0.0.1"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.ctl = base / "ctl"
        self.cgroup: Path | None = None  # systemd=True: the node's cgroups (tests/node/systemd.py)
        self.fs = base / "fs"
        self.ssh_port = 0
        self.api_port = 0
        self.key_path = self.ctl / "id_ed25519"
        self.known_hosts = self.ctl / "known_hosts"
        self.host_key_fingerprint = ""
        self.host_key_line = ""
        self.admin_token = ""
        self.static_pod_path = DEFAULT_STATIC_POD_PATH
        self.manifest_path = f"{DEFAULT_STATIC_POD_PATH}/{MANIFEST_NAME}"
        self.init_pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None
        self._stopped = False

    # --- lifecycle --------------------------------------------------------------------------------
    @classmethod
    def start(cls, base_dir: Path, manifest: bytes | None = None, *, linger: float = 0.2,
              restart_delay: float = 0.1, start_delay: float = 0.1, crash_backoff: float = 0.2,
              kubelet_static_pod_path: str | None = None, rewrite: bool = True,
              ready_timeout: float | None = 15.0, extra_files: dict[str, bytes] | None = None,
              crictl: bool = False, systemd: bool = False) -> TestNode:
        """Seed and boot a node. `manifest`: bytes of a kube-apiserver manifest (default: a commented
        kubeadm one), rewritten to loopback and the node's port unless `rewrite=False`.
        `extra_files`: node path -> bytes, written before boot (e.g. a policy the manifest refers to).
        `crictl`: put a `crictl` (tests/node/crictl.py, over the simulator's container logs) on the
        node's PATH, in /usr/local/sbin.
        `systemd`: a systemd node as far as kaudit's guard can tell (tests/node/systemd.py): sd_booted(),
        logind's per-session cgroups (`end_sessions()`), `systemd-run`/`systemctl` stand-ins.
        Waits for sshd, then (ready_timeout) for a ready instance or a first crash/invalid record."""
        reason = missing_requirements()
        if reason:
            raise RuntimeError(reason)
        for attempt in range(3):
            node = cls(Path(base_dir).resolve())
            try:
                node._seed(manifest, kubelet_static_pod_path, rewrite, extra_files or {},
                           dict(linger=linger, restart_delay=restart_delay, start_delay=start_delay,
                                crash_backoff=crash_backoff), crictl, systemd)
                node._boot()
                if ready_timeout:
                    node._wait_settled(ready_timeout)
                return node
            except (RuntimeError, TimeoutError) as e:
                node.stop()
                # Another process took the port between our check and sshd's bind: new ports.
                if attempt == 2 or not any(m in str(e) for m in ("Address already in use", "Cannot bind")):
                    raise
            except BaseException:
                node.stop()
                raise
        raise AssertionError("unreachable")

    def _seed(self, manifest: bytes | None, spp: str | None, rewrite: bool, extra: dict[str, bytes],
              knobs: dict[str, Any], crictl: bool = False, systemd: bool = False) -> None:
        self.ctl.mkdir(parents=True, exist_ok=True)
        (self.ctl / "run").mkdir(exist_ok=True)
        for stale in ("records.jsonl", "sshd.log", "init.log"):  # a reused directory starts clean
            (self.ctl / stale).unlink(missing_ok=True)
        self.ssh_port, self.api_port = free_port(), free_port()
        for d in (*NODE_DIRS, "/var/log/kubernetes", "/var/log/pods", "/etc/kubernetes/manifests"):
            self.path(d).mkdir(parents=True, exist_ok=True)
        # sshd and the test client: own host key, own key pair, known_hosts for [127.0.0.1]:PORT.
        for f in ("ssh_host_ed25519_key", "id_ed25519"):
            for p in (self.ctl / f, self.ctl / f"{f}.pub"):
                p.unlink(missing_ok=True)
        self.host_key_line = seed.ssh_keygen(self.ctl / "ssh_host_ed25519_key", "test-node-host")
        self.host_key_fingerprint = seed.fingerprint(self.host_key_line)
        client_pub = seed.ssh_keygen(self.key_path, "kaudit-test")
        kt, kb64 = self.host_key_line.split()[:2]
        self.known_hosts.write_text(f"[{self.host}]:{self.ssh_port} {kt} {kb64}\n")
        (self.ctl / "sshd_config").write_text(seed.sshd_config(
            port=self.ssh_port, host_key=self.ctl / "ssh_host_ed25519_key", pid_file=self.ctl / "sshd.pid"))
        self._seed_users(client_pub)
        # Kubernetes: pki, admin.conf, kubelet config, the manifest.
        cert, key = seed.make_tls()
        (self.ctl / "tls.crt").write_bytes(cert)
        (self.ctl / "tls.key").write_bytes(key)
        self.admin_token = secrets.token_hex(16)
        (self.ctl / "token").write_text(self.admin_token)
        pki = self.path("/etc/kubernetes/pki")
        pki.mkdir(parents=True, exist_ok=True)
        for name, data in (("ca.crt", cert), ("apiserver.crt", cert), ("apiserver.key", key)):
            (pki / name).write_bytes(data)
        (pki / "apiserver.key").chmod(0o600)
        admin = self.path("/etc/kubernetes/admin.conf")
        admin.write_text(seed.admin_kubeconfig(f"https://{self.host}:{self.api_port}", cert, self.admin_token))
        admin.chmod(0o600)
        self.static_pod_path = spp or DEFAULT_STATIC_POD_PATH
        if not self._is_node_path(self.static_pod_path):
            raise ValueError(f"static pod path {self.static_pod_path} is not under a node directory {NODE_DIRS}")
        self.manifest_path = f"{self.static_pod_path.rstrip('/')}/{MANIFEST_NAME}"
        self.path("/var/lib/kubelet/config.yaml").write_text(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
            f"staticPodPath: {self.static_pod_path}\n")
        text = (manifest if manifest is not None else seed.DEFAULT_MANIFEST.encode()).decode()
        if rewrite:
            text = seed.rewrite_manifest(text, self.api_port, self.host)
        mp = self.path(self.manifest_path)
        mp.parent.mkdir(parents=True, exist_ok=True)
        mp.write_bytes(text.encode())
        mp.chmod(0o600)
        for npath, data in extra.items():
            hp = self.path(npath)
            hp.parent.mkdir(parents=True, exist_ok=True)
            hp.write_bytes(data)
        records.write_json_atomic(self.ctl / "knobs.json", {**knobs, "never_ready": False,
                                                             "crash_after_ready": None, "fail_next_start": 0})
        binds = [(str(self.path(d)), d) for d in NODE_DIRS] + [(str(self.path(f)), f) for f in NODE_FILES]
        tools: dict[str, str] = {}  # the node's own /usr/local/sbin (empty on the host; on sudo's secure_path)
        if crictl:
            tools["crictl"] = f"#!{sys.executable}\n" + (HERE / "crictl.py").read_text()
        if systemd:
            reason = systemd_parts.missing()
            if reason:
                raise RuntimeError(reason)
            self.cgroup = systemd_parts.cgroup_root(self.ssh_port)
            systemd_parts.make_cgroups(self.cgroup)
            tools["kaudit-session"] = systemd_parts.session_wrapper(self.cgroup)
            tools["systemd-run"] = systemd_parts.systemd_run(self.cgroup)
            tools["systemctl"] = systemd_parts.systemctl()
            run_systemd = self.fs / "run/systemd"
            for sub in ("system", "kaudit-standin"):
                (run_systemd / sub).mkdir(parents=True, exist_ok=True)
            Path("/run/systemd").mkdir(exist_ok=True)  # the mount point (empty on a host without systemd)
            binds.append((str(run_systemd), "/run/systemd"))
            with (self.ctl / "sshd_config").open("a") as config:
                config.write("ForceCommand /usr/local/sbin/kaudit-session\n")
        if tools:
            sbin = self.fs / "usr/local/sbin"
            sbin.mkdir(parents=True, exist_ok=True)
            for name, text in tools.items():
                (sbin / name).write_text(text)
                (sbin / name).chmod(0o755)
            binds.append((str(sbin), "/usr/local/sbin"))
        records.write_json_atomic(self.ctl / "init.json", {
            "binds": binds, "owned": list(NODE_DIRS), "api_port": self.api_port,
            "sshd": ["/usr/sbin/sshd", "-D", "-f", str(self.ctl / "sshd_config"), "-E", str(self.ctl / "sshd.log")],
            "simulator": str(HERE / "simulator.py"),
        })

    def _seed_users(self, client_pub: str) -> None:
        host_pw = Path("/etc/passwd").read_text().splitlines()
        host_sh = Path("/etc/shadow").read_text().splitlines()
        host_gr = Path("/etc/group").read_text().splitlines()
        used_uids = {int(line.split(":")[2]) for line in host_pw if line.count(":") >= 6}
        used_gids = {int(line.split(":")[2]) for line in host_gr if line.count(":") >= 3}
        test_users = [u for u in USERS if u != "root"]
        names = set(test_users)
        pw = [line for line in host_pw if line.split(":")[0] not in names]
        sh = [line for line in host_sh if line.split(":")[0] not in names]
        gr = [line for line in host_gr if line.split(":")[0] not in names]
        # root logs in with the key: "*" (no password) rather than "!" (locked: sshd refuses without PAM)
        sh = [("root:*:" + line.split(":", 2)[2]) if line.startswith("root:") else line for line in sh]
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        uid = 2001
        kpw_hash = seed.password_hash(SUDO_PASSWORD)
        homes = self.path("/home")
        for name in test_users:
            while uid in used_uids or uid in used_gids:
                uid += 1
            pw.append(f"{name}:x:{uid}:{uid}:kaudit test user:/home/{name}:{shell}")
            sh.append(f"{name}:{kpw_hash if name == 'kpw' else '*'}:19000:0:99999:7:::")
            gr.append(f"{name}:x:{uid}:")
            home = homes / name
            home.mkdir(exist_ok=True)
            os.chown(home, uid, uid)
            uid += 1
        self.path("/etc/passwd").write_text("\n".join(pw) + "\n")
        self.path("/etc/group").write_text("\n".join(gr) + "\n")
        shadow = self.path("/etc/shadow")
        shadow.write_text("\n".join(sh) + "\n")
        shadow.chmod(0o640)
        keys = homes / ".ssh-keys"
        keys.mkdir(exist_ok=True)
        for name in USERS:
            (keys / name).write_text(client_pub + "\n")
            (keys / name).chmod(0o644)
        sudoers_d = self.path("/etc/sudoers.d")
        for f in Path("/etc/sudoers.d").iterdir():  # keep the host's rules (if any) next to ours
            if f.is_file():
                shutil.copy2(f, sudoers_d / f.name)
        (sudoers_d / "kaudit-test").write_text(SUDOERS)
        (sudoers_d / "kaudit-test").chmod(0o440)

    def _boot(self) -> None:
        for d in NODE_DIRS:  # mount points must exist on the host (empty directories, harmless)
            os.makedirs(d, exist_ok=True)
        for f in ("init.ready", "init.error"):
            (self.ctl / f).unlink(missing_ok=True)
        out = open(self.ctl / "init.out", "wb")  # noqa: SIM115 (handed to a child process)
        # A lifeline: init exits when this process dies without calling stop() (no orphan nodes).
        r, self._lifeline = os.pipe()
        self._proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
             "--kill-child=SIGKILL", sys.executable, str(HERE / "init.py"), str(self.ctl), str(r)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            pass_fds=(r,))
        os.close(r)
        out.close()
        deadline = time.time() + 15
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        while time.time() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"test node init exited: {self._diag()}")
            if (self.ctl / "init.error").exists():
                raise RuntimeError(f"test node init failed: {self._diag()}")
            if (self.ctl / "init.log").exists() and "sshd" in (self.ctl / "init.log").read_text():
                raise RuntimeError(f"test node sshd exited: {self._diag()}")
            if self.init_pid is None:
                try:
                    first = children.read_text().split()
                    self.init_pid = int(first[0]) if first else None
                except OSError:
                    pass
            if self.init_pid and (self.ctl / "init.ready").exists() and self._port_open(self.ssh_port):
                return
            time.sleep(0.02)
        raise TimeoutError(f"test node did not come up: {self._diag()}")

    def _diag(self) -> str:
        parts = []
        for f in ("init.out", "init.error", "init.log", "sshd.out", "sshd.log", "simulator.out"):
            p = self.ctl / f
            if p.exists():
                parts.append(f"--- {f}:\n{p.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)

    def _port_open(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.2):
                return True
        except OSError:
            return False

    def _wait_settled(self, timeout: float) -> None:
        """Until an instance is ready, or the node shows it will not be (crash, invalid manifest)."""
        def settled() -> bool:
            current = self.current_instance()  # once: a crash-looping instance can be gone by a second call
            if current and current.get("ready_at"):
                return True
            return any(r["event"] in ("crash", "manifest-invalid", "start-failed", "pod-ignored")
                       for r in self.sim_log())
        with contextlib.suppress(TimeoutError):
            self.wait_for(settled, timeout)

    def stop(self) -> None:
        """Kill PID 1 of the node: the kernel kills every process in its PID namespace, and the mount
        namespace (with all bind mounts) goes away with the last of them. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.init_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        for port in (self.ssh_port, self.api_port):
            if port:
                release_port(port)
        if self.cgroup is not None:
            systemd_parts.remove_cgroups(self.cgroup)

    def __enter__(self) -> TestNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<TestNode ssh={self.ssh_port} api={self.api_port} dir={self.base}>"

    # --- paths and commands ---------------------------------------------------------------------------
    def _is_node_path(self, node_path: str) -> bool:
        p = os.path.normpath(node_path)
        return any(p == d or p.startswith(d + "/") for d in (*NODE_DIRS, *NODE_FILES))

    def path(self, node_path: str) -> Path:
        """Where a node-side path lives on the host (the bind-mount source); the same path when the
        node shares it with the host."""
        p = os.path.normpath("/" + node_path.lstrip("/"))
        if self._is_node_path(p):
            return self.fs / p.lstrip("/")
        return Path(p)

    def target(self, user: str = "kadmin") -> str:
        return f"{user}@{self.host}:{self.ssh_port}"

    def run(self, cmd: str, check: bool = True, *, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """`sh -c cmd` as root inside the node's mount and PID namespaces."""
        if not self.init_pid:
            raise RuntimeError("node not running")
        return subprocess.run(["nsenter", "-t", str(self.init_pid), "-m", "-p", "--", "sh", "-c", cmd],
                              capture_output=True, text=True, check=check, input=input, timeout=timeout)

    def end_sessions(self) -> list[int]:
        """logind at the end of the SSH sessions (KillUserProcesses=yes, a `systemd=True` node): SIGKILL
        to every process left in a session's cgroup, setsid and sudo'd ones included. Returns their PIDs."""
        assert self.cgroup is not None, "end_sessions needs TestNode.start(systemd=True)"
        listed = self.run(f"cat {self.cgroup}/user.slice/session-*/cgroup.procs 2>/dev/null", check=False).stdout
        pids = sorted({int(p) for p in listed.split()})
        if pids:
            self.run("kill -9 " + " ".join(map(str, pids)) + " 2>/dev/null", check=False)
        return pids

    def cgroup_of(self, pid: int) -> str:
        """The node process's cgroup in the name=systemd hierarchy, relative to the node's root."""
        for line in self.run(f"cat /proc/{pid}/cgroup", check=False).stdout.splitlines():
            if ":name=systemd:" in line:
                path = line.split(":", 2)[2]
                prefix = "/" + self.cgroup.name if self.cgroup is not None else ""
                return path[len(prefix):] if path.startswith(prefix) else path
        return ""

    def ssh_command(self, user: str = "kadmin") -> list[str]:
        """The OpenSSH client command line for this node (append the remote command)."""
        return ["ssh", "-i", str(self.key_path), "-p", str(self.ssh_port), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR", f"{user}@{self.host}"]

    def ssh(self, user: str, cmd: str, *, tty: bool = False, input: str | None = None,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        argv = self.ssh_command(user)
        if tty:
            argv[1:1] = ["-tt"]
        return subprocess.run([*argv, cmd], capture_output=True, text=True, input=input, timeout=timeout)

    # --- simulator --------------------------------------------------------------------------------
    def configure(self, **knobs: Any) -> None:
        """Change simulator knobs (linger, restart_delay, start_delay, crash_backoff, never_ready,
        crash_after_ready, fail_next_start, terminating); picked up within ~50 ms, by instances started after."""
        path = self.ctl / "knobs.json"
        cur = json.loads(path.read_text())
        if knobs.get("fail_next_start") is True:  # a fresh token: the simulator consumes each one once
            knobs["fail_next_start"] = time.time_ns()
        cur.update(knobs)
        records.write_json_atomic(path, cur)

    def knobs(self) -> dict[str, Any]:
        return dict(json.loads((self.ctl / "knobs.json").read_text()))

    def sim_log(self) -> list[dict[str, Any]]:
        return records.read(self.ctl / "records.jsonl")

    def instances(self) -> list[dict[str, Any]]:
        by_seq: dict[int, dict[str, Any]] = {}
        for r in self.sim_log():
            seq = r.get("seq")
            if seq is None:
                continue
            inst = by_seq.setdefault(seq, {
                "seq": seq, "pid": None, "started_at": None, "ready_at": None, "stopped_at": None, "argv": [],
                "policy_path": None, "policy_sha256": None, "events_lost": False, "exit_reason": None,
                "exit_code": None, "error": None, "pod": None, "file": None, "restart_count": 0,
                "container_log": None, "audit_log_host_path": None, "port": None,
            })
            ev = r["event"]
            if ev in ("start", "loaded", "ready", "stop", "crash", "error"):
                inst.update({k: v for k, v in r.items() if k not in ("event", "ts", "reason")})
        for inst in by_seq.values():
            if inst["error"] and inst["exit_reason"]:
                inst["exit_reason"] = f"{inst['exit_reason']}: {inst['error']}"
        return [by_seq[k] for k in sorted(by_seq)]

    def current_instance(self) -> dict[str, Any] | None:
        """The most recently started instance that has not stopped."""
        running = [i for i in self.instances() if i["stopped_at"] is None and i["started_at"] is not None]
        return running[-1] if running else None

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02,
                 what: str = "") -> T:
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.time() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}; "
                                   f"last simulator records: {self.sim_log()[-8:]}")
            time.sleep(interval)

    def wait_ready(self, timeout: float = 10.0, *, after: float | None = None) -> dict[str, Any]:
        """A running, ready instance (started after `after`, an epoch time, when given)."""
        def ready() -> dict[str, Any] | None:
            cur = self.current_instance()
            if cur and cur["ready_at"] and (after is None or cur["started_at"] > after):
                return cur
            return None
        return self.wait_for(ready, timeout, what="a ready instance")

    def request(self, path: str, method: str = "GET", user: str | None = None, groups: tuple[str, ...] | list[str]
                = (), body: bytes | str | dict[str, Any] | None = None, *, token: str | None = None,
                admin: bool = False, full: bool = False, timeout: float = 5.0) -> Any:
        """HTTPS to the node's API port (no verification). Returns (status, body text), or
        (status, body, headers) with full=True; headers include X-Sim-Pid (the answering instance)."""
        headers = {"User-Agent": "kaudit-testnode"}
        if user:
            headers["X-Sim-User"] = user
        if groups:
            headers["X-Sim-Groups"] = ",".join(groups)
        if admin:
            token = self.admin_token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data: bytes | None = None
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(self.host, self.api_port, context=ctx, timeout=timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            if full:
                return resp.status, text, dict(resp.getheaders())
            return resp.status, text
        finally:
            conn.close()

    def audit_events(self, log_path: str = AUDIT_LOG) -> list[dict[str, Any]]:
        try:
            lines = self.path(log_path).read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def pod_logs(self) -> dict[str, str]:
        """Container logs under the node's /var/log/pods: node path -> text."""
        root = self.path("/var/log/pods")
        return {"/var/log/pods/" + str(p.relative_to(root)): p.read_text(errors="replace")
                for p in sorted(root.rglob("*.log"))}

    def sshd_log(self) -> str:
        p = self.ctl / "sshd.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def users(self) -> dict[str, int]:
        """Test user names -> uid on this node."""
        out = {}
        for line in self.path("/etc/passwd").read_text().splitlines():
            name, _, uid = line.split(":")[:3]
            if name in USERS:
                out[name] = int(uid)
        return out


def host_uid(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None
