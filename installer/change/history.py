"""The node's memory of kaudit: journal and backups under the node's state directory (its layout,
decided once by connect.node_context: /var/lib/kaudit, or /var/lib/minikube/kaudit on minikube)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installer.change.journal import last_undoable
from installer.change.journal import parse as parse_journal
from installer.change.plans import RollbackInput, restores_text
from installer.errors import NodeError
from installer.scripts import load as scripts

if TYPE_CHECKING:
    from installer.targets.connect import NodeContext


@dataclass(frozen=True)
class Backup:
    id: str
    meta: dict[str, Any]
    files: tuple[str, ...] = ()  # the paths of the policy and webhook config it holds

    @property
    def pinned(self) -> bool:
        return self.id == "original"

    @property
    def policy(self) -> str | None:
        """The policy file its manifest names: recorded in its meta; for a backup older than that, the file
        it holds that is not a webhook config."""
        if "policy" in self.meta:
            return str(self.meta["policy"]) if self.meta["policy"] else None
        return next((f for f in self.files if not f.endswith(".kubeconfig") and "/webhook-" not in f), None)

    @property
    def webhook(self) -> str | None:
        if "webhookConfig" in self.meta:
            return str(self.meta["webhookConfig"]) if self.meta["webhookConfig"] else None
        return next((f for f in self.files if f != self.policy), None)

    def to_json(self) -> dict[str, Any]:
        return {**self.meta, "id": self.id, "policy": self.policy, "webhookConfig": self.webhook}

    def restores(self) -> str:
        """What a rollback to this backup brings back, in a few words (docs/output.md `backups`)."""
        return restores_text(self.meta.get("auditOn"), self.meta.get("profile"), self.policy, self.webhook)


def _b64_field(value: str) -> bytes:
    try:
        return base64.b64decode(value) if value else b""
    except ValueError:
        return b""


def list_backups(node: NodeContext) -> list[Backup]:
    res = node.transport.check(*scripts.LIST_BACKUPS.bind(state=node.layout.state_dir), what="listing backups")
    out = []
    for line in res.text.splitlines():
        ident, _, rest = line.partition("\t")
        meta, _, paths = rest.partition("\t")
        try:
            parsed = json.loads(_b64_field(meta)) if meta else {}
            parsed = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            parsed = {}
        files = tuple(p for p in _b64_field(paths).decode("utf-8", "replace").splitlines() if p)
        out.append(Backup(ident, parsed, files))
    return sorted(out, key=lambda b: (not b.pinned, b.id), reverse=False)


def journal(node: NodeContext) -> list[dict[str, Any]]:
    """The node's journal entries, oldest first (change.journal's format; older spaced lines too)."""
    return parse_journal(node.transport.read_file(node.layout.journal) or b"")


def last_operation(node: NodeContext) -> str:
    """The backup id of the last kaudit operation on this node (its 'before' state)."""
    found = last_undoable(journal(node))
    if found is None:
        raise NodeError("no kaudit operation to undo on this node (see `kaudit backups`)", node=node.name)
    return found


def read_backup(node: NodeContext, backup_id: str) -> RollbackInput:
    if "/" in backup_id or backup_id.startswith("."):
        raise NodeError(f"{backup_id!r} is not a backup id (see `kaudit backups`)", node=node.name)
    res = node.transport.run(*scripts.READ_BACKUP.bind(state=node.layout.state_dir, id=backup_id))
    if res.rc != 0:
        raise NodeError(f"no backup {backup_id!r} on this node (see `kaudit backups`)", node=node.name)
    manifest = b""
    files: list[tuple[str, bytes]] = []
    for line in res.text.splitlines():
        kind, path, data = line.split("\t", 2)
        if kind == "manifest":
            manifest = base64.b64decode(data)
        else:
            files.append((path, base64.b64decode(data)))
    return RollbackInput(backup_id=backup_id, manifest=manifest, files=files)
