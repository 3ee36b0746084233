"""docs/guide.md is executed, block by block in one namespace, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lineage as ln
from tests.conftest import Neo4jUnderTest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_guide_has_code() -> None:
    assert len(_blocks()) >= 8


def test_guide_runs(
    storage: Path, neo4j: Neo4jUnderTest, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # The guide calls `ln.connect()` with no arguments: point it at the session's Neo4j.
    s = neo4j.settings
    monkeypatch.setenv("NEO4J_URI", s.uri)
    monkeypatch.setenv("NEO4J_USER", s.user)
    if s.password is not None:
        monkeypatch.setenv("NEO4J_PASSWORD", s.password)
    namespace: dict = {}
    for i, block in enumerate(_blocks()):
        try:
            exec(compile(block, f"{GUIDE.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # name the block, so a failure points at the page
            raise AssertionError(f"docs/guide.md block {i} failed: {exc!r}\n{block}") from exc
    out = capsys.readouterr().out
    assert "scrna/batch1.h5ad" in out and "score" in out
    # The guide's work is in the graph: three collection versions (the last one makes the
    # normalised table stale), the run's edges.
    versions = ln.cypher("MATCH (c:Collection {key: 'scrna'}) RETURN count(c) AS n")["n"].iloc[0]
    assert versions == 3
