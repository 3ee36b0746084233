"""Feature speed against lamindb 2.x, same inputs, same run.

    python benchmarks/features.py                   # 100k artifacts (the issue's size)
    python benchmarks/features.py --quick           # 10k artifacts
    python benchmarks/features.py --n 30000         # any size
    python benchmarks/features.py --skip-lamindb    # our figures only, ratios null

Every artifact is annotated with five features: `temperature` (float), `n_cells` (int),
`organism` (str, 5 values), `batch` (int, 97 values) and `cell_type` (cat[ULabel], one label
per 1,000 artifacts). Scenarios, run by one function against `lineage` (in this process) and
`lamindb` (in a subprocess in its venv, see `_lamindb_env.py`):

0. setup (untimed but for the first `--n-api-artifacts`, made with `ln.Artifact(path, key=...)`
   and `ln.save` on both sides: `setup_api_ms_per_artifact`). The others: lineage through the
   same public API, 10,000 per `ln.save`; lamindb as copies of the first artifact's row with
   their own uid, key, size and hash, by Django's `bulk_create` on lamindb's `Artifact` model
   (its constructor hashes, looks up and copies each file: ~25 ms an artifact, too slow for
   100k). Nothing timed reads the files.

1. add: `add_values` for `--n-add` artifacts. lineage: one bulk call
   (`ln.Artifact.features.add_values_many`). lamindb has no bulk API: `artifact.features
   .add_values(...)` per artifact, timed on the first `--n-lamindb-add` and scaled to `--n-add`
   (the per-artifact cost is flat); the other artifacts get the same rows lamindb's add_values
   writes (JsonValue, ArtifactJsonValue, ArtifactULabel with its feature) by bulk_create, untimed.
2. filter: `ln.Artifact.filter(suffix=".txt").filter(temperature__gt=T, cell_type=L).to_list()`
   (two calls: lamindb reads every keyword of a call as a feature once one is) with T chosen so that exactly ~100 artifacts match, `--n-filter` different (T, L), each timed alone
   (p50, p95); counts are checked.
3. df: `ln.Artifact.filter(cell_type=L).df(features=True)` (lamindb: `to_dataframe(include=
   "features")`), ~1,000 rows, `--n-df` times after 10 untimed (p50); rows and columns are
   checked.

lineage runs on a scratch Neo4j (`_lineage_env.py`), lamindb on a fresh SQLite instance. Last
line: one JSON object with every figure and which goals are met: filter p50 <= 20 ms and >= 5x
lamindb, df >= 5x lamindb, bulk add >= 5x lamindb. Goals are judged on wall time. Filter and df
also report CPU time (`*_cpu_p50_ms`): lamindb's process (SQLite runs in it), and lineage's
process plus the local server's JVM, every thread. On a machine shared with other work the
wall times stretch with the load (recorded per phase and over the run), and lineage's more so
(two processes and a round trip per query, each waiting for a core); CPU time stretches far
less and is what compares the two sides' work there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

# Standard library only above this line: `--worker lamindb` runs this file with the lamindb
# venv's interpreter, where neither `graph` nor `lineage` can be imported.

ORGANISMS = ["human", "mouse", "rat", "fish", "fly"]


def _say(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _process_cpu(pid: int) -> float | None:
    """Seconds of CPU (user + system, every thread) process `pid` has used; None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(cpu, work) -> tuple:
    """`work()`, its wall time and the CPU time `cpu()` counts for it, in ms (CPU None when
    unknown). CPU is what the other work on a shared machine does not change much: the
    `*_cpu_*` figures compare the two sides' effort where wall times compare their waits too."""
    c0, t0 = cpu(), time.perf_counter()
    result = work()
    wall, c1 = (time.perf_counter() - t0) * 1000, cpu()
    return result, wall, None if c0 is None or c1 is None else (c1 - c0) * 1000


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _values(plan: dict, i: int) -> dict:
    return {
        "temperature": plan["temperature"][i],
        "n_cells": plan["n_cells"][i],
        "organism": ORGANISMS[i % len(ORGANISMS)],
        "batch": i % 97,
        "cell_type": f"type{i % plan['n_labels']}",
    }


# -- the scenarios: one function, either registry ---------------------------------------------


