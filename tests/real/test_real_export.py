"""Making it permanent, for real: `kaudit export --format kubeadm` merged into the ClusterConfiguration this
node was made with, given to `kubeadm init phase control-plane apiserver --config`: kubeadm itself
regenerates a manifest with kaudit's audit flags, volumes and mounts, and the real API server audits."""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml

from tests.kaudit_cli import kaudit
from tests.node.realnode import RealNode
from tests.real import kube


def test_kubeadm_regenerates_the_manifest_from_kaudit_export(fresh_node: RealNode, ids: dict[str, kube.Identity],
                                                            tmp_path: Path) -> None:
    node = fresh_node
    assert node.node is not None
    run = kaudit("export", "--profile", "recommended", "--format", "kubeadm", "--kubernetes-version", "1.34")
    assert run.code == 0, run.err
    fragment_text, policy_text = run.out.split("\n---\n", 1)
    fragment = yaml.safe_load(fragment_text)
    [policy_path] = re.findall(r"place at (/etc/kubernetes/audit/[^ ]+\.yaml)", policy_text)
    host_policy = node.node.path(policy_path)
    host_policy.parent.mkdir(parents=True, exist_ok=True)
    host_policy.write_text(policy_text)
    host_policy.chmod(0o600)

    docs = list(yaml.safe_load_all((node.ctl / "kubeadm.yaml").read_text()))
    [cluster] = [d for d in docs if d["kind"] == "ClusterConfiguration"]
    api = cluster.setdefault("apiServer", {})
    api["extraArgs"] = [*api.get("extraArgs", []), *fragment["apiServer"]["extraArgs"]]
    api["extraVolumes"] = [*api.get("extraVolumes", []), *fragment["apiServer"]["extraVolumes"]]
    config = node.ctl / "kubeadm-export.yaml"
    config.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    old = {p["pid"] for p in kube.apiservers(node)}
    out = node.run(f"kubeadm init phase control-plane apiserver --config {config}", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    kube.observe_restart(node, old)
    [new] = kube.apiservers(node)
    assert new["pid"] not in old
    f = kube.flags(new["argv"])
    for arg in fragment["apiServer"]["extraArgs"]:
        assert f.get(arg["name"]) == arg["value"], (arg, new["argv"])
    pod = yaml.safe_load(node.node.path(kube.MANIFEST).read_text())
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    for v in fragment["apiServer"]["extraVolumes"]:
        assert volumes[v["name"]]["hostPath"]["path"] == v["hostPath"], volumes
        assert mounts[v["name"]]["mountPath"] == v["mountPath"], mounts
        assert bool(mounts[v["name"]].get("readOnly", False)) == bool(v["readOnly"]), mounts

    kube.request(node, ids["admin"], "GET", "/api/v1/namespaces/default", agent="kaudit-real/export/0")
    deadline = time.time() + 10
    while not any(e.get("userAgent") == "kaudit-real/export/0" for e in kube.audit_events(node)):
        assert time.time() < deadline, "the kubeadm-made manifest's API server wrote no event"
        time.sleep(0.2)
    status = kaudit("status", node.node.target("kadmin"), "-i", str(node.node.key_path), "--known-hosts",
                    str(node.node.known_hosts), "--output", "json")
    assert status.code == 0, status.err
