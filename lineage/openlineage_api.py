"""OpenLineage over HTTP: `POST /api/v1/lineage` (the path Marquez uses, so producers set up for
Marquez send here unchanged) and the part of Marquez's read API that `marquez-python` calls
(namespaces, jobs, datasets and their versions, runs, `GET /api/v1/lineage?nodeId=&depth=` and
`GET /api/v1/column-lineage`), as one FastAPI `APIRouter` the `lineage serve` application
includes (docs/architecture.md, OpenLineage).

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI()
>>> app.include_router(router)
>>> client = TestClient(app)
>>> client.post("/api/v1/lineage", json={"eventType": "START"}).json()["path"]
'$.eventTime'
>>> client.get("/api/v1/namespaces").status_code
200

Records that did not come from events are shown too, under their OpenLineage identity: a
transform as a job in namespace `default` named by its key, an artifact as a dataset named by its
location (`file` and the path, `s3://bucket` and the key) or, without one, `default` and its key.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from graph import lineage as gl
from graph import openlineage as gol
from graph.models import uid_length
from lineage import _openlineage as olin
from lineage._emit import DEFAULT_NAMESPACE
from lineage._instance import current
from lineage.errors import ConnectionFailed, InvalidArgument, InvalidEvent

router = APIRouter(prefix="/api/v1", tags=["OpenLineage"])

MAX_REQUEST_BYTES = 16 * 1024 * 1024
MAX_LIMIT = 1000
_STATE = {None: "NEW", "started": "RUNNING", "completed": "COMPLETED", "errored": "FAILED",
          "aborted": "ABORTED"}  # fmt: skip


def _error(status: int, message: str, path: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": status, "message": message}
    if path is not None:
        body["path"] = path
    return JSONResponse(body, status_code=status)


def _read(query: str, **params: Any) -> list[dict[str, Any]]:
    return current().connection.read(query, {"default": DEFAULT_NAMESPACE, **params})


def _page(limit: int, offset: int) -> dict[str, int]:
    return {"limit": max(0, min(limit, MAX_LIMIT)), "offset": max(0, offset)}


# -- ingest ---------------------------------------------------------------------------------------
@router.post("/lineage", status_code=201)
async def post_lineage(request: Request) -> JSONResponse:
    """One OpenLineage event (or an array of up to 1,000): 201 when written; 400 with the JSON
    `path` of the first problem when not valid, 413 when too large; nothing is written then."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return _error(413, f"request larger than {MAX_REQUEST_BYTES} bytes", "$")
    body = await request.body()
    if len(body) > MAX_REQUEST_BYTES:
        return _error(413, f"request larger than {MAX_REQUEST_BYTES} bytes", "$")
    try:
        events = olin.parse_batch(olin.loads(body))
    except InvalidEvent as exc:
        too_big = "larger than" in exc.problem or "events in one batch" in exc.problem
        return _error(413 if too_big else 400, str(exc), exc.path)
    try:
        written = await run_in_threadpool(olin.write, events)
    except ConnectionFailed as exc:  # the database, not the event: the producer may retry
        return _error(503, str(exc))
    return JSONResponse({"written": len(written)}, status_code=201)


