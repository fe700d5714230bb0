"""Write side of the manifest module: splice audit configuration into the original text.

Nothing is ever re-dumped: the document is composed with ruamel.yaml only to learn where things
are (line/column marks) and which indentation the file uses; whole lines are then inserted into
(or removed from) the original text. So comments, quoting, key order, blank lines, CRLF and a
missing final newline all survive, and unpatch can remove exactly the lines patch added.

What kaudit added is recorded in the Pod annotation `kaudit.dev/audit` (JSON): the flags, the
volume names (each volume has a volumeMount of the same name) and the keys it had to create.

Adopting (adopt=True) a manifest that carries audit configuration kaudit did not add removes
that configuration (every --audit-* flag, and the mounts/volumes that exist only for auditing)
and lists it under "adopted" in the annotation. unpatch does NOT restore adopted configuration:
the old flags pointed at files kaudit does not manage, and bringing them back silently could
restart the API server with a policy nobody checked. The backup taken before the change is the
way back to the exact old file.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

from installer.manifest import settings
from installer.manifest.parse import (
    ManifestError,
    Node,
    get,
    is_map,
    is_scalar,
    is_seq,
    items,
    key_node,
    last_line,
    resolve11,
    text,
)
from installer.manifest.read import (
    ANNOTATION,
    Located,
    Manifest,
    ManifestInfo,
    audit_mounts,
    describe_mount,
    load,
    parse_flags,
)
from installer.manifest.settings import log_path_problem as log_path_problem  # enable and plans check it early
from installer.node import layout


@dataclass(frozen=True)
class AuditConfig:
    """The values of installer/manifest/settings.py's table for one node (node paths for the files)."""

    policy_file: str  # content-addressed host path, mounted at the same path in the container
    profile: str | None = None
    log_path: str | None = layout.LOG_PATH  # None when only a webhook is used
    maxage: int | None = settings.ROTATION_DEFAULTS[0]
    maxbackup: int | None = settings.ROTATION_DEFAULTS[1]
    maxsize: int | None = settings.ROTATION_DEFAULTS[2]
    log_format: str | None = None
    log_compress: bool | None = None
    webhook_config_file: str | None = None
    webhook_mode: str | None = None

    def values(self) -> dict[str, settings.Value]:
        """Keyed by the table's setting names."""
        return {"policy_file": self.policy_file, "log_path": self.log_path, "maxage": self.maxage,
                "maxbackup": self.maxbackup, "maxsize": self.maxsize, "log_format": self.log_format,
                "log_compress": self.log_compress, "webhook_config": self.webhook_config_file,
                "webhook_mode": self.webhook_mode}

    def flags(self) -> list[tuple[str, str]]:
        return settings.flags(self.values())

    @property
    def policy_sha12(self) -> str | None:
        m = re.fullmatch(r"policy-([0-9a-f]{12})\.yaml", posixpath.basename(self.policy_file))
        return m.group(1) if m else None


# --- text model -------------------------------------------------------------------------------


def _split(src: str) -> list[tuple[str, str]]:
    """Lines as (content, ending); only "\\n" (with an optional "\\r" before it) ends a line."""
    parts = src.split("\n")
    out = [(p[:-1], "\r\n") if p.endswith("\r") else (p, "\n") for p in parts[:-1]]
    if parts[-1]:
        out.append((parts[-1], ""))
    return out


@dataclass
class Edits:
    lines: list[tuple[str, str]]
    inserts: dict[int, list[str]] = field(default_factory=dict)
    deletes: set[int] = field(default_factory=set)

    @property
    def nl(self) -> str:
        return self.lines[0][1] if self.lines and self.lines[0][1] else "\n"

    def insert_after(self, line: int, new: list[str]) -> None:
        self.inserts.setdefault(line + 1, []).extend(new)

    def insert_before(self, line: int, new: list[str]) -> None:
        self.inserts.setdefault(line, []).extend(new)

    def delete(self, first: int, last: int) -> None:
        self.deletes.update(range(first, last + 1))

    def render(self) -> bytes:
        out: list[list[str]] = []
        for i in range(len(self.lines) + 1):
            out.extend([s, self.nl] for s in self.inserts.get(i, []))
            if i < len(self.lines) and i not in self.deletes:
                out.append(list(self.lines[i]))
        for line in out:
            line[1] = line[1] or self.nl
        # the final newline (or its absence) belongs to the file, not to a line
        if out and self.lines and not self.lines[-1][1]:
            out[-1][1] = ""
        return "".join(s + e for s, e in out).encode("utf-8")