def run_scenarios(ln, plan: dict, tag: str, annotate_rest) -> dict:
    """Every scenario against the module `ln` (lineage or lamindb); returns the figures.
    `annotate_rest(ln, artifacts, plan)` annotates artifacts beyond the timed ones, untimed."""
    files, n, ns = Path(plan["files_dir"]), plan["n"], plan["namespace"]
    fig: dict = {}
    _say(tag, f"setup: {n} artifacts, 5 features, {plan['n_labels']} labels")
    t0 = time.perf_counter()
    # The first artifacts through the public API, timed; the rest as each side's
    # `more_artifacts` makes them (untimed: lamindb's per-artifact constructor is too slow
    # for 100k, see `_lamindb_more_artifacts`).
    k = min(n, plan["n_api_artifacts"])
    artifacts = [ln.Artifact(str(files / f"{i}.txt"), key=f"{ns}feat/{i}.txt") for i in range(k)]
    ln.save(artifacts)
    fig["setup_api_ms_per_artifact"] = (time.perf_counter() - t0) * 1000 / k
    artifacts += plan["more_artifacts"](ln, artifacts, plan, lambda m: _say(tag, m))
    ln.save(
        [
            ln.Feature(name="temperature", dtype=float),
            ln.Feature(name="n_cells", dtype=int),
            ln.Feature(name="organism", dtype=str),
            ln.Feature(name="batch", dtype=int),
            ln.Feature(name="cell_type", dtype=ln.ULabel),
        ]
    )
    ln.save([ln.ULabel(name=f"type{k}") for k in range(plan["n_labels"])])
    fig["setup_s"] = time.perf_counter() - t0

    # 1. add values
    n_add = plan["n_add"]
    fig["loadavg_1m"] = {"add": _load()}
    _say(tag, f"add: values for {n_add} artifacts")
    fig.update(plan["add"](ln, artifacts[:n_add], plan))
    _say(tag, f"add: the other {n - n_add} artifacts (untimed)")
    annotate_rest(ln, artifacts, plan)

    # 2. filter by two features and a field
    def query(case: dict):
        # Two calls: lamindb reads every keyword of a call as a feature once one is.
        return (
            ln.Artifact.filter(suffix=".txt")
            .filter(temperature__gt=case["threshold"], cell_type=case["label"])
            .to_list()
        )

    fig["loadavg_1m"]["filter"] = _load()
    for case in plan["filter_warmup"]:
        query(case)
    times, cpus, wrong = [], [], 0
    for case in plan["filters"]:
        hits, wall, cpu = _timed(plan["cpu"], lambda case=case: query(case))
        times.append(wall)
        cpus.append(cpu)
        wrong += len(hits) != case["expected"]
    fig["filter_p50_ms"], fig["filter_p95_ms"] = _pct(times, 50), _pct(times, 95)
    fig["filter_ms"] = [round(t, 1) for t in times]
    fig["filter_cpu_p50_ms"] = None if None in cpus else _pct(cpus, 50)
    fig["filter_wrong_counts"] = wrong
    fig["filter_hits_mean"] = statistics.mean(c["expected"] for c in plan["filters"])

    # 3. df(features=True) of ~1000 artifacts
    fig["loadavg_1m"]["df"] = _load()
    times, cpus, bad = [], [], 0
    warmup = plan["warmup"]
    for k in range(warmup + plan["n_df"]):
        qs = ln.Artifact.filter(cell_type=f"type{k % plan['n_labels']}")
        frame, wall, cpu = _timed(plan["cpu"], lambda qs=qs: plan["df"](qs))
        if k >= warmup:  # untimed warm-up first, as for filter
            times.append(wall)
            cpus.append(cpu)
        expected = sum(1 for i in range(n) if i % plan["n_labels"] == k % plan["n_labels"])
        columns = {"temperature", "n_cells", "organism", "batch", "cell_type"}
        bad += len(frame) != expected or not columns <= set(frame.columns)
    fig["df_p50_ms"] = _pct(times, 50)
    fig["df_ms"] = [round(t, 1) for t in times]
    fig["df_cpu_p50_ms"] = None if None in cpus else _pct(cpus, 50)
    fig["df_rows"] = len(frame)
    fig["df_wrong"] = bad
    return fig


# -- lamindb ---------------------------------------------------------------------------------


def _lamindb_add(ln, artifacts, plan) -> dict:
    k = min(plan["n_lamindb_add"], len(artifacts))
    t0 = time.perf_counter()
    for i, artifact in enumerate(artifacts[:k]):
        artifact.features.add_values(_values(plan, i))
    seconds = time.perf_counter() - t0
    return {
        "add_measured_n": k,
        "add_measured_s": seconds,
        "add_s": seconds / k * len(artifacts),  # scaled to n_add: lamindb has no bulk call
    }


