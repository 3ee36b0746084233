"""OpenLineage with real producers and clients, each from PyPI in its own venv (tests/peers.py):
`openlineage-python`'s HTTP transport posting to our router, `ln.track()` runs emitting through
it (and a failing run, and a backend that is down), `marquez-python` reading back, and a dbt
project run with `dbt-duckdb` and emitted with `openlineage-dbt`'s `dbt-ol`."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

import lineage as ln
from lineage import _emit
from lineage._serve import create_app
from tests import peers
from tests.conftest import free_port
from tests.test_openlineage import rid


def counts() -> dict[str, int]:
    rows = ln.cypher(
        "MATCH (n) WHERE n:Artifact OR n:Run OR n:Transform OR n:Column "
        "RETURN labels(n)[0] AS label, count(*) AS n"
    )
    edges = ln.cypher("MATCH ()-[e]->() RETURN type(e) AS label, count(*) AS n")
    return {**dict(rows.values.tolist()), **{f"-{k}": v for k, v in edges.values.tolist()}}


# -- openlineage-python's HTTP transport ----------------------------------------------------------
CLIENT_SCRIPT = """
import json, sys
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset as cl, parent_run, schema_dataset

client = OpenLineageClient()  # OPENLINEAGE_URL: the HTTP transport
run_id, parent_id = sys.argv[1:3] if len(sys.argv) > 2 else ("{run}", "{parent}")
schema = schema_dataset.SchemaDatasetFacet(
    fields=[schema_dataset.SchemaDatasetFacetFields(name="amount", type="DOUBLE")])
lineage = cl.ColumnLineageDatasetFacet(fields={{"total": cl.Fields(
    inputFields=[cl.InputField(namespace="s3://lake", name="raw/orders", field="amount")],
    transformationType="", transformationDescription="")}})
parent = parent_run.ParentRunFacet(
    run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace="airflow", name="dag"))
for state, minute in ((RunState.START, 0), (RunState.COMPLETE, 5)):
    client.emit(RunEvent(
        eventType=state, eventTime=f"2026-04-01T12:0{{minute}}:00Z", producer="test",
        run=Run(runId=run_id, facets={{"parent": parent}}),
        job=Job(namespace="airflow", name="dag.task"),
        inputs=[InputDataset("s3://lake", "raw/orders", facets={{"schema": schema}})],
        outputs=[OutputDataset("s3://lake", "marts/totals", facets={{"columnLineage": lineage}})],
    ))
