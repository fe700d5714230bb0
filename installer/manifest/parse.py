"""Low-level YAML access for the manifest module: composed nodes with line/column marks.

ruamel.yaml cannot re-dump a file byte for byte, so the manifest code never dumps: it composes
the document (nodes keep their start/end marks) and splices text into the original lines.
ruamel.yaml is imported lazily so that `kaudit --help` stays fast.
"""

from __future__ import annotations

import re
from typing import Any

from installer.errors import InputError


class ManifestError(InputError):
    """The manifest cannot be read or patched; the message says precisely why."""


Node = Any  # ruamel.yaml.nodes.Node (untyped library)

# ruamel counts these as line breaks too; our splicing only knows "\n" (optionally after "\r").
_ODD_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"not UTF-8 text (byte {e.start})") from None


def odd_line_breaks(text: str) -> bool:
    return _ODD_BREAKS.search(text) is not None


def compose(text: str) -> Node:
    """The single document of `text` as a composed node graph (marks kept).

    Not cached: callers parse each manifest version once (manifest.read.load) and pass the value on."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from installer.yamlio import reader

    try:
        docs = list(reader("safe").compose_all(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ManifestError(f"not valid YAML{where}: {e.problem or e.context}") from None
    except YAMLError as e:
        raise ManifestError(f"not valid YAML: {e}") from None
    docs = [d for d in docs if not (is_scalar(d) and tag(d).endswith(":null") and d.value in ("", "~", "null"))]
    if not docs:
        raise ManifestError("empty document: no Pod in it")
    if len(docs) > 1:
        raise ManifestError(f"{len(docs)} YAML documents in one file; a static pod manifest holds one Pod")
    return docs[0]


def tag(node: Node) -> str:
    return str(node.tag)


def is_map(node: Node) -> bool:
    return type(node).__name__ == "MappingNode"


def is_seq(node: Node) -> bool:
    return type(node).__name__ == "SequenceNode"


def is_scalar(node: Node) -> bool:
    return type(node).__name__ == "ScalarNode"


def get(node: Node | None, key: str) -> Node:  # Node (Any) or None
    """The value of `key` in a mapping node (the last one if duplicated, as the kubelet's decoder does)."""
    if node is None or not is_map(node):
        return None
    found = None
    for k, v in node.value:
        if is_scalar(k) and k.value == key:
            found = v
    return found


def key_node(node: Node, key: str) -> Node:  # Node (Any) or None
    for k, _v in node.value:
        if is_scalar(k) and k.value == key:
            return k
    return None


def items(node: Node | None) -> list[Node]:
    return list(node.value) if node is not None and is_seq(node) else []


def text(node: Node | None) -> str | None:
    """A scalar's string value, None for anything else (or null)."""
    if node is None or not is_scalar(node):
        return None
    if node.style is None and tag(node).endswith(":null"):
        return None
    return str(node.value)


def last_line(node: Node) -> int:
    """The last line (0-based) holding part of `node`'s own text."""
    if is_scalar(node) or getattr(node, "flow_style", False) or not node.value:
        end = node.end_mark
        # block scalars (and some empty nodes) end at column 0 of the following line
        if end.column == 0 and end.line > node.start_mark.line:
            return int(end.line) - 1
        return int(end.line)
    if is_map(node):
        k, v = node.value[-1]
        return max(last_line(k), last_line(v))
    return last_line(node.value[-1])


def has_anchors(node: Node, seen: set[int] | None = None) -> bool:
    seen = set() if seen is None else seen
    if id(node) in seen:
        return True  # the same node reached twice: an alias
    seen.add(id(node))
    if getattr(node, "anchor", None):
        return True
    if is_map(node):
        return any(has_anchors(k, seen) or has_anchors(v, seen) for k, v in node.value)
    if is_seq(node):
        return any(has_anchors(v, seen) for v in node.value)
    return False


# YAML 1.1 plain-scalar resolution, as the kubelet's decoder (go-yaml v2 via sigs.k8s.io/yaml) reads it.
_BOOL_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_BOOL_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_OCT = re.compile(r"[-+]?0[0-7_]+")
_HEX = re.compile(r"[-+]?0x[0-9a-fA-F_]+")
_FLOAT = re.compile(r"[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?")


def resolve11(value: str) -> Any:
    if value in _NULL:
        return None
    if value in _BOOL_TRUE:
        return True
    if value in _BOOL_FALSE:
        return False
    if _INT.fullmatch(value):
        return int(value.replace("_", ""))
    if _HEX.fullmatch(value):
        return int(value.replace("_", ""), 16)
    if _OCT.fullmatch(value):
        return int(value.replace("_", ""), 8)
    if _FLOAT.fullmatch(value) and any(c.isdigit() for c in value):
        return float(value.replace("_", ""))
    return value


def to_python(node: Node, problems: list[str] | None = None, path: str = "") -> Any:
    """Plain data with YAML 1.1 scalars; duplicate keys are reported (strict decoding rejects them)."""
    if is_map(node):
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = str(k.value) if is_scalar(k) else repr(k.value)
            if key in out and problems is not None:
                problems.append(f"{path or '<root>'}: duplicate key {key!r} (line {k.start_mark.line + 1})")
            out[key] = to_python(v, problems, f"{path}.{key}" if path else key)
        return out
    if is_seq(node):
        return [to_python(v, problems, f"{path}[{i}]") for i, v in enumerate(node.value)]
    if node.style is not None:  # quoted or block scalar: always a string
        return str(node.value)
    return resolve11(str(node.value))