# -- shaping records as Marquez does ---------------------------------------------------------------
def _facets(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def _run_id(run: dict[str, Any]) -> str:
    """A run's id in the API: its runId, else a UUID made from its uid (runs that were never
    sent or received as events)."""
    return run["run_id"] or str(uuid.uuid5(uuid.NAMESPACE_URL, f"lineage:run:{run['uid']}"))


def _duration(run: dict[str, Any]) -> int | None:
    if not run["started_at"] or not run["finished_at"]:
        return None
    started = datetime.fromisoformat(run["started_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    return int((finished - started).total_seconds() * 1000)


def _version_id(ds: dict[str, Any]) -> dict[str, str]:
    return {"namespace": ds["namespace"], "name": ds["name"], "version": ds["uid"]}


def run_json(run: dict[str, Any]) -> dict[str, Any]:
    facets = _facets(run["facets"])
    nominal = facets.get("nominalTime", {})
    job = run["job"]
    return {
        "id": _run_id(run),
        "createdAt": run["created_at"],
        "updatedAt": run["updated_at"],
        "nominalStartTime": nominal.get("nominalStartTime"),
        "nominalEndTime": nominal.get("nominalEndTime"),
        "state": _STATE.get(run["status"], "RUNNING"),
        "startedAt": run["started_at"],
        "endedAt": run["finished_at"],
        "durationMs": _duration(run),
        "args": json.loads(run["params"]) if run["params"] else {},
        "jobVersion": None
        if job is None
        else {"namespace": job["namespace"], "name": job["name"], "version": job["uid"]},
        "inputDatasetVersions": [
            {"datasetVersionId": _version_id(d), "facets": {}} for d in run["inputs"]
        ],
        "outputDatasetVersions": [
            {"datasetVersionId": _version_id(d), "facets": {}} for d in run["outputs"]
        ],
        "context": {},
        "facets": facets,
    }


def job_json(row: dict[str, Any]) -> dict[str, Any]:
    job = row["job"]
    facets = _facets(job["facets"])
    latest = row.get("latest_run") or []
    return {
        "id": {"namespace": job["namespace"], "name": job["name"]},
        "type": "BATCH",
        "name": job["name"],
        "simpleName": job["name"].rsplit(".", 1)[-1],
        "parentJobName": None,
        "createdAt": job["created_at"],
        "updatedAt": job["updated_at"],
        "namespace": job["namespace"],
        "inputs": sorted(row.get("inputs") or [], key=lambda d: (d["namespace"], d["name"])),
        "outputs": sorted(row.get("outputs") or [], key=lambda d: (d["namespace"], d["name"])),
        "location": facets.get("sourceCodeLocation", {}).get("url"),
        "description": job["description"],
        "latestRun": run_json(latest[0]) if latest else None,
        "latestRuns": [run_json(r) for r in latest],
        "facets": facets,
        "currentVersion": job["uid"],
        "labels": [],
        "tags": [],
    }


def _fields(ds: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": c["name"], "type": c["type"], "tags": [], "description": c["description"]}
        for c in ds["columns"]
    ]


def dataset_json(ds: dict[str, Any], modified_at: str | None = None) -> dict[str, Any]:
    facets = _facets(ds["facets"])
    return {
        "id": {"namespace": ds["namespace"], "name": ds["name"]},
        "type": "DB_TABLE" if ds["path"] is None else "FILE",
        "name": ds["name"],
        "physicalName": ds["name"],
        "createdAt": ds["created_at"],
        "updatedAt": ds["updated_at"],
        "namespace": ds["namespace"],
        "sourceName": facets.get("dataSource", {}).get("name", ds["namespace"]),
        "fields": _fields(ds),
        "tags": [],
        "lastModifiedAt": modified_at,
        "lastLifecycleState": facets.get("lifecycleStateChange", {}).get("lifecycleStateChange"),
        "description": ds["description"],
        "currentVersion": ds["uid"],
        "facets": facets,
        "deleted": False,
    }


def dataset_version_json(ds: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    out = dataset_json(ds)
    for name in ("currentVersion", "lastModifiedAt", "lastLifecycleState", "deleted", "updatedAt"):
        out.pop(name)
    out["id"] = _version_id(ds)
    out["version"] = ds["uid"]
    out["lifecycleState"] = (
        out["facets"].get("lifecycleStateChange", {}).get("lifecycleStateChange")
    )
    out["createdByRun"] = None if run is None else run_json(run)
    return out


# -- reading ------------------------------------------------------------------------------------------
@router.get("/namespaces")
def list_namespaces(limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Every namespace a job or dataset is in."""
    rows = _read(gol.NAMESPACES)
    page = _page(limit, offset)
    return {
        "namespaces": [_namespace(r) for r in rows[page["offset"] : page["offset"] + page["limit"]]]
    }


def _namespace(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "ownerName": "anonymous",
        "description": None,
        "isHidden": False,
    }


@router.get("/namespaces/{namespace:path}/jobs")
def list_jobs(namespace: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    rows = _read(gol.JOBS, ns=namespace, name=None, stem=uid_length("Transform"),
                 **_page(limit, offset))  # fmt: skip
    return {"jobs": [job_json(r) for r in rows], "totalCount": rows[0]["total"] if rows else 0}


@router.get("/namespaces/{namespace:path}/jobs/{job:path}/runs")
def list_job_runs(namespace: str, job: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    rows = _read(gol.JOB_RUNS, ns=namespace, name=job, stem=uid_length("Transform"),
                 **_page(limit, offset))  # fmt: skip
    return {
        "runs": [run_json(r["run"]) for r in rows],
        "totalCount": rows[0]["total"] if rows else 0,
    }


@router.get("/namespaces/{namespace:path}/jobs/{job:path}", response_model=None)
def get_job(namespace: str, job: str) -> dict[str, Any] | JSONResponse:
    rows = _read(gol.JOBS, ns=namespace, name=job, stem=uid_length("Transform"), limit=1, offset=0)
    if not rows:
        return _error(404, f"Job '{job}' not found in namespace '{namespace}'")
    return job_json(rows[0])


@router.get("/jobs/runs/{run_id}", response_model=None)
def get_run(run_id: str) -> dict[str, Any] | JSONResponse:
    rows = _read(gol.RUN_BY_ID, id=run_id.lower())
    if not rows:
        return _error(404, f"Run '{run_id}' not found")
    return run_json(rows[0]["run"])


@router.get("/namespaces/{namespace:path}/datasets")
def list_datasets(namespace: str, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    rows = _read(gol.DATASETS, ns=namespace, name=None, **_page(limit, offset))
    return {
        "datasets": [dataset_json(r["dataset"], r["modified_at"]) for r in rows],
        "totalCount": rows[0]["total"] if rows else 0,
    }


@router.get(
    "/namespaces/{namespace:path}/datasets/{dataset:path}/versions/{version}", response_model=None
)
def get_dataset_version(
    namespace: str, dataset: str, version: str
) -> dict[str, Any] | JSONResponse:
    rows = _read(gol.DATASET_VERSIONS, ns=namespace, name=dataset, version=version,
                 stem=uid_length("Artifact"), limit=1, offset=0)  # fmt: skip
    if not rows:
        return _error(404, f"Version '{version}' of dataset '{dataset}' not found")
    return dataset_version_json(rows[0]["dataset"], rows[0]["run"])


@router.get("/namespaces/{namespace:path}/datasets/{dataset:path}/versions")
def list_dataset_versions(
    namespace: str, dataset: str, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    rows = _read(gol.DATASET_VERSIONS, ns=namespace, name=dataset, version=None,
                 stem=uid_length("Artifact"), **_page(limit, offset))  # fmt: skip
    return {
        "versions": [dataset_version_json(r["dataset"], r["run"]) for r in rows],
        "totalCount": rows[0]["total"] if rows else 0,
    }


@router.get("/namespaces/{namespace:path}/datasets/{dataset:path}", response_model=None)
def get_dataset(namespace: str, dataset: str) -> dict[str, Any] | JSONResponse:
    rows = _read(gol.DATASETS, ns=namespace, name=dataset, limit=1, offset=0)
    if not rows:
        return _error(404, f"Dataset '{dataset}' not found in namespace '{namespace}'")
    return dataset_json(rows[0]["dataset"], rows[0]["modified_at"])


@router.get("/namespaces/{namespace:path}", response_model=None)
def get_namespace(namespace: str) -> dict[str, Any] | JSONResponse:
    for row in _read(gol.NAMESPACES):
        if row["name"] == namespace:
            return _namespace(row)
    return _error(404, f"Namespace '{namespace}' not found")


# -- lineage graphs ------------------------------------------------------------------------------------
def _node(node_id: str, kinds: tuple[str, ...]) -> tuple[str, str, str, str | None, str | None]:
    """A nodeId (`job:<ns>:<name>`, `dataset:<ns>:<name>`, `datasetField:<ns>:<name>:<field>`,
    `#<version>` optional) as (kind, uid of the family's latest version, ...): namespaces may hold
    colons (`s3://b`, `postgres://h:5432`), so each split is tried until one names a record."""
    kind, sep, rest = node_id.partition(":")
    if not sep or kind not in kinds:
        raise InvalidArgument(f"nodeId must start with {' or '.join(k + ':' for k in kinds)}")
    rest, _, version = rest.partition("#")
    field = None
    if kind == "datasetField":
        rest, sep, field = rest.rpartition(":")
        if not sep:
            raise InvalidArgument("nodeId must be datasetField:<namespace>:<dataset>:<field>")
    query = gol.JOB_NODE if kind == "job" else gol.DATASET_NODE
    for i, char in enumerate(rest):
        if char != ":":
            continue
        ns, name = rest[:i], rest[i + 1 :]
        found = _read(query, ns=ns, name=name)
        if found:
            return kind, found[0]["uid"], ns, field, version or None
    raise LookupError(f"no {kind} {rest!r}")


def _lineage_graph(label: str, uid: str, depth: int) -> dict[str, Any]:
    conn = current().connection
    found = gl.traverse(conn, label, uid, upstream=True, downstream=True, depth=depth)
    if found is None:
        raise LookupError(uid)
    labels = {n["uid"]: n["label"] for n in found["nodes"]}
    wanted = [u for u, lab in labels.items() if lab in ("Transform", "Artifact")]
    ids: dict[str, str] = {}
    data: dict[str, dict[str, Any]] = {}
    for row in _read(gol.IDENTITIES, uids=wanted):
        if row["job"] is not None:
            node = f"job:{row['job']['namespace']}:{row['job']['name']}"
            data.setdefault(node, {"type": "JOB", "data": job_json({"job": row["job"]})})
        else:
            ds = row["dataset"]
            node = f"dataset:{ds['namespace']}:{ds['name']}"
            data.setdefault(node, {"type": "DATASET", "data": dataset_json(ds)})
        ids[row["uid"]] = node
    # Runs are folded into their jobs: (data)-[:GENERATED_BY]->(run)-[:EXECUTES]->(job) is the
    # edge job -> dataset, (run)-[:USED]->(data) the edge dataset -> job.
    job_of = {e["source"]: ids.get(e["target"]) for e in found["edges"] if e["type"] == "EXECUTES"}
    edges: set[tuple[str, str]] = set()
    for e in found["edges"]:
        if e["type"] == "GENERATED_BY" and e["source"] in ids and job_of.get(e["target"]):
            edges.add((job_of[e["target"]], ids[e["source"]]))  # type: ignore[arg-type]
        elif e["type"] == "USED" and e["target"] in ids and job_of.get(e["source"]):
            edges.add((ids[e["target"]], job_of[e["source"]]))  # type: ignore[arg-type]
    return {
        "graph": [
            {
                "id": node,
                "type": entry["type"],
                "data": entry["data"],
                "inEdges": [{"origin": a, "destination": b} for a, b in sorted(edges) if b == node],
                "outEdges": [
                    {"origin": a, "destination": b} for a, b in sorted(edges) if a == node
                ],
            }
            for node, entry in sorted(data.items())
        ]
    }


@router.get("/lineage", response_model=None)
def get_lineage(
    node_id: str = Query(alias="nodeId"), depth: int = Query(default=20, ge=0, le=1000)
) -> dict[str, Any] | JSONResponse:
    """The jobs and datasets around one, Marquez's graph: `depth` counts jobs (runs) away."""
    try:
        kind, uid, *_ = _node(node_id, ("job", "dataset"))
    except InvalidArgument as exc:
        return _error(400, str(exc))
    except LookupError:
        return _error(404, f"node '{node_id}' not found")
    return _lineage_graph("Transform" if kind == "job" else "Artifact", uid, depth)


@router.get("/column-lineage", response_model=None)
def get_column_lineage(
    node_id: str = Query(alias="nodeId"),
    depth: int = Query(default=20, ge=0, le=1000),
    with_downstream: bool = Query(default=False, alias="withDownstream"),
) -> dict[str, Any] | JSONResponse:
    """Column lineage of a dataset's columns (`dataset:`) or one column (`datasetField:`)."""
    try:
        _, uid, _, field, _ = _node(node_id, ("dataset", "datasetField"))
    except InvalidArgument as exc:
        return _error(400, str(exc))
    except LookupError:
        return _error(404, f"node '{node_id}' not found")
    rows = _read(gol.COLUMN_GRAPH, artifact=uid, column=field, depth=depth, down=with_downstream)
    idents = {r["dataset"]["uid"]: r["dataset"] for r in rows}
    missing = sorted({i["artifact"] for r in rows for i in r["inputs"]} - set(idents))
    for row in _read(gol.IDENTITIES, uids=missing):
        if row["dataset"] is not None:
            idents[row["uid"]] = row["dataset"]

    def node_of(ds: dict[str, Any], name: str) -> str:
        return f"datasetField:{ds['namespace']}:{ds['name']}:{name}"

    graph: list[dict[str, Any]] = []
    edges: list[tuple[str, str]] = []
    for row in rows:
        me = node_of(row["dataset"], row["field"])
        inputs = []
        for i in row["inputs"]:
            source = idents[i["artifact"]]
            edges.append((node_of(source, i["field"]), me))
            inputs.append({"namespace": source["namespace"], "dataset": source["name"],
                           "field": i["field"], "transformationType": i["type"],
                           "transformationDescription": i["description"]})  # fmt: skip
        first = row["inputs"][0] if row["inputs"] else {}
        graph.append({
            "id": me,
            "type": "DATASET_FIELD",
            "data": {
                "namespace": row["dataset"]["namespace"], "dataset": row["dataset"]["name"],
                "datasetVersion": row["dataset"]["uid"], "field": row["field"],
                "fieldType": row["type"], "transformationType": first.get("type"),
                "transformationDescription": first.get("description"), "inputFields": inputs,
            },
        })  # fmt: skip
    for entry in graph:
        entry["inEdges"] = [{"origin": a, "destination": b} for a, b in edges if b == entry["id"]]
        entry["outEdges"] = [{"origin": a, "destination": b} for a, b in edges if a == entry["id"]]
    return {"graph": sorted(graph, key=lambda e: e["id"])}
