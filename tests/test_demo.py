"""The README demo runs end to end against the session's Neo4j."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lineage as ln
from tests.conftest import Neo4jUnderTest


def test_demo_runs_end_to_end(db: ln.Instance, neo4j: Neo4jUnderTest) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "lineage", "demo"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert f"connected to {neo4j.settings.display_uri}" in out.stdout
    assert "demo/batch1.h5ad (AnnData, 60 cells" in out.stdout
    assert "append -> new version" in out.stdout and "the family has 2 versions" in out.stdout
    # What the demo printed is what the graph holds.
    family = ln.cypher(
        "MATCH (c:Collection {key: 'demo/scrna'}) RETURN c.uid AS uid, c.is_latest AS latest "
        "ORDER BY uid"
    )
    assert [u[-4:] for u in family["uid"]] == ["0000", "0001"]
    assert list(family["latest"]) == [False, True]
    members = ln.cypher(
        "MATCH (:Collection {uid: $uid})-[m:CONTAINS]->(a) RETURN a.key AS key ORDER BY m.position",
        uid=family["uid"].iloc[1],
    )
    assert list(members["key"]) == ["demo/batch1.h5ad", "demo/batch2.h5ad"]
    run = ln.cypher(
        "MATCH (out:Artifact)-[:GENERATED_BY]->(r:Run)-[:USED]->(c:Collection) "
        "RETURN out.key AS out, c.uid AS input"
    )
    assert list(run["out"]) == ["demo/cell_counts.parquet"]
    assert run["input"].iloc[0] == family["uid"].iloc[1]
    assert "demo/cell_counts.parquet" in out.stdout
    # The loaders: one AnnData of both batches, and shuffled DataLoader batches from mapped().
    assert f"loaded {family['uid'].iloc[1]} as 120 cells x 20 genes" in out.stdout
    assert "mapped: 120 cells x 20 genes in 2 files" in out.stdout
    assert out.stdout.count("batch ") >= 3 and "X (32, 20)" in out.stdout
    counts = ln.Artifact.get(key="demo/cell_counts.parquet").load()
    assert sorted(counts["cells"]) == [60, 60]
    # The lineage page of the collection exists and names its members.
    html = Path(out.stdout.split(f"lineage of demo/scrna {family['uid'].iloc[1]}: ")[1].split()[0])
    assert html.suffix == ".html" and "demo/batch2.h5ad" in html.read_text()

    again = subprocess.run(
        [sys.executable, "-m", "lineage", "demo"], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "returning existing collection" in again.stderr  # same content: reused, not copied
    count = ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"].iloc[0]
    assert count == 4