print("sent")
"""


def test_openlineage_python_http_transport_posts_to_the_router(
    storage: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    python = peers.python_of("openlineage")
    with peers.serve() as url:
        done = peers.run_python(
            python,
            CLIENT_SCRIPT.format(run=rid(11), parent=rid(10)),
            peers.child_env(cli_env, OPENLINEAGE_URL=url),
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    run = ln.Run.get(openlineage_run_id=rid(11))
    assert run.status == "completed" and run.transform.key == "airflow/dag.task"
    assert run.initiated_by.transform.key == "airflow/dag"
    [totals] = run.output_artifacts.to_list()
    assert totals.storage_path == "s3://lake/marts/totals"
    found = ln.lineage.columns(totals, "total")
    assert found[["key", "column", "type"]].values.tolist() == [
        ["s3://lake/raw/orders", "amount", "DOUBLE"]
    ]


# -- ln.track() emitting ----------------------------------------------------------------------------
TRACKED = """
import json, sys
import pandas as pd
import lineage as ln
ln.settings.storage = {storage!r}
raw = ln.Artifact({raw!r}, key="raw/in.csv").save()
run = ln.track()
ln.Artifact.get(raw.uid, is_run_input=True)
out = ln.Artifact.from_dataframe(pd.DataFrame({{"w": [1.0]}}), key="models/out.parquet").save()
{ending}
"""


def _tracked(cli_env: dict[str, str], tmp_path: Path, storage: Path, url: str, ending: str) -> Any:
    raw = tmp_path / "in.csv"
    raw.write_text("a,b\n1,2\n")
    script = TRACKED.format(storage=str(storage), raw=str(raw), ending=ending)
    python = peers.python_of("openlineage")
    return peers.run_python(
        peers.PYTHON,
        peers.with_lineage(script, python),
        peers.child_env(cli_env, OPENLINEAGE_URL=url),
        tmp_path,
    )


def test_tracked_runs_emit_and_come_back_as_the_same_graph(
    storage: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with peers.serve() as url:
        # The events go to our own endpoint, on the same database: a round trip that must
        # find the run, its transform and its artifacts instead of making new ones.
        done = _tracked(cli_env, tmp_path, storage, url, "ln.finish()\nprint(run.uid)")
    assert done.returncode == 0, done.stderr
    run = ln.Run.get(done.stdout.strip().splitlines()[-1])
    assert run.status == "completed" and run.openlineage_run_id
    assert counts() == {
        "Artifact": 2, "Run": 1, "Transform": 1, "-USED": 1, "-GENERATED_BY": 1,
        "-EXECUTES": 1, "-CREATED_BY": 5, "-STORED_IN": 2,  # the Storage has a creator too
    }  # fmt: skip
    # What came back over HTTP: the job's facets on the transform, the version facets on the
    # very artifacts the run read and wrote (their uids).
    facets = json.loads(run.transform.facets)
    assert facets["jobType"]["integration"] == "LINEAGEGRAPH"
    assert "ln.track" in facets["sourceCode"]["sourceCode"]
    [used] = run.input_artifacts.to_list()
    [made] = run.output_artifacts.to_list()
    assert json.loads(used.facets)["version"]["datasetVersion"] == used.uid
    assert json.loads(made.facets)["version"]["datasetVersion"] == made.uid
    assert (made.ol_namespace, made.ol_name) == ("file", made.storage_path)


def test_a_failing_run_is_errored_and_sends_fail(
    storage: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with peers.serve() as url:
        done = _tracked(cli_env, tmp_path, storage, url, "raise ValueError('boom')")
    assert done.returncode == 1 and "ValueError: boom" in done.stderr
    [run] = ln.Run.filter().to_list()
    assert run.status == "errored" and run.finished_at is not None
    error = json.loads(run.facets)["errorMessage"]
    assert error["message"] == "ValueError: boom" and "Traceback" in error["stackTrace"]


def test_a_backend_that_is_down_neither_blocks_nor_fails_the_run(
    storage: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    started = time.monotonic()
    closed = f"http://127.0.0.1:{free_port()}"
    done = _tracked(cli_env, tmp_path, storage, closed, "ln.finish()\nprint(run.uid)")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 120  # the interpreter and imports; exit waits <= 5 s
    # The client retries a refused connection for longer than exit waits: what was left is said.
    assert "OpenLineage: " in done.stderr and "not sent" in done.stderr
    assert ln.Run.get(done.stdout.strip().splitlines()[-1]).status == "completed"


def test_without_the_extra_a_configured_backend_costs_one_warning(
    storage: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", "http://127.0.0.1:9")
    monkeypatch.setitem(_emit._state, "emitter", None)
    monkeypatch.setitem(_emit._state, "missing", False)
    with caplog.at_level(logging.WARNING, logger="lineage"):
        ln.track("a.py")
        run = ln.finish()
        ln.track("b.py")
        ln.finish()
    warned = [r for r in caplog.records if "openlineage-python is not installed" in r.message]
    assert len(warned) == 1  # the main venv has no openlineage-python
    assert run.status == "completed" and run.openlineage_run_id is None


def test_the_queue_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(_emit.Emitter, "_send", lambda self, event: release.wait(10))
    emitter = _emit.Emitter()
    emitter.put({"eventType": "START"})
    while emitter.queue.qsize():  # the thread took it and is sending it
        time.sleep(0.01)
    started = time.monotonic()
    for _ in range(_emit.QUEUE_SIZE + 5):  # QUEUE_SIZE wait, 5 are dropped
        emitter.put({"eventType": "START"})
    assert time.monotonic() - started < 1 and emitter.dropped == 5
    release.set()
    assert emitter.flush(10) and emitter.sent == _emit.QUEUE_SIZE + 1


# -- marquez-python ---------------------------------------------------------------------------------
MARQUEZ_SCRIPT = """
import json, sys
from marquez_client import MarquezClient
client = MarquezClient(url=sys.argv[1])
out = {
    "namespaces": client.list_namespaces(),
    "jobs": client.list_jobs("airflow"),
    "job": client.get_job("airflow", "dag.task"),
    "runs": client.list_job_runs("airflow", "dag.task"),
    "run": client.get_job_run(sys.argv[2]),
    "datasets": client.list_datasets("s3://lake"),
    "dataset": client.get_dataset("s3://lake", "marts/totals"),
    "versions": client.list_dataset_versions("s3://lake", "marts/totals"),
    "columns": client.get_column_lineage_by_dataset_field("s3://lake", "marts/totals", "total"),
}
print(json.dumps(out))
"""


def test_marquez_python_reads_jobs_datasets_and_lineage(
    storage: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    ol_python = peers.python_of("openlineage")
    marquez = peers.python_of("marquez")
    env = peers.child_env(cli_env)
    with peers.serve() as url:
        sent = peers.run_python(
            ol_python, CLIENT_SCRIPT.format(run=rid(21), parent=rid(20)),
            {**env, "OPENLINEAGE_URL": url}, tmp_path,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        script = MARQUEZ_SCRIPT.replace("sys.argv[1]", repr(url)).replace(
            "sys.argv[2]", repr(rid(21))
        )
        done = peers.run_python(marquez, script, env, tmp_path)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert {n["name"] for n in got["namespaces"]["namespaces"]} == {"airflow", "s3://lake"}
    assert [j["name"] for j in got["jobs"]["jobs"]] == ["dag", "dag.task"]
    assert got["job"]["outputs"] == [{"namespace": "s3://lake", "name": "marts/totals"}]
    assert got["job"]["latestRun"]["id"] == rid(21)
    assert [r["state"] for r in got["runs"]["runs"]] == ["COMPLETED"]
    assert got["run"]["inputDatasetVersions"][0]["datasetVersionId"]["name"] == "raw/orders"
    assert sorted(d["name"] for d in got["datasets"]["datasets"]) == ["marts/totals", "raw/orders"]
    assert got["dataset"]["id"] == {"namespace": "s3://lake", "name": "marts/totals"}
    assert got["versions"]["totalCount"] == 1
    columns = {n["id"]: n for n in got["columns"]["graph"]}
    assert (
        columns["datasetField:s3://lake:marts/totals:total"]["data"]["inputFields"][0]["field"]
        == "amount"
    )


# -- dbt ---------------------------------------------------------------------------------------------
DBT_PROJECT = {
    "dbt_project.yml": 'name: shop\nversion: "1.0"\nconfig-version: 2\nprofile: shop\n'
    'seed-paths: ["seeds"]\nmodel-paths: ["models"]\n',
    "seeds/raw_orders.csv": "id,day,amount\n1,2026-01-01,10.5\n2,2026-01-01,4.5\n3,2026-01-02,7.0\n",
    "models/stg_orders.sql": "select id, day, amount from {{ ref('raw_orders') }}\n",
    "models/daily_revenue.sql": "select day, sum(amount) as revenue from {{ ref('stg_orders') }} "
    "group by day\n",
}
# The query of docs/guide.md ("OpenLineage"): a tracked model, the dataset its run read, and the
# job (here a dbt model) that wrote that dataset.
CONNECTED = """
MATCH (m:Artifact {key: $model})-[:GENERATED_BY]->(:Run)-[:USED]->(d:Artifact)
      -[:GENERATED_BY]->(r:Run)-[:EXECUTES]->(job:Transform)
