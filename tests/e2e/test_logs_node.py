"""`kaudit logs TARGET` against a test node after a real `kaudit enable`: the simulator writes real events
for the requests the tests make; rotated files (plain and .gz) are laid beside the live log in the
log's own format. One node for the module (a second one for the merge test)."""

from __future__ import annotations

import gzip
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kaudit_cli import change, kaudit, on, ssh_args
from tests.node.node import TestNode

LOG = "/var/log/kubernetes/audit/audit.log"
SECRET = "dG9wLXNlY3JldC12YWx1ZQ=="


def _event(ts: str, *, verb: str = "get", user: str = "alice", resource: str = "pods", ns: str = "default",
           name: str = "", code: int = 200, stage: str = "ResponseComplete", **extra: Any) -> dict[str, Any]:
    ref = {k: v for k, v in {"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1"}.items() if v}
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"id-{ts}-{verb}",
            "stage": stage, "requestURI": f"/api/v1/namespaces/{ns}/{resource}/{name}".rstrip("/"), "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]}, "sourceIPs": ["10.0.0.9"],
            "userAgent": "kubectl/v1.34.0 (linux/amd64) kubernetes/abc", "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": code}, "requestReceivedTimestamp": ts,
            "stageTimestamp": ts, **extra}


def _line(ev: dict[str, Any]) -> bytes:
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()


