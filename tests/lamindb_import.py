"""What importing the lamindb world (`tests/lamindb_world.py`) must give, checked record by record
against what lamindb says about it: shared by the SQLite (`tests/test_import_lamindb.py`) and
Postgres (`tests/test_import_postgres.py`) tests, which import the same world from either
database."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lineage as ln
from benchmarks._lamindb_env import default_venv_dir, ensure_lamindb, init_instance, run_worker

ROOT = Path(__file__).resolve().parent.parent
# Read now, before the session's fixtures point LINEAGE_HOME at a temporary directory.
LAMINDB_VENV = Path(os.environ.get("LINEAGE_LAMINDB_VENV") or default_venv_dir())


def make_world(root: Path, db: str | None = None) -> tuple[Path, dict[str, Any]]:
    """A fresh lamindb instance in `root` (its records in `storage/.lamindb/lamin.db`, or in the
    Postgres database at `db`), filled by lamindb with the world; returns its storage root and
    lamindb's account of it."""
    lenv = ensure_lamindb(LAMINDB_VENV)
    storage = root / "storage"
    init_instance(lenv, root, storage, db=db)
    world = run_worker(
        lenv, root, [str(ROOT / "tests" / "lamindb_world.py"), str(root / "work")], timeout=900
    )
    return storage, world


def cypher_rows(query: str, **params: Any) -> list[dict[str, Any]]:
    return ln.cypher(query, **params).to_dict("records")


def iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def node_id(name: str) -> tuple[str, str]:
    """lamindb's `view_lineage` node name (`artifact_<uid>`) as (label, uid)."""
    registry, uid = name.split("_", 1)
    return registry.capitalize(), uid


