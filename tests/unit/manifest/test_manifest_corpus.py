"""Every manifest of the shared corpus: patched with a minimal diff and reversibly, or refused for
the expected reason."""

from __future__ import annotations

import csv
import difflib
from pathlib import Path

import pytest

from installer.manifest.diff import unified_diff
from installer.manifest.parse import ManifestError
from installer.manifest.patch import AuditConfig, patch, unpatch
from installer.manifest.read import read
from installer.manifest.validate import validate_pod
from installer.node import layout
from tests.corpus_files import CORPUS

MANIFESTS = sorted((CORPUS / "manifests").glob("*.yaml"))

# prefix -> words the refusal must contain
UNSAFE = {"022": "sh -c", "024": "sh -c", "025": "bash -c"}
AUDITED = {"002", "011", "012", "014", "021", "023", "029", "030", "031", "033", "035", "036"}

C1 = AuditConfig(policy_file=layout.policy_path(b"policy one"), profile="cis")
C2 = AuditConfig(
    policy_file=layout.policy_path(b"policy two"), profile="minimal", maxage=90, maxbackup=5, maxsize=200
)
C_WEBHOOK = AuditConfig(
    policy_file=layout.policy_path(b"policy one"),
    log_path=None,
    webhook_config_file=layout.webhook_config_path(b"kubeconfig"),
    webhook_mode="batch",
)



def _id(p: Path) -> str:
    return p.name[:3]


def _lines(b: bytes) -> list[str]:
    return b.decode().replace("\r\n", "\n").split("\n")


def only_added(old: bytes, new: bytes) -> bool:
    ops = difflib.SequenceMatcher(None, _lines(old), _lines(new), autojunk=False).get_opcodes()
    return all(tag in ("equal", "insert") for tag, *_ in ops)


def only_changed_in_place(old: bytes, new: bytes) -> bool:
    ops = difflib.SequenceMatcher(None, _lines(old), _lines(new), autojunk=False).get_opcodes()
    return all(tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1) for tag, i1, i2, j1, j2 in ops)


def clean(p: Path) -> bool:
    return _id(p) not in UNSAFE and _id(p) not in AUDITED


@pytest.mark.parametrize("path", [p for p in MANIFESTS if clean(p)], ids=_id)
def test_clean_manifest_patches_minimally_and_reversibly(path: Path) -> None:
    x = path.read_bytes()
    y = patch(x, C1)
    assert y != x
    assert unpatch(y) == x, "unpatch(patch(x)) must give back the original bytes"
    assert patch(y, C1) == y, "patch is idempotent"
    assert only_added(x, y), unified_diff(x, y, path.name, color=False)
    z = patch(y, C2)
    assert z == patch(x, C2)
    assert only_changed_in_place(y, z), unified_diff(y, z, path.name, color=False)
    assert unpatch(z) == x
    info = read(y)
    assert info.audit.managed and not info.audit.foreign
    assert info.audit.profile == "cis" and info.audit.policy_sha12 == layout.sha12(b"policy one")
    for pc in info.audit.paths:
        assert pc.host_path == pc.container_path
    log = next(pc for pc in info.audit.paths if pc.flag == "--audit-log-path")
    assert log.mount_is_directory is True and log.read_only is False
    pol = next(pc for pc in info.audit.paths if pc.flag == "--audit-policy-file")
    assert pol.mount_is_directory is True and pol.read_only is True
    # the patch introduced no schema problem (001 keeps the ones it already had)
    assert set(validate_pod(y, info.kubernetes_version)) == set(validate_pod(x, info.kubernetes_version))
    # line endings and the final newline (or its absence) are the original's
    assert (b"\r\n" in y) == (b"\r\n" in x)
    assert y.endswith(b"\n") == x.endswith(b"\n")


@pytest.mark.parametrize("path", [p for p in MANIFESTS if clean(p)], ids=_id)
def test_clean_manifest_webhook_only(path: Path) -> None:
    x = path.read_bytes()
    y = patch(x, C_WEBHOOK)
    assert unpatch(y) == x and patch(y, C_WEBHOOK) == y and only_added(x, y)
    info = read(y)
    assert "--audit-log-path" not in info.flags
    assert info.flags["--audit-webhook-mode"] == "batch"
    assert {pc.flag for pc in info.audit.paths} == {"--audit-policy-file", "--audit-webhook-config-file"}


@pytest.mark.parametrize("path", [p for p in MANIFESTS if _id(p) in UNSAFE], ids=_id)
def test_unsafe_shapes_are_refused_with_the_reason(path: Path) -> None:
    x = path.read_bytes()
    with pytest.raises(ManifestError, match=UNSAFE[_id(path)]):
        patch(x, C1)
    with pytest.raises(ManifestError, match="cannot edit that safely"):
        patch(x, C1, adopt=True)
    assert read(x).unsafe  # still readable for `status`


@pytest.mark.parametrize("path", [p for p in MANIFESTS if _id(p) in AUDITED], ids=_id)
def test_foreign_audit_configuration_is_refused_then_adopted(path: Path) -> None:
    x = path.read_bytes()
    info = read(x)
    assert info.audit.flags and not info.audit.managed and info.audit.foreign
    with pytest.raises(ManifestError, match="did not add") as e:
        patch(x, C1)
    first = next(iter(info.audit.flags))
    assert first in str(e.value)
    y = patch(x, C1, adopt=True)
    after = read(y)
    assert after.audit.managed and not after.audit.foreign
    assert after.audit.record["adopted"]
    assert patch(y, C1) == y and patch(y, C1, adopt=True) == y
    assert patch(patch(y, C2), C1) == y
    # disable removes kaudit's configuration and does not bring the adopted one back
    u = unpatch(y)
    assert not read(u).audit.flags and not read(u).audit.foreign
    assert set(validate_pod(y, info.kubernetes_version)) <= set(validate_pod(x, info.kubernetes_version))


def test_verdicts_match_strict_decoding() -> None:
    with (CORPUS / "manifest-verdicts.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == len(MANIFESTS)
    for row in rows:
        data = (CORPUS / row["file"]).read_bytes()
        try:
            version = read(data).kubernetes_version
        except ManifestError:
            version = None
        problems = validate_pod(data, version)
        assert (not problems) == (row["strict_v1_pod_decode"] == "OK"), (row["file"], problems)


def test_corpus_figures() -> None:
    """The closing figures of the patcher issue, kept honest."""
    patched = refused_foreign = refused_unsafe = 0
    for p in MANIFESTS:
        x = p.read_bytes()
        try:
            y = patch(x, C1)
        except ManifestError as e:
            if "did not add" in str(e):
                refused_foreign += 1
            else:
                refused_unsafe += 1
            continue
        assert only_added(x, y) and unpatch(y) == x
        patched += 1
    assert (len(MANIFESTS), patched, refused_foreign, refused_unsafe) == (36, 21, 12, 3)
