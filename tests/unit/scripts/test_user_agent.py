"""Every HTTP request kaudit's node scripts send carries its user agent (issue 24 item 9):
`kaudit/VERSION (probe)` for readiness probes, `kaudit/VERSION (verify)` for a change's verification
request, so that `kaudit logs` can leave its own requests out and an operator can tell them apart."""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator

import pytest

from installer import __version__
from installer.scripts import load


def test_every_curl_and_wget_sends_the_kaudit_user_agent() -> None:
    calls = 0
    for script in load.all_scripts():
        for line in script.text.splitlines():
            code = line.split("#", 1)[0]
            if re.search(r"(^|[\s($|])curl\s+-", code):
                calls += 1
                assert '-A "$ua"' in code, (script.name, line)
            if re.search(r"(^|[\s($|])wget\s+-", code):
                calls += 1
                assert '-U "$ua"' in code, (script.name, line)
        assert "@KAUDIT_VERSION@" not in script.text, script.name
    assert calls >= 4
    probe = load.PROBE_ONCE.text
    assert f'ua="kaudit/{__version__} (${{3:-probe}})"' in probe
    assert re.search(r'probe "\$vurl" "\$kc" verify\b', load.AWAIT.text)  # the verification request


@pytest.fixture
def agents() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("User-Agent", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the probe needs curl")
def test_the_probe_sends_it(agents: tuple[int, list[str]]) -> None:
    port, seen = agents
    text, args = load.PROBE_ONCE.bind(url=f"http://127.0.0.1:{port}/readyz", kubeconfig="")
    out = subprocess.run(["sh", "-c", text, "sh", *args], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "200 anonymous"
    verify = load.PROBE_ONCE.text.replace('probe "$url" "$kubeconfig"', 'probe "$url" "$kubeconfig" verify')
    subprocess.run(["sh", "-c", verify, "sh", *args], capture_output=True, text=True, timeout=30, check=True)
    assert seen == [f"kaudit/{__version__} (probe)", f"kaudit/{__version__} (verify)"]