# --- geometry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeqStyle:
    dash: int  # column of "-"
    item: int  # column where the item's content starts


def _line(loc: Located, n: int) -> str:
    return loc.text.split("\n")[n].rstrip("\r") if n < loc.text.count("\n") + 1 else ""


def _item_style(loc: Located, item: Node) -> SeqStyle:
    line, col = item.start_mark.line, item.start_mark.column
    s = _line(loc, line)
    dash = s.rfind("-", 0, col)
    if dash < 0 or s[dash + 1 : col].strip():
        raise ManifestError(f"line {line + 1}: a list item whose '-' is not on the same line as its content")
    return SeqStyle(dash, col)


def _block(node: Node | None, what: str) -> None:
    if node is not None and getattr(node, "flow_style", False):
        raise ManifestError(f"line {node.start_mark.line + 1}: {what} is written in flow style ([...] or {{...}})")


_PLAIN = re.compile(r"[A-Za-z0-9_./-][A-Za-z0-9_./=:,+@~-]*")


def scalar(value: str, style: str | None = None) -> str:
    """A YAML scalar that reads back as the string `value` (plain where that is safe)."""
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == '"' or not _PLAIN.fullmatch(value) or ": " in value or value.endswith(":"):
        return json.dumps(value)
    if not isinstance(resolve11(value), str) or (value.startswith("-") and not value.startswith("--")):
        return json.dumps(value)
    return value


Pairs = list[tuple[str, "str | Pairs"]]


def _render_map(pairs: Pairs, col: int, nest: int) -> list[str]:
    out = []
    for k, v in pairs:
        if isinstance(v, str):
            out.append(f"{' ' * col}{k}: {v}")
        else:
            out.append(f"{' ' * col}{k}:")
            out.extend(_render_map(v, col + nest, nest))
    return out


def _render_item(style: SeqStyle, pairs: Pairs, nest: int) -> list[str]:
    lines = _render_map(pairs, style.item, nest)
    lines[0] = " " * style.dash + "-" + " " * (style.item - style.dash - 1) + lines[0][style.item :]
    return lines


def _order(existing: list[Node], known: list[str]) -> list[str]:
    """The order of `known` keys used by the existing items (the richest one), defaults after."""
    best: list[str] = []
    for it in existing:
        if is_map(it):
            keys = [str(k.value) for k, _ in it.value if str(k.value) in known]
            if len(keys) >= len(best):
                best = keys
    return best + [k for k in known if k not in best]


def _nest(loc: Located, candidates: list[tuple[Node | None, str]]) -> int:
    """Indent of a nested mapping below its key, learned from the file (default 2)."""
    for parent, key in candidates:
        child, k = get(parent, key), key_node(parent, key) if parent is not None and is_map(parent) else None
        if child is not None and k is not None and is_map(child) and child.value and not child.flow_style:
            step = int(child.start_mark.column) - int(k.start_mark.column)
            if step > 0:
                return step
    return 2


def _seq_offset(loc: Located, parent: Node) -> int:
    """How far the '-' of a block list sits right of its key ("indentless" kubeadm lists: 0)."""
    for k, v in parent.value:
        if is_seq(v) and v.value and not v.flow_style:
            return _item_style(loc, v.value[0]).dash - int(k.start_mark.column)
    return 0


def _item_offset(loc: Located, seqs: list[Node | None]) -> int:
    for s in seqs:
        if s is not None and is_seq(s) and s.value and not s.flow_style:
            st = _item_style(loc, s.value[-1])
            return st.item - st.dash
    return 2


# --- patch ------------------------------------------------------------------------------------


