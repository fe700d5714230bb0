"""A real control-plane node: upstream etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
static pods of the real kubelet on containerd + runc, set up by `kubeadm init`, reached by kaudit over the
test node's real sshd (tests/node/node.py) exactly like a simulated node. See README.md ("The real node").

Layout, per node:
- the test node's mount and PID namespaces (sshd, users, sudo, /etc/kubernetes, /var/log, /var/lib/kubelet
  ... bind-mounted from DIR/fs), plus the node's own /var/lib/etcd, /var/lib/containerd, /run/containerd,
  /etc/cni, /opt/cni, /opt/containerd, /usr/libexec/kubernetes; files holding the kubelet's desired values
  are bind-mounted over the six kernel sysctls it would otherwise set machine-wide;
- its own network namespace `kaudit-rn-N` with a veth pair: the node is 10.213.x.y+2 (its advertise
  address), the host side 10.213.x.y+1; nothing routes further (no default route in the node). sshd
  stays on the host's 127.0.0.1 (as for every test node): kaudit's probes on the node reach the API
  server's advertise address through the veth;
- containerd (own root, state, socket, runc root, `restrict_oom_score_adj`), images imported from
  single-layer OCI archives (tests/node/ociimage.py) under registry.kaudit.test/k8s;
- the kubelet (cgroupfs driver, its own cgroup root `/kaudit-rn-N` in every v1 hierarchy), started as
  soon as kubeadm has written its configuration (there is no systemd to start it);
- `kubeadm init` with a local imageRepository, the addon phases skipped, preflight checks this sandbox
  cannot meet ignored by name.
`stop()` kills the node's PID namespace (every process, containers included), removes its cgroups and its
network namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from . import ociimage, records
from .node import PORT_CLAIMS, TestNode, claim, missing_requirements

ROOT = Path(__file__).resolve().parents[2]
GO_MODULE = ROOT / "tests" / "realnode"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubeadm")
IMAGE_REPOSITORY = "registry.kaudit.test/k8s"
NODE_NAME = "kaudit-realnode"
API_PORT = 6443
# Directories of the host that a real node replaces with its own (besides the test node's NODE_DIRS).
REAL_DIRS = ("/var/lib/etcd", "/var/lib/containerd", "/run/containerd", "/etc/cni", "/opt/cni", "/opt/containerd",
             "/usr/libexec/kubernetes")
# The kubelet sets these machine-wide (kubelet/cm/container_manager_linux.go setupKernelTunables) when
# they differ: the node sees files with exactly its desired values, so it writes none of them.
KUBELET_SYSCTLS = {"vm/overcommit_memory": "1", "vm/panic_on_oom": "0", "kernel/panic": "10",
                   "kernel/panic_on_oops": "1", "kernel/keys/root_maxkeys": "1000000",
                   "kernel/keys/root_maxbytes": "25000000"}
# kubeadm's preflight checks this sandbox cannot meet (found by running it here; see README.md).
IGNORED_PREFLIGHT = ("SystemVerification", "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables",
                     "Swap", "Service-Kubelet", "FileExisting-crictl", "FileExisting-conntrack",
                     "FileExisting-socat", "FileExisting-ethtool", "FileExisting-ebtables", "FileExisting-tc")
SKIPPED_PHASES = ("addon/coredns", "addon/kube-proxy")
CGROUP_FS = Path("/sys/fs/cgroup")


# --- versions, cache, requirements ------------------------------------------------------------------
def pinned_versions() -> dict[str, str]:
    """k8s and etcd versions from tests/realnode/go.mod."""
    text = (GO_MODULE / "go.mod").read_text()
    k8s = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", text, re.M)
    etcd = re.search(r"^\s*go\.etcd\.io/etcd/server/v3 (v\S+)", text, re.M)
    assert k8s and etcd, "tests/realnode/go.mod pins k8s.io/kubernetes and go.etcd.io/etcd/server/v3"
    return {"kubernetes": k8s.group(1), "etcd": etcd.group(1)}


def cache_dir() -> Path:
    v = pinned_versions()
    base = Path(os.environ.get("KAUDIT_REALNODE_CACHE", Path.home() / ".cache" / "kaudit-realnode"))
    return base / f"k8s-{v['kubernetes']}-etcd-{v['etcd']}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def missing_real_requirements() -> str | None:
    """Why a real node cannot run here (None when it can): one line, for a skip reason."""
    reason = missing_requirements()
    if reason:
        return reason
    for tool in ("containerd", "runc", "ctr", "containerd-shim-runc-v2", "ip"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"the real node needs {tool} (apt-get install containerd runc iproute2)"
    missing = [b for b in (*BINARIES, "pause") if not os.access(bin_dir() / b, os.X_OK)]
    if missing:
        how = "run tests/realnode/build.sh" if shutil.which("go") else "Go is needed to build them"
        return f"the real node's binaries are not built ({', '.join(missing)} missing in {bin_dir()}): {how}"
    if not (CGROUP_FS / "memory").is_dir():
        return "the real node needs cgroup v1 hierarchies under /sys/fs/cgroup (the kubelet runs with cgroupfs)"
    return None


# --- images -------------------------------------------------------------------------------------------
def expected_images(bins: Path, version: str) -> list[str]:
    """`kubeadm config images list` for our repository: the names kubeadm will look for, except etcd's
    tag: kubeadm v1.34.4 defaults to etcd 3.6.5-0, we build the etcd k8s.io/kubernetes v1.34.4 itself
    requires (go.mod: 3.6.4) and tell kubeadm so (`etcd.local.imageTag`), rather than mislabel it."""
    out = subprocess.run([str(bins / "kubeadm"), "config", "images", "list", "--kubernetes-version", version,
                          "--image-repository", IMAGE_REPOSITORY], capture_output=True, text=True, check=True)
    refs = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith(IMAGE_REPOSITORY)]
    etcd_tag = pinned_versions()["etcd"].lstrip("v") + "-0"
    return [f"{IMAGE_REPOSITORY}/etcd:{etcd_tag}" if r.startswith(f"{IMAGE_REPOSITORY}/etcd:") else r for r in refs]


def image_archives(bins: Path, version: str) -> list[Path]:
    """One OCI archive per control-plane image (cached beside bin/, rebuilt when its binary is newer)."""
    out = bins.parent / "images"
    out.mkdir(exist_ok=True)
    archives = []
    for ref in expected_images(bins, version):
        base = ref.rsplit("/", 1)[1].split(":")[0]
        if base == "pause":
            files, entry = {"/pause": bins / "pause"}, ["/pause"]
        elif base in BINARIES:
            files, entry = {f"/usr/local/bin/{base}": bins / base}, [f"/usr/local/bin/{base}"]
        else:
            continue  # coredns, kube-proxy: their phases are skipped
        archive = out / (ref.rsplit("/", 1)[1].replace(":", "_") + ".tar")
        src_mtime = max(p.stat().st_mtime for p in files.values())
        if not archive.exists() or archive.stat().st_mtime < src_mtime:
            ociimage.write_image(archive, ref, files, entry)
        archives.append(archive)
    return archives


# --- network namespace and cgroups --------------------------------------------------------------------
def _claim_net() -> int:
    """A node number N, claimed across processes like the test node's ports: netns kaudit-rn-N,
    veth krnNh/krnNn, 10.213.(N // 64).(N % 64 * 4)/30, cgroup /kaudit-rn-N."""
    for n in range(1, 4096):
        if not claim(f"realnode-{n}"):
            continue
        _cleanup_net(n)  # whatever a killed owner left behind
        _remove_cgroups(f"kaudit-rn-{n}")
        return n
    raise RuntimeError("no free real-node number")


def _net_names(n: int) -> tuple[str, str, str, str, str]:
    base = f"10.213.{n // 64}.{n % 64 * 4}"
    prefix = base.rsplit(".", 1)[0]
    last = int(base.rsplit(".", 1)[1])
    return f"kaudit-rn-{n}", f"krn{n}h", f"krn{n}n", f"{prefix}.{last + 1}", f"{prefix}.{last + 2}"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _setup_net(n: int) -> None:
    netns, host_if, node_if, host_addr, node_addr = _net_names(n)
    _ip("netns", "add", netns)
    _ip("link", "add", host_if, "type", "veth", "peer", "name", node_if)
    _ip("link", "set", node_if, "netns", netns)
    _ip("addr", "add", f"{host_addr}/30", "dev", host_if)
    _ip("link", "set", host_if, "up")
    _ip("-n", netns, "addr", "add", f"{node_addr}/30", "dev", node_if)
    _ip("-n", netns, "link", "set", node_if, "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    # kubeadm's preflight wants forwarding on; in the node's own namespace it routes nothing anywhere.
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
                   check=True, capture_output=True)


def _cleanup_net(n: int) -> None:
    netns, host_if, *_ = _net_names(n)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)