def _lamindb_more_artifacts(ln, made, plan, say) -> list:
    """Artifacts `len(made)`..n as rows like lamindb's own: each a copy of the first
    artifact's row (made by `ln.Artifact(path, key=...)` and `ln.save`) with its own uid, key,
    size and hash (lamindb's `hash_file` of its file), written with Django's `bulk_create` on
    lamindb's `Artifact` model, then read back. Setup only: lamindb's constructor hashes,
    looks the hash up and copies the file for each artifact (`setup_api_ms_per_artifact`, about
    25 ms here), hours for 100k; nothing timed reads the files."""
    from lamindb.base.uids import base62_16
    from lamindb_setup.core.hashing import hash_file

    files, ns, n = Path(plan["files_dir"]), plan["namespace"], plan["n"]
    template = made[0]
    fields = ln.Artifact._meta.concrete_fields
    start = len(made)
    for at in range(start, n, 10_000):
        batch = []
        for i in range(at, min(n, at + 10_000)):
            row = ln.Artifact(*[getattr(template, f.attname) for f in fields])
            size, digest, hash_type = hash_file(files / f"{i}.txt")
            row.id, row.uid, row.key = None, base62_16() + "0000", f"{ns}feat/{i}.txt"
            row.size, row.hash, row._hash_type = size, digest, hash_type
            batch.append(row)
        ln.Artifact.objects.bulk_create(batch, batch_size=5000)
        say(f"setup: {min(n, at + 10_000)} artifacts")
    return list(ln.Artifact.objects.filter(id__gt=made[-1].id).order_by("id"))


def _lamindb_annotate_rest(ln, artifacts, plan) -> None:
    """What lamindb's add_values writes, in bulk, for the artifacts not yet annotated."""
    from lamindb.models import ArtifactJsonValue, ArtifactULabel, JsonValue

    start = min(plan["n_lamindb_add"], plan["n_add"])
    features = {f.name: f for f in ln.Feature.filter()}
    labels = {u.name: u for u in ln.ULabel.filter()}
    rest = artifacts[start:]
    wanted = {}
    for i, _ in enumerate(rest, start):
        for name, value in _values(plan, i).items():
            if name != "cell_type":
                wanted[(name, value)] = None
    existing = {(v.feature.name, v.value): v for v in JsonValue.filter().select_related("feature")}
    new = [
        JsonValue(feature=features[name], value=value)
        for name, value in wanted
        if (name, value) not in existing
    ]
    JsonValue.objects.bulk_create(new, batch_size=5000)
    existing = {(v.feature.name, v.value): v for v in JsonValue.filter().select_related("feature")}
    links, label_links = [], []
    for i, artifact in enumerate(rest, start):
        for name, value in _values(plan, i).items():
            if name == "cell_type":
                label_links.append(
                    ArtifactULabel(
                        artifact_id=artifact.id, ulabel=labels[value], feature=features[name]
                    )
                )
            else:
                links.append(
                    ArtifactJsonValue(artifact_id=artifact.id, jsonvalue=existing[(name, value)])
                )
    ArtifactJsonValue.objects.bulk_create(links, batch_size=5000)
    ArtifactULabel.objects.bulk_create(label_links, batch_size=5000)


def _lamindb_df(qs):
    return qs.to_dataframe(include="features", limit=None)


def _worker_lamindb(plan_file: str) -> None:
    plan = json.loads(Path(plan_file).read_text())
    import lamindb as ln
    import lamindb_setup

    lamindb_setup.settings.instance._is_on_hub = False
    ln.settings.verbosity = "error"
    plan.update(
        add=_lamindb_add,
        df=_lamindb_df,
        more_artifacts=_lamindb_more_artifacts,
        cpu=time.process_time,  # SQLite runs in this process
    )
    fig = run_scenarios(ln, plan, "lamindb", _lamindb_annotate_rest)
    fig["version"] = ln.__version__
    print(json.dumps(fig))


# -- lineage ---------------------------------------------------------------------------------


def _lineage_add(ln, artifacts, plan) -> dict:
    dicts = [_values(plan, i) for i in range(len(artifacts))]
    t0 = time.perf_counter()
    ln.Artifact.features.add_values_many(artifacts, dicts)
    return {"add_s": time.perf_counter() - t0}


