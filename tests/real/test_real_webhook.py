"""The webhook backend on the real API server: a receiver of the test's own (HTTPS, its own CA in the webhook
kubeconfig) on the node's loopback gets the events in batch and blocking modes; with the receiver down,
what the real server does is measured and printed (see tests/node/README.md for the numbers)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node.realnode import RealNode
from tests.real import kube
from tests.real.realcli import changed, events_of

HERE = Path(__file__).resolve().parent
PORT = 18443  # inside the node's own network namespace: nothing else listens there


class Receiver:
    def __init__(self, node: RealNode, where: Path) -> None:
        self.node, self.where = node, where
        self.out = where / "received.jsonl"
        self.proc: subprocess.Popen[str] | None = None
        ssl = ["openssl"]
        ca_key, self.ca, key, csr, cert = (where / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
        (where / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        for args in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", self.ca, "-days", "2",
             "-subj", "/CN=kaudit-real-receiver-ca"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial", "-CAserial",
             where / "ca.srl", "-out", cert, "-days", "2", "-extfile", where / "san.cnf"],
        ):
            subprocess.run([*ssl, *map(str, args)], check=True, capture_output=True)
        self.cert, self.key = cert, key

    def kubeconfig(self) -> Path:
        ca = base64.b64encode(self.ca.read_bytes()).decode()
        path = self.where / "webhook.kubeconfig"
        path.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: receiver
  cluster:
    server: https://127.0.0.1:{PORT}/audit
    certificate-authority-data: {ca}
users:
- name: api-server
  user: {{}}
contexts:
- name: default
  context:
    cluster: receiver
    user: api-server
current-context: default
""")
        return path

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.node.netns}", sys.executable, str(HERE / "receiver.py"),
             str(self.cert), str(self.key), str(PORT), str(self.out)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "listening"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def events(self, tag: str) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        prefix = f"kaudit-real/{tag}/"
        evs = [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]
        return [e for e in evs if e.get("userAgent", "").startswith(prefix)]


@pytest.fixture
def receiver(real_node: RealNode, tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(real_node, tmp_path)
    r.start()
    yield r
    r.stop()


def _keys(events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["auditID"], e["stage"]) for e in events}


def test_webhook_batch_and_blocking_and_the_receiver_down(fresh_node: RealNode, receiver: Receiver,
                                                          ids: dict[str, kube.Identity]) -> None:
    node = fresh_node
    config = receiver.kubeconfig()
    _, new = changed(node, "enable", "--profile", "recommended", "--webhook-config", str(config),
                     "--webhook-mode", "batch")
    f = kube.flags(new["argv"])
    assert f.get("audit-webhook-mode") == "batch" and "audit-webhook-config-file" in f, new["argv"]

    sent_at = time.time()
    sent = kube.send_traffic(node, ids, "kaudit-real-wh1", "wh1")
    logged = events_of(node, "wh1", lambda by: len(by) >= len(sent) - 2)
    want = _keys([e for evs in logged.values() for e in evs])
    assert want
    deadline = time.time() + 60  # batch mode: --audit-webhook-batch-max-wait is 30 s by default
    while not want <= _keys(receiver.events("wh1")) and time.time() < deadline:
        time.sleep(0.5)
    assert _keys(receiver.events("wh1")) == want, "batch: the receiver did not get the events the log holds"
    kube.TIMELINES.append({"what": "webhook", "mode": "batch", "delivered_after_s": round(time.time() - sent_at, 1)})

    _, new = changed(node, "enable", "--profile", "recommended", "--webhook-config", str(config),
                     "--webhook-mode", "blocking")
    assert kube.flags(new["argv"]).get("audit-webhook-mode") == "blocking"
    sent = kube.send_traffic(node, ids, "kaudit-real-wh2", "wh2")
    logged = events_of(node, "wh2", lambda by: len(by) >= len(sent) - 2)
    want = _keys([e for evs in logged.values() for e in evs])
    deadline = time.time() + 15
    while not want <= _keys(receiver.events("wh2")) and time.time() < deadline:
        time.sleep(0.2)
    assert _keys(receiver.events("wh2")) == want, "blocking: the receiver did not get the events the log holds"

    # The receiver down: what does the real API server do with requests and their events? Measured, not
    # asserted (tests/node/README.md has the numbers): in blocking mode each request waits on the webhook.
    receiver.stop()
    outcomes: list[tuple[str, float]] = []
    for i in range(2):
        t = time.time()
        try:
            status, _ = kube.request(node, ids["admin"], "GET", "/api/v1/namespaces/default",
                                     agent=f"kaudit-real/wh3/{i}", timeout=120)
            outcome = str(status)
        except OSError as e:  # http.client.RemoteDisconnected, timeouts
            outcome = type(e).__name__
        outcomes.append((outcome, round(time.time() - t, 1)))
    receiver.start()
    time.sleep(15)
    in_log = events_of(node, "wh3", lambda by: len(by) == 2, timeout=5)
    kube.TIMELINES.append({"what": "webhook", "mode": "blocking, receiver down",
                           "requests (outcome, seconds)": outcomes,
                           "delivered_after_receiver_back": len(receiver.events("wh3")),
                           "in_log": sum(len(v) for v in in_log.values())})
    # the server is healthy again and audits to the receiver once it is back
    assert node.api_ready()
    status, _ = kube.request(node, ids["admin"], "GET", "/api/v1/namespaces/default", agent="kaudit-real/wh4/0")
    assert status == 200
    deadline = time.time() + 15
    while not receiver.events("wh4") and time.time() < deadline:
        time.sleep(0.2)
    assert receiver.events("wh4"), "the receiver got nothing once back"
