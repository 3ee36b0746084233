"""Moving a graph: `ln.export_graph` / `ln.import_graph` (`lineage export|import DIR`) and
`lineage server backup|restore FILE`. A round trip gives the very same graph (every node and
edge compared, `tests/graph_digest.py`), importing twice changes nothing, sub-graphs hold what
their records need, files move with `--with-files`, damaged dumps are refused before anything is
written, and restore refuses a graph that is not empty."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

import lineage as ln
from graph import Connection, ConnectionSettings
from graph import transfer as gt
from graph.server import LocalServer
from lineage._transfer import backup, restore
from lineage.cli import main
from tests.conftest import Neo4jUnderTest, free_port, make_artifact
from tests.graph_digest import snapshot


def build(storage: Path, tmp_path: Path) -> dict[str, ln.Record]:
    """A graph with every kind of node and edge: versions, a collection with a meta artifact,
    runs with inputs and an initiating run, labels with a type, features of several dtypes,
    values and categorical edges, a project, a reference, a space, a trashed record, and a
    USED edge carrying a row set (bytes)."""
    ln.track("prep.py", params={"seed": 1})
    raw = make_artifact(storage, "raw/a.txt")
    raw2 = make_artifact(storage, "raw/a.txt", "second version\n")
    other = make_artifact(storage, "raw/b.txt")
    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / "w.txt").write_text("well")
    plate = ln.Artifact(folder, key="images/plate").save()
    ln.finish()
    run = ln.track("train.py")
    raw2.cache()
    model = make_artifact(storage, "models/m.bin")
    collection = ln.Collection([other, raw2], key="sets/main", meta=plate).save()
    ln.finish()
    kind = ln.ULabel(name="Kind", is_type=True).save()
    t = ln.ULabel(name="T", type=kind).save()
    plain = ln.ULabel(name="plain").save()
    ln.Feature(name="temperature", dtype=float).save()
    ln.Feature(name="day", dtype="date").save()
    ln.Feature(name="kind", dtype=kind).save()
    raw2.features.add_values({"temperature": 21.5, "day": "2024-01-02", "kind": "T"})
    model.ulabels.add(plain)
    project = ln.Project(name="atlas").save()
    collection.projects.add(project)
    reference = ln.Reference(name="Doe", doi="10.1/doe").save()
    collection.references.add(reference)
    space = ln.Space(name="team").save()
    model.space = space
    model.save()
    gone = make_artifact(storage, "gone.txt")
    gone.delete()
    ln.cypher(
        "MATCH (:Run {uid: $run})-[u:USED]->(a:Artifact {uid: $a}) SET u.rows = $rows, u.n_rows = 9",
        run=run.uid, a=raw2.uid, rows=b"\x00\x01\xff",
    )  # fmt: skip
    return {"raw": raw, "raw2": raw2, "model": model, "collection": collection, "run": run, "t": t}


def wipe_and_reconnect(neo4j: Neo4jUnderTest) -> None:
    ln.cypher("MATCH (n) DETACH DELETE n")
    ln.disconnect()
    s = neo4j.settings
    ln.connect(s.uri, user=s.user, password=s.password, database=s.database)


def test_round_trip_gives_the_same_graph(
    storage: Path, neo4j: Neo4jUnderTest, tmp_path: Path
) -> None:
    build(storage, tmp_path)
    before = snapshot()
    assert len(before["nodes"]) > 30 and len(before["edges"]) > 40
    report = ln.export_graph(tmp_path / "dump", batch_size=3)
    manifest = json.loads((tmp_path / "dump" / "manifest.json").read_text())
    assert manifest["format"] == "lineagegraph-dump" and manifest["version"] == 1
    assert manifest["counts"]["nodes"] == report.nodes
    for name in ("nodes.jsonl", "edges.jsonl"):
        data = (tmp_path / "dump" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["files"][name]["sha256"]
        assert data.count(b"\n") == manifest["files"][name]["lines"]
    assert sum(report.edges.values()) == len(before["edges"])

    wipe_and_reconnect(neo4j)
    imported = ln.import_graph(tmp_path / "dump", batch_size=4)
    assert snapshot() == before  # every node and edge, ids, times and bytes included
    assert imported.created == sum(
        n for label, n in report.nodes.items() if label != "FeatureValue"
    )
    again = ln.import_graph(tmp_path / "dump")
    assert again.created == 0 and snapshot() == before
    # the moved graph works: ids continue after the dumped ones, queries run
    new = make_artifact(storage, "after/move.txt")
    assert new.id == max(a.id for a in ln.Artifact.filter(branch__in=[1, -1]))
    assert [a.key for a in ln.Artifact.filter(temperature__gt=20)] == ["raw/a.txt"]


def test_cli_export_and_import(
    storage: Path, neo4j: Neo4jUnderTest, cli_env: dict[str, str], tmp_path: Path, capsys
) -> None:
    build(storage, tmp_path)
    before = snapshot()
    assert main(["export", str(tmp_path / "d"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["nodes"]["Artifact"] == 6
    assert main(["export", str(tmp_path / "d")]) == 1  # not an empty folder
    assert "not an empty folder" in capsys.readouterr().err
    wipe_and_reconnect(neo4j)
    assert main(["import", str(tmp_path / "d")]) == 0
    assert snapshot() == before


def test_subgraphs_hold_what_their_records_need(storage: Path, tmp_path: Path) -> None:
    world = build(storage, tmp_path)
    by_key = ln.export_graph(tmp_path / "raw", key="raw/")
    nodes = [json.loads(x) for x in (tmp_path / "raw" / "nodes.jsonl").read_text().splitlines()]
    artifacts = sorted(n["props"]["key"] for n in nodes if n["label"] == "Artifact")
    assert artifacts == ["raw/a.txt", "raw/a.txt", "raw/b.txt"]
    labels = {n["label"] for n in nodes}
    assert {"Run", "Transform", "User", "Storage", "FeatureValue", "Feature", "ULabel"} <= labels
    assert "Collection" not in labels
    edges = [json.loads(x) for x in (tmp_path / "raw" / "edges.jsonl").read_text().splitlines()]
    uids = {(n["label"], n["props"].get("uid")) for n in nodes}
    for e in edges:  # no edge leaves the sub-graph
        for end in (e["src"], e["dst"]):
            assert end["label"] == "FeatureValue" or (end["label"], end["uid"]) in uids
    assert by_key.nodes["Artifact"] == 3

    up = ln.export_graph(tmp_path / "up", upstream_of=world["collection"].uid)
    nodes = [json.loads(x) for x in (tmp_path / "up" / "nodes.jsonl").read_text().splitlines()]
    keys = {n["props"].get("key") for n in nodes if n["label"] == "Artifact"}
    assert keys == {"raw/a.txt", "raw/b.txt", "images/plate"}  # members, meta, versions
    assert "models/m.bin" not in keys
    assert up.nodes["Collection"] == 1
    with pytest.raises(ln.errors.DoesNotExist):
        ln.export_graph(tmp_path / "none", upstream_of="0" * 20)
    with pytest.raises(ln.errors.InvalidArgument, match="not both"):
        ln.export_graph(tmp_path / "both", key="raw/", upstream_of=world["run"].uid)


def test_with_files_moves_the_bytes_to_another_root(
    storage: Path, neo4j: Neo4jUnderTest, tmp_path: Path
) -> None:
    build(storage, tmp_path)
    hashes = {a.uid: a.hash for a in ln.Artifact.filter(branch__in=[1, -1])}
    new_root = tmp_path / "elsewhere"
    report = ln.export_graph(tmp_path / "dump", with_files=str(new_root))
    assert report.files_copied == len(hashes)
    wipe_and_reconnect(neo4j)
    ln.import_graph(tmp_path / "dump")
    for a in ln.Artifact.filter(branch__in=[1, -1]):
        assert a.storage_path.startswith(str(new_root / ".lineage")), a.storage_path
        assert a.storage.root == str(new_root)
        assert Path(a.storage_path).exists()
        assert a.hash == hashes[a.uid]
    moved = ln.Artifact.get(key="raw/b.txt")
    assert moved.cache().read_text() == "content of raw/b.txt\n"
    assert ln.doctor().ok, ln.doctor().describe()


def test_a_damaged_dump_is_refused_before_anything_is_written(
    storage: Path, neo4j: Neo4jUnderTest, tmp_path: Path
) -> None:
    build(storage, tmp_path)
    ln.export_graph(tmp_path / "dump")
    wipe_and_reconnect(neo4j)
    nodes = tmp_path / "dump" / "nodes.jsonl"
    nodes.write_bytes(nodes.read_bytes()[:-20])  # truncated
    with pytest.raises(ln.errors.DataError, match="sha256"):
        ln.import_graph(tmp_path / "dump")
    assert snapshot()["nodes"] == []
    with pytest.raises(ln.errors.MissingFile, match="manifest"):
        ln.import_graph(tmp_path)


def test_backup_and_restore(storage: Path, neo4j: Neo4jUnderTest, tmp_path: Path) -> None:
    build(storage, tmp_path)
    before = snapshot()
    file = tmp_path / "graph.tar.gz"
    report = backup(file)
    assert report.nodes["Artifact"] == 6
    assert sorted(tarfile.open(file).getnames()) == ["edges.jsonl", "manifest.json", "nodes.jsonl"]
    with pytest.raises(ln.errors.InvalidArgument, match="exists"):
        backup(file)
    with pytest.raises(ln.errors.InvalidArgument, match="not empty"):
        restore(file)
    assert snapshot() == before  # refused: nothing changed
    make_artifact(storage, "later.txt")
    restore(file, force=True)  # empties the graph first
    assert snapshot() == before
    wipe_and_reconnect(neo4j)
    restore(file)
    assert snapshot() == before
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(file.read_bytes()[:100])
    with pytest.raises(ln.errors.DataError):
        restore(broken, force=True)
    assert snapshot() == before  # a damaged backup deletes nothing


def test_cli_backup_and_restore(
    storage: Path, cli_env: dict[str, str], tmp_path: Path, capsys
) -> None:
    build(storage, tmp_path)
    before = snapshot()
    file = tmp_path / "b.tar.gz"
    assert main(["server", "backup", str(file)]) == 0
    assert main(["server", "restore", str(file)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["server", "restore", str(file), "--force"]) == 0
    assert snapshot() == before


def test_wipe_empties_a_graph_whose_hub_holds_100k_edges(
    neo4j_install_dir: Path, tmp_path: Path
) -> None:
    """`restore --force` empties the graph with `graph.transfer.wipe`. A Storage or User node
    holds one edge per artifact, and deleting such a node with its edges in one transaction ran
    out of Neo4j's transaction memory (`MemoryPoolOutOfMemoryError`: 100k artifacts on a 1 GB
    heap). Here a server of its own with a 256 MB heap, where the old wipe failed the same way
    at 100k edges (50k passed). The hub is made first, so a wipe by nodes in store order meets
    it in its first batch."""
    server = LocalServer(home=tmp_path / "server", install_dir=neo4j_install_dir, heap="256m")
    status = server.start(port=free_port())
    conn = Connection.open(ConnectionSettings(uri=status.uri, source="local server"))
    try:
        conn.run("CREATE (:WipeHub {uid: 'hub'})")
        conn.run(
            "MATCH (h:WipeHub) UNWIND range(1, 100000) AS i CALL (h, i) { "
            "CREATE (:WipeLeaf {i: i})-[:STORED_IN]->(h) } IN TRANSACTIONS OF 20000 ROWS"
        )
        conn.run("CREATE (:LineageSchema {version: 0})")
        assert conn.read("MATCH (:WipeHub)<-[e]-() RETURN count(e) AS n") == [{"n": 100000}]
        gt.wipe(conn)
        assert conn.read("MATCH (n) RETURN labels(n) AS labels") == [
            {"labels": ["LineageSchema"]}  # the schema-version node stays
        ]
        assert conn.read("MATCH ()-[e]->() RETURN count(e) AS n") == [{"n": 0}]
    finally:
        conn.close()
        server.stop()


def test_records_without_an_id_are_exported_too(storage: Path, tmp_path: Path) -> None:
    """The export reads records in pages by id; a record without one (lineage writes none, a
    hand-made node may be) comes in the last query, with its edges, and nothing twice."""
    raw = make_artifact(storage, "raw/a.txt")
    conn = ln.connect().connection
    conn.run(
        "MATCH (a:Artifact {uid: $uid}) CREATE (:ULabel {uid: 'handmade0000', name: 'by hand'})"
        "<-[:LABELED_WITH]-(a)",
        {"uid": raw.uid},
    )
    conn.run("CREATE (:ULabel {uid: 'handmade0001', name: 'alone'})")
    report = ln.export_graph(tmp_path / "d", batch_size=1)
    lines = [json.loads(x) for x in (tmp_path / "d" / "nodes.jsonl").read_text().splitlines()]
    labels = sorted(x["props"]["uid"] for x in lines if x["label"] == "ULabel")
    assert labels == ["handmade0000", "handmade0001"] and report.nodes["ULabel"] == 2
    assert report.nodes["Artifact"] == 1
    edges = [json.loads(x) for x in (tmp_path / "d" / "edges.jsonl").read_text().splitlines()]
    assert [e["dst"] for e in edges if e["type"] == "LABELED_WITH"] == [
        {"label": "ULabel", "uid": "handmade0000"}
    ]
    assert len(edges) == sum(report.edges.values()) == len({json.dumps(e) for e in edges})
