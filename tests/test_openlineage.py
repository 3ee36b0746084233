"""OpenLineage events in (docs/architecture.md, OpenLineage): jobs, runs and datasets become
transforms, runs and artifacts with the edges tracked runs have; facets are kept; column lineage
is answered in one query; replays and reorderings end in the same graph; bad events change
nothing and name the JSON path of their first problem."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
from lineage import _openlineage as olin
from lineage.errors import InvalidEvent
from tests.conftest import Neo4jUnderTest, make_artifact

PRODUCER = "https://example.com/tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def rid(n: int) -> str:
    return str(uuid.UUID(int=n))


def ds(name: str, namespace: str = "file", **facets: Any) -> dict[str, Any]:
    return {"namespace": namespace, "name": name, "facets": facets}


def event(
    kind: str,
    run: int,
    job: str,
    minute: int,
    inputs: list | None = None,
    outputs: list | None = None,
    job_facets: dict | None = None,
    run_facets: dict | None = None,
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": f"2026-03-01T10:{minute:02d}:00+00:00",
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": rid(run), "facets": run_facets or {}},
        "job": {"namespace": "etl", "name": job, "facets": job_facets or {}},
        "inputs": inputs or [],
        "outputs": outputs or [],
    }


def source(code: str) -> dict[str, Any]:
    return {"sourceCode": {"_producer": PRODUCER, "language": "python", "sourceCode": code}}


def lineage_of(field: str, *inputs: tuple[str, str]) -> dict[str, Any]:
    return {
        "fields": {
            field: {
                "inputFields": [
                    {"namespace": "file", "name": n, "field": f,
                     "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}
                    for n, f in inputs
                ]
            }
        }
    }  # fmt: skip


def schema(*fields: tuple[str, str]) -> dict[str, Any]:
    return {"fields": [{"name": n, "type": t} for n, t in fields]}


# -- the graph, compared by what things are rather than by their random uids ---------------------
def canonical() -> dict[str, Any]:
    """Every node and provenance edge, each named by stable values (keys, versions, runIds)."""
    names: dict[str, Any] = {}
    runs = ln.cypher(
        "MATCH (r:Run) RETURN r.uid AS uid, r.openlineage_run_id AS id, r.status AS status, "
        "toString(r.started_at) AS started, toString(r.finished_at) AS finished, "
        "r.facets AS facets"
    )
    for r in runs.to_dict("records"):
        names[r["uid"]] = ("Run", r["id"])
    transforms = ln.cypher(
        "MATCH (t:Transform) RETURN t.uid AS uid, t.key AS key, t.hash AS hash, "
        "t.is_latest AS latest, t.source_code AS code, t.facets AS facets"
    )
    for t in transforms.to_dict("records"):
        names[t["uid"]] = ("Transform", t["key"], t["hash"])
    made = dict(
        ln.cypher(
            "MATCH (a:Artifact)-[:GENERATED_BY]->(r:Run) RETURN a.uid AS a, r.openlineage_run_id AS r"
        ).itertuples(index=False)
    )
    artifacts = ln.cypher(
        "MATCH (a:Artifact) RETURN a.uid AS uid, a.key AS key, a.version AS version, "
        "a.is_latest AS latest, a.storage_path AS path, a.facets AS facets, "
        "a.n_observations AS rows"
    )
    for a in artifacts.to_dict("records"):
        names[a["uid"]] = ("Artifact", a["key"], a["version"], made.get(a["uid"]))
    edges = ln.cypher(
        "MATCH (a)-[e]->(b) WHERE NOT type(e) IN ['CREATED_BY', 'HAS_COLUMN', 'DERIVED_FROM'] "
        "RETURN a.uid AS a, type(e) AS type, b.uid AS b"
    )
    columns = ln.cypher(
        "MATCH (c:Column) OPTIONAL MATCH (c)-[d:DERIVED_FROM]->(i:Column) "
        "RETURN c.artifact AS a, c.name AS name, c.type AS type, i.artifact AS ia, "
        "i.name AS iname, d.subtype AS subtype"
    )

    def strip(rows: list[dict], *drop: str) -> list:
        return sorted(
            json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True, default=str)
             for r in rows
        )  # fmt: skip

    return {
        "runs": strip([{**r, "uid": names[r["uid"]]} for r in runs.to_dict("records")]),
        "transforms": strip([{**t, "uid": names[t["uid"]]} for t in transforms.to_dict("records")]),
        "artifacts": strip([{**a, "uid": names[a["uid"]]} for a in artifacts.to_dict("records")]),
        "edges": sorted(
            json.dumps([names.get(e["a"]), e["type"], names.get(e["b"])], default=str)
            for e in edges.to_dict("records")
        ),
        "columns": strip(
            [
                {**c, "a": names[c["a"]], "ia": names.get(c["ia"]) if c["ia"] else None}
                for c in columns.to_dict("records")
            ]
        ),
    }


def wipe(neo4j: Neo4jUnderTest) -> None:
    ln.cypher("MATCH (n) WHERE NOT n:LineageSchema AND NOT n:User DETACH DELETE n")


# -- a small world of events ------------------------------------------------------------------------
def world() -> list[list[dict[str, Any]]]:
    """Events per run: extract (parent) starts a load run; load reads raw.csv and writes
    orders.parquet (schema, column lineage); a second load with new code writes a new version;
    report reads orders.parquet and writes report.csv (column lineage two hops from raw.csv),
    and a failed run of report."""
    parent = {"parent": {"run": {"runId": rid(1)}, "job": {"namespace": "etl", "name": "extract"}}}
    orders = ds(
        "/data/orders.parquet",
        schema=schema(("id", "INTEGER"), ("amount", "DOUBLE")),
        columnLineage=lineage_of("amount", ("/data/raw.csv", "price")),
    )
    report = ds(
        "/data/report.csv", columnLineage=lineage_of("total", ("/data/orders.parquet", "amount"))
    )
    raw = ds("/data/raw.csv", schema=schema(("price", "DOUBLE")))
    return [
        [event("START", 1, "extract", 0), event("COMPLETE", 1, "extract", 9)],
        [
            event("START", 2, "load", 1, [raw], [orders], source("v1"), parent),
            event("RUNNING", 2, "load", 2, [raw], [orders]),
            event(
                "COMPLETE",
                2,
                "load",
                3,
                [raw],
                [{**orders, "outputFacets": {"outputStatistics": {"rowCount": 7}}}],
            ),
        ],
        [
            event("START", 3, "load", 4, [raw], [orders], source("v2")),
            event("COMPLETE", 3, "load", 5, [raw], [orders], source("v2")),
        ],
        [
            event("START", 4, "report", 6, [ds("/data/orders.parquet")], [report]),
            event("COMPLETE", 4, "report", 7, [ds("/data/orders.parquet")], [report]),
        ],
        [
            event("START", 5, "report", 8),
            event(
                "FAIL",
                5,
                "report",
                9,
                run_facets={"errorMessage": {"message": "boom", "programmingLanguage": "sql"}},
            ),
        ],
    ]


def ingest(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return ln.lineage.ingest(events)


# -- mapping ----------------------------------------------------------------------------------------
def test_run_events_become_transforms_runs_and_artifacts(storage: Path) -> None:
    for run_events in world():
        ingest(run_events)
    load_v1, load_v2 = ln.Transform.filter(key="etl/load").order_by("uid").to_list()
    assert (load_v1.source_code, load_v2.source_code) == ("v1", "v2")
    assert load_v2.revises == load_v1 and load_v2.is_latest and not load_v1.is_latest
    assert (load_v1.ol_namespace, load_v1.ol_name) == ("etl", "load")

    run2 = ln.Run.get(openlineage_run_id=rid(2))
    assert run2.status == "completed" and run2.transform == load_v1
    assert run2.started_at.isoformat() == "2026-03-01T10:01:00+00:00"
    assert run2.finished_at.isoformat() == "2026-03-01T10:03:00+00:00"
    assert run2.initiated_by == ln.Run.get(openlineage_run_id=rid(1))
    assert [a.key for a in run2.input_artifacts] == ["file//data/raw.csv"]
    [orders1] = run2.output_artifacts.to_list()
    assert orders1.storage_path == "/data/orders.parquet" and orders1.n_observations == 7
    assert orders1.suffix == ".parquet"

    run3 = ln.Run.get(openlineage_run_id=rid(3))
    [orders2] = run3.output_artifacts.to_list()  # the load ran again: a new version
    assert orders2.revises == orders1 and orders2.is_latest and orders2.key == orders1.key
    report_run = ln.Run.get(openlineage_run_id=rid(4))
    assert report_run.input_artifacts.to_list() == [orders2]  # the latest version when read
    failed = ln.Run.get(openlineage_run_id=rid(5))
    assert failed.status == "errored" and failed.finished_at.minute == 9
    assert json.loads(failed.facets)["errorMessage"]["message"] == "boom"

    # Provenance as for tracked runs: ln.lineage follows the same edges.
    report = ln.Artifact.get(key="file//data/report.csv")
    up = ln.lineage.upstream(report)
    assert {a.key for a in up.artifacts} == {"file//data/orders.parquet", "file//data/raw.csv"}
    assert {t.key for t in up.transforms} == {"etl/report", "etl/load"}


def test_column_lineage_at_any_depth(storage: Path) -> None:
    for run_events in world():
        ingest(run_events)
    report = ln.Artifact.get(key="file//data/report.csv")
    found = ln.lineage.columns(report, "total")
    assert found[["key", "column", "depth", "transformation"]].values.tolist() == [
        ["file//data/orders.parquet", "amount", 1, "DIRECT"],
        ["file//data/raw.csv", "price", 2, "DIRECT"],
    ]
    assert found["type"].tolist() == ["DOUBLE", "DOUBLE"]  # from the schema facets
    # The version read: the report came from the second version of orders.parquet.
    assert found["artifact"][0] == ln.Artifact.get(key="file//data/orders.parquet").uid
    raw = ln.Artifact.get(key="file//data/raw.csv")
    down = ln.lineage.columns(raw, "price", downstream=True)
    assert sorted(down[["column", "depth"]].values.tolist()) == [
        ["amount", 1], ["amount", 1], ["total", 2],
    ]  # fmt: skip
    assert ln.lineage.columns(raw, "price").empty
    with pytest.raises(ln.errors.DoesNotExist, match=r"no column 'nope'.*known: price"):
        ln.lineage.columns(raw, "nope")
    # Cypher sees the same nodes and edges.
    hops = ln.cypher(
        "MATCH (:Column {artifact: $a, name: 'total'})-[:DERIVED_FROM*]->(c:Column) "
        "RETURN collect(c.name) AS names",
        a=report.uid,
    )
    assert sorted(hops["names"][0]) == ["amount", "price"]


def test_replayed_and_reordered_events_give_the_same_graph(
    storage: Path, neo4j: Neo4jUnderTest
) -> None:
    runs = world()
    for run_events in runs:
        ingest(run_events)
    expected = canonical()
    wipe(neo4j)
    shuffled = random.Random(7)
    # Each run's events shuffled (COMPLETE before START, RUNNING first), every event twice, a
    # child run before its parent's; a job's versions and a dataset's writers still arrive
    # before the runs that read them (an input without a version facet is the latest version
    # when its event arrives: docs/architecture.md, OpenLineage).
    order = [runs[1], runs[0], runs[4], runs[2], runs[3]]
    for run_events in order:
        for one in [*reversed(run_events), *shuffled.sample(run_events, len(run_events))]:
            ingest([one])
    assert canonical() == expected
    # And all of it again, in one batch: nothing changes.
    ingest([e for r in runs for e in r])
    assert canonical() == expected


def test_dataset_version_facet_is_the_artifact_version(storage: Path) -> None:
    v1 = ds("/lake/t", namespace="s3://bucket", version={"datasetVersion": "17"})
    v2 = ds("/lake/t", namespace="s3://bucket", version={"datasetVersion": "18"})
    ingest([event("COMPLETE", 1, "w", 1, [], [v1]), event("COMPLETE", 2, "r", 2, [v1], [])])
    ingest([event("COMPLETE", 3, "w", 3, [], [v2])])
    first, second = ln.Artifact.filter(key="s3://bucket//lake/t").order_by("uid").to_list()
    assert (first.version, second.version) == ("17", "18")
    assert first.storage_path == second.storage_path == "s3://bucket/lake/t"
    assert ln.Run.get(openlineage_run_id=rid(2)).input_artifacts.to_list() == [first]
    # An input naming a version no run wrote yet is that version, made now; its writer's
    # event later finds it.
    v3 = ds("/lake/t", namespace="s3://bucket", version={"datasetVersion": "19"})
    ingest([event("COMPLETE", 4, "r", 4, [v3], [])])
    ingest([event("COMPLETE", 5, "w", 5, [], [v3])])
    third = ln.Artifact.get(key="s3://bucket//lake/t", version="19")
    assert third.run == ln.Run.get(openlineage_run_id=rid(5))
    assert ln.Run.get(openlineage_run_id=rid(4)).input_artifacts.to_list() == [third]


def test_an_artifact_at_the_datasets_location_is_the_same_node(storage: Path) -> None:
    stored = make_artifact(storage, "raw/counts.csv")
    tracked_run = ln.track("prepare.py")
    made = make_artifact(storage, "tables/made.csv")
    ln.finish()
    before = ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0]
    [written] = ingest([
        event("COMPLETE", 1, "spark", 1, [ds(stored.storage_path)], [ds("/out/x.parquet")]),
    ])  # fmt: skip
    assert written["inputs"] == [stored.uid]
    assert ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0] == before + 1
    stored = ln.Artifact.get(stored.uid)
    assert (stored.ol_namespace, stored.ol_name, stored.key) == (
        "file", stored.storage_path, "raw/counts.csv",
    )  # fmt: skip
    # An output at the path of data another run made is a new version of that family.
    [again] = ingest([event("COMPLETE", 2, "spark", 2, [], [ds(made.storage_path)])])
    new = ln.Artifact.get(again["outputs"][0])
    assert new.revises == made and new.key == "tables/made.csv" and made.run == tracked_run


def test_source_known_later_fills_the_version_instead_of_making_one(storage: Path) -> None:
    ingest([event("RUNNING", 1, "job", 1)])
    ingest([event("COMPLETE", 1, "job", 2, job_facets=source("print(1)"))])
    ingest([event("COMPLETE", 2, "job", 3, job_facets=source("print(1)"))])
    [transform] = ln.Transform.filter(key="etl/job").to_list()
    assert transform.source_code == "print(1)" and transform.runs.count() == 2
    ingest([event("COMPLETE", 3, "job", 4, job_facets={"sql": {"query": "select 2"}})])
    assert ln.Transform.get(key="etl/job").source_code == "select 2"  # the latest version
    assert ln.Transform.filter(key="etl/job").count() == 2


def test_facets_are_kept_per_name_by_event_time(storage: Path) -> None:
    doc = {"documentation": {"description": "nightly load"}}
    owner = {"ownership": {"owners": [{"name": "team:data"}]}}
    later = {"documentation": {"description": "the nightly load"}}
    ingest([event("COMPLETE", 1, "job", 5, job_facets={**later})])
    ingest([event("START", 1, "job", 1, job_facets={**doc, **owner})])  # earlier, later arrival
    transform = ln.Transform.get(key="etl/job")
    facets = json.loads(transform.facets)
    assert facets["documentation"]["description"] == "the nightly load"
    assert facets["ownership"]["owners"] == [{"name": "team:data"}]
    assert transform.description == "the nightly load"
    found = ln.cypher(
        "MATCH (t:Transform) WHERE t.facets CONTAINS $owner RETURN t.key AS key",
        owner="team:data",
    )
    assert found["key"].tolist() == ["etl/job"]


def test_describe_shows_facets(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest(world()[4])
    ln.Run.get(openlineage_run_id=rid(5)).describe()
    shown = capsys.readouterr().out
    assert "Facets" in shown and 'errorMessage: {"message": "boom"' in shown
    assert "facet_times" not in shown


def test_job_and_dataset_events(storage: Path) -> None:
    job_event = {
        "eventTime": "2026-03-01T10:00:00Z", "producer": PRODUCER, "schemaURL": SCHEMA,
        "job": {"namespace": "etl", "name": "planned", "facets": source("x = 1")},
        "inputs": [ds("/data/in.csv")], "outputs": [ds("/data/out.csv")],
    }  # fmt: skip
    dataset_event = {
        "eventTime": "2026-03-01T10:00:00Z", "producer": PRODUCER, "schemaURL": SCHEMA,
        "dataset": ds("orders", namespace="postgres://db:5432", schema=schema(("id", "INT"))),
    }  # fmt: skip
    [job, dataset] = ingest([job_event, dataset_event])
    assert job["run"] is None and ln.Run.filter().count() == 0
    assert ln.Transform.get(job["transform"]).source_code == "x = 1"
    assert {a.key for a in ln.Artifact.filter()} == {
        "file//data/in.csv", "file//data/out.csv", "postgres://db:5432/orders",
    }  # fmt: skip
    table = ln.Artifact.get(dataset["datasets"][0])
    assert table.storage_path is None and table.suffix == ""
    assert ln.cypher(
        "MATCH (:Artifact {uid: $u})-[:HAS_COLUMN]->(c:Column) RETURN c.name AS n, c.type AS t",
        u=table.uid,
    ).values.tolist() == [["id", "INT"]]
    assert ln.doctor().ok  # an external dataset needs no storage root or path
    table.delete(permanent=True)
    assert ln.cypher("MATCH (c:Column) RETURN count(c) AS n")["n"][0] == 0  # went with it


# -- bad input --------------------------------------------------------------------------------------
def _bad(change: Any) -> dict[str, Any]:
    good = event("START", 1, "job", 1, [ds("/a")], [ds("/b")])
    return change(json.loads(json.dumps(good)))


@pytest.mark.parametrize(
    "make, path, problem",
    [
        (lambda e: e.pop("eventTime") and e, "$.eventTime", "is required"),
        (lambda e: {**e, "eventTime": "yesterday"}, "$.eventTime", "ISO 8601"),
        (lambda e: {**e, "eventType": "DONE"}, "$.eventType", "unknown event type 'DONE'"),
        (lambda e: {**e, "run": {"runId": 42}}, "$.run.runId", "must be a string"),
        (lambda e: {**e, "run": {"runId": "abc"}}, "$.run.runId", "must be a UUID"),
        (lambda e: {**e, "job": {"namespace": "etl"}}, "$.job.name", "is required"),
        (lambda e: {**e, "inputs": {"a": 1}}, "$.inputs", "must be an array"),
        (lambda e: {**e, "outputs": [{"namespace": "file", "name": ""}]}, "$.outputs[0].name",
         "must not be empty"),
        (lambda e: {**e, "run": {"runId": rid(1), "facets": {"parent": {"run": {}}}}},
         "$.run.facets.parent.run.runId", "is required"),
        (lambda e: {**e, "job": {**e["job"], "facets": {"sql": "select 1"}}},
         "$.job.facets.sql", "must be an object"),
        (lambda e: {"eventTime": e["eventTime"], "producer": PRODUCER, "schemaURL": SCHEMA},
         "$", "needs `run` and `job`"),
        (lambda e: [e, {**e, "producer": 3}], "$[1].producer", "must be a string"),
    ],
)  # fmt: skip
def test_malformed_events_name_the_path_and_write_nothing(
    storage: Path, make: Any, path: str, problem: str
) -> None:
    ingest([event("COMPLETE", 9, "kept", 1)])
    before = canonical()
    bad = _bad(make)
    with pytest.raises(InvalidEvent, match=problem) as info:
        ln.lineage.ingest(bad if isinstance(bad, list) else [bad])
    expected = path if isinstance(bad, list) else path.replace("$", "$[0]", 1)
    assert info.value.path == expected
    assert canonical() == before


def test_limits_on_size_depth_and_batch(storage: Path) -> None:
    deep: Any = {}
    for _ in range(200):
        deep = {"x": deep}
    nested = _bad(lambda e: {**e, "job": {**e["job"], "facets": {"custom": deep}}})
    with pytest.raises(InvalidEvent, match="nested deeper than 64") as info:
        ln.lineage.ingest([nested])
    assert info.value.path.startswith("$[0].job.facets.custom.x.x")
    huge = _bad(lambda e: {**e, "job": {**e["job"], "facets": {"sql": {"query": "x" * 10**7}}}})
    with pytest.raises(InvalidEvent, match="larger than"):
        ln.lineage.ingest([huge])
    with pytest.raises(InvalidEvent, match="10000 events in one batch; at most 1000"):
        ln.lineage.ingest([_bad(lambda e: e)] * 10_000)
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        olin.loads(b"{not json")
    assert ln.cypher("MATCH (n:Run) RETURN count(n) AS n")["n"][0] == 0


def test_cli_ingests_a_file(storage: Path, tmp_path: Path, cli_env: dict[str, str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(e) for r in world() for e in r) + "\n\n")
    done = subprocess.run(
        [sys.executable, "-m", "lineage", "ingest", str(events)],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "11 events" in done.stdout
    assert ln.Run.filter().count() == 5
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(event("START", 7, "j", 1)) + "\n" + '{"eventTime": 3}\n')
    done = subprocess.run(
        [sys.executable, "-m", "lineage", "ingest", str(bad)],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    assert "line 2: $.eventTime: must be a string" in done.stderr
    assert ln.Run.filter(openlineage_run_id=rid(7)).count() == 0  # the good line neither


def test_a_new_version_at_an_older_versions_path_follows_the_whole_family(storage: Path) -> None:
    # Regression: the family was the artifacts at the dataset's location only, so the new
    # version took the counter after the older version (a uid the newer one has) and left the
    # newer one latest as well.
    ln.track("writer.py")
    first = make_artifact(storage, "t/x.csv", "1")
    ln.finish()
    second = make_artifact(storage, "t/x.csv", "2")
    assert second.revises == first
    [written] = ingest([event("COMPLETE", 1, "spark", 1, [], [ds(first.storage_path)])])
    new = ln.Artifact.get(written["outputs"][0])
    assert new.uid[-4:] == "0002" and new.revises == second and new.key == "t/x.csv"
    latest = ln.Artifact.filter(key="t/x.csv", is_latest=True).to_list()
    assert latest == [new]


def test_a_source_seen_before_is_its_version_again(storage: Path) -> None:
    # Regression: only a job's two newest versions and its latest were read, so a source that
    # matched an older version made a fourth version instead of using the first.
    for n, code in enumerate(["v1", "v2", "v3", "v1"], start=1):
        ingest([event("COMPLETE", n, "job", n, job_facets=source(code))])
    versions = ln.Transform.filter(key="etl/job").order_by("uid").to_list()
    assert [t.source_code for t in versions] == ["v1", "v2", "v3"]
    assert ln.Run.get(openlineage_run_id=rid(4)).transform == versions[0]


def test_a_run_that_reads_and_writes_one_dataset(storage: Path) -> None:
    # Each event in its own call: the COMPLETE finds the version the START made, and reads the
    # one before it (not its own output), from the database.
    ingest([event("COMPLETE", 1, "load", 1, [], [ds("/t/d.parquet")])])
    merge = [ds("/t/d.parquet")]
    for minute, kind in ((2, "START"), (3, "COMPLETE")):
        ingest([event(kind, 2, "merge", minute, merge, merge)])
    first, second = ln.Artifact.filter(key="file//t/d.parquet").order_by("uid").to_list()
    run = ln.Run.get(openlineage_run_id=rid(2))
    assert run.input_artifacts.to_list() == [first]
    assert run.output_artifacts.to_list() == [second] and second.revises == first


def test_a_dataset_stays_the_file_it_was_matched_to(storage: Path) -> None:
    first = make_artifact(storage, "t/x.csv", "1")
    ingest([event("COMPLETE", 1, "spark", 1, [ds(first.storage_path)], [])])
    # A newer version lineage stores elsewhere is not the dataset: the file at its path is.
    second = make_artifact(storage, "t/x.csv", "2")
    assert second.revises == first and second.storage_path != first.storage_path
    [written] = ingest([event("COMPLETE", 2, "spark", 2, [ds(first.storage_path)], [])])
    assert written["inputs"] == [first.uid]
