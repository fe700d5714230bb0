"""The manifest diff's headers are git's: `a/etc/...`, never `a//etc/...` (issue 24)."""

from __future__ import annotations

from installer.manifest.diff import unified_diff


def test_an_absolute_path_gives_git_style_headers() -> None:
    diff = unified_diff(b"a: 1\n", b"a: 2\n", "/etc/kubernetes/manifests/kube-apiserver.yaml", color=False)
    assert diff.startswith("--- a/etc/kubernetes/manifests/kube-apiserver.yaml\n"
                           "+++ b/etc/kubernetes/manifests/kube-apiserver.yaml\n"), diff
    assert "//" not in diff.splitlines()[0] + diff.splitlines()[1]
