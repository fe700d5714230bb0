"""The kube-apiserver static pod manifest: read it, patch audit logging in, take it out again.

Pure functions of bytes. The read side is in manifest_read, the splicing patcher in
manifest_patch, validation in manifest_validate; this module is the API the rest of kaudit uses.
"""

from __future__ import annotations

from installer.diff import unified_diff
from installer.manifest_patch import AuditConfig, patch, unpatch
from installer.manifest_read import (
    ANNOTATION,
    AuditInfo,
    ManifestInfo,
    Mount,
    PathCheck,
    Probe,
    Volume,
    inspect,
    parse_flags,
    read,
)
from installer.manifest_validate import validate_pod
from installer.manifest_yaml import ManifestError

__all__ = [
    "ANNOTATION",
    "AuditConfig",
    "AuditInfo",
    "ManifestError",
    "ManifestInfo",
    "Mount",
    "PathCheck",
    "Probe",
    "Volume",
    "inspect",
    "parse_flags",
    "patch",
    "read",
    "unified_diff",
    "unpatch",
    "validate_pod",
]