def _hierarchies() -> list[Path]:
    return [p for p in CGROUP_FS.iterdir() if p.is_dir() and not p.is_symlink() and (p / "cgroup.procs").exists()]


def _make_cgroups(name: str) -> None:
    for h in _hierarchies():
        d = h / name
        d.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):  # a v1 cpuset child starts empty: no task could join it
            if (h / f).exists() and not (d / f).read_text().strip():
                (d / f).write_text((h / f).read_text())


def _remove_cgroups(name: str, timeout: float = 10.0) -> list[str]:
    """rmdir every cgroup under /NAME, deepest first, waiting for their last tasks to be gone.
    Returns the ones left (should be none)."""
    deadline = time.time() + timeout
    left: list[str] = []
    while True:
        left = []
        for h in _hierarchies():
            root = h / name
            if not root.exists():
                continue
            for d in [*sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), root]:
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(str(d))
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


# --- configuration --------------------------------------------------------------------------------------
def containerd_config(ctl: Path, sandbox_image: str) -> str:
    """`containerd config default`, edited: restrict_oom_score_adj (no CAP_SYS_RESOURCE here), the
    local pause image, runc's root inside the node's own /run/containerd, cgroupfs (SystemdCgroup=false)."""
    text = subprocess.run(["containerd", "config", "default"], capture_output=True, text=True, check=True).stdout
    edits = [
        (r"restrict_oom_score_adj = false", "restrict_oom_score_adj = true"),
        (r'sandbox_image = "[^"]*"', f'sandbox_image = "{sandbox_image}"'),
        (r"SystemdCgroup = true", "SystemdCgroup = false"),
        (r'(\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.options\]'
         r'(?:\n[^\[]*?)?)\n(\s*)Root = ""', r'\1\n\2Root = "/run/containerd/runc"'),
    ]
    for pattern, repl in edits:
        text, count = re.subn(pattern, repl, text, count=1)
        if not count and "SystemdCgroup = true" not in pattern:
            raise RuntimeError(f"containerd config default: {pattern!r} not found")
    return text