def _names_taken(loc: Located) -> set[str]:
    taken = {text(get(v, "name")) or "" for v in items(get(loc.spec, "volumes"))}
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in items(get(loc.spec, key)):
            taken.update(text(get(m, "name")) or "" for m in items(get(c, "volumeMounts")))
    return taken


def _pick(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def _flag_node_groups(loc: Located) -> list[tuple[str, list[Node]]]:
    """Each flag with the nodes that hold it (two for the `--flag value` form)."""
    nodes = loc.flag_nodes
    out: list[tuple[str, list[Node]]] = []
    i = 0
    while i < len(nodes):
        tok = str(nodes[i].value)
        group = [nodes[i]]
        if tok.startswith("-") and "=" not in tok and i + 1 < len(nodes):
            nxt = str(nodes[i + 1].value)
            if not nxt.startswith("-"):
                group.append(nodes[i + 1])
        name = next(iter(parse_flags([str(n.value) for n in group])), tok)
        out.append((name, group))
        i += len(group)
    return out


def _delete_item(ed: Edits, node: Node) -> None:
    ed.delete(int(node.start_mark.line), last_line(node))


def _wanted_mounts(config: AuditConfig) -> list[settings.Mount]:
    return settings.mounts(config.values(), ManifestError)


def _annotation_value(record: dict[str, object]) -> str:
    return scalar(json.dumps(record, separators=(",", ":")), "'")


def _patch_clean(base: Manifest, config: AuditConfig, adopt: bool, carried: list[str]) -> bytes:
    loc, info = base.located, base.info
    if loc.unsafe:
        raise ManifestError(loc.unsafe)
    ed = Edits(_split(loc.text))
    adopted = list(carried)
    gone: set[str] = set()  # volumes (and mounts) that adopting removes: not a style to learn from
    if info.audit.foreign:
        if not adopt:
            raise ManifestError(
                "the manifest already has audit configuration that kaudit did not add: "
                + "; ".join(info.audit.foreign)
                + ". Use --adopt to replace it (disable will then remove it, not restore it)"
            )
        adopted += _adopt(loc, info, ed)
        gone = _adopted_names(loc, info)

    container, spec, meta = loc.container, loc.spec, loc.metadata
    if meta is None or not is_map(meta):
        raise ManifestError("the Pod has no metadata mapping")
    for node, what in ((container, "the kube-apiserver container"), (spec, "spec"), (meta, "metadata")):
        _block(node, what)
    created: list[str] = []

    # 1. flags, appended after the last existing one, in the style of that item
    target = loc.args if loc.args is not None and is_seq(loc.args) and loc.args.value else loc.command
    _block(target, "the kube-apiserver command")
    last = target.value[-1]
    st = _item_style(loc, last)
    quote = last.style if is_scalar(last) and last.style in ("'", '"') else None
    flag_lines = [" " * st.dash + "-" + " " * (st.item - st.dash - 1) + scalar(f"{k}={v}", quote)
                  for k, v in config.flags()]
    ed.insert_after(last_line(last), flag_lines)

    # 2. mounts and volumes, named so they cannot collide
    taken = _names_taken(loc)
    remaining = [m for m in info.mounts if m.name not in gone]
    vols: list[tuple[str, settings.Mount]] = []
    for want in _wanted_mounts(config):
        same = [m for m in remaining if posixpath.normpath(m.mount_path) == want.path]
        if same:
            m = same[0]
            host = info.host_path(want.path)
            if host == want.path and (want.read_only or not m.read_only):
                continue  # an existing mount already serves this directory the same way: reuse it
            raise ManifestError(
                f"{want.path} is already mounted by volumeMount {m.name!r}"
                f" ({'read-only' if m.read_only else 'read-write'}, host path {host}); kaudit needs it"
                f" {'read-only' if want.read_only else 'read-write'} from {want.path} on the node"
            )
        vols.append((_pick(want.volume, taken), want))

    vm_node, vm_key = get(container, "volumeMounts"), key_node(container, "volumeMounts")
    v_node, v_key = get(spec, "volumes"), key_node(spec, "volumes")
    kept_mounts = [m for m in items(vm_node) if text(get(m, "name")) not in gone]
    kept_vols = [v for v in items(v_node) if text(get(v, "name")) not in gone]
    nest = _nest(loc, [(v, "hostPath") for v in kept_vols]
                 + [(meta, "labels"), (meta, "annotations"), (loc.root, "metadata"), (loc.root, "spec")])
    if vols:
        mount_order = _order(kept_mounts, ["mountPath", "name", "readOnly"])
        mount_items = [
            {"mountPath": scalar(w.path), "name": scalar(n), "readOnly": "true"} for n, w in vols
        ]
        mpairs: list[Pairs] = [[(k, it[k]) for k in mount_order if not (k == "readOnly" and not w.read_only)]
                               for it, (_n, w) in zip(mount_items, vols, strict=True)]
        if vm_node is not None and is_seq(vm_node) and vm_node.value:
            _block(vm_node, "volumeMounts")
            st = _item_style(loc, (kept_mounts or vm_node.value)[-1])
            ed.insert_after(last_line(vm_node), [ln for p in mpairs for ln in _render_item(st, p, nest)])
        elif vm_node is None:
            col = int(container.start_mark.column)
            dash = col + _seq_offset(loc, container)
            st = SeqStyle(dash, dash + _item_offset(loc, [loc.command, loc.args, get(container, "ports")]))
            ed.insert_after(last_line(container), [" " * col + "volumeMounts:"]
                            + [ln for p in mpairs for ln in _render_item(st, p, nest)])
            created.append("volumeMounts")
        else:
            raise ManifestError(f"line {vm_key.start_mark.line + 1}: volumeMounts is empty or not a block list")

        vol_order = _order(kept_vols, ["hostPath", "name"])
        hp_order = _order([get(v, "hostPath") for v in kept_vols], ["path", "type"])
        vpairs: list[Pairs] = []
        for n, w in vols:
            hp: Pairs = [(k, scalar(w.path) if k == "path" else "DirectoryOrCreate") for k in hp_order]
            vpairs.append([(k, hp if k == "hostPath" else scalar(n)) for k in vol_order])
        if v_node is not None and is_seq(v_node) and v_node.value:
            _block(v_node, "volumes")
            st = _item_style(loc, (kept_vols or v_node.value)[-1])
            ed.insert_after(last_line(v_node), [ln for p in vpairs for ln in _render_item(st, p, nest)])
        elif v_node is None:
            col = int(spec.start_mark.column)
            dash = col + _seq_offset(loc, spec)
            st = SeqStyle(dash, dash + _item_offset(loc, [get(spec, "containers")]))
            ed.insert_after(last_line(spec), [" " * col + "volumes:"]
                            + [ln for p in vpairs for ln in _render_item(st, p, nest)])
            created.append("volumes")
        else:
            raise ManifestError(f"line {v_key.start_mark.line + 1}: volumes is empty or not a block list")

    # 3. the record of what was added
    record: dict[str, object] = {
        "profile": config.profile,
        "policy": config.policy_sha12,
        "flags": [k for k, _ in config.flags()],
        "volumes": [n for n, _ in vols],
    }
    ann = get(meta, "annotations")
    if ann is not None and is_map(ann) and ann.value and not ann.flow_style:
        col = int(ann.start_mark.column)
        anchor_line = last_line(ann)
    elif ann is None:
        created.append("annotations")
        col = int(meta.start_mark.column)
        anchor_line = -1
    else:
        raise ManifestError(
            f"line {ann.start_mark.line + 1}: metadata.annotations is empty or in flow style; kaudit cannot add to it"
        )
    if created:
        record["created"] = created
    if adopted:
        record["adopted"] = adopted
    line = f"{ANNOTATION}: {_annotation_value(record)}"
    if anchor_line >= 0:
        ed.insert_after(anchor_line, [" " * col + line])
    else:
        ed.insert_before(int(meta.start_mark.line),
                         [" " * col + "annotations:", " " * (col + nest) + line])
    return ed.render()


def _adopted_names(loc: Located, info: ManifestInfo) -> set[str]:
    """Names of the audit-only mounts (and volumes) that adopting removes."""
    used_elsewhere: set[str] = set()
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in items(get(loc.spec, key)):
            if c is not loc.container:
                used_elsewhere.update(text(get(m, "name")) or "" for m in items(get(c, "volumeMounts")))
    names = {m.name for m in audit_mounts(info, info.flags)} - used_elsewhere
    mounted = {m.name for m in info.mounts}
    for v in info.volumes:
        if v.name not in mounted and v.name not in used_elsewhere and "audit" in (v.host_path or "").lower():
            names.add(v.name)
    return names


def _adopt(loc: Located, info: ManifestInfo, ed: Edits) -> list[str]:
    removed: list[str] = []
    for name, group in _flag_node_groups(loc):
        if name.startswith("--audit-"):
            removed.append(f"flag {' '.join(str(n.value) for n in group)}")
            for n in group:
                _delete_item(ed, n)
    names = _adopted_names(loc, info)
    for m_node in items(get(loc.container, "volumeMounts")):
        if (text(get(m_node, "name")) or "") in names:
            _delete_item(ed, m_node)
    for m in info.mounts:
        if m.name in names:
            removed.append(describe_mount(m, info.volumes))
    for v_node in items(get(loc.spec, "volumes")):
        if (text(get(v_node, "name")) or "") in names:
            _delete_item(ed, v_node)
    return removed


def patch(data: bytes, config: AuditConfig, *, adopt: bool = False) -> bytes:
    """`data` with kaudit's audit configuration; already patched manifests are re-patched."""
    return patch_manifest(load(data), config, adopt=adopt).data


def patch_manifest(before: Manifest, config: AuditConfig, *, adopt: bool = False) -> Manifest:
    """`patch` on a parsed manifest, returning the result parsed (each version parsed once)."""
    from installer.manifest.validate import check_patch

    if before.located.unsafe:
        raise ManifestError(before.located.unsafe)
    record = before.info.audit.record
    base = unpatch_manifest(before) if record else before
    carried = [str(a) for a in record.get("adopted", [])] if isinstance(record.get("adopted"), list) else []
    out = _reuse(_patch_clean(base, config, adopt, carried), before, base)
    check_patch(base, out, config)
    return out


def _reuse(data: bytes, *known: Manifest) -> Manifest:
    """`data` parsed, or the already parsed version with the same bytes."""
    return next((m for m in known if m.data == data), None) or load(data)


# --- unpatch ----------------------------------------------------------------------------------


def unpatch(data: bytes) -> bytes:
    """`data` without what kaudit added (exactly those lines); unchanged when kaudit added nothing."""
    return unpatch_manifest(load(data)).data


def unpatch_manifest(before: Manifest) -> Manifest:
    """`unpatch` on a parsed manifest, returning the result parsed (each version parsed once)."""
    loc = before.located
    record = before.info.audit.record
    if not record:
        return before
    ed = Edits(_split(loc.text))
    ours_flags = set(record.get("flags", []))
    ours_vols = set(record.get("volumes", []))
    created = set(record.get("created", []))
    for name, group in _flag_node_groups(loc):
        if name in ours_flags:
            for n in group:
                _delete_item(ed, n)
    meta = loc.metadata
    for parent, key, names in (
        (loc.container, "volumeMounts", ours_vols),
        (loc.spec, "volumes", ours_vols),
    ):
        seq = get(parent, key)
        mine = [it for it in items(seq) if (text(get(it, "name")) or "") in names]
        if key in created and seq is not None and len(mine) == len(items(seq)):
            k = key_node(parent, key)
            ed.delete(int(k.start_mark.line), last_line(seq))
        else:
            for it in mine:
                _delete_item(ed, it)
    ann = get(meta, "annotations")
    k = key_node(ann, ANNOTATION)
    if "annotations" in created and len(ann.value) == 1:
        ed.delete(int(key_node(meta, "annotations").start_mark.line), last_line(ann))
    else:
        ed.delete(int(k.start_mark.line), last_line(get(ann, ANNOTATION)))
    return _reuse(ed.render(), before)  # parsing it checks it is still a readable kube-apiserver Pod
