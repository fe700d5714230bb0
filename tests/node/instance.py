"""One simulated kube-apiserver instance: a real process started by the simulator.

Started as `python instance.py PADDING` and rewrites its own argv area so /proc/PID/cmdline is the
manifest's command exactly (what kaudit reads from the process table). Then it validates its flags
like kube-apiserver (crashing with a klog line in the container log), serves HTTPS health and a fake
API, and writes audit events with its own policy matcher.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import time


def set_cmdline(argv: list[str]) -> None:
    """Write the desired argv over our own (the simulator sized the padding so the lengths match)."""
    desired = b"\0".join(a.encode() for a in argv) + b"\0"
    with open("/proc/self/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    arg_start, arg_end = int(rest[45]), int(rest[46])  # fields 48 and 49 of proc(5)
    area = arg_end - arg_start
    if len(desired) > area:
        desired = desired[: area - 1] + b"\0"
    elif len(desired) < area:  # argv too short to pad exactly: trailing NULs (rare: tiny manifests)
        desired = desired + b"\0" * (area - len(desired))
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(arg_start)
        mem.write(desired)
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, b"kube-apiserver", 0, 0, 0)  # PR_SET_NAME: what ps -o comm / pgrep see
    except Exception:
        pass


SPEC = json.loads(open(os.environ["SIM_SPEC"]).read())  # noqa: SIM115 (handed to a child process)
set_cmdline(SPEC["argv"])

# ruff: noqa: E402  (imports after the cmdline rewrite: the process is visible as soon as it exists)
import contextlib
import hashlib
import signal
import ssl
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import auditpolicy
import podspec
import records
from ruamel.yaml import YAML

PID = os.getpid()
SEQ = SPEC["seq"]
RECORDS = SPEC["records"]

AUDIT_FLAGS = {
    "audit-policy-file", "audit-log-path", "audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize",
    "audit-log-format", "audit-log-compress", "audit-log-mode", "audit-log-version",
    "audit-log-batch-buffer-size", "audit-log-batch-max-size", "audit-log-batch-max-wait",
    "audit-log-batch-throttle-burst", "audit-log-batch-throttle-enable", "audit-log-batch-throttle-qps",
    "audit-log-truncate-enabled", "audit-log-truncate-max-batch-size", "audit-log-truncate-max-event-size",
    "audit-webhook-config-file", "audit-webhook-mode", "audit-webhook-version", "audit-webhook-initial-backoff",
    "audit-webhook-batch-buffer-size", "audit-webhook-batch-max-size", "audit-webhook-batch-max-wait",
    "audit-webhook-batch-throttle-burst", "audit-webhook-batch-throttle-enable",
    "audit-webhook-batch-throttle-qps", "audit-webhook-batch-initial-backoff",
    "audit-webhook-truncate-enabled", "audit-webhook-truncate-max-batch-size",
    "audit-webhook-truncate-max-event-size", "audit-dynamic-configuration",
}
INT_FLAGS = ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize", "audit-log-batch-buffer-size",
             "audit-log-batch-max-size", "audit-webhook-batch-buffer-size", "audit-webhook-batch-max-size")
NON_NEGATIVE = ("audit-log-maxage", "audit-log-maxbackup", "audit-log-maxsize")
BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
         "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
MODES = ("batch", "blocking", "blocking-strict")


class Fatal(Exception):
    pass


# --- container log (CRI format, like the kubelet writes /var/log/pods/.../N.log) -----------------

_log_lock = threading.Lock()


def cri(stream: str, line: str) -> None:
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    with _log_lock, open(SPEC["container_log"], "a") as f:
        f.write(f"{ts} {stream} F {line}\n")


def klog(sev: str, where: str, msg: str) -> None:
    now = datetime.now()
    cri("stderr", f"{sev}{now:%m%d %H:%M:%S.%f} {1:7d} {where}] {msg}")


def crash(err: str) -> None:
    esc = err.replace("\\", "\\\\").replace('"', '\\"')
    klog("E", "run.go:72", f'"command failed" err="{esc}"')
    records.append(RECORDS, "error", seq=SEQ, pid=PID, error=err)
    os._exit(1)


# --- start-up: the checks kube-apiserver makes before serving --------------------------------------

def read_host_file(pod: podspec.Pod, cpath: str, what: str) -> bytes:
    host = pod.host_path(cpath)
    if host is None:
        raise Fatal(f'{what}: failed to read file path "{cpath}": open {cpath}: no such file or directory')
    try:
        with open(host, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise Fatal(f'{what}: failed to read file path "{cpath}": read {cpath}: is a directory') from None
    except FileNotFoundError:
        raise Fatal(f'{what}: failed to read file path "{cpath}": open {cpath}: no such file or directory') from None
    except OSError as e:
        raise Fatal(f'{what}: failed to read file path "{cpath}": {e.strerror}') from None


def check_flags(flags: dict[str, str], order: list[str]) -> None:
    for name in order:
        if name.startswith("audit-") and name not in AUDIT_FLAGS:
            raise Fatal(f"unknown flag: --{name}")
    for name in INT_FLAGS:
        if name in flags:
            v = flags[name]
            try:
                int(v, 10)
            except ValueError:
                raise Fatal(f'invalid argument "{v}" for "--{name}" flag: strconv.ParseInt: parsing '
                            f'"{v}": invalid syntax') from None
    errs = [f"--{n} {flags[n]} can't be a negative number" for n in NON_NEGATIVE
            if n in flags and int(flags[n]) < 0]
    for name in ("audit-log-compress", "anonymous-auth", "audit-log-truncate-enabled"):
        if name in flags and flags[name] not in BOOLS:
            raise Fatal(f'invalid argument "{flags[name]}" for "--{name}" flag: strconv.ParseBool: '
                        f'parsing "{flags[name]}": invalid syntax')
    if flags.get("audit-log-format", "json") not in ("json", "legacy"):
        errs.append(f"invalid audit log format {flags['audit-log-format']}, allowed formats are \"json,legacy\"")
    for name in ("audit-log-mode", "audit-webhook-mode"):
        if flags.get(name, "batch") not in MODES:
            errs.append(f"invalid audit {name.split('-')[1]} mode {flags[name]}, allowed modes are "
                        f"\"{','.join(MODES)}\"")
    if "secure-port" in flags:
        try:
            if not 0 <= int(flags["secure-port"]) <= 65535:
                raise ValueError
        except ValueError:
            errs.append(f"--secure-port {flags['secure-port']} must be between 0 and 65535, inclusive")
    if errs:
        raise Fatal("[" + ", ".join(errs) + "]")


def check_webhook(pod: podspec.Pod, cpath: str) -> None:
    data = read_host_file(pod, cpath, "initializing audit webhook")
    try:
        y = YAML(typ="safe", pure=True)
        y.version = (1, 1)
        doc = y.load(data)
    except Exception as e:
        raise Fatal(f"initializing audit webhook: error loading config file \"{cpath}\": {e}") from None
    clusters = doc.get("clusters") if isinstance(doc, dict) else None
    ok = isinstance(clusters, list) and clusters and all(
        isinstance(c, dict) and isinstance(c.get("cluster"), dict) and c["cluster"].get("server")
        for c in clusters)
    if not ok:
        raise Fatal(f'initializing audit webhook: invalid configuration: no configuration has been provided '
                    f'in "{cpath}"')


class Sink:
    """Where events go: the host file behind the mount, the container log for `-`, or nowhere."""

    def __init__(self, host_path: str | None, stdout: bool = False) -> None:
        self.host_path, self.stdout, self.lock = host_path, stdout, threading.Lock()

    def write(self, ev: dict[str, Any]) -> None:
        line = json.dumps(ev, separators=(",", ":"))
        if self.stdout:
            cri("stdout", line)
        elif self.host_path:
            with self.lock:
                fd = os.open(self.host_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, (line + "\n").encode())
                finally:
                    os.close(fd)


class State:
    ready = False
    policy: auditpolicy.Policy | None = None
    group_wildcard = False
    sink = Sink(None)
    anonymous = True
    token = ""


def start_up(pod: podspec.Pod) -> dict[str, Any]:
    flags, order = podspec.parse_flags(SPEC["argv"])
    check_flags(flags, order)
    info: dict[str, Any] = {"policy_path": None, "policy_sha256": None, "events_lost": False,
                            "audit_log_host_path": None, "policy_warnings": []}
    State.group_wildcard = podspec.image_version(pod.image) >= (1, 36)
    pfile = flags.get("audit-policy-file")
    if pfile:
        data = read_host_file(pod, pfile, "loading audit policy file")
        try:
            State.policy = auditpolicy.load_policy(data, group_wildcard=State.group_wildcard)
        except auditpolicy.PolicyError as e:
            raise Fatal(f'loading audit policy file: {e} from file "{pfile}"') from None
        for w in State.policy.warnings:
            klog("W", "reader.go:87", f'"Audit policy contains errors, falling back to lenient decoding" err="{w}"')
        info.update(policy_path=pfile, policy_sha256=hashlib.sha256(data).hexdigest(),
                    policy_warnings=State.policy.warnings)
    if flags.get("audit-webhook-config-file") and pfile:
        check_webhook(pod, flags["audit-webhook-config-file"])
    lpath = flags.get("audit-log-path")
    if pfile and lpath:
        if lpath == "-":
            State.sink = Sink(None, stdout=True)
        else:
            mount = pod.resolve(lpath)
            host = pod.host_path(lpath)
            owned = any(host == o or host.startswith(o.rstrip("/") + "/") for o in SPEC.get("owned", [])) \
                if host else False
            if host is None:  # the container's throwaway layer: it runs, the events are lost
                info["events_lost"] = True
            elif not owned:  # never write into the host's own files; count it as lost
                info["events_lost"] = True
                info["audit_log_outside_node"] = host
            elif mount is not None and mount.read_only:
                raise Fatal(f"ensureLogFile: open {lpath}: read-only file system")
            else:
                os.makedirs(os.path.dirname(host), mode=0o700, exist_ok=True)
                try:
                    os.close(os.open(host, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
                except OSError as e:
                    raise Fatal(f"ensureLogFile: open {lpath}: {e.strerror}") from None
                State.sink = Sink(host)
                info["audit_log_host_path"] = host
    State.anonymous = BOOLS.get(flags.get("anonymous-auth", "true"), True)
    State.token = SPEC["token"]
    if SPEC.get("fail"):
        raise Fatal("simulated start failure (fail_next_start)")
    info["bind"] = flags.get("bind-address", "127.0.0.1")
    info["port"] = int(flags.get("secure-port", SPEC["default_port"]))
    return info


# --- serving ---------------------------------------------------------------------------------------

HEALTH = ("/readyz", "/livez", "/healthz")


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-sim"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.handle_any()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Sim-Pid", str(PID))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self) -> None:
        received = time.time()
        u = urlsplit(self.path)
        query = parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        auth = self.headers.get("Authorization", "")
        ident: tuple[str, list[str]] | None = None
        if auth.startswith("Bearer ") and auth[7:].strip() == State.token:
            ident = ("kubernetes-admin", ["system:masters", "system:authenticated"])
        elif auth or not State.anonymous:
            self.unauthorized(u.path, query, received)
            return
        user = self.headers.get("X-Sim-User") or (ident[0] if ident else "system:anonymous")
        if self.headers.get("X-Sim-Groups") is not None:
            groups = [g.strip() for g in self.headers["X-Sim-Groups"].split(",") if g.strip()]
        elif ident:
            groups = ident[1]
        else:
            groups = ["system:authenticated"] if self.headers.get("X-Sim-User") else ["system:unauthenticated"]
        attrs = auditpolicy.request_attributes(self.command, u.path, query, user, groups)
        code, resp = self.route(attrs, u.path, body)
        level, omit = ("None", set())
        if State.policy is not None:
            level, omit = auditpolicy.evaluate(State.policy, attrs, group_wildcard=State.group_wildcard)
        ev = None
        if level != "None":
            ev = self.event(attrs, level, received, user, groups)
            if "RequestReceived" not in omit:
                State.sink.write({**ev, "stage": "RequestReceived", "stageTimestamp": ts(time.time())})
        raw = resp if isinstance(resp, bytes) else json.dumps(resp).encode()
        self.send(code, raw, "text/plain; charset=utf-8" if isinstance(resp, bytes) else "application/json")
        if ev is not None and "ResponseComplete" not in omit:
            ev.update(stage="ResponseComplete", stageTimestamp=ts(time.time()),
                      responseStatus={"metadata": {}, "code": code})
            if level in ("Request", "RequestResponse") and body and attrs.resource_request:
                with contextlib.suppress(ValueError):
                    ev["requestObject"] = json.loads(body)
            if level == "RequestResponse" and attrs.resource_request and isinstance(resp, dict):
                ev["responseObject"] = resp
            State.sink.write(ev)

    def event(self, a: auditpolicy.Attributes, level: str, received: float, user: str,
              groups: list[str]) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": str(uuid.uuid4()),
            "stage": "", "requestURI": self.path, "verb": a.verb, "user": {"username": user, "groups": groups},
            "sourceIPs": [self.client_address[0]], "userAgent": self.headers.get("User-Agent", ""),
            "requestReceivedTimestamp": ts(received),
        }
        if a.resource_request:
            ref = {"resource": a.resource, "namespace": a.namespace, "name": a.name, "apiGroup": a.api_group,
                   "apiVersion": a.api_version, "subresource": a.subresource}
            ev["objectRef"] = {k: v for k, v in ref.items() if v}
        return ev

    def unauthorized(self, path: str, query: dict[str, list[str]], received: float) -> None:
        # Like WithFailedAuthenticationAudit: one ResponseStarted event, no user.
        attrs = auditpolicy.request_attributes(self.command, path, query, None, [])
        if State.policy is not None:
            level, omit = auditpolicy.evaluate(State.policy, attrs, group_wildcard=State.group_wildcard)
            if level != "None" and "ResponseStarted" not in omit:
                ev = self.event(attrs, level, received, "", [])
                ev.update(stage="ResponseStarted", user={}, stageTimestamp=ts(time.time()),
                          responseStatus={"metadata": {}, "status": "Failure", "message": "Unauthorized",
                                          "reason": "Unauthorized", "code": 401})
                State.sink.write(ev)
        self.send(401, json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401}).encode())

    def route(self, a: auditpolicy.Attributes, path: str, body: bytes) -> tuple[int, Any]:
        if any(path == h or path.startswith(h + "/") for h in HEALTH):
            return (200, b"ok") if State.ready else (500, b"[-]poststarthook/sim-not-ready failed: reason "
                                                          b"withheld\nreadyz check failed\n")
        if path == "/version":
            return 200, {"major": "1", "minor": "30", "gitVersion": "v1.30.0-sim"}
        if path in ("/api", "/api/"):
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path.startswith("/api") or path.startswith("/apis"):
            if not a.resource_request:
                return 200, {"kind": "APIResourceList", "groupVersion": path.strip("/"), "resources": []}
            api_version = f"{a.api_group}/{a.api_version}" if a.api_group else a.api_version
            if a.verb in ("list", "watch", "deletecollection"):
                return 200, {"kind": "List", "apiVersion": api_version, "metadata": {}, "items": []}
            obj: dict[str, Any] = {}
            if body:
                try:
                    parsed = json.loads(body)
                    obj = parsed if isinstance(parsed, dict) else {}
                except ValueError:
                    obj = {}
            meta = dict(obj.get("metadata") or {})
            meta.setdefault("name", a.name)
            if a.namespace:
                meta.setdefault("namespace", a.namespace)
            return 200, {**obj, "apiVersion": obj.get("apiVersion", api_version),
                         "kind": obj.get("kind", a.resource.rstrip("s").capitalize()), "metadata": meta}
        return 404, b"404 page not found\n"


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until there is a server to stop (the `terminating` knob)
    try:
        pod = podspec.parse_pod(SPEC["file"], SPEC["manifest"].encode())
        klog("I", "server.go:155", f'"Version" version="{pod.image.rpartition(":")[2]}"')
        info = start_up(pod)
        host = info["bind"] if str(info["bind"]).startswith("127.") else "127.0.0.1"  # never leave loopback
        try:
            server = TLSServer((host, info["port"]), Handler)
        except OSError as e:
            raise Fatal(f"failed to create listener: failed to listen on {host}:{info['port']}: "
                        f"listen tcp {host}:{info['port']}: bind: {e.strerror}") from None
    except Fatal as e:
        crash(str(e))
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(SPEC["cert"], SPEC["key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop_serving() -> None:  # SIGUSR1: stop listening, keep the process (a real server draining watches)
        server.shutdown()
        server.server_close()
        klog("I", "secure_serving.go:259", f'"Stopped listening" address="{host}:{info["port"]}"')

    signal.signal(signal.SIGUSR1, lambda *_: threading.Thread(target=stop_serving, daemon=True).start())
    records.append(RECORDS, "loaded", seq=SEQ, pid=PID, **{k: v for k, v in info.items() if k not in ("bind",)})
    klog("I", "secure_serving.go:213", f'"Serving securely on {host}:{info["port"]}"')
    if SPEC["knobs"].get("never_ready"):
        threading.Event().wait()
    time.sleep(max(0.0, SPEC["started_at"] + float(SPEC["knobs"].get("start_delay", 0.1)) - time.time()))
    State.ready = True
    records.append(RECORDS, "ready", seq=SEQ, pid=PID, ready_at=time.time())
    cad = SPEC["knobs"].get("crash_after_ready")
    if cad is not None and cad is not False:
        time.sleep(float(cad))
        crash("simulated crash after ready (crash_after_ready)")
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # an unexpected simulator bug must still look like a crash, with the reason
        import traceback

        traceback.print_exc()
        crash(f"simulator instance bug: {e!r}")
    sys.exit(0)
