"""The OpenLineage router (lineage/openlineage_api.py) on a bare FastAPI app: `POST
/api/v1/lineage` writes events or refuses them with a 4xx and the JSON path, changing nothing;
the Marquez read API returns jobs, datasets, runs and lineage graphs in Marquez's shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import lineage as ln
from lineage._serve import create_app
from lineage.openlineage_api import router
from tests.conftest import free_port, make_artifact
from tests.test_openlineage import canonical, ds, event, rid, world


@pytest.fixture
def client(storage: Path) -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def post_world(client: TestClient) -> None:
    for run_events in world():
        for one in run_events:
            response = client.post("/api/v1/lineage", json=one)
            assert response.status_code == 201, response.text


def test_post_writes_events_as_ingest_does(client: TestClient) -> None:
    post_world(client)
    over_http = canonical()
    ln.cypher("MATCH (n) WHERE NOT n:LineageSchema AND NOT n:User DETACH DELETE n")
    for run_events in world():
        ln.lineage.ingest(run_events)
    assert canonical() == over_http
    batch = client.post("/api/v1/lineage", json=[e for r in world() for e in r])
    assert batch.status_code == 201 and batch.json() == {"written": 11}
    assert canonical() == over_http  # the same events again: nothing new


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "body, status, path",
    [
        (b"{not json", 400, "$"),
        (b'"a string"', 400, "$"),
        (json.dumps({**event("START", 1, "j", 1), "eventType": "FINISHED"}), 400, "$.eventType"),
        (json.dumps({**event("START", 1, "j", 1), "eventTime": 5}), 400, "$.eventTime"),
        (json.dumps({**event("START", 1, "j", 1), "inputs": [{"namespace": 1}]}), 400,
         "$.inputs[0].namespace"),
        (json.dumps({**event("START", 1, "j", 1), "job": {"namespace": "a", "name": "b",
                     "facets": {"deep": _deep(100)}}}), 400, None),
        ("[" + "[" * 100_000 + "]" * 100_000 + "]", 400, "$"),
        (json.dumps({**event("START", 1, "j", 1), "job": {"namespace": "a", "name": "b",
                     "facets": {"sql": {"query": "x" * 10_000_000}}}}), 413, "$"),
        (json.dumps([event("START", 1, "j", 1)] * 10_000), 413, "$"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_with_the_path_and_changes_nothing(
    client: TestClient, body: str | bytes, status: int, path: str | None
) -> None:
    post_world(client)
    before = canonical()
    response = client.post(
        "/api/v1/lineage", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["code"] == status and answer["message"]
    if path is not None:
        assert answer["path"] == path
    else:
        assert answer["path"].startswith("$.job.facets.deep.x.x")
        assert "nested deeper than 64" in answer["message"]
    assert canonical() == before


def test_marquez_read_api(client: TestClient, storage: Path) -> None:
    post_world(client)
    make_artifact(storage, "raw/native.csv")  # a record that never came from an event
    names = [n["name"] for n in client.get("/api/v1/namespaces").json()["namespaces"]]
    assert names == ["etl", "file"]
    assert client.get("/api/v1/namespaces/etl").json()["name"] == "etl"
    assert client.get("/api/v1/namespaces/nope").status_code == 404

    jobs = client.get("/api/v1/namespaces/etl/jobs").json()
    assert jobs["totalCount"] == 3
    assert [j["name"] for j in jobs["jobs"]] == ["extract", "load", "report"]
    load = client.get("/api/v1/namespaces/etl/jobs/load").json()
    assert load["id"] == {"namespace": "etl", "name": "load"} and load["type"] == "BATCH"
    assert load["inputs"] == [{"namespace": "file", "name": "/data/raw.csv"}]
    assert load["outputs"] == [{"namespace": "file", "name": "/data/orders.parquet"}]
    assert load["facets"]["sourceCode"]["sourceCode"] == "v2"
    assert load["latestRun"]["id"] == rid(3) and load["latestRun"]["state"] == "COMPLETED"
    runs = client.get("/api/v1/namespaces/etl/jobs/load/runs").json()
    assert [r["id"] for r in runs["runs"]] == [rid(3), rid(2)]  # both versions' runs, newest first
    assert runs["runs"][1]["durationMs"] == 120_000

    failed = client.get(f"/api/v1/jobs/runs/{rid(5)}").json()
    assert failed["state"] == "FAILED" and failed["facets"]["errorMessage"]["message"] == "boom"
    assert failed["jobVersion"]["name"] == "report"
    run2 = client.get(f"/api/v1/jobs/runs/{rid(2)}").json()
    assert [d["datasetVersionId"]["name"] for d in run2["outputDatasetVersions"]] == [
        "/data/orders.parquet"
    ]
    assert client.get(f"/api/v1/jobs/runs/{rid(99)}").status_code == 404

    datasets = client.get("/api/v1/namespaces/file/datasets").json()
    assert [d["name"] for d in datasets["datasets"]] == [
        "/data/orders.parquet", "/data/raw.csv", "/data/report.csv",
        ln.Artifact.get(key="raw/native.csv").storage_path,
    ]  # fmt: skip
    orders = client.get("/api/v1/namespaces/file/datasets/%2Fdata%2Forders.parquet").json()
    assert [f["name"] for f in orders["fields"]] == ["amount", "id"]
    assert orders["lastModifiedAt"].startswith("2026-03-01T10:05")
    versions = client.get(
        "/api/v1/namespaces/file/datasets/%2Fdata%2Forders.parquet/versions"
    ).json()
    assert versions["totalCount"] == 2
    assert [v["createdByRun"]["id"] for v in versions["versions"]] == [rid(3), rid(2)]
    first = versions["versions"][1]["version"]
    one = client.get(
        f"/api/v1/namespaces/file/datasets/%2Fdata%2Forders.parquet/versions/{first}"
    ).json()
    assert one["id"]["version"] == first and one["createdByRun"]["id"] == rid(2)


def test_lineage_graph_folds_runs_into_jobs(client: TestClient) -> None:
    post_world(client)
    graph = client.get(
        "/api/v1/lineage", params={"nodeId": "dataset:file:/data/report.csv", "depth": 5}
    ).json()["graph"]
    by_id = {n["id"]: n for n in graph}
    assert sorted(by_id) == [
        "dataset:file:/data/orders.parquet", "dataset:file:/data/raw.csv",
        "dataset:file:/data/report.csv", "job:etl:load", "job:etl:report",
    ]  # fmt: skip
    report_job = by_id["job:etl:report"]
    assert report_job["type"] == "JOB"
    assert report_job["inEdges"] == [
        {"origin": "dataset:file:/data/orders.parquet", "destination": "job:etl:report"}
    ]
    assert report_job["outEdges"] == [
        {"origin": "job:etl:report", "destination": "dataset:file:/data/report.csv"}
    ]
    assert by_id["dataset:file:/data/raw.csv"]["data"]["fields"][0]["name"] == "price"
    shallow = client.get(
        "/api/v1/lineage", params={"nodeId": "dataset:file:/data/report.csv", "depth": 0}
    ).json()["graph"]
    assert [n["id"] for n in shallow] == ["dataset:file:/data/report.csv"]
    assert client.get("/api/v1/lineage", params={"nodeId": "job:etl:nope"}).status_code == 404
    assert client.get("/api/v1/lineage", params={"nodeId": "table:x"}).status_code == 400


def test_column_lineage_endpoint(client: TestClient) -> None:
    post_world(client)
    graph = client.get(
        "/api/v1/column-lineage",
        params={"nodeId": "datasetField:file:/data/report.csv:total", "depth": 10},
    ).json()["graph"]
    by_id = {n["id"]: n for n in graph}
    assert sorted(by_id) == [
        "datasetField:file:/data/orders.parquet:amount",
        "datasetField:file:/data/raw.csv:price",
        "datasetField:file:/data/report.csv:total",
    ]
    total = by_id["datasetField:file:/data/report.csv:total"]["data"]
    assert total["inputFields"] == [{
        "namespace": "file", "dataset": "/data/orders.parquet", "field": "amount",
        "transformationType": "DIRECT", "transformationDescription": None,
    }]  # fmt: skip
    assert by_id["datasetField:file:/data/raw.csv:price"]["outEdges"] == [
        {"origin": "datasetField:file:/data/raw.csv:price",
         "destination": "datasetField:file:/data/orders.parquet:amount"}
    ]  # fmt: skip
    down = client.get(
        "/api/v1/column-lineage",
        params={"nodeId": "datasetField:file:/data/raw.csv:price", "withDownstream": "true"},
    ).json()["graph"]
    assert "datasetField:file:/data/report.csv:total" in {n["id"] for n in down}


def test_native_records_have_an_identity(client: TestClient, storage: Path) -> None:
    ln.track("prepare.py")
    made = make_artifact(storage, "tables/out.csv")
    ln.finish()
    job = client.get("/api/v1/namespaces/default/jobs/prepare.py").json()
    assert job["outputs"] == [{"namespace": "file", "name": made.storage_path}]
    client.post(
        "/api/v1/lineage",
        json=event("COMPLETE", 1, "spark", 1, [ds(made.storage_path)], []),
    )
    graph = client.get("/api/v1/lineage", params={"nodeId": "job:default:prepare.py"}).json()
    assert {n["id"] for n in graph["graph"]} == {
        "job:default:prepare.py", f"dataset:file:{made.storage_path}", "job:etl:spark",
    }  # fmt: skip


def test_a_database_that_is_down_is_a_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{free_port()}")
    ln.disconnect()
    response = client.post("/api/v1/lineage", json=event("START", 1, "j", 1))
    assert response.status_code == 503 and "could not connect" in response.json()["message"]


def test_the_explorer_takes_events_only_when_asked(storage: Path) -> None:
    """`lineage serve --openlineage` mounts the endpoint, behind the explorer's Host check;
    without the flag the explorer's API has no route that writes."""
    one = world()[0][0]
    plain = TestClient(create_app(), base_url="http://127.0.0.1")
    refused = plain.post("/api/v1/lineage", json=one)
    assert refused.status_code in (404, 405) and "error" in refused.json()
    assert ln.Run.filter().count() == 0
    taking = TestClient(create_app(openlineage=True), base_url="http://127.0.0.1")
    assert taking.post("/api/v1/lineage", json=one).status_code == 201
    assert ln.Run.filter().count() == 1
    assert taking.get("/api/v1/namespaces").status_code == 200
    elsewhere = TestClient(create_app(openlineage=True), base_url="http://attacker.example")
    assert elsewhere.post("/api/v1/lineage", json=one).status_code == 421
