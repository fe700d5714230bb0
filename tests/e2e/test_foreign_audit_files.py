"""Files in the audit directory that kaudit did not write are not kaudit's: only `policy-<12 hex>.yaml` and
`webhook-<12 hex>.kubeconfig` are. kops keeps its policy at /etc/kubernetes/audit/policy-config.yaml
(corpus manifest 029): adopting such a node, and rolling it back, must work and leave those files alone."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import NodeFactory
from tests.corpus_files import MANIFESTS as CORPUS
from tests.kaudit_cli import change, kaudit, on

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
AUDIT = "/etc/kubernetes/audit"
POLICY = b"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
WEBHOOK = (b"apiVersion: v1\nkind: Config\nclusters:\n- name: falco\n  cluster:\n"
           b"    server: http://127.0.0.1:9765/k8s-audit\ncontexts: []\nusers: []\n")
# Names that look like kaudit's at a glance but are not content-addressed (or do not match their hash).
FOREIGN = {
    f"{AUDIT}/policy-config.yaml": POLICY,
    f"{AUDIT}/webhook-config.yaml": WEBHOOK,
    f"{AUDIT}/policy-prod.yaml": POLICY + b"# someone's own\n",
    f"{AUDIT}/webhook-falco.kubeconfig": WEBHOOK,
    f"{AUDIT}/policy-0123456789abcdef.yaml": POLICY,  # 16 hex: not a name kaudit writes
}


def _snapshot(node_path: Path) -> tuple[bytes, int, int]:
    st = node_path.stat()
    return node_path.read_bytes(), st.st_mtime_ns, st.st_ino


def test_kops_node_adopted_then_rolled_back_to_its_original_bytes(node_factory: NodeFactory) -> None:
    node = node_factory((CORPUS / "029-kops-go-runner-args-audited-webhook.yaml").read_bytes(), extra_files=FOREIGN)
    original = node.path(MANIFEST).read_bytes()
    before = {p: _snapshot(node.path(p)) for p in FOREIGN}

    refused = change(node, "enable", "--profile", "minimal")
    assert refused.code == 2 and "--adopt" in refused.out + refused.err
    assert "changed by someone else" not in refused.out + refused.err
    assert node.path(MANIFEST).read_bytes() == original

    adopted = change(node, "enable", "--profile", "minimal", "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert adopted.node["action"] == "enabled"
    inst = node.current_instance()
    assert inst is not None and f"--audit-policy-file={adopted.node['policy_file']}" in inst["argv"]
    assert "--audit-policy-file=/etc/kubernetes/audit/policy-config.yaml" not in inst["argv"]
    # The backup holds kops' policy and webhook config as they were (the manifest named them).
    backup = node.path(f"/var/lib/kaudit/backups/{adopted.node['backup']}")
    assert (backup / "manifest").read_bytes() == original

    undone = change(node, "rollback")
    assert undone.code == 0, undone.out + undone.err
    assert node.path(MANIFEST).read_bytes() == original
    inst = node.current_instance()
    assert inst is not None and "--audit-policy-file=/etc/kubernetes/audit/policy-config.yaml" in inst["argv"]
    assert inst["policy_sha256"] == hashlib.sha256(POLICY).hexdigest()
    # Never hashed into a verdict, moved, rewritten or deleted: same bytes, same inode, same mtime.
    assert {p: _snapshot(node.path(p)) for p in FOREIGN} == before


def test_foreign_policy_and_webhook_files_beside_kaudits_survive_enable_switch_disable(
        node_factory: NodeFactory) -> None:
    node = node_factory(extra_files=FOREIGN)
    before = {p: _snapshot(node.path(p)) for p in FOREIGN}
    for args in (("enable", "--profile", "minimal"), ("switch", "--profile", "recommended"),
                 ("switch", "--profile", "cis"), ("disable",)):
        run = change(node, *args)
        assert run.code == 0, run.out + run.err
        assert {p: _snapshot(node.path(p)) for p in FOREIGN} == before, args
    # kaudit's own files are still garbage-collected as before: only the ones a manifest or backup names stay.
    ours = sorted(p.name for p in node.path(AUDIT).iterdir() if p.name.startswith("policy-")
                  and f"{AUDIT}/{p.name}" not in FOREIGN)
    assert ours and all(len(n) == len("policy-") + 12 + len(".yaml") for n in ours)


def test_a_policy_placed_by_hand_under_kaudits_name_is_never_removed(node_factory: NodeFactory) -> None:
    """Issue 24 item 1: `kaudit export` told the operator where to put the policy; kaudit never created
    that file, so it never collects it."""
    import hashlib as _h

    node = node_factory()
    rendered = on(node, "render", "recommended").out.encode()
    placed = node.path(f"{AUDIT}/policy-{_h.sha256(rendered).hexdigest()[:12]}.yaml")
    placed.parent.mkdir(parents=True, exist_ok=True)
    placed.write_bytes(rendered)
    for args in (("enable", "--profile", "minimal"), ("switch", "--profile", "cis"), ("disable",)):
        run = change(node, *args)
        assert run.code == 0, run.out + run.err
        assert placed.read_bytes() == rendered, args


def test_the_policy_export_names_survives_every_later_change(node_factory: NodeFactory, tmp_path: Path) -> None:
    """Issue 24 item 1: the operator makes a profile permanent with `kaudit export` while kaudit has
    already written that same policy on the node; a dozen switches later the file the kubeadm
    configuration names is still there (and no kaudit-created file was left behind for it)."""
    node = node_factory(linger=0.0, restart_delay=0.0, start_delay=0.0)
    assert change(node, "enable", "--profile", "recommended").code == 0
    out = tmp_path / "exported"
    exported = kaudit("export", "--profile", "recommended", "--format", "kubeadm", "--out-dir", str(out))
    assert exported.code == 0, exported.err
    [policy] = out.glob("*policy-*.yaml")
    config = (out / "kubeadm-audit.yaml").read_text()
    placed = node.path(f"{AUDIT}/{policy.name}")
    assert not placed.exists()  # never a name kaudit itself writes
    assert f"{AUDIT}/{policy.name}" in config
    placed.write_bytes(policy.read_bytes())
    placed.chmod(0o600)
    for i in range(12):
        run = change(node, "switch", "--profile", ("minimal", "cis", "recommended")[i % 3])
        assert run.code == 0, run.out + run.err
    assert placed.read_bytes() == policy.read_bytes()
