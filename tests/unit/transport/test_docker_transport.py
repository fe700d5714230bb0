"""The docker exec transport against real containers (testcontainers).

Needs a Docker engine: skipped, with the reason, where `docker info` fails (as in the
development sandbox); runs for real wherever Docker is available (CI with Docker).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from installer.errors import NodeError
from installer.scripts.exitcodes import ScriptExit
from installer.transport.docker import DockerExecTransport
from tests.standins import docker_unavailable

pytestmark = [pytest.mark.docker]

IMAGE = "busybox:1.36"  # like a kind node for kaudit's purposes: POSIX sh and coreutils, no Python


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    from testcontainers.core.container import DockerContainer

    c = DockerContainer(IMAGE).with_command("sleep 3600")
    c.start()
    try:
        yield c.get_wrapped_container().name
    finally:
        c.stop()


def test_runs_as_root_with_args_never_interpreted(container: str) -> None:
    t = DockerExecTransport(container)
    assert t.run("id -u").text.strip() == "0"
    hostile = "$(touch /tmp/pwned); `id`; 'quote\" \n newline"
    result = t.run('printf "%s" "$1"; [ ! -e /tmp/pwned ]', [hostile])
    assert result.rc == 0 and result.text == hostile
    assert t.run("exit 7").rc == 7
    assert t.commands_run == 3


def test_files_binary_stdin_and_atomic_write(container: str) -> None:
    t = DockerExecTransport(container)
    data = bytes(range(256)) * 64
    t.write_file("/etc/kubernetes/audit/policy-test.yaml", data, mode=0o600)
    assert t.read_file("/etc/kubernetes/audit/policy-test.yaml") == data
    mode = t.run("stat -c %a:%u /etc/kubernetes/audit/policy-test.yaml").text.strip()
    assert mode == "600:0"
    assert t.run("ls -a /etc/kubernetes/audit").text.split() == [".", "..", "policy-test.yaml"]  # no temp left
    assert t.read_file("/nonexistent") is None
    assert t.run("exit 44").rc == ScriptExit.MISSING


def test_engine_errors_are_one_line(container: str) -> None:
    t = DockerExecTransport("kaudit-no-such-container-7f3a")
    with pytest.raises(NodeError) as exc:
        t.run("true")
    assert "no such container" in str(exc.value).lower()
    assert "\n" not in str(exc.value)