def _theirs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events that are not kaudit's own probe and verification requests (`kaudit logs` leaves those
    out unless --include-kaudit)."""
    return [e for e in events if not e.get("userAgent", "").startswith("kaudit/")]


@pytest.fixture(scope="module")
def enabled(module_node: TestNode) -> TestNode:
    node = module_node
    off = on(node, "logs")
    assert off.code == 2, off
    assert "auditing is off" in off.err and "kaudit status" in off.err and "Traceback" not in off.err
    assert change(node, "enable", "--profile", "recommended").code == 0
    node.request("/api/v1/namespaces/default/pods", admin=True)
    node.request("/api/v1/namespaces/kube-system/secrets", "POST", admin=True,
                 body={"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}, "data": {"k": SECRET}})
    node.request("/apis/apps/v1/namespaces/default/deployments/web", "DELETE", user="jane",
                 groups=("dev", "system:authenticated"))
    node.request("/api/v1/namespaces/team-a/pods", user="system:serviceaccount:team-a:builder",
                 groups=("system:serviceaccounts", "system:authenticated"))
    node.request("/api/v1/namespaces/team-a/secrets/db", user="mallory", groups=("system:authenticated",))
    assert node.audit_events()
    return node


def test_text_and_json_over_ssh(enabled: TestNode) -> None:
    node = enabled
    events = _theirs(node.audit_events())
    run = on(node, "logs", "--utc")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == len(events)
    assert SECRET not in run.out
    delete = [ln for ln in lines if " delete " in ln]
    assert delete and "jane" in delete[0] and "deployments.apps" in delete[0] and "default/web" in delete[0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  ", delete[0])
    assert "kaudit-testnode" in delete[0] and "127.0.0.1" in delete[0] and re.search(r"  \d+ms  ", delete[0])
    sa = [ln for ln in lines if "team-a:builder" in ln]
    assert sa and "system:serviceaccount" not in sa[0]

    js = on(node, "logs", "-o", "json")
    assert js.code == 0, js.err
    docs = [json.loads(x) for x in js.out.splitlines()]
    assert [d["auditID"] for d in docs] == [e["auditID"] for e in events]
    assert all(d["node"] for d in docs)
    assert SECRET not in js.out and all("requestObject" not in d for d in docs)


def test_filters(enabled: TestNode) -> None:
    node = enabled
    events = _theirs(node.audit_events())

    def ids(*args: str) -> list[str]:
        run = on(node, "logs", "-o", "json", *args)
        assert run.code == 0, run.err
        return [json.loads(x)["auditID"] for x in run.out.splitlines()]

    def want(pred: Any) -> list[str]:
        return [e["auditID"] for e in events if pred(e)]

    def ref(e: dict[str, Any]) -> dict[str, Any]:
        r: dict[str, Any] = e.get("objectRef", {})
        return r

    assert ids("--verb", "delete") == want(lambda e: e["verb"] == "delete")
    assert ids("--verb", "delete", "--verb", "list") == want(lambda e: e["verb"] in ("delete", "list"))
    assert ids("--user", "team-a:builder") == want(
        lambda e: e["user"].get("username") == "system:serviceaccount:team-a:builder")
    assert ids("--group", "dev") == want(lambda e: "dev" in e["user"].get("groups", []))
    assert ids("--resource", "secrets") == want(lambda e: ref(e).get("resource") == "secrets")
    assert ids("--resource", "deployments.apps") == want(lambda e: ref(e).get("resource") == "deployments")
    assert ids("--resource", "deployments.batch") == []
    assert ids("--namespace", "team-a") == want(lambda e: ref(e).get("namespace") == "team-a")
    assert ids("--name", "db") == want(lambda e: ref(e).get("name") == "db")
    assert ids("--code", "2xx", "--verb", "create") == want(
        lambda e: e["verb"] == "create" and 200 <= e.get("responseStatus", {}).get("code", 0) < 300)
    assert ids("--stage", "ResponseComplete") == want(lambda e: e["stage"] == "ResponseComplete")
    assert ids("--level", "RequestResponse") == want(lambda e: e["level"] == "RequestResponse")
    assert ids("--user", "jane", "--verb", "get") == []
    assert ids("--since", "6h") == [e["auditID"] for e in events]
    assert ids("--until", "2000-01-01") == []
    bad = on(node, "logs", "--code", "6x")
    assert bad.code == 2 and "--code" in bad.err and "Traceback" not in bad.err


def test_rotated_files_window_and_truncated_lines(enabled: TestNode) -> None:
    node = enabled
    folder = node.path("/var/log/kubernetes/audit")
    old = folder / "audit-2026-01-01T10-00-00.000.log.gz"
    mid = folder / "audit-2026-01-02T10-00-00.000.log"
    with gzip.open(old, "wb") as f:
        f.write(_line(_event("2026-01-01T09:00:00.000000Z", verb="delete", user="old-gz")))
    mid.write_bytes(_line(_event("2026-01-02T09:00:00.000000Z", verb="delete", user="old-plain"))
                    + b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","verb":"delete","us')
    try:
        run = on(node, "logs", "--verb", "delete", "-o", "json")
        assert run.code == 0, run.err
        users = [json.loads(x)["user"]["username"] for x in run.out.splitlines()]
        assert users == ["old-gz", "old-plain", "jane"]
        assert "skipped 1 truncated" in run.err and "audit-2026-01-02T10-00-00.000.log:2" in run.err
        # the window selects files: only the .gz file (up to its name, 10:00) can hold 00:00-09:30
        win = on(node, "logs", "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-01T09:30:00Z", "-o", "json")
        assert win.code == 0, win.err
        assert [json.loads(x)["user"]["username"] for x in win.out.splitlines()] == ["old-gz"]
        assert "truncated" not in win.err  # the cut file was not read at all
        text = on(node, "logs", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-03T00:00:00Z")
        assert text.code == 0 and "old-plain" in text.out and "old-gz" not in text.out
    finally:
        old.unlink()
        mid.unlink()


def test_save_writes_only_when_asked(enabled: TestNode, tmp_path: Path) -> None:
    node = enabled
    out = tmp_path / "saved"
    run = on(node, "logs", "--verb", "create", "--save", str(out))
    assert run.code == 0, run.err
    (saved,) = out.iterdir()
    assert oct(out.stat().st_mode & 0o777) == "0o700" and oct(saved.stat().st_mode & 0o777) == "0o600"
    docs = [json.loads(x) for x in saved.read_text().splitlines()]
    assert docs and all(d["verb"] == "create" and d["node"] for d in docs)
    assert len(docs) == len(run.out.splitlines()) and SECRET not in saved.read_text()


def test_summary_over_ssh(enabled: TestNode) -> None:
    node = enabled
    run = on(node, "logs", "--summary", "-o", "json")
    assert run.code == 0, run.err
    doc = run.json()
    s = doc["summary"]
    assert s["events"] == len(_theirs(node.audit_events()))
    assert s["busiest"] and "kaudit simulate" in s["simulate"]
    text = on(node, "logs", "--summary")
    assert text.code == 0 and "events per minute" in text.out and "busiest" in text.out


def test_bad_nodes(node_factory: Any) -> None:
    node = node_factory()
    assert change(node, "enable", "--profile", "minimal").code == 0
    # nothing written yet at a fresh path is not an error of kaudit's: it says so
    folder = node.path("/var/log/kubernetes/audit")
    for f in folder.iterdir():
        f.unlink()
    gone = on(node, "logs")
    assert gone.code == 2 and "no audit log" in gone.err and "Traceback" not in gone.err
    os.mkdir(folder / "audit.log")
    try:
        d = on(node, "logs")
        assert d.code == 2 and "is a directory" in d.err and "Traceback" not in d.err
    finally:
        os.rmdir(folder / "audit.log")
    (folder / "audit.log").write_text('2017-03-21T03:57:09.106841886-04:00 AUDIT: id="x" ip="1.2.3.4" '
                                      'method="GET" user="admin"\n')
    legacy = on(node, "logs")
    assert legacy.code == 2 and "legacy" in legacy.err and "Traceback" not in legacy.err


def test_two_nodes_merged(enabled: TestNode, node_factory: Any) -> None:
    other = node_factory()
    assert change(other, "enable", "--profile", "recommended").code == 0
    for i in range(3):
        enabled.request(f"/api/v1/namespaces/merge/configmaps/a{i}", user="merger", groups=("system:authenticated",))
        time.sleep(0.05)
        other.request(f"/api/v1/namespaces/merge/configmaps/b{i}", user="merger", groups=("system:authenticated",))
        time.sleep(0.05)
    cfg = _ssh_config(enabled, other)
    run = kaudit("logs", "cp-a", "cp-b", "-F", str(cfg), "--known-hosts", str(cfg.parent / "both_known_hosts"),
                 "--user", "merger", "-o", "json")
    assert run.code == 0, run.err
    docs = [json.loads(x) for x in run.out.splitlines()]
    names = [d["objectRef"]["name"] for d in docs if d["stage"] == "ResponseComplete"]
    assert names == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert len({d["node"] for d in docs}) == 2
    stamps = [d["stageTimestamp"] for d in docs]
    assert stamps == sorted(stamps)


def _ssh_config(a: TestNode, b: TestNode) -> Path:
    folder = a.known_hosts.parent
    (folder / "both_known_hosts").write_text(a.known_hosts.read_text() + b.known_hosts.read_text())
    cfg = folder / "both_ssh_config"
    cfg.write_text("".join(f"Host {alias}\n  HostName {n.host}\n  Port {n.ssh_port}\n  User kadmin\n"
                           f"  IdentityFile {n.key_path}\n" for alias, n in (("cp-a", a), ("cp-b", b))))
    return cfg


def test_detect_on_a_node(enabled: TestNode) -> None:
    node = enabled
    node.request("/api/v1/namespaces/default/pods/web/exec?command=sh", "POST", user="mallory",
                 groups=("system:authenticated",))
    run = on(node, "logs", "--detect", "pod-exec", "--fail-on-findings", "-o", "json")
    assert run.code == 1, run.err
    doc = run.json()
    (finding,) = doc["findings"]
    assert finding["name"] == "pod-exec" and finding["topUsers"][0]["user"] == "mallory"
    assert finding["events"] == 1 and finding["why"]
    assert all(b["node"] and b["note"] for b in doc["blind"])
    # the recommended profile records pod exec at Metadata or more: not blind to it
    assert not [b for b in doc["blind"] if b["detection"] == "pod-exec"]
    text = on(node, "logs", "--detect")
    assert text.code == 0, text.err
    assert "pod-exec" in text.out and "why:" in text.out and SECRET not in text.out
    unknown = on(node, "logs", "--detect", "no-such")
    assert unknown.code == 2 and "no detection" in unknown.err and "--list-detections" in unknown.err
    assert "Traceback" not in unknown.err


def _tails(node: TestNode) -> int:
    """kaudit's `tail -F` processes in this node's mount namespace (the host's /proc, as root)."""
    ns = os.readlink(f"/proc/{node.init_pid}/ns/mnt")
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            if cmd.startswith(b"tail -n 0 -F") and os.readlink(f"/proc/{entry}/ns/mnt") == ns:
                count += 1
        except OSError:
            continue
    return count


def test_follow_survives_rotation_and_ctrl_c_leaves_nothing(enabled: TestNode) -> None:
    import selectors
    import signal
    import subprocess

    from tests.kaudit_cli import ssh_args
    from tests.userinstall import kaudit_argv, user_env

    node = enabled
    before = _tails(node)
    proc = subprocess.Popen([*kaudit_argv(), "logs", node.target(), *ssh_args(node), "--follow", "-o", "json",
                             "--user", "follower"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=user_env(), text=True)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)

    def next_line(timeout: float = 10.0) -> dict[str, Any]:
        assert sel.select(timeout), "no event printed in time"
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line, proc.stderr.read() if proc.stderr else ""
        doc: dict[str, Any] = json.loads(line)
        return doc

    try:
        deadline = time.monotonic() + 20
        while _tails(node) <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _tails(node) > before, "tail never started on the node"
        node.request("/api/v1/namespaces/f/configmaps/one", user="follower", groups=("system:authenticated",))
        got = [next_line()]
        while got[-1]["stage"] != "ResponseComplete":
            got.append(next_line())
        assert got[-1]["objectRef"]["name"] == "one" and got[-1]["node"]
        # the API server's rotation: the live file is renamed and a new one is opened
        live = node.path(LOG)
        rotated = live.with_name("audit-2026-12-01T00-00-00.000.log")
        live.rename(rotated)
        node.request("/api/v1/namespaces/f/configmaps/two", user="follower", groups=("system:authenticated",))
        got = [next_line(15)]
        while got[-1]["stage"] != "ResponseComplete":
            got.append(next_line())
        assert got[-1]["objectRef"]["name"] == "two"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        err = proc.stderr.read() if proc.stderr else ""
        live = node.path(LOG)
        rotated = live.with_name("audit-2026-12-01T00-00-00.000.log")
        if rotated.exists():  # put the module's log back together for the other tests
            live.write_bytes(rotated.read_bytes() + (live.read_bytes() if live.exists() else b""))
            rotated.unlink()
    assert code == 130 and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while _tails(node) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tails(node) == before, "kaudit left its tail running on the node"


def test_follow_a_node_that_drops_out(enabled: TestNode, node_factory: Any) -> None:
    import selectors
    import signal
    import subprocess

    from tests.userinstall import kaudit_argv, user_env

    other = node_factory()
    assert change(other, "enable", "--profile", "recommended").code == 0
    cfg = _ssh_config(enabled, other)
    proc = subprocess.Popen([*kaudit_argv(), "logs", "cp-a", "cp-b", "-F", str(cfg), "--known-hosts",
                             str(cfg.parent / "both_known_hosts"), "--follow", "--user", "survivor", "--utc"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=user_env(), text=True)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        deadline = time.monotonic() + 30
        while _tails(other) == 0 and time.monotonic() < deadline:  # cp-b is opened after cp-a
            time.sleep(0.1)
        assert _tails(other) == 1, "kaudit never started following cp-b"
        other.stop()
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        assert sel.select(15), "no warning about the lost node"
        warning = proc.stderr.readline()
        assert "cp-b" in warning and "dropped out" in warning, warning
        enabled.request("/api/v1/namespaces/f/configmaps/still", user="survivor", groups=("system:authenticated",))
        out = selectors.DefaultSelector()
        out.register(proc.stdout, selectors.EVENT_READ)
        assert out.select(10), "the remaining node's events stopped"
        line = proc.stdout.readline()
        assert "survivor" in line and "f/still" in line
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
    assert code == 2
    assert "Traceback" not in proc.stderr.read()


BODY_SECRET = "Ym9kaWVzLW9ubHktd2hlbi1hc2tlZA=="


def test_bodies_only_with_bodies_and_masked_even_then(enabled: TestNode, tmp_path: Path) -> None:
    """A RequestResponse event of a Secret write and a ConfigMap read, in the live log: -o json drops the
    bodies, --bodies shows them with the Secret's data masked (on stdout and in --save), text never."""
    from installer.auditlog.masking import MASK

    node = enabled
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    secret = _event(now, verb="update", user="bodies-user", resource="secrets", name="db", level="RequestResponse",
                    requestObject={"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"},
                                   "data": {"password": BODY_SECRET}})
    secret["auditID"] = "bodies-secret"
    config = _event(now, verb="get", user="bodies-user", resource="configmaps", name="app", level="RequestResponse",
                    responseObject={"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "app"},
                                    "data": {"color": "blue"}})
    config["auditID"] = "bodies-config"
    live = node.path(LOG)
    added = _line(secret) + _line(config)
    with open(live, "ab") as f:
        f.write(added)
    try:
        plain = on(node, "logs", "--user", "bodies-user", "-o", "json")
        assert plain.code == 0, plain.err
        docs = [json.loads(x) for x in plain.out.splitlines()]
        assert [d["auditID"] for d in docs] == ["bodies-secret", "bodies-config"]
        assert all("requestObject" not in d and "responseObject" not in d for d in docs)
        assert BODY_SECRET not in plain.out and "blue" not in plain.out

        saved = tmp_path / "saved"
        shown = on(node, "logs", "--user", "bodies-user", "-o", "json", "--bodies", "--save", str(saved))
        assert shown.code == 0, shown.err
        sec, cfg = (json.loads(x) for x in shown.out.splitlines())
        assert sec["requestObject"]["data"] == {"password": MASK} and sec["requestObject"]["metadata"]["name"] == "db"
        assert cfg["responseObject"]["data"] == {"color": "blue"}  # a body, shown because it was asked for
        (file,) = saved.iterdir()
        assert BODY_SECRET not in shown.out + file.read_text() and "blue" in file.read_text()

        text = on(node, "logs", "--user", "bodies-user", "--bodies")
        assert text.code == 0 and len(text.out.splitlines()) == 2
        assert BODY_SECRET not in text.out and "blue" not in text.out  # text never shows a body
    finally:
        data = live.read_bytes()
        with open(live, "r+b") as f:  # in place: the running instance keeps its open file
            f.truncate(0)
            f.write(data.replace(added, b""))


def test_sudo_password_in_no_process_list_on_either_side(node_factory: Any) -> None:
    """kaudit logs as a user whose sudo asks for a password (--sudo-password-stdin), history and --follow:
    no process on this machine, the node's (its own PID namespace, seen from here) and kaudit's, has
    the password in its command line or environment while kaudit runs."""
    import signal
    import subprocess
    import threading

    from tests.kaudit_cli import ssh_args
    from tests.node.node import SUDO_PASSWORD
    from tests.userinstall import kaudit_argv, user_env

    node = node_factory()
    assert change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="kpw",
                  stdin=SUDO_PASSWORD + "\n").code == 0
    seen: set[str] = set()
    scans = 0
    stop = threading.Event()
    needle = SUDO_PASSWORD.encode()

    def scan() -> None:
        nonlocal scans
        while not stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                for what in ("cmdline", "environ"):
                    try:
                        if needle in Path(f"/proc/{entry}/{what}").read_bytes():
                            seen.add(f"{entry}/{what}")
                    except OSError:
                        continue
            scans += 1

    th = threading.Thread(target=scan, daemon=True)
    th.start()
    base = [*kaudit_argv(), "logs", node.target("kpw"), *ssh_args(node), "--sudo-password-stdin"]
    try:
        hist = subprocess.run([*base, "-o", "json"], input=SUDO_PASSWORD + "\n", capture_output=True, text=True,
                              env=user_env(), timeout=120, check=False)
        assert hist.returncode == 0, hist.stderr
        proc = subprocess.Popen([*base, "--follow"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=user_env(), text=True)
        assert proc.stdin is not None
        proc.stdin.write(SUDO_PASSWORD + "\n")
        proc.stdin.flush()
        try:
            deadline = time.monotonic() + 30
            while _tails(node) == 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _tails(node) == 1, "kaudit never started following"
            first = scans
            while scans < first + 5:  # several whole scans while the sudo'd tail runs
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
    finally:
        stop.set()
        th.join()
    assert not seen, seen
    assert SUDO_PASSWORD not in hist.stdout + hist.stderr + out + err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- issue 24


def _ids(run: Any) -> list[str]:
    assert run.code == 0, run.err
    return [json.loads(x)["auditID"] for x in run.out.splitlines()]


def test_filters_that_cannot_match_say_so(enabled: TestNode) -> None:
    """Issue 24 item 2: `--verb DELETE`, `--resource secret`, `--resource po` are what the operator meant;
    `--verb delet` is refused with the nearest verb; `--user anonymous` matched nothing and says so,
    naming the users the log does hold."""
    node = enabled
    for i in range(3):
        node.request(f"/api/v1/namespaces/vault/secrets/s{i}", "DELETE", user="system:anonymous",
                     groups=("system:unauthenticated",))
    events = _theirs(node.audit_events())
    deletes = [e["auditID"] for e in events if e["verb"] == "delete"
               and e.get("objectRef", {}).get("resource") == "secrets"]
    assert len(deletes) >= 3
    for args in (("--verb", "DELETE"), ("--resource", "secret"), ("--verb", "Delete", "--resource", "Secret")):
        run = on(node, "logs", "-o", "json", "--namespace", "vault", *args)
        assert _ids(run) == deletes, args
        assert "no event matched" not in run.err
    pods = [e["auditID"] for e in events if e.get("objectRef", {}).get("resource") == "pods"
            and not e["objectRef"].get("subresource")]
    assert pods and _ids(on(node, "logs", "-o", "json", "--resource", "po")) == pods

    typo = on(node, "logs", "--verb", "delet")
    assert typo.code == 2 and "--verb 'delet'" in typo.err and "did you mean 'delete'" in typo.err
    assert typo.out == "" and "Traceback" not in typo.err

    anon = on(node, "logs", "--user", "anonymous")
    assert anon.code == 0 and anon.out == ""
    assert "no event matched --user anonymous; users in the log: system:anonymous" in anon.err, anon.err
    both = on(node, "logs", "--user", "anonymous", "--verb", "DELETE", "--namespace", "vault", "-o", "json")
    assert both.code == 0 and both.out == ""
    assert ("no event matched --user anonymous --verb delete --namespace vault; users of the events that match the "
            "other filters: system:anonymous") in both.err, both.err


def test_own_requests_left_out_unless_asked(enabled: TestNode) -> None:
    """Issue 24 item 9: the verification request of each change carries kaudit's user agent, and `logs`,
    its summary and `--detect` leave kaudit's own requests out (counted on stderr) unless
    --include-kaudit; a request of another shape that claims kaudit's user agent is shown."""
    node = enabled
    every = node.audit_events()
    own = [e for e in every if e.get("userAgent", "").startswith("kaudit/")]
    assert own, "the enable's verification request is in the log"
    assert all(re.fullmatch(r"kaudit/\S+ \((verify|probe)\)", e["userAgent"]) for e in own)
    assert any("kaudit-verify=" in e["requestURI"] for e in own)
    assert not [e for e in every if e.get("userAgent", "").startswith("curl/")]
    own_ids = {e["auditID"] for e in own}

    plain = on(node, "logs", "-o", "json")
    assert not own_ids & set(_ids(plain))
    assert f"{len(own)} of kaudit's own probe and verification requests left out (--include-kaudit shows them)" \
        in plain.err
    text = on(node, "logs")
    assert text.code == 0 and "kaudit/" not in text.out
    assert own_ids <= set(_ids(on(node, "logs", "-o", "json", "--include-kaudit")))

    shape = ("--namespace", "default", "--resource", "cm", "--verb", "list", "--summary", "-o", "json")
    summary = on(node, "logs", *shape)
    assert summary.code == 0, summary.err
    assert summary.json()["summary"]["events"] == 0 and summary.json()["read"]["kauditOwn"] == len(own)
    included = on(node, "logs", *shape, "--include-kaudit")
    assert included.json()["summary"]["events"] == len(own) and included.json()["read"]["kauditOwn"] == 0
    hunt = on(node, "logs", "--detect", "-o", "json")
    assert hunt.code == 0 and hunt.json()["read"]["kauditOwn"] == len(own)

    forged = node.path("/var/log/kubernetes/audit") / "audit-2026-01-03T10-00-00.000.log"
    forged.write_bytes(_line(_event("2026-01-03T09:00:00.000000Z", resource="secrets", user="forger",
                                    userAgent="kaudit/0.1.0 (verify)")))
    try:
        shown = on(node, "logs", "--user", "forger", "-o", "json")
        assert [json.loads(x)["userAgent"] for x in shown.out.splitlines()] == ["kaudit/0.1.0 (verify)"]
    finally:
        forged.unlink()


def test_times_carry_their_zone_and_detection_names_their_nearest(enabled: TestNode) -> None:
    node = enabled
    run = kaudit("logs", node.target(), *ssh_args(node), env={"TZ": "IST-5:30"})
    assert run.code == 0, run.err
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+05:30  ", ln) for ln in run.out.splitlines())
    utc = on(node, "logs", "--utc")
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  ", ln) for ln in utc.out.splitlines())
    typo = on(node, "logs", "--detect", "pod-exc")
    assert typo.code == 2 and "did you mean 'pod-exec'" in typo.err and "Traceback" not in typo.err
