"""Generated manifest shapes (tests/manifests_gen.py): patch/unpatch properties hold for each."""

from __future__ import annotations

import difflib

from hypothesis import HealthCheck, given, settings
from manifests_gen import Shape, render, shapes

from installer.manifest.patch import AuditConfig, patch, unpatch
from installer.manifest.read import read
from installer.node import layout

C1 = AuditConfig(policy_file=layout.policy_path(b"one"), profile="cis", log_format="json", log_compress=True)
C2 = AuditConfig(policy_file=layout.policy_path(b"two"), maxage=7)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lines(b: bytes) -> list[str]:
    return b.decode().replace("\r\n", "\n").split("\n")


@FAST
@given(shapes)
def test_generated_shapes_patch_reversibly(sh: Shape) -> None:
    x, flags = render(sh)
    info = read(x)
    assert info.flags == flags
    assert info.probe.port == 6443 and info.probe.source == "readinessProbe"
    y = patch(x, C1)
    assert unpatch(y) == x
    assert patch(y, C1) == y
    assert patch(y, C2) == patch(x, C2)
    ops = difflib.SequenceMatcher(None, _lines(x), _lines(y), autojunk=False).get_opcodes()
    assert all(tag in ("equal", "insert") for tag, *_ in ops)
    after = read(y)
    # existing flags untouched, new ones appended after them
    assert list(after.flags)[: len(flags)] == list(flags)
    assert after.flags["--audit-log-format"] == "json"
    assert after.flags["--audit-log-compress"] == "true"
    assert not after.audit.foreign
    # volume names do not collide with similar existing ones
    names = [v.name for v in after.volumes]
    assert len(names) == len(set(names))
    assert set(after.audit.record["volumes"]).isdisjoint(sh.extra_volumes)
    for pc in after.audit.paths:
        assert pc.host_path == pc.container_path
    # CRLF stays CRLF, and the final newline (or its absence) stays
    if sh.crlf:
        assert y.count(b"\n") == y.count(b"\r\n")
    else:
        assert b"\r" not in y
    assert y.endswith(b"\n") == x.endswith(b"\n")
    # quoting follows the existing flags
    if sh.quote:
        assert f"{sh.quote}--audit-policy-file=".encode() in y
