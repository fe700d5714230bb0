"""Bench for `kaudit logs` (issue 14 item 6): one test node (tests/node: real sshd on 127.0.0.1, needs
root) after a real `kaudit enable --profile recommended`, a ~1 GB realistic audit log laid at the node's
log path as the API server leaves it (lumberjack: 100 MB files, the backups named by their rotation
time, the live file last), then in the same run:

- baseline: `ssh NODE sudo cat <the files> | jq -c 'select(.verb=="delete")'` (Debian jq);
- query: `kaudit logs NODE --verb delete -o json`;
- both again through a byte-counting TCP relay in front of the node's sshd (untimed): what crossed
  the wire, SSH framing, handshake and encryption included, both directions;
- `--follow`: events appended to the live log on the node, the time until kaudit printed each.

    sudo .venv/bin/python -m bench.logs [--size-mb 1024] [--repeat 3] [--follow-samples 20] [--compress]
                                        [--kaudit installed|venv] [--json FILE]

`--compress` gzips the backups (`.log.gz`, as --audit-log-compress does); the baseline then reads them
with `zcat -f`. Also measured: where kaudit's time goes (start-up and connection alone, the node-side
prefilter alone with and without gzip on the wire, grep alone).

The log is tests/auditgen.py's traffic (kubelets, controllers, probes, operators, CI; deletes are
about 0.55 % of the events), one generated hour repeated with each hour's own timestamps and audit IDs.
Nothing is pinned: both commands are pipelines (sshd, sudo, cat or grep/gzip, the client, jq or
kaudit) that use both cores as they can. Tools interleaved, median of the repetitions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LOG = "/var/log/kubernetes/audit/audit.log"
JQ = "/usr/bin/jq"
HOUR0 = datetime(2026, 5, 1, 1, tzinfo=timezone.utc)  # auditgen's block starts on the hour
REQUESTS_PER_HOUR = 100_000  # about 68,000 events, 73 MB
FILE_MB = 100  # the recommended profile's --audit-log-maxsize
FOLLOW_USER = "bench-follower"


def log(msg: str) -> None:
    print(f"[bench.logs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the log


def _hour_block(seed: int) -> bytes:
    from tests import auditgen

    return b"".join(auditgen.lines(REQUESTS_PER_HOUR, seed=seed, start=HOUR0.timestamp(), span=3600.0))


_STAMP = re.compile(rb'"(2026-05-01T0[12]):')
_AUDIT_ID = re.compile(rb'"auditID":"([0-9a-f]{8})')


def _shift(block: bytes, hour: int) -> bytes:
    """The block as it would be `hour` hours later: timestamps moved, audit IDs made unique."""
    def stamp(m: re.Match[bytes]) -> bytes:
        t = HOUR0 + timedelta(hours=hour + int(m.group(1)[-1:]) - 1)
        return b'"' + t.strftime("%Y-%m-%dT%H").encode() + b":"

    def audit_id(m: re.Match[bytes]) -> bytes:
        return b'"auditID":"' + b"%08x" % (int(m.group(1), 16) ^ (hour * 0x9E3779B1 & 0xFFFFFFFF))

    return _AUDIT_ID.sub(audit_id, _STAMP.sub(stamp, block)) if hour else block


def _lumberjack(ts: bytes) -> str:
    """A backup's name part from an event timestamp (UTC, as kube-apiserver's lumberjack writes it)."""
    t = ts.decode()
    return f"{t[:10]}T{t[11:19].replace(':', '-')}{t[19:23]}"


def lay_log(folder: Path, total: int, seed: int = 0, compress: bool = False) -> dict[str, Any]:
    """~`total` bytes of events in `folder` as lumberjack leaves them: audit-<rotation time>.log backups of
    FILE_MB each (gzipped, `.log.gz`, with `compress`, as --audit-log-compress does), then audit.log
    (rewritten in place: the running instance keeps its open file)."""
    for old in folder.glob("audit-*.log*"):
        old.unlink()
    block = _hour_block(seed)
    limit = FILE_MB * 1024 * 1024
    files: list[Path] = []
    written = events = deletes = 0
    hour = 0
    current = bytearray()

    def flush(last: bool) -> None:
        nonlocal current
        if last:
            path = folder / "audit.log"
            with open(path, "r+b" if path.exists() else "wb") as f:
                f.truncate(0)
                f.write(current)
        else:
            cut = current.rfind(b"\n", 0, limit) + 1
            # lumberjack names a backup by the time it rotated: when the next file's first event came
            first_next = re.search(rb'"stageTimestamp":"([^"]+)"', current[cut:cut + 65536])
            stamp = first_next.group(1) if first_next else b"2026-05-01T00:00:00.000000Z"
            path = folder / f"audit-{_lumberjack(stamp)}.log"
            path.write_bytes(current[:cut])
            del current[:cut]
        files.append(path)

    while written < total:
        data = _shift(block, hour)
        take = data if written + len(data) <= total else data[:data.rfind(b"\n", 0, total - written) + 1]
        if not take:
            break
        current += take
        written += len(take)
        events += take.count(b"\n")
        deletes += take.count(b'"verb":"delete"')
        hour += 1
        while len(current) > limit:
            flush(last=False)
    flush(last=True)
    backups = sorted(p for p in files if p.name != "audit.log")
    if compress:  # lumberjack's gzip, default level
        subprocess.run(["gzip", "-6", "--", *map(str, backups)], check=True)
        backups = [p.with_name(p.name + ".gz") for p in backups]
    on_disk = sum(p.stat().st_size for p in [*backups, folder / "audit.log"])
    return {"events": events, "deletes": deletes, "bytes": written, "files": len(files), "on_disk": on_disk,
            "compressed": compress, "backups": [p.name for p in backups]}


# --------------------------------------------------------------------------- byte-counting relay


class Relay:
    """A TCP relay on 127.0.0.1 in front of the node's sshd that counts the bytes it forwards each way:
    what crossed the wire for a client that connects through it (SSH framing, keys, MACs included)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.up = self.down = 0  # client -> node, node -> client
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.up = self.down = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(1 << 20):
                dst.sendall(data)
                with self.lock:
                    if way == "up":
                        self.up += len(data)
                    else:
                        self.down += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------- the two commands


