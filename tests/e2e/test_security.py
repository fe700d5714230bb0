"""Security (issue 7, item 5): host keys, the sudo password never on the node's process table nor in
output, file modes."""

from __future__ import annotations

import threading

from tests.conftest import NodeFactory
from tests.faults import manifest_of, tally
from tests.kaudit_cli import change, kaudit
from tests.node.node import SUDO_PASSWORD


def test_sudo_password_never_in_process_table_or_output(node_factory: NodeFactory) -> None:
    node = node_factory(linger=0.3, restart_delay=0.1)
    seen: list[str] = []
    stop = threading.Event()

    node_pattern = "/var/lib/kubelet/.pw-pattern"  # in a file: not on the scanner's own argv
    node.path(node_pattern).write_text(SUDO_PASSWORD + "\n")

    def scan() -> None:
        while not stop.is_set():
            out = node.run(f"grep -l -a -F -f {node_pattern} /proc/[0-9]*/cmdline /proc/[0-9]*/environ "
                           "2>/dev/null; true").stdout
            seen.extend(out.split())
    th = threading.Thread(target=scan, daemon=True)
    th.start()
    try:
        run = change(node, "enable", "--profile", "minimal", "--sudo-password-stdin", user="kpw",
                     stdin=SUDO_PASSWORD + "\n", timeout=10)
    finally:
        stop.set()
        th.join()
    assert run.code == 0, run.out + run.err
    assert not seen, seen
    assert SUDO_PASSWORD not in run.out + run.err
    st = next(node.path("/etc/kubernetes/audit").glob("policy-*.yaml")).stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid == 0
    assert node.path("/var/lib/kaudit").stat().st_mode & 0o777 == 0o700
    tally("sudo password scan during a run", 1, 1, 0)


def test_unknown_and_changed_host_keys(node_factory: NodeFactory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = node_factory()
    before = manifest_of(node)
    empty = tmp_path / "known_hosts"
    run = kaudit("status", node.target(), "-i", str(node.key_path), "--known-hosts", str(empty))
    assert run.code == 2 and node.host_key_fingerprint in run.out + run.err, run.out + run.err
    run = kaudit("status", node.target(), "-i", str(node.key_path), "--known-hosts", str(empty),
                 "--accept-new-host-key")
    assert run.code == 0, run.out + run.err
    assert f"[127.0.0.1]:{node.ssh_port}" in empty.read_text() or "127.0.0.1" in empty.read_text()
    other = node_factory()
    changed = tmp_path / "known_hosts.changed"
    changed.write_text(node.known_hosts.read_text().replace(
        node.known_hosts.read_text().split()[-1], other.known_hosts.read_text().split()[-1]))
    run = kaudit("enable", node.target(), "-i", str(node.key_path), "--known-hosts", str(changed), "--yes",
                 "--profile", "minimal", "--accept-new-host-key")
    assert run.code == 2 and "CHANGED" in run.out + run.err, run.out + run.err
    assert manifest_of(node) == before
    tally("unknown / changed host key", 3, 3, 0)
