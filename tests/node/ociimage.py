"""Single-layer OCI image-layout tarballs written by hand: the real node's images, no registry, no Docker.

`write_image(out, name, files, entrypoint)` makes an archive that `ctr -n k8s.io images import` takes
(the CRI then sees it as a pulled image): `oci-layout`, `index.json` (the `io.containerd.image.name`
annotation carries the full reference), and blobs for one uncompressed layer, the config and the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

# Directories every image holds (the binaries are static: no libc, no certificates needed).
BASE_DIRS = ("bin", "etc", "tmp", "usr", "usr/local", "usr/local/bin", "var", "var/run", "run", "proc", "sys", "dev")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, Path]) -> bytes:
    """An uncompressed tar: the base directories, then each image path -> host file (mode kept)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in BASE_DIRS:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for image_path, host in sorted(files.items()):
            info = tarfile.TarInfo(image_path.lstrip("/"))
            st = host.stat()
            info.size = st.st_size
            info.mode = st.st_mode & 0o7777
            with host.open("rb") as f:
                tar.addfile(info, f)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def write_image(out: Path, name: str, files: dict[str, Path], entrypoint: list[str]) -> Path:
    """Write `out` (an OCI image-layout tar) for image reference `name` (e.g. `reg/k8s/etcd:3.6.4-0`).
    Written under a temporary name, then renamed: a half-written archive is never taken for a cache hit."""
    layer = _layer(files)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Entrypoint": entrypoint, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        "history": [{"created_by": "tests/node/ociimage.py"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _digest(layer),
                    "size": len(layer)}],
    }, sort_keys=True).encode()
    tag = name.rsplit(":", 1)[1]
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _digest(manifest),
                       "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag}}],
    }, sort_keys=True).encode()
    tmp = out.with_name(f".{out.name}.tmp.{os.getpid()}")
    with tarfile.open(tmp, mode="w") as tar:
        entries = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
        entries += [(f"blobs/sha256/{_digest(b)[7:]}", b) for b in (layer, config, manifest)]
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out
