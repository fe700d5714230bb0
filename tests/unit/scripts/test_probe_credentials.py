"""The probe's admin credentials (issue 23 item 7): sent only over TLS verified against the kubeconfig's
cluster CA, never with `curl -k`, and never without a kubeconfig (kaudit passes none for a probe that
does not ask the API server's own address). Runs the probe script here, against a loopback server."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer.scripts import load
from tests.node import seed
from tests.standins import Recorder401

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the probe needs curl")


@pytest.fixture
def recorder() -> Iterator[Recorder401]:
    r = Recorder401()
    yield r
    r.close()


def _kubeconfig(tmp_path: Path, ca: bytes | None) -> str:
    lines = ["apiVersion: v1", "clusters:", "- cluster:"]
    if ca is not None:
        lines.append(f"    certificate-authority-data: {base64.b64encode(ca).decode()}")
    lines += ["    server: https://127.0.0.1:1", "  name: k", "users:", "- name: admin", "  user:",
              "    token: the-admin-token", ""]
    path = tmp_path / "admin.conf"
    path.write_text("\n".join(lines))
    return str(path)


def _probe(url: str, kubeconfig: str) -> str:
    text, args = load.PROBE_ONCE.bind(url=url, kubeconfig=kubeconfig)
    return subprocess.run(["sh", "-c", text, "sh", *args], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def test_the_token_goes_only_to_a_server_the_cluster_ca_vouches_for(recorder: Recorder401, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{recorder.port}/readyz"
    other_ca, _ = seed.make_tls()
    assert _probe(url, _kubeconfig(tmp_path, other_ca)) == "000 admin-token"  # verification failed
    assert _probe(url, _kubeconfig(tmp_path, None)) == "401 no-cluster-ca"
    assert _probe(url, "") == "401 anonymous"
    assert recorder.requests and set(recorder.requests) == {None}, recorder.requests
    assert _probe(url, _kubeconfig(tmp_path, recorder.ca)) == "401 admin-token"
    assert recorder.requests[-1] == "Bearer the-admin-token"