def _lineage_more_artifacts(ln, made, plan, say) -> list:
    """Artifacts `len(made)`..n through the public API, `ln.save` per 10,000."""
    files, ns, n = Path(plan["files_dir"]), plan["namespace"], plan["n"]
    more = []
    for at in range(len(made), n, 10_000):
        batch = [
            ln.Artifact(str(files / f"{i}.txt"), key=f"{ns}feat/{i}.txt")
            for i in range(at, min(n, at + 10_000))
        ]
        ln.save(batch)
        more += batch
        say(f"setup: {len(made) + len(more)} artifacts")
    return more


def _lineage_annotate_rest(ln, artifacts, plan) -> None:
    start = plan["n_add"]
    rest = artifacts[start:]
    if rest:
        ln.Artifact.features.add_values_many(
            rest, [_values(plan, i) for i in range(start, len(artifacts))]
        )


def _lineage_df(qs):
    return qs.df(features=True, limit=None)


def run_lineage(plan: dict, tmp: Path, install_dir: Path) -> dict:
    from _lineage_env import scratch_lineage

    import lineage as ln
    from graph.server import LocalServer

    with scratch_lineage(tmp, install_dir, lambda m: _say("lineage", m)) as local:
        instance = ln.connect()
        ln.settings.storage = str(tmp / "lineage-storage")
        # This process and the local server's JVM (all its threads: GC and JIT count against
        # us); a server named by NEO4J_URI is not ours to measure, so no CPU figures then.
        pid = LocalServer().status().pid if local else None

        def cpu() -> float | None:
            server = None if pid is None else _process_cpu(pid)
            return None if server is None else time.process_time() + server

        plan = {
            **plan,
            "add": _lineage_add,
            "df": _lineage_df,
            "more_artifacts": _lineage_more_artifacts,
            "cpu": cpu,
        }
        fig = run_scenarios(ln, plan, "lineage", _lineage_annotate_rest)
        fig["version"] = ln.__version__
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        return fig


def run_lamindb(args, plan_file: Path, tmp: Path, venv_dir: Path) -> dict:
    from _lamindb_env import ensure_lamindb, init_instance, run_worker

    lenv = ensure_lamindb(venv_dir, spec=args.lamindb_spec)
    root = tmp / "lamindb"
    root.mkdir()
    init_s = init_instance(lenv, root, root / "storage")
    fig = run_worker(
        lenv, root, [str(Path(__file__).resolve()), "--worker", "lamindb", str(plan_file)]
    )
    fig["init_s"] = init_s
    return fig


# -- the parent --------------------------------------------------------------------------------


