"""OpenLineage ingest speed, and column lineage many hops deep.

    python benchmarks/openlineage.py            # 100,000 events
    python benchmarks/openlineage.py --quick    # 5,000 events

Events: `--jobs` jobs, each run of a job one START and one COMPLETE event; job j reads datasets
`d<j>` and `d<j+1>` and writes `d<j+2>` (schema facet on the output, outputStatistics), its
source changing every 20 runs (a new transform version). Written with `ln.lineage.ingest` in
batches of `--batch` events (1,000, the most one call takes, and what `lineage ingest FILE`
writes per transaction), one transaction each, every event checked first. The events are made
one batch at a time, as a producer streams them, and only the `ingest` calls are timed: holding
all 100,000 made Python's collector walk them every few batches (0.3 s each time), which a
producer does not pay. Figures: events per second over all events (the time in `ingest`), and
per batch (p50); the load average at the start, the end and every 10,000 events.

Column lineage: a chain of `--hops + 1` datasets, each column `c` of dataset i+1 derived from
`c` of dataset i (one event per hop); `ln.lineage.columns(last, "c")` p50 over `--repeats`.
Goals: >= 2,000 events/s sustained over 100,000 events; column lineage 20 hops deep <= 20 ms
p50. Runs on `NEO4J_URI` if set, else a local server in a temporary lineage home
(`_lineage_env.py`). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

GOAL_EVENTS_PER_S = 2000.0
GOAL_COLUMNS_MS = 20.0
START = 1_767_225_600  # 2026-01-01T00:00:00Z


def _say(message: str) -> None:
    print(f"[openlineage {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _event(kind: str, run: int, job: int, second: int, namespace: str, version: int) -> dict:
    def ds(i: int, **facets: object) -> dict:
        return {"namespace": f"{namespace}bench", "name": f"d{i}", "facets": facets}

    output = ds(job + 2, schema={"fields": [{"name": "a", "type": "INT"}]})
    if kind == "COMPLETE":
        output["outputFacets"] = {"outputStatistics": {"rowCount": run}}
    return {
        "eventType": kind,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + second)),
        "producer": "https://example.com/bench",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.UUID(int=run + 1))},
        "job": {"namespace": f"{namespace}bench", "name": f"job{job}", "facets": {
            "sql": {"query": f"insert into d{job + 2} select * from d{job} -- v{version}"}}},
        "inputs": [ds(job), ds(job + 1)],
        "outputs": [output],
    }  # fmt: skip


def events(n: int, jobs: int, namespace: str) -> Iterator[dict]:
    for run in range(n // 2):
        job = run % jobs
        version = (run // jobs) // 20
        second = run % 80_000
        yield _event("START", run, job, second, namespace, version)
        yield _event("COMPLETE", run, job, second + 1, namespace, version)


def chain(hops: int, namespace: str) -> list[dict]:
    out = []
    for i in range(hops):
        out.append({
            "eventType": "COMPLETE", "eventTime": "2026-01-02T00:00:00Z",
            "producer": "https://example.com/bench", "schemaURL": "https://openlineage.io/spec",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": f"{namespace}chain", "name": f"hop{i}"},
            "inputs": [{"namespace": f"{namespace}chain", "name": f"t{i}"}],
            "outputs": [{"namespace": f"{namespace}chain", "name": f"t{i + 1}", "facets": {
                "columnLineage": {"fields": {"c": {"inputFields": [
                    {"namespace": f"{namespace}chain", "name": f"t{i}", "field": "c"}]}}}}}],
        })  # fmt: skip
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict:
    from _lineage_env import database_note, run_namespace, scratch_lineage

    import lineage as ln
    from graph.server import default_install_dir

    namespace = run_namespace()
    fig: dict = {"database": database_note(namespace)}
    stream = events(args.events, args.jobs, namespace)
    with scratch_lineage(tmp, default_install_dir(), _say):
        ln.connect()
        per_batch = []
        seconds = 0.0
        done = 0
        loads = []
        while batch := list(itertools.islice(stream, args.batch)):
            b0 = time.perf_counter()
            ln.lineage.ingest(batch)
            spent = time.perf_counter() - b0
            seconds += spent
            done += len(batch)
            per_batch.append(len(batch) / spent)
            if done % 10_000 < len(batch):
                loads.append(round(os.getloadavg()[0], 2))
                _say(f"{done} events, {per_batch[-1]:.0f}/s in the last batch, load {loads[-1]}")
        fig["events"] = done
        fig["ingest_s"] = round(seconds, 2)
        fig["events_per_s"] = round(done / seconds, 1)
        fig["events_per_s_batch_p50"] = round(statistics.median(per_batch), 1)
        fig["events_per_s_last_batch"] = round(per_batch[-1], 1)
        fig["loadavg_1m_every_10k"] = loads
        counts = ln.cypher(
            "MATCH (n) WHERE n:Run OR n:Transform OR n:Artifact "
            "RETURN labels(n)[0] AS label, count(*) AS n"
        )
        fig["records"] = dict(counts.values.tolist())

        ln.lineage.ingest(chain(args.hops, namespace))
        last = ln.Artifact.get(key=f"{namespace}chain/t{args.hops}")
        found = ln.lineage.columns(last, "c")
        assert len(found) == args.hops and found["depth"].max() == args.hops, found
        for _ in range(10):
            ln.lineage.columns(last, "c")
        times = []
        for _ in range(args.repeats):
            c0 = time.perf_counter()
            ln.lineage.columns(last, "c")
            times.append((time.perf_counter() - c0) * 1000)
        fig["columns_hops"] = args.hops
        fig["columns_ms_p50"] = round(statistics.median(times), 2)
        fig["columns_ms_p95"] = round(statistics.quantiles(times, n=20)[-1], 2)
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--hops", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="5,000 events")
    args = parser.parse_args()
    if args.quick:
        args.events = 5_000
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lineage_env
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-openlineage-") as tmp:
        fig = run(args, Path(tmp))
    out = {
        "benchmark": "openlineage",
        "quick": args.quick,
        "batch": args.batch,
        "lineage": fig,
        "goal_events_per_s": GOAL_EVENTS_PER_S,
        "goal_columns_ms_p50": GOAL_COLUMNS_MS,
        "goal_met": {
            "ingest": fig["events_per_s"] >= GOAL_EVENTS_PER_S if args.events >= 100_000 else None,
            "columns": fig["columns_ms_p50"] <= GOAL_COLUMNS_MS,
        },
        "loadavg_1m_start": load_start,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