def kubeadm_config(version: str, node_addr: str, cgroup_root: str, etcd_tag: str) -> str:
    ignored = "\n".join(f"  - {c}" for c in IGNORED_PREFLIGHT)
    skipped = "\n".join(f"- {p}" for p in SKIPPED_PHASES)
    return f"""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {node_addr}
  bindPort: {API_PORT}
nodeRegistration:
  name: {NODE_NAME}
  criSocket: unix:///run/containerd/containerd.sock
  imagePullPolicy: Never
  taints: []
  kubeletExtraArgs:
  - name: node-ip
    value: {node_addr}
  ignorePreflightErrors:
{ignored}
skipPhases:
{skipped}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: kaudit-real
kubernetesVersion: {version}
imageRepository: {IMAGE_REPOSITORY}
controlPlaneEndpoint: {node_addr}:{API_PORT}
apiServer:
  certSANs: [127.0.0.1, {node_addr}]
etcd:
  local:
    imageTag: {etcd_tag}
networking:
  serviceSubnet: 10.96.0.0/12
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
failSwapOn: false
oomScoreAdj: 0
staticPodPath: /etc/kubernetes/manifests
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
readOnlyPort: 0
imageGCHighThresholdPercent: 100
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  imagefs.available: "0%"
"""


# --- the node -----------------------------------------------------------------------------------------
class _Base(TestNode):
    """The test node's sshd, users and namespaces, with no simulator and no seeded Kubernetes files."""

    __test__ = False

    def _seed(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super()._seed(*args, **kwargs)
        for p in (self.manifest_path, "/etc/kubernetes/admin.conf", "/var/lib/kubelet/config.yaml"):
            self.path(p).unlink(missing_ok=True)
        shutil.rmtree(self.path("/etc/kubernetes/pki"), ignore_errors=True)
        cfg = json.loads((self.ctl / "init.json").read_text())
        for d in REAL_DIRS:
            host = self.fs / d.lstrip("/")
            host.mkdir(parents=True, exist_ok=True)
            cfg["binds"].append([str(host), d])
        sysctl = self.ctl / "sysctl"
        for key, value in KUBELET_SYSCTLS.items():
            f = sysctl / key.replace("/", ".")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(value + "\n")
            cfg["binds"].append([str(f), f"/proc/sys/{key}"])
        cfg["simulator"] = None
        records.write_json_atomic(self.ctl / "init.json", cfg)

    def path(self, node_path: str) -> Path:
        p = os.path.normpath("/" + node_path.lstrip("/"))
        if any(p == d or p.startswith(d + "/") for d in REAL_DIRS):
            return self.fs / p.lstrip("/")
        return super().path(node_path)

    def _boot(self) -> None:
        for d in REAL_DIRS:  # mount points (empty directories on the host, harmless)
            os.makedirs(d, exist_ok=True)
        super()._boot()


class RealNode:
    """One real node. `RealNode.start(dir)`; `stop()` (idempotent) tears everything down."""

    __test__ = False

    def __init__(self, base: Path, bins: Path) -> None:
        self.base = base
        self.bins = bins
        self.ctl = base / "ctl"
        self.node: _Base | None = None
        self.n = 0
        self.level = ""
        self.versions: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopped = False
        self.netns = self.host_addr = self.node_addr = ""

    # lifecycle
    @classmethod
    def start(cls, base_dir: Path, *, timeout: float = 300.0) -> RealNode:
        reason = missing_real_requirements()
        if reason:
            raise RuntimeError(reason)
        self = cls(Path(base_dir).resolve(), bin_dir())
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        t0 = time.time()
        version = pinned_versions()["kubernetes"]
        self.n = _claim_net()
        self.netns, _, _, self.host_addr, self.node_addr = _net_names(self.n)
        _setup_net(self.n)
        _make_cgroups(self.cgroup_name)
        self.base.mkdir(parents=True, exist_ok=True)
        self.node = _Base.start(self.base, ready_timeout=None)
        self.timings["sshd"] = time.time() - t0
        refs = expected_images(self.bins, version)
        archives = image_archives(self.bins, version)
        self.timings["images"] = time.time() - t0
        pause = next(r for r in refs if "/pause:" in r)
        etcd_tag = next(r for r in refs if "/etcd:" in r).rsplit(":", 1)[1]
        (self.ctl / "containerd.toml").write_text(containerd_config(self.ctl, pause))
        self._spawn("containerd", ["containerd", "--config", str(self.ctl / "containerd.toml")])
        sock = self.node.path("/run/containerd/containerd.sock")
        self._wait(lambda: sock.exists() and self._ctr("version").returncode == 0, 30, "containerd's socket")
        for archive in archives:
            r = self._ctr("images", "import", str(archive))
            if r.returncode != 0:
                raise RuntimeError(f"ctr images import {archive}: {r.stderr}")
        self.timings["containerd"] = time.time() - t0
        (self.ctl / "kubeadm.yaml").write_text(kubeadm_config(version, self.node_addr, self.cgroup_name, etcd_tag))
        self._spawn("kubeadm-init", ["kubeadm", "init", "--config", str(self.ctl / "kubeadm.yaml"), "--v=1"])
        flags = self.node.path("/var/lib/kubelet/kubeadm-flags.env")
        config = self.node.path("/var/lib/kubelet/config.yaml")
        self._wait(lambda: (flags.exists() and config.exists()) or self._procs["kubeadm-init"].poll() is not None,
                   120, "kubeadm's kubelet configuration")
        if self._procs["kubeadm-init"].poll() not in (None, 0):
            raise RuntimeError(f"kubeadm init failed:\n{self.log('kubeadm-init')[-4000:]}")
        self.start_kubelet()
        self.timings["kubelet"] = time.time() - t0
        deadline = t0 + timeout
        while self._procs["kubeadm-init"].poll() is None:
            if time.time() > deadline:
                raise TimeoutError(f"kubeadm init still running after {timeout}s:\n{self.log('kubeadm-init')[-4000:]}")
            time.sleep(0.5)
        if self._procs["kubeadm-init"].returncode != 0:
            raise RuntimeError(f"kubeadm init failed:\n{self.log('kubeadm-init')[-4000:]}\n"
                               f"--- kubelet:\n{self.log('kubelet')[-3000:]}")
        self.level = "kubeadm-init"
        self.timings["kubeadm-init"] = time.time() - t0
        self._wait(self.api_ready, 60, "the API server's /readyz")
        self.timings["ready"] = time.time() - t0
        for b in BINARIES:
            out = subprocess.run([str(self.bins / b), "version" if b == "kubeadm" else "--version",
                                  *(["-o", "short"] if b == "kubeadm" else [])],
                                 capture_output=True, text=True, check=False).stdout
            m = re.search(r"v?\d+\.\d+\.\d+\S*", out)
            self.versions[b] = m.group(0) if m else out.strip()

    def start_kubelet(self) -> None:
        """The kubelet as kubeadm's systemd drop-in would start it (there is no systemd here)."""
        env = self.node.path("/var/lib/kubelet/kubeadm-flags.env").read_text() if self.node else ""
        m = re.search(r'KUBELET_KUBEADM_ARGS="([^"]*)"', env)
        self._spawn("kubelet", ["kubelet", "--config=/var/lib/kubelet/config.yaml",
                                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                                "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
                                "--v=2",  # "SyncLoop ADD/REMOVE" source="file": when it noticed a manifest change
                                *shlex.split(m.group(1) if m else "")])

    def stop_kubelet(self) -> None:
        self._signal("kubelet", signal.SIGTERM)
        proc = self._procs.get("kubelet")
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)

    def stop(self) -> None:
        """Kill the node's PID namespace (containers included), then remove its cgroups and network."""
        if self._stopped:
            return
        self._stopped = True
        if self.node is not None:
            self.node.stop()
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if self.n:
            left = _remove_cgroups(self.cgroup_name)
            _cleanup_net(self.n)
            (PORT_CLAIMS / f"realnode-{self.n}").unlink(missing_ok=True)
            if left:
                raise RuntimeError(f"cgroups left behind: {left}")

    def __enter__(self) -> RealNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # helpers
    @property
    def cgroup_name(self) -> str:
        return f"kaudit-rn-{self.n}"

    def _env(self) -> dict[str, str]:
        return {"PATH": f"{self.bins}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": "/root", "LANG": "C.UTF-8"}

    def nsenter(self) -> list[str]:
        """The argv prefix entering the node's mount, PID and network namespaces."""
        assert self.node is not None and self.node.init_pid
        return ["nsenter", "-t", str(self.node.init_pid), "-m", "-p", f"--net=/run/netns/{self.netns}", "--"]

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.ctl / f"{name}.log", "ab")  # noqa: SIM115 (handed to the child)
        proc = subprocess.Popen([*self.nsenter(), *argv], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=self._env(), start_new_session=True)
        log.close()
        self._procs[name] = proc
        return proc

    def _signal(self, name: str, sig: int) -> None:
        """Signal the process nsenter started (nsenter itself forwards nothing)."""
        proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            for child in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split():
                os.kill(int(child), sig)

    def run(self, cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`sh -c cmd` as root inside the node's mount, PID and network namespaces."""
        return subprocess.run([*self.nsenter(), "sh", "-c", cmd], capture_output=True, text=True, check=check,
                              timeout=timeout, env=self._env())

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.node is not None
        sock = self.node.path("/run/containerd/containerd.sock")
        return subprocess.run(["ctr", "-n", "k8s.io", "-a", str(sock), *args], capture_output=True, text=True,
                              check=False, timeout=300)

    def log(self, name: str) -> str:
        p = self.ctl / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    @staticmethod
    def _wait(pred: Any, timeout: float, what: str) -> None:
        deadline = time.time() + timeout
        while not pred():
            if time.time() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.2)

    # what tests and users need
    @property
    def kubeconfig(self) -> Path:
        assert self.node is not None
        return self.node.path("/etc/kubernetes/admin.conf")

    @property
    def api_url(self) -> str:
        return f"https://{self.node_addr}:{API_PORT}"

    def api_ready(self) -> bool:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(f"{self.api_url}/readyz", context=ctx, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def binaries(self) -> dict[str, str]:
        return {b: str(self.bins / b) for b in (*BINARIES, "pause")}

    def info(self) -> dict[str, Any]:
        assert self.node is not None
        return {
            "target": self.node.target("kadmin"), "key": str(self.node.key_path),
            "known_hosts": str(self.node.known_hosts), "kubeconfig": str(self.kubeconfig),
            "api_port": API_PORT, "api_address": self.node_addr, "ssh_port": self.node.ssh_port,
            "binaries": self.binaries(), "versions": self.versions, "level": self.level,
            "dir": str(self.base), "netns": self.netns, "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }
