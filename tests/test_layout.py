"""The layering rules of docs/architecture.md ("Layers"), checked on the source: graph/ and
loaders/ never import each other or lineage/, Cypher lives only in graph/, and no package has an
import cycle inside it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"graph": {"loaders", "lineage"}, "loaders": {"graph", "lineage"}}


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_do_not_import_upwards_or_sideways(layer: str) -> None:
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"{layer}/ has no Python files"
    offenders = {
        str(f.relative_to(ROOT)): sorted(_imported_top_levels(f) & FORBIDDEN[layer]) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_cypher_only_in_graph() -> None:
    pattern = re.compile(r"\b(MATCH|MERGE|UNWIND)\s*\(")
    hits = [
        str(f.relative_to(ROOT))
        for layer in ("lineage", "loaders")
        for f in (ROOT / layer).rglob("*.py")
        if pattern.search(f.read_text())
    ]
    assert hits == []


def _module_imports(package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports: anywhere in the file, including
    inside functions and `if TYPE_CHECKING:` blocks (a cycle hidden in a function is a cycle)."""
    root = ROOT / package
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_init = path.name == "__init__.py"
        parts = module.split(".")
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against this module's package
                    base = parts[: len(parts) - node.level + (1 if is_init else 0)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                # `from pkg import mod` names the module; `from pkg.mod import name` the module.
                if target in modules and target != module and not module.startswith(target + "."):
                    edges[module].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", ["lineage", "graph", "loaders"])
def test_no_import_cycle_inside_a_package(package: str) -> None:
    edges = _module_imports(package)
    assert sum(map(len, edges.values())) > 0, f"{package}: no imports found; the scan is broken"
    assert _cycles(edges) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    # The check itself: two modules importing each other (one of them inside a function).
    assert _cycles({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}) == [["p.a", "p.b"]]
    assert _cycles({"p.a": {"p.b"}, "p.b": set()}) == []