RETURN d.key AS dataset, job.key AS job, r.openlineage_run_id AS run_id
"""


def test_dbt_ol_run_end_to_end(storage: Path, cli_env: dict[str, str], tmp_path: Path) -> None:
    python = peers.python_of("dbt")
    project = tmp_path / "shop"
    for name, text in DBT_PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    database = project / "shop.duckdb"
    (project / "profiles.yml").write_text(
        f"shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {database}\n      threads: 1\n"
    )
    bin_dir = python.parent
    env = peers.child_env(cli_env, PATH=f"{bin_dir}:{cli_env.get('PATH', '')}",
                          DBT_SEND_ANONYMOUS_USAGE_STATS="false")  # fmt: skip
    with peers.serve() as url:
        for command in (["dbt", "seed"], ["dbt-ol", "run"]):
            done = subprocess.run(
                [str(bin_dir / command[0]), *command[1:], "--profiles-dir", str(project)],
                cwd=project, env={**env, "OPENLINEAGE_URL": url}, capture_output=True,
                text=True, timeout=900,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    namespace = f"duckdb://{database}"
    # The dbt invocation and each model are jobs with a run; models' runs are started by it.
    parent = ln.Run.get(transform__key="dbt/dbt-run-shop")
    model_runs = {r.transform.key: r for r in ln.Run.filter(initiated_by=parent)}
    assert sorted(model_runs) == [
        "dbt/shop.main.shop.daily_revenue",
        "dbt/shop.main.shop.stg_orders",
    ]
    assert {r.status for r in ln.Run.filter()} == {"completed"}
    daily_run = model_runs["dbt/shop.main.shop.daily_revenue"]
    assert "sum(amount)" in daily_run.transform.source_code  # the sql facet
    # Models are artifacts, made by their runs, read by the next.
    [daily] = daily_run.output_artifacts.to_list()
    [staged] = daily_run.input_artifacts.to_list()
    assert daily.key == f"{namespace}/shop.main.daily_revenue" and daily.storage_path is None
    assert staged.run == model_runs["dbt/shop.main.shop.stg_orders"]
    # Column lineage of one model column: revenue <- stg_orders.amount <- raw_orders.amount.
    found = ln.lineage.columns(daily, "revenue")
    assert found[["dataset", "column", "depth"]].values.tolist() == [
        ["shop.main.stg_orders", "amount", 1],
        ["shop.main.raw_orders", "amount", 2],
    ]
    # A tracked script reads the dbt output and writes a model: one connected graph.
    forecast = ln.track("forecast.py")
    ln.Artifact.get(daily.uid, is_run_input=True)
    model = ln.Artifact.from_dataframe(
        pd.DataFrame({"w": [1.0]}), key="models/forecast.parquet"
    ).save()
    ln.finish()
    connected = ln.cypher(CONNECTED, model="models/forecast.parquet")
    assert connected.values.tolist() == [
        [daily.key, "dbt/shop.main.shop.daily_revenue", daily_run.openlineage_run_id]
    ]
    up = ln.lineage.upstream(model)
    assert forecast in up.runs and daily_run in up.runs
    assert {"dbt/shop.main.shop.stg_orders", "forecast.py"} <= {t.key for t in up.transforms}
    page = Path(model.view_lineage(path=tmp_path / "model.html")).read_text()
    assert "shop.main.daily_revenue" in page and "forecast.py" in page
    # The explorer (`lineage serve`) shows it as one graph too: walking its neighbours from the
    # model, a level at a time as its page does, reaches both dbt models' datasets, runs and
    # jobs; a model run's page names the dbt invocation that started it.
    explorer = TestClient(create_app(), base_url="http://127.0.0.1")
    seen: dict[str, dict[str, Any]] = {}
    level = [model.uid]
    while level:  # each record is asked about once: the walk ends with the graph
        answer = explorer.get("/api/neighbours", params={"uid": level})
        assert answer.status_code == 200, answer.text
        found = {
            item["node"]["uid"]: item["node"]
            for record in answer.json()["records"]
            for group in record["groups"]
            for item in group["items"]
        }
        level = [uid for uid in found if uid not in seen and uid != model.uid]
        seen.update(found)
    assert model.uid in seen  # the walk came back to it: every edge is shown from both ends
    stg_run = model_runs["dbt/shop.main.shop.stg_orders"]
    dbt_nodes = {daily.uid, daily_run.uid, daily_run.transform.uid, staged.uid, stg_run.uid,
                 stg_run.transform.uid, forecast.uid, forecast.transform.uid}  # fmt: skip
    assert dbt_nodes <= set(seen)
    assert seen[daily_run.uid]["transform"] == "dbt/shop.main.shop.daily_revenue"
    assert seen[staged.uid]["key"] == staged.key
    path = explorer.get("/api/path", params={"source": model.uid, "target": staged.uid}).json()
    assert path["found"] and path["upstream"]
    assert [n["uid"] for n in path["nodes"]] == [
        model.uid, forecast.uid, daily.uid, daily_run.uid, staged.uid,
    ]  # fmt: skip
    run_page = explorer.get(f"/api/records/{daily_run.uid}").json()
    assert run_page["provenance"]["initiated_by"]["uid"] == parent.uid
