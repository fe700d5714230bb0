"""The package map of docs/architecture.md, checked: what each subpackage of installer/ may import
(lazy imports inside functions included), and no import cycle between modules."""

from __future__ import annotations

import ast
from pathlib import Path

import installer

PACKAGE = Path(installer.__file__).parent
LEAVES = {"errors", "yamlio", "__version__", "_help"}

# subpackage -> what it may import besides itself and the leaves; "pkg.module" allows one module only.
ALLOWED: dict[str, set[str]] = {
    "scripts": set(),
    # the rotation defaults are the table's
    "policy": {"manifest.settings"},
    "transport": {"scripts", "targets.parse"},  # the Target value and its syntax, a leaf of targets
    "node": {"scripts", "transport"},
    "manifest": {"node.layout"},
    "targets": {"scripts", "transport", "node", "manifest"},
    "auditlog": {"manifest", "node", "targets", "transport", "scripts"},
    "detections": {"auditlog", "policy"},
    "simulate": {"auditlog", "detections", "policy", "manifest"},
    "logs": {"auditlog", "detections", "scripts", "transport"},  # nodes opened and read through auditlog.node
    "change": {"scripts", "transport", "node", "manifest", "policy", "targets"},
    "commands": {"scripts", "transport", "node", "manifest", "policy", "targets", "change", "auditlog", "detections",
                 "simulate", "logs"},
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:` (imports for annotations only never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def imports_of(path: Path) -> set[str]:
    """installer.* modules this file imports when it runs: at the top or inside functions."""
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "installer":
            for alias in node.names:  # `from installer.policy import validate` imports a module
                candidate = f"{node.module}.{alias.name}"
                known = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or \
                    (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists()
                out.add(candidate if known else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "installer"}
    return out


MODULES = {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_each_subpackage_imports_only_what_the_map_allows() -> None:
    wrong = []
    for module, imported in sorted(MODULES.items()):
        parts = module.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        own = parts[1]
        for dep in sorted(imported):
            d = dep.split(".")
            if len(d) < 2 or d[1] in LEAVES or d[1] == own:
                continue
            if d[1] not in ALLOWED[own] and ".".join(d[1:3]) not in ALLOWED[own]:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    graph = {m: {d for d in deps if d in MODULES and d != m} for m, deps in MODULES.items()}
    # a package's __init__ is imported by each of its modules: that edge is not a cycle of the code's
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append([*path[path.index(d):], d] if d in path else [m, d])
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_every_subpackage_says_what_it_holds_and_may_import() -> None:
    for sub in ALLOWED:
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc.lower(), f"installer/{sub}/__init__.py: say what lives here, what it imports"
