"""The kubelet stand-in: watches the static pod directory and runs simulated API-server instances.

Runs as root inside a test node (`python simulator.py CTL_DIR`); its own command line never
contains "kube-apiserver", so only instances look like one in the process table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import podspec
import records
from ruamel.yaml import YAML

CTL = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path.cwd()
RECORDS = CTL / "records.jsonl"
KNOBS = CTL / "knobs.json"
RUN = CTL / "run"
INSTANCE = Path(__file__).resolve().with_name("instance.py")
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
DEFAULT_POD_DIR = "/etc/kubernetes/manifests"
POLL = 0.05
DEFAULT_KNOBS: dict[str, Any] = {"linger": 0.2, "restart_delay": 0.1, "start_delay": 0.1, "crash_backoff": 0.2,
                                 "never_ready": False, "crash_after_ready": None, "fail_next_start": 0,
                                 "terminating": 0.0}


def rec(event: str, **fields: Any) -> None:
    records.append(RECORDS, event, **fields)


@dataclass
class Running:
    seq: int
    proc: subprocess.Popen[bytes]
    pod: podspec.Pod
    started_at: float
    restart_count: int
    container_log: str
    stop_at: float | None = None
    kill_at: float | None = None  # `terminating`: no longer serving, the process still there until then


@dataclass
class Slot:
    """One static pod (namespace/name): at most one instance at a time, like one container."""

    key: str
    running: Running | None = None
    next_start_at: float = 0.0
    last_hash: str = ""
    restarts: dict[str, int] = field(default_factory=dict)


class Kubelet:
    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}
        self.seq = 0
        self.knobs = dict(DEFAULT_KNOBS)
        self.fail_consumed: Any = 0
        self.parse_cache: dict[str, podspec.Pod | str] = {}
        self.seen_dotfiles: set[tuple[str, int, int]] = set()
        self.seen_invalid: set[tuple[str, str]] = set()
        self.seen_ignored: set[tuple[str, str]] = set()
        self.dup_state: dict[str, list[str]] = {}
        self.desired_hash: dict[str, str] = {}
        self.pod_dir = ""
        init = json.loads((CTL / "init.json").read_text()) if (CTL / "init.json").exists() else {}
        self.owned: list[str] = init.get("owned", [])
        self.cert, self.key = str(CTL / "tls.crt"), str(CTL / "tls.key")
        self.token = (CTL / "token").read_text().strip() if (CTL / "token").exists() else ""
        self.default_port = int(init.get("api_port", 6443))
        self._kubelet_config_key: tuple[int, ...] | None = None
        self._static_pod_dir = DEFAULT_POD_DIR

    # --- inputs ---------------------------------------------------------------------------------
    def read_knobs(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.knobs = {**DEFAULT_KNOBS, **json.loads(KNOBS.read_text())}

    def static_pod_dir(self) -> str:
        # Parsed again only when the file changes: parsing 20 times a second made idle nodes busy.
        try:
            st = os.stat(KUBELET_CONFIG)
            key: tuple[int, ...] = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            key = ()
        if key != self._kubelet_config_key:
            self._kubelet_config_key, self._static_pod_dir = key, DEFAULT_POD_DIR
            try:
                doc = YAML(typ="safe", pure=True).load(Path(KUBELET_CONFIG).read_bytes())
                if isinstance(doc, dict) and doc.get("staticPodPath"):
                    self._static_pod_dir = str(doc["staticPodPath"])
            except Exception:
                pass
        return self._static_pod_dir

    def scan(self) -> dict[str, podspec.Pod]:
        pod_dir = self.static_pod_dir()
        if pod_dir != self.pod_dir:
            rec("static-pod-path", path=pod_dir)
            self.pod_dir = pod_dir
        try:
            names = sorted(os.listdir(pod_dir))
        except OSError:
            return {}
        pods: dict[str, podspec.Pod] = {}
        files: dict[str, list[str]] = {}
        for name in names:
            path = os.path.join(pod_dir, name)
            if name.startswith("."):  # the kubelet ignores dotfiles: where safe temp files live
                try:
                    st = os.stat(path)
                    k = (name, st.st_ino, st.st_mtime_ns)
                    if k not in self.seen_dotfiles:
                        self.seen_dotfiles.add(k)
                        rec("ignored-dotfile", file=path)
                except OSError:
                    pass
                continue
            if os.path.isdir(path):
                continue
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            digest = hashlib.sha256(path.encode() + b"\0" + data).hexdigest()
            parsed = self.parse_cache.get(digest)
            if parsed is None:
                try:
                    parsed = podspec.parse_pod(path, data)
                except podspec.ManifestError as e:
                    parsed = str(e)
                except Exception as e:  # never let a strange file kill the kubelet
                    parsed = f"cannot parse: {e!r}"
                self.parse_cache[digest] = parsed
            if isinstance(parsed, str):
                if (path, digest) not in self.seen_invalid:
                    self.seen_invalid.add((path, digest))
                    rec("manifest-invalid", file=path, reason=parsed)
                continue
            if not parsed.is_apiserver:
                if (path, digest) not in self.seen_ignored:
                    self.seen_ignored.add((path, digest))
                    rec("pod-ignored", file=path, pod=parsed.key, reason="not a kube-apiserver pod")
                continue
            files.setdefault(parsed.key, []).append(path)
            pods.setdefault(parsed.key, parsed)  # first file (sorted) wins
        dups = {k: v for k, v in files.items() if len(v) > 1}
        for key, dup_files in dups.items():
            if self.dup_state.get(key) != dup_files:
                rec("duplicate", pod=key, files=dup_files, winner=dup_files[0])
        self.dup_state = dups
        if len(self.parse_cache) > 500:
            self.parse_cache.clear()
        return pods

    # --- the pod lifecycle ------------------------------------------------------------------------
    def step(self) -> None:
        self.read_knobs()
        desired = self.scan()
        now = time.time()
        for key, pod in desired.items():
            if self.desired_hash.get(key) != pod.content_hash:
                rec("manifest-change", pod=key, file=pod.file, content_hash=pod.content_hash,
                    previous=self.desired_hash.get(key))
                self.desired_hash[key] = pod.content_hash
        for key in list(self.desired_hash):
            if key not in desired:
                rec("pod-removed", pod=key)
                del self.desired_hash[key]
        for key in set(self.slots) | set(desired):
            slot = self.slots.setdefault(key, Slot(key))
            self.update(slot, desired.get(key), now)

    def update(self, slot: Slot, pod: podspec.Pod | None, now: float) -> None:
        r = slot.running
        if r is not None and r.proc.poll() is not None:
            code = r.proc.returncode
            rec("crash", seq=r.seq, pid=r.proc.pid, stopped_at=now, exit_code=code,
                exit_reason=f"exited with code {code}", restart_count=r.restart_count)
            slot.restarts[r.pod.uid] = r.restart_count + 1
            slot.running = r = None
            slot.next_start_at = now + float(self.knobs["crash_backoff"])
        if r is not None:
            if pod is None or pod.content_hash != r.pod.content_hash:
                if r.stop_at is None:  # the old instance keeps serving for `linger`
                    r.stop_at = now + float(self.knobs["linger"])
                    rec("stopping", seq=r.seq, pid=r.proc.pid, stop_at=r.stop_at,
                        reason="manifest removed" if pod is None else "manifest changed")
                elif now >= r.stop_at:
                    # The real kubelet sends SIGTERM; the real API server stops listening at once but its
                    # process stays (open watches) until the pod's grace period ends: `terminating` seconds.
                    terminating = float(self.knobs.get("terminating") or 0.0)
                    if terminating > 0 and r.kill_at is None:
                        r.kill_at = now + terminating
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(r.proc.pid, signal.SIGUSR1)
                        rec("terminating", seq=r.seq, pid=r.proc.pid, kill_at=r.kill_at)
                    elif r.kill_at is None or now >= r.kill_at:
                        self.kill(r, "manifest removed" if pod is None else "manifest changed")
                        slot.running = None
                        slot.next_start_at = time.time() + float(self.knobs["restart_delay"])
            elif r.stop_at is not None and r.kill_at is None:
                r.stop_at = None
                rec("stop-cancelled", seq=r.seq, pid=r.proc.pid)
        if pod is not None and pod.content_hash != slot.last_hash and slot.running is None:
            # A new pod (new content) is not subject to the old one's crash back-off.
            slot.next_start_at = min(slot.next_start_at,
                                     now + (float(self.knobs["restart_delay"]) if slot.last_hash else 0.0))
        if slot.running is None and pod is not None and time.time() >= slot.next_start_at:
            slot.last_hash = pod.content_hash
            self.start(slot, pod)

    def kill(self, r: Running, reason: str) -> None:
        r.proc.terminate()
        try:
            r.proc.wait(1.0)
        except subprocess.TimeoutExpired:
            r.proc.kill()
            r.proc.wait()
        rec("stop", seq=r.seq, pid=r.proc.pid, stopped_at=time.time(), exit_code=r.proc.returncode,
            exit_reason=reason)

    def prepare_mounts(self, pod: podspec.Pod) -> str | None:
        """hostPath type checks as the kubelet makes them; creation only inside the node's own dirs."""
        for m in pod.mounts:
            hp = m.host_path
            if not hp:
                continue
            owned = any(hp == o or hp.startswith(o.rstrip("/") + "/") for o in self.owned)
            if m.volume_type == "DirectoryOrCreate" and not os.path.exists(hp) and owned:
                os.makedirs(hp, 0o755, exist_ok=True)
            elif m.volume_type == "FileOrCreate" and not os.path.exists(hp) and owned:
                os.makedirs(os.path.dirname(hp), 0o755, exist_ok=True)
                Path(hp).touch(0o644)
            elif m.volume_type == "Directory" and not os.path.isdir(hp):
                return f"hostPath type check failed: {hp} is not a directory"
            elif m.volume_type == "File" and not os.path.isfile(hp):
                return f"hostPath type check failed: {hp} is not a file"
        return None

    def start(self, slot: Slot, pod: podspec.Pod) -> None:
        now = time.time()
        err = self.prepare_mounts(pod)
        if err:
            rec("start-failed", pod=pod.key, file=pod.file, reason=err)
            slot.next_start_at = now + float(self.knobs["crash_backoff"])
            return
        self.seq += 1
        restart_count = slot.restarts.get(pod.uid, 0)
        log_dir = Path("/var/log/pods") / f"{pod.namespace}_{pod.name}_{pod.uid}" / pod.container_name
        log_dir.mkdir(parents=True, exist_ok=True)
        container_log = str(log_dir / f"{restart_count}.log")
        fail = False
        token = self.knobs.get("fail_next_start")
        if token and token != self.fail_consumed:
            fail, self.fail_consumed = True, token
        RUN.mkdir(exist_ok=True)
        spec = {
            "seq": self.seq, "argv": pod.argv, "file": pod.file, "records": str(RECORDS),
            "container_log": container_log,
            "started_at": now, "knobs": self.knobs, "fail": fail, "cert": self.cert, "key": self.key,
            "token": self.token, "default_port": self.default_port, "owned": self.owned,
        }
        # The parsed pod, not the file: it may have changed since the scan.
        spec["manifest"] = json.dumps(pod.doc, default=str)
        spec_path = RUN / f"spec-{self.seq}.json"
        spec_path.write_text(json.dumps(spec))
        # Pad our argv so the argv area is exactly as long as the manifest's command line.
        base = [sys.executable, str(INSTANCE)]
        want = len(b"\0".join(a.encode() for a in pod.argv)) + 1
        pad = max(0, want - sum(len(a.encode()) + 1 for a in base) - 1)
        out = open(RUN / f"instance-{self.seq}.out", "wb")  # python tracebacks, if any  # noqa: SIM115 (handed to a child process)
        proc = subprocess.Popen([*base, "x" * pad], env={**os.environ, "SIM_SPEC": str(spec_path)},
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd="/", start_new_session=True)
        out.close()
        slot.running = Running(self.seq, proc, pod, now, restart_count, container_log)
        rec("start", seq=self.seq, pid=proc.pid, started_at=now, argv=pod.argv, pod=pod.key, file=pod.file,
            uid=pod.uid, content_hash=pod.content_hash, restart_count=restart_count, container_log=container_log)

    def shutdown(self) -> None:
        for slot in self.slots.values():
            if slot.running is not None:
                self.kill(slot.running, "simulator stopped")


def main() -> None:
    kubelet = Kubelet()

    def term(*_: Any) -> None:
        kubelet.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    rec("simulator-started", pid=os.getpid())
    last_error = ""
    while True:
        try:
            kubelet.step()
        except Exception as e:  # keep going like the kubelet; leave a trace for the tests (once)
            if repr(e) != last_error:
                import traceback

                rec("simulator-error", error=repr(e), traceback=traceback.format_exc())
                last_error = repr(e)
        time.sleep(POLL)


if __name__ == "__main__":
    main()
