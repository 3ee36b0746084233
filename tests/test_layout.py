"""The layering rule of docs/architecture.md ("Layers"), checked on the source: graph/ and loaders/ never import
each other or lineage/, and Cypher lives only in graph/."""

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