def _known_hosts(node: Any, port: int, where: Path) -> Path:
    """node's known_hosts, also valid for [127.0.0.1]:port (the relay)."""
    text = Path(node.known_hosts).read_text()
    extra = text.replace(f"[{node.host}]:{node.ssh_port}", f"[{node.host}]:{port}")
    out = where / f"known_hosts.{port}"
    out.write_text(text + extra)
    return out


def baseline_argv(node: Any, files: list[str], port: int, known: Path) -> str:
    import shlex

    ssh = ["ssh", "-i", str(node.key_path), "-p", str(port), "-o", "BatchMode=yes",
           "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
           "-o", "LogLevel=ERROR", f"kadmin@{node.host}",
           ("sudo zcat -f -- " if any(f.endswith(".gz") for f in files) else "sudo cat ")
           + " ".join(shlex.quote(f) for f in files)]
    return " ".join(shlex.quote(a) for a in ssh) + " | " + JQ + " -c 'select(.verb==\"delete\")'"


def kaudit_args(node: Any, port: int, known: Path, *extra: str) -> list[str]:
    return ["logs", f"kadmin@{node.host}:{port}", "-i", str(node.key_path), "--known-hosts", str(known), *extra]


def timed(argv: list[str] | str, out: Path, env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """(wall s, lines printed, CPU s of the local process tree) of one run, stdout to a file."""
    ru0 = os.times()
    with open(out, "wb") as f:
        t = time.perf_counter()
        proc = subprocess.run(argv, shell=isinstance(argv, str), stdout=f, stderr=subprocess.PIPE, env=env,
                              check=False)
        wall = time.perf_counter() - t
    ru1 = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    cpu = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
    with open(out, "rb") as f:
        lines = sum(1 for _ in f)
    return wall, lines, cpu


def breakdown(node: Any, files: list[str], kaudit: list[str], env: dict[str, str], work: Path, repeat: int
              ) -> dict[str, float]:
    """Where kaudit's time goes (median of `repeat` each): start-up, connection, sudo and the manifest read
    with a window after every backup (only the live file is read); the node-side prefilter alone (grep -F, gzip,
    base64, as kaudit's script runs them, output dropped on this side); the same without gzip; and grep
    alone on the node (nothing sent)."""
    import shlex

    quoted = " ".join(shlex.quote(f) for f in files)
    # as kaudit's script reads a file: a .gz one through gzip -dc
    grep = ("g() { case $1 in *.gz) gzip -dc < \"$1\" | LC_ALL=C grep -a -F -e '\"verb\":\"delete\"';; "
            "*) LC_ALL=C grep -a -F -e '\"verb\":\"delete\"' < \"$1\";; esac; }; ")
    remote = {
        "node: grep -F | gzip -1 | base64, sent": f"{grep}for f in {quoted}; do g $f | gzip -1c | base64 -w 65536; "
                                                 "done",
        "node: grep -F | base64 (no gzip), sent": f"{grep}for f in {quoted}; do g $f | base64 -w 65536; done",
        "node: grep -F alone, nothing sent": f"{grep}for f in {quoted}; do g $f; done > /dev/null",
    }
    out: dict[str, float] = {}
    argv = [*kaudit, *kaudit_args(node, node.ssh_port, Path(node.known_hosts), "--verb", "delete", "--since",
                                  "2099-01-01", "-o", "json")]
    out["kaudit --since 2099-01-01: start-up, connect, sudo, manifest, the live file only"] = statistics.median(
        timed(argv, work / "none.out", env)[0] for _ in range(repeat))
    for name, script in remote.items():
        cmd = [*node.ssh_command("kadmin"), "sudo sh -c " + shlex.quote(script)]
        out[name] = statistics.median(timed(cmd, work / "part.out")[0] for _ in range(repeat))
    for name, value in out.items():
        log(f"breakdown: {name}: {value:.2f} s")
    return out


def _cpu_busy() -> tuple[float, float]:
    with open("/proc/stat", encoding="utf-8") as f:
        vals = [float(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


# --------------------------------------------------------------------------- --follow


def follow_latency(kaudit: list[str], node: Any, env: dict[str, str], samples: int) -> list[float]:
    """Append one event at a time to the live log (host side of the node's bind mount, one write(2) of a
    whole line, as the API server does); the time from just before that write to the moment kaudit's
    line for it was read here."""
    from tests import auditgen

    args = kaudit_args(node, node.ssh_port, Path(node.known_hosts), "--follow", "-o", "json", "--user", FOLLOW_USER)
    proc = subprocess.Popen([*kaudit, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    template = next(e for e in auditgen.events(50, seed=7) if e.get("objectRef"))
    live = node.path(LOG)
    out: list[float] = []
    buf = b""

    def wait_line(deadline: float) -> bytes | None:
        nonlocal buf
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(proc.stdout.fileno(), 65536)  # type: ignore[union-attr]
            if not chunk:
                return None
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        return line

    try:
        # warm up: kaudit connects, reads the manifest, starts tail -F; keep appending until one shows
        deadline = time.monotonic() + 60
        seen = False
        n = 0
        while not seen and time.monotonic() < deadline:
            n += 1
            _append(live, template, f"warmup-{n}")
            seen = wait_line(time.monotonic() + 1.0) is not None
        if not seen:
            proc.kill()
            err = proc.stderr.read() if proc.stderr else b""
            raise RuntimeError("kaudit logs --follow printed nothing within 60 s: " + err.decode(errors="replace"))
        while wait_line(time.monotonic() + 0.5) is not None:  # drain the other warm-up lines
            pass
        for i in range(samples):
            ident = f"sample-{i}"
            t0 = _append(live, template, ident)
            while True:
                line = wait_line(time.monotonic() + 10)
                if line is None:
                    raise RuntimeError(f"sample {i}: no line within 10 s")
                if ident.encode() in line:
                    out.append(time.perf_counter() - t0)
                    break
            time.sleep(0.3 + (i % 5) * 0.07)  # not in step with anything periodic
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def _append(live: Path, template: dict[str, Any], ident: str) -> float:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ev = {**template, "auditID": ident, "user": {"username": FOLLOW_USER, "groups": ["system:authenticated"]},
          "requestReceivedTimestamp": now, "stageTimestamp": now}
    line = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
    fd = os.open(live, os.O_WRONLY | os.O_APPEND)
    try:
        t0 = time.perf_counter()
        os.write(fd, line)
    finally:
        os.close(fd)
    return t0


# --------------------------------------------------------------------------- main


def _kaudit_argv(which: str) -> tuple[list[str], dict[str, str]]:
    """The kaudit to run and its environment. PYTHONDONTWRITEBYTECODE goes: a user's `pip install` leaves
    compiled bytecode (tests/userinstall.py used to install with --no-compile, and this environment may
    forbid writing it), and compiling every module at every start costs kaudit ~1.3 s of CPU per run here. The
    untimed warm-up run writes it."""
    if which == "venv":
        argv, env = [str(ROOT / ".venv" / "bin" / "kaudit")], dict(os.environ)
    else:
        from tests.userinstall import kaudit_argv, user_env

        argv, env = kaudit_argv(), user_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return argv, env


@contextlib.contextmanager
def _node(workdir: Path) -> Iterator[Any]:
    from bench.nodes import start_node

    node = start_node(workdir, linger=0.0, restart_delay=0.0)
    try:
        yield node
    finally:
        node.stop()


LOCAL_FILTER = r"""
import gc, sys
from installer.auditlog import reader
from installer.logs import logs
from installer.logs.filters import Filters
gc.disable()
path = sys.argv[1]
keep = Filters.build(verbs=["delete"], since="2026-01-01T00:00:00Z").predicate()
source = reader.Source("node:" + path, lambda: open(path, "rb"))
n = k = 0
for rec in reader.read([source]):  # as logs_node.history reads a node's stream: line by line
    n += 1
    if logs.well_formed(rec.event) and keep(rec.event):
        k += 1
print(n, k)
"""


def local(size_mb: int, repeat: int) -> int:
    """The local filtering side alone (no node, nothing prefiltered: every line is decoded and filtered,
    as when a filter cannot be grepped for on the node): `kaudit logs --verb delete --since ...`'s pass
    over the lines that crossed the wire (reader.read, well_formed, the predicate), against jq's
    `select(.verb=="delete")` and a json.loads loop on the same file, each pinned to one core, in rounds
    (the best of each kept). `python -m bench.simulate` measures simulate on the same kind of log."""
    from bench.simulate import JSON_LOOP, rounds

    sys.path.insert(0, str(ROOT))
    from tests import auditgen

    with tempfile.TemporaryDirectory(prefix="kaudit-bench-logs-local-") as work:
        path = Path(work) / "audit.log"
        events, size = auditgen.write_size(path, size_mb * 1024 * 1024)
        print(f"log: {events:,} events, {size / 1e6:.0f} MB", flush=True)
        commands = {"kaudit local filter": [sys.executable, "-c", LOCAL_FILTER, str(path)],
                    "json.loads loop": [sys.executable, "-c", JSON_LOOP, str(path)]}
        if shutil.which("jq"):
            commands["jq"] = ["jq", "-c", 'select(.verb=="delete")', str(path)]
        best = rounds(repeat, commands)
    mine = best["kaudit local filter"][0]
    for name, (wall, rss, _) in best.items():
        print(f"  {name:20s} {wall:6.2f} s  {events / wall:>9,.0f} events/s  RSS {rss / 1024:4.0f} MiB  "
              f"kaudit {wall / mine:.2f}x faster", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="the log set's size (MB); default 1024")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command (median); default 3")
    parser.add_argument("--follow-samples", type=int, default=20, help="--follow latency samples; default 20")
    parser.add_argument("--kaudit", choices=("installed", "venv"), default="installed",
                        help="the user install of this tree (tests/userinstall.py, default) or .venv/bin/kaudit")
    parser.add_argument("--compress", action="store_true",
                        help="the backups gzipped (.log.gz), as --audit-log-compress leaves them")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--local", action="store_true",
                        help="only the local filtering side, no node (issue 21 item 1): see local()")
    args = parser.parse_args(argv)
    if args.local:
        return local(args.size_mb, args.repeat)
    sys.path.insert(0, str(ROOT))
    if os.geteuid() != 0:
        print("bench.logs: test nodes need root", file=sys.stderr)
        return 2
    if not os.path.exists(JQ):
        print(f"bench.logs: {JQ} is missing (apt-get install jq)", file=sys.stderr)
        return 2
    kaudit, env = _kaudit_argv(args.kaudit)
    log(f"kaudit: {' '.join(kaudit)}")
    work = Path(tempfile.mkdtemp(prefix="kaudit-bench-logs-"))
    result: dict[str, Any] = {"machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                                          "kernel": platform.release(),
                                          "jq": subprocess.run([JQ, "--version"], capture_output=True,
                                                               text=True).stdout.strip()}}
    try:
        with _node(work) as node:
            enable = subprocess.run([*kaudit, "enable", node.target(), "-i", str(node.key_path), "--known-hosts",
                                     str(node.known_hosts), "--profile", "recommended", "--yes", "-o", "json",
                                     "--timeout", "60"], capture_output=True, text=True, env=env, check=False)
            if enable.returncode != 0:
                raise RuntimeError(f"kaudit enable failed: {enable.stderr[-2000:]}")
            folder = node.path(os.path.dirname(LOG))
            t = time.perf_counter()
            laid = lay_log(folder, args.size_mb * 1024 * 1024, compress=args.compress)
            result["log"] = laid
            log(f"log: {laid['events']:,} events ({laid['deletes']:,} deletes, "
                f"{laid['deletes'] / laid['events']:.2%}), {laid['bytes'] / 1e9:.2f} GB in {laid['files']} files, "
                f"{laid['on_disk'] / 1e9:.2f} GB on disk "
                f"(laid in {time.perf_counter() - t:.0f} s)")
            node_files = [f"{os.path.dirname(LOG)}/{b}" for b in laid["backups"]] + [LOG]
            # warm the page cache (both read the same files) and the user install
            subprocess.run(["cat", *[str(node.path(f)) for f in node_files]], stdout=subprocess.DEVNULL, check=True)
            known = Path(node.known_hosts)
            base_cmd = baseline_argv(node, node_files, node.ssh_port, known)
            kaudit_cmd = [*kaudit, *kaudit_args(node, node.ssh_port, known, "--verb", "delete", "-o", "json")]
            result["commands"] = {"baseline": base_cmd, "kaudit": " ".join(kaudit_cmd)}
            timed(kaudit_cmd, work / "warm.out", env)
            runs: dict[str, list[dict[str, float]]] = {"baseline": [], "kaudit": []}
            b0 = _cpu_busy()
            for rep in range(args.repeat):
                for tool in ("baseline", "kaudit"):
                    if tool == "baseline":
                        wall, lines, cpu = timed(base_cmd, work / "base.out")
                    else:
                        wall, lines, cpu = timed(kaudit_cmd, work / "kaudit.out", env)
                    runs[tool].append({"wall": wall, "lines": lines, "cpu": cpu})
                    log(f"rep {rep + 1}/{args.repeat} {tool}: {wall:.2f} s, {lines:,} events, local CPU {cpu:.2f} s")
            b1 = _cpu_busy()
            result["machine"]["busy_during"] = (b1[0] - b0[0]) / max(b1[1] - b0[1], 1.0)
            counts = {tool: {r["lines"] for r in rs} for tool, rs in runs.items()}
            if counts["baseline"] != counts["kaudit"] or len(counts["kaudit"]) != 1:
                raise RuntimeError(f"the two commands disagree on the events: {counts}")
            result["runs"] = runs
            med = {tool: statistics.median(r["wall"] for r in rs) for tool, rs in runs.items()}
            result["median"] = med
            result["ratio"] = med["baseline"] / med["kaudit"]

            result["breakdown"] = breakdown(node, node_files, kaudit, env, work, args.repeat)

            # the wire: both again, through the counting relay (untimed)
            relay = Relay(node.ssh_port)
            rknown = _known_hosts(node, relay.port, work)
            wire: dict[str, dict[str, int]] = {}
            for tool in ("baseline", "kaudit"):
                relay.reset()
                if tool == "baseline":
                    timed(baseline_argv(node, node_files, relay.port, rknown), work / "base.out")
                else:
                    timed([*kaudit, *kaudit_args(node, relay.port, rknown, "--verb", "delete", "-o", "json")],
                          work / "kaudit.out", env)
                time.sleep(0.2)  # the relay's last packets
                wire[tool] = {"down": relay.down, "up": relay.up}
            relay.close()
            result["wire"] = wire
            log(f"wire: baseline {wire['baseline']}, kaudit {wire['kaudit']}")

            lat = follow_latency(kaudit, node, env, args.follow_samples)
            result["follow"] = {"samples": lat, "median": statistics.median(lat), "max": max(lat)}
            log(f"--follow: median {statistics.median(lat) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
                f"({len(lat)} samples)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def report(r: dict[str, Any]) -> str:
    lg, med, wire, fol = r["log"], r["median"], r["wire"], r["follow"]
    n = len(r["runs"]["kaudit"])
    out = [
        f"log: {lg['events']:,} events, {lg['bytes'] / 1e9:.2f} GB in {lg['files']} files "
        f"({lg['files'] - 1} {'gzipped ' if lg['compressed'] else ''}backups + audit.log, "
        f"{lg['on_disk'] / 1e9:.2f} GB on disk); deletes {lg['deletes']:,} ({lg['deletes'] / lg['events']:.2%})",
        "",
        f"| | wall (median of {n}) | bytes from the node / to it | local CPU |",
        "|---|---|---|---|",
        f"| baseline: ssh sudo cat … \\| jq | {med['baseline']:.2f} s | {wire['baseline']['down']:,} / "
        f"{wire['baseline']['up']:,} | {statistics.median(x['cpu'] for x in r['runs']['baseline']):.2f} s |",
        f"| kaudit logs --verb delete -o json | {med['kaudit']:.2f} s | {wire['kaudit']['down']:,} / "
        f"{wire['kaudit']['up']:,} | {statistics.median(x['cpu'] for x in r['runs']['kaudit']):.2f} s |",
        "",
        f"kaudit is {r['ratio']:.1f}x faster end to end (target >= 5x); "
        f"{wire['baseline']['down'] / max(wire['kaudit']['down'], 1):.0f}x fewer bytes from the node.",
        f"--follow latency, write on the node -> line printed: median {fol['median'] * 1000:.0f} ms, "
        f"max {fol['max'] * 1000:.0f} ms ({len(fol['samples'])} samples; target <= 1 s).",
        f"machine busy during the timed runs: {r['machine']['busy_during']:.0%} of {r['machine']['nproc']} CPUs",
        "",
        "where kaudit's time goes (median, same node, same files):",
        *(f"- {name}: {value:.2f} s" for name, value in r["breakdown"].items()),
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