def check_import(report: ln.ImportReport, world: dict[str, Any]) -> None:
    """The graph holds the world as lamindb reports it, and `report` (of the first import into
    an empty graph) says so: every field, edge, member order, run input and feature value."""
    assert report.records["Artifact"] == {"read": 15, "created": 15, "skipped": 0}
    assert report.records["Collection"]["created"] == 3
    assert report.records["Space"] == {"read": 2, "created": 1, "skipped": 1}

    for want in world["Artifact"]:
        a = ln.Artifact.get(want["uid"])
        assert (a.key, a.hash, a.hash_type, a.size, a.suffix) == (
            want["key"], want["hash"], want["hash_type"], want["size"], want["suffix"],
        )  # fmt: skip
        assert (a.version, a.is_latest, a.branch, a.n_files, a.otype) == (
            want["version"], want["is_latest"], want["branch"], want["n_files"], want["otype"],
        )  # fmt: skip
        assert iso(a.created_at) == want["created_at"]
        assert a.created_by.handle == want["created_by"]
        assert a.storage.root == want["storage"]
        assert a.storage_path == want["path"]  # the same file: nothing is copied
        assert Path(a.storage_path).exists()
        assert (a.run.uid if a.run else None) == want["run"]
        # lamindb lists a label twice when it is given plainly and as a feature's value (two
        # link rows); a relation here lists each record once (docs/architecture.md, "Schemas and
        # curators"). Both edges are imported: the feature value is checked below.
        assert sorted(x.uid for x in a.ulabels) == sorted(set(want["ulabels"]))
        assert sorted(x.uid for x in a.projects) == want["projects"]
        assert sorted(x.uid for x in a.references) == want["references"]
        got = a.features.get_values()
        assert {k: _plain(v) for k, v in got.items()} == want["features"], a.key
    assert Path(ln.Artifact.get(world["Artifact"][0]["uid"]).cache()).read_text() == "raw one\n"

    for want in world["Collection"]:
        c = ln.Collection.get(want["uid"])
        assert (c.key, c.hash, c.version, c.is_latest) == (
            want["key"], want["hash"], want["version"], want["is_latest"],
        )  # fmt: skip
        assert [a.uid for a in c.ordered_artifacts] == want["ordered_artifacts"]
        assert (c.meta_artifact.uid if c.meta_artifact else None) == want["meta"]
        assert (c.run.uid if c.run else None) == want["run"]
        assert iso(c.created_at) == want["created_at"]
        # lamindb's collection.ulabels are the collection's own labels; here the relation also
        # holds its members' (the reference's "ULabels sampled in the collection"), so the own
        # labels are read as edges, and the members' are in the relation as well.
        own = ln.cypher(
            "MATCH (:Collection {uid: $uid})-[:LABELED_WITH]->(u:ULabel) RETURN u.uid AS uid",
            uid=c.uid,
        )
        assert sorted(own["uid"].tolist() if len(own) else []) == want["ulabels"]
        assert set(want["ulabels"]) <= {x.uid for x in c.ulabels}

    outputs = {
        r["uid"]: {a["uid"] for a in world["Artifact"] if a["run"] == r["uid"]}
        for r in world["Run"]
    }
    for want in world["Transform"]:
        t = ln.Transform.get(want["uid"])
        assert (t.key, t.hash, t.kind, t.is_latest, t.version, t.source_code) == (
            want["key"], want["hash"], want["kind"], want["is_latest"], want["version"],
            want["source_code"],
        )  # fmt: skip
    for want in world["Run"]:
        r = ln.Run.get(want["uid"])
        assert r.transform.uid == want["transform"]
        assert (r.status, r.params) == (want["status"], want["params"])
        assert (iso(r.started_at), iso(r.finished_at)) == (want["started_at"], want["finished_at"])
        assert (r.initiated_by.uid if r.initiated_by else None) == want["initiated_by"]
        # lamindb lets a run read what it made; lineage's rule leaves such an input out
        own = outputs[want["uid"]]
        assert sorted(a.uid for a in r.input_artifacts) == sorted(
            set(want["input_artifacts"]) - own
        )
        assert sorted(c.uid for c in r.input_collections) == want["input_collections"]
        assert {k: _plain(v) for k, v in r.features.get_values().items()} == want["features"]
    assert report.skipped["run inputs: the run's own output (lineage's rule: never its input)"] == 1

    # every edge of lamindb's view_lineage, for every artifact and collection
    lineage_edges = {
        tuple(e) for kind in ("Artifact", "Collection") for r in world[kind] for e in r["lineage"]
    }
    assert len(lineage_edges) > 10
    left_out = []
    for source, target in sorted(lineage_edges):
        (sl, su), (tl, tu) = node_id(source), node_id(target)
        if sl == "Run":  # run -> output
            query = f"MATCH (o:{tl} {{uid: $t}})-[:GENERATED_BY]->(r:Run {{uid: $s}}) RETURN count(*) AS n"
        else:  # input -> run
            query = f"MATCH (r:Run {{uid: $t}})-[:USED]->(i:{sl} {{uid: $s}}) RETURN count(*) AS n"
        found = cypher_rows(query, s=su, t=tu)
        if sl != "Run" and su in outputs[tu]:  # the input a run made itself: see above
            assert found == [{"n": 0}]
            left_out.append(source)
        else:
            assert found == [{"n": 1}], (source, target)
    assert len(set(left_out)) == 1
    # ... and what lineage's own traversal shows from the newest collection
    newest = next(c for c in world["Collection"] if c["key"] == "datasets/main" and c["is_latest"])
    up = ln.lineage.upstream(ln.Collection.get(newest["uid"]))
    assert set(newest["ordered_artifacts"]) <= {a.uid for a in up.artifacts}

    users = {u.handle: u for u in ln.User.filter()}
    for want in world["User"]:
        assert users[want["handle"]].uid == want["uid"]
    assert {s.root for s in ln.Storage.filter()} == {s["root"] for s in world["Storage"]}
    assert [s.name for s in ln.Space.filter()] == ["team-a"]
    labels = {u.uid: u for u in ln.ULabel.filter(branch__in=[1, 0, -1])}
    for want in world["ULabel"]:
        assert labels[want["uid"]].name == want["name"]
        assert bool(labels[want["uid"]].is_type) == want["is_type"]
        assert (labels[want["uid"]].type.uid if labels[want["uid"]].type else None) == want["type"]
    team = next(u for u in world["ULabel"] if u["name"] == "team label")
    assert labels[team["uid"]].space.name == "team-a"
    features = {f.name: f for f in ln.Feature.filter()}
    assert features["cell_type"].dtype == "cat[ULabel[CellType]]"
    assert {f["name"] for f in world["Feature"]} == set(features)
    # lineage's queries work on imported records
    assert [a.key for a in ln.Artifact.filter(temperature__gt=25)] == ["tables/xy.parquet"]
    latest = ln.Artifact.get(key="raw/r2.txt")
    assert latest.uid.endswith("0002") and latest.version == "v3"
    assert [v.uid[-4:] for v in latest.versions] == ["0000", "0001", "0002"]
    assert ln.doctor().ok, ln.doctor().describe()


def _plain(value: Any) -> Any:
    """A feature value as the world script writes it (dates as ISO text, lists sorted)."""
    if isinstance(value, list):
        return sorted(_plain(v) for v in value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