def make_plan(args, files_dir: Path, namespace: str) -> dict:
    rng = random.Random(args.seed)
    n = args.n
    n_labels = max(1, n // 1000)
    temperature = [round(rng.uniform(0, 40), 3) for _ in range(n)]
    n_cells = [rng.randrange(100, 10_000) for _ in range(n)]
    cases = []
    for k in rng.sample(range(n_labels), min(n_labels, args.n_filter + args.warmup)):
        temps = sorted((temperature[i] for i in range(k, n, n_labels)), reverse=True)
        threshold = temps[min(100, len(temps) - 1)]
        expected = sum(1 for t in temps if t > threshold)
        cases.append({"label": f"type{k}", "threshold": threshold, "expected": expected})
    while len(cases) < args.n_filter + args.warmup:  # fewer labels than cases: repeat them
        cases.append(cases[len(cases) % max(1, n_labels)])
    return {
        "namespace": namespace,
        "files_dir": str(files_dir),
        "n": n,
        "n_labels": n_labels,
        "n_add": min(args.n_add, n),
        "n_lamindb_add": args.n_lamindb_add,
        "n_api_artifacts": args.n_api_artifacts,
        "n_df": args.n_df,
        "temperature": temperature,
        "n_cells": n_cells,
        "warmup": args.warmup,
        # The timed cases first: with fewer labels than cases, the warm-up repeats them.
        "filters": cases[: args.n_filter],
        "filter_warmup": cases[args.n_filter :],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="artifacts, each with 5 features")
    parser.add_argument("--quick", action="store_true", help="10k artifacts")
    parser.add_argument("--n-add", type=int, default=10_000)
    parser.add_argument("--n-lamindb-add", type=int, default=200)
    parser.add_argument(
        "--n-api-artifacts",
        type=int,
        default=200,
        help="artifacts made through the public API, timed; the rest by each side's fast path",
    )
    parser.add_argument("--n-filter", type=int, default=20)
    parser.add_argument("--n-df", type=int, default=10)
    # Untimed filter and df queries first, on both sides: a fresh Neo4j's JVM compiles the
    # query path over its first runs. Filter at 10k: 260, 26, 24, 11 ms, ... then 5-10 ms;
    # df(features=True), the JVM's CPU per query averaged over runs 1-20, 21-40, ...: 148, 42,
    # 28, 22, 23, then 15-17 ms from run ~100 on (a long-running server is past this).
    parser.add_argument("--warmup", type=int, default=100, help="untimed runs of each query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lamindb", action="store_true")
    parser.add_argument("--lamindb-spec", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker_lamindb(args.worker[1])
        return 0
    if args.quick:
        args.n = 10_000

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    # benchmarks/lineage.py would shadow the package: the repository root goes first.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))
    from _lamindb_env import DEFAULT_SPEC, default_venv_dir
    from _lineage_env import run_namespace

    from graph.server import default_install_dir

    args.lamindb_spec = args.lamindb_spec or DEFAULT_SPEC
    venv_dir, install_dir = default_venv_dir(), default_install_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-features-"))
    results: dict = {}
    errors: dict = {}
    extra = {"cpus": os.cpu_count(), "loadavg_1m_start": _load()}
    # The machine may be shared: the load every 10 s over the whole run, for the JSON.
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(10):
            loads.append(_load())

    threading.Thread(target=sample, daemon=True).start()
    try:
        plan = make_plan(args, tmp / "files", run_namespace())
        files = tmp / "files"
        files.mkdir()
        for i in range(plan["n"]):
            (files / f"{i}.txt").write_text(f"lineage features benchmark {plan['namespace']}{i}\n")
        plan_file = tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))
        sides = [("lineage", lambda: run_lineage(plan, tmp, install_dir))]
        if not args.skip_lamindb:
            sides.append(("lamindb", lambda: run_lamindb(args, plan_file, tmp, venv_dir)))
        for side, run in sides:
            t0 = time.perf_counter()
            try:
                results[side] = run()
                results[side]["side_wall_s"] = time.perf_counter() - t0
            except Exception as exc:
                traceback.print_exc()
                errors[side] = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ours, theirs = results.get("lineage") or {}, results.get("lamindb") or {}

    def ratio(name: str) -> float | None:
        a, b = ours.get(name), theirs.get(name)
        return round(b / a, 2) if a and b else None

    ratios = {
        k: ratio(k)
        for k in ("add_s", "filter_p50_ms", "df_p50_ms", "filter_cpu_p50_ms", "df_cpu_p50_ms")
    }
    correct = ours.get("filter_wrong_counts") == 0 and ours.get("df_wrong") == 0
    goals = {
        "filter_p50_le_20ms": correct and ours.get("filter_p50_ms", 1e9) <= 20,
        "filter_5x": None if ratios["filter_p50_ms"] is None else ratios["filter_p50_ms"] >= 5,
        "df_5x": None if ratios["df_p50_ms"] is None else ratios["df_p50_ms"] >= 5,
        "add_5x": None if ratios["add_s"] is None else ratios["add_s"] >= 5,
    }
    for name in (
        "add_s",
        "filter_p50_ms",
        "filter_p95_ms",
        "df_p50_ms",
        "filter_cpu_p50_ms",
        "df_cpu_p50_ms",
    ):
        print(f"{name:16s} lineage {ours.get(name)!s:>24s}  lamindb {theirs.get(name)!s:>24s}")
    print(f"goals: {goals}")
    done.set()
    extra["loadavg_1m_end"] = _load()
    loads.append(extra["loadavg_1m_end"])
    extra["loadavg_1m_max"] = max(loads)
    extra["loadavg_1m_mean"] = round(statistics.mean(loads), 2)
    summary = {
        "command": " ".join(["python", "benchmarks/features.py", *sys.argv[1:]]),
        "n": plan["n"],
        "n_add": plan["n_add"],
        "python": platform.python_version(),
        "lineage": ours,
        "lamindb": theirs,
        "ratios": ratios,
        "goals": goals,
        "errors": errors or None,
        **extra,
    }
    print(json.dumps(summary, default=str))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
