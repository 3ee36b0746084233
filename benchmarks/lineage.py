"""Lineage graph speed against lamindb 2.x: the graph behind `view_lineage()`, without drawing.

    python benchmarks/lineage.py              # ~100k records: 125 lanes of 100 steps
    python benchmarks/lineage.py --quick      # ~5k records: 6 lanes of 100 steps
    python benchmarks/lineage.py --skip-lamindb

The synthetic provenance graph, built identically in both systems: `--lanes` independent lanes,
each a chain of `--steps` main runs. Step i of a lane:

    main run i   uses a[i-1] (the previous main output) and s[i]   -> writes a[i] and b[i]
    side run i   uses x[i] (a raw artifact, no run)                -> writes s[i]   (fan-in)
    cons run i   uses b[i]                                         -> writes c[i]   (fan-out)

so a lane has 1 + 8 * steps records (3 runs, 5 artifacts per step) and the graph three transforms
(main.py, side.py, cons.py). The figure is the lineage of the deepest artifact (a[steps] of lane
0) at depth 10, 50 and all, with children (what `view_lineage()` draws by default):

- lineage: `lineage._lineage.traverse(...)` (public as `ln.lineage.traverse`), the one query `view_lineage()` runs before drawing
  (index seek on the uid, the bounded traversal, the Bolt round trip, decoding);
- lamindb: what `view_lineage()` runs before graphviz: `_get_all_parent_runs` (+
  `_get_all_child_runs`) and `_df_edges_from_runs` from `lamindb.models.has_parents`. lamindb
  has no depth: its parent loop goes one run back per round, so depth d is that loop stopped after
  d rounds (a copy of it, checked to give lamindb's own result when unbounded); "all" calls
  lamindb's own functions.

Both sides are built in bulk (ours: `write_graph` below, UNWIND batches; lamindb:
Django `bulk_create`), then timed: p50 of `--repeats` calls after warm-up calls. lamindb runs
in its own venv (`_lamindb_env.py`) on a fresh SQLite instance; lineage on `NEO4J_URI` if set,
else a local server in a temporary lineage home.

Prints a table (ratio = lamindb / lineage, > 1: lineage is faster) and, last, one JSON line with
every figure; `speedup_vs_lamindb` per depth and our absolute milliseconds. Goals: lineage
<= 16 ms at depth 50; >= 10x lamindb at depth 50.
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
import time
import traceback
from pathlib import Path

# Standard library only above this line: `--worker lamindb` runs this file with the lamindb
# venv's interpreter, where neither `graph` nor `lineage` can be imported.

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DEPTHS = (10, 50, None)  # None: the whole history
GOAL_MS_DEPTH_50 = 16.0
GOAL_SPEEDUP_DEPTH_50 = 10.0


def _say(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def depth_name(depth: int | None) -> str:
    return "all" if depth is None else str(depth)


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- the synthetic graph (the same for both systems) ---------------------------------------------
def make_graph(lanes: int, steps: int, seed: int, namespace: str = "") -> dict:
    """Nodes and edges as plain lists: uids are 16-character stems (runs) or stem + '0000'.

    A non-empty `namespace` (see _lineage_env.run_namespace) seeds the uids and prefixes the
    keys, so a run into a database that holds an earlier run's graph writes new records.
    """
    rng = random.Random(f"{seed}:{namespace}" if namespace else seed)
    seen: set[str] = set()

    def stem(n: int = 16) -> str:
        while True:
            s = "".join(rng.choice(ALPHABET) for _ in range(n))
            if s not in seen:
                seen.add(s)
                return s

    transforms = {k: stem(12) + "0000" for k in ("main", "side", "cons")}
    artifacts: list[list] = []  # [uid, key, run uid or None]
    runs: list[list] = []  # [uid, transform kind, name]
    used: list[list[str]] = []  # [run uid, artifact uid]
    deepest = None
    for lane in range(lanes):
        previous = stem() + "0000"
        artifacts.append([previous, f"{namespace}lane{lane}/a0.txt", None])
        for i in range(1, steps + 1):
            main, side, cons = stem(), stem(), stem()
            a, b, s, x, c = (stem() + "0000" for _ in range(5))
            runs += [[main, "main", f"main {lane}/{i}"], [side, "side", f"side {lane}/{i}"],
                     [cons, "cons", f"cons {lane}/{i}"]]  # fmt: skip
            lane_key = f"{namespace}lane{lane}"
            artifacts += [
                [x, f"{lane_key}/x{i}.txt", None],
                [s, f"{lane_key}/s{i}.txt", side],
                [a, f"{lane_key}/a{i}.txt", main],
                [b, f"{lane_key}/b{i}.txt", main],
                [c, f"{lane_key}/c{i}.txt", cons],
            ]
            used += [[side, x], [main, previous], [main, s], [cons, b]]
            previous = a
        if lane == 0:
            deepest = previous
    return {
        "transforms": transforms,
        "artifacts": artifacts,
        "runs": runs,
        "used": used,
        "deepest": deepest,
        "n_nodes": len(transforms) + len(artifacts) + len(runs),
        "n_edges": len(used) + len(runs) + sum(1 for a in artifacts if a[2]),
    }


def _times(call, warmup: int, repeats: int) -> tuple[list[float], object]:
    result = None
    for _ in range(warmup):
        result = call()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = call()
        out.append(time.perf_counter() - t0)
    return out, result


# -- lamindb (runs in the lamindb venv) ----------------------------------------------------------
def _worker_lamindb(plan_file: str) -> None:
    """`--worker lamindb PLAN`: build the graph with bulk_create, time view_lineage's graph."""
    plan = json.loads(Path(plan_file).read_text())
    graph = plan["graph"]
    import lamindb as ln
    import lamindb_setup
    from django.db import models as djm
    from django.db import transaction
    from lamindb.models import has_parents as hp

    lamindb_setup.settings.instance._is_on_hub = False
    ln.settings.verbosity = "error"

    def make(model, **fields):
        # Django's own constructor: lamindb's Artifact() reads a file, hashes it, and checks the
        # hub; here the records exist only to be traversed.
        obj = model.__new__(model)
        djm.Model.__init__(obj, **fields)
        return obj

    fig: dict = {}
    t0 = time.perf_counter()
    storage = lamindb_setup.settings.storage.record
    with transaction.atomic():
        transforms = {
            kind: make(ln.Transform, uid=uid, key=f"{kind}.py", kind="pipeline", run=None)
            for kind, uid in graph["transforms"].items()
        }  # fmt: skip
        ln.Transform.objects.bulk_create(transforms.values())
        transform_id = {k: ln.Transform.objects.get(uid=t.uid).id for k, t in transforms.items()}
        now = time.time()
        from datetime import datetime, timezone

        when = datetime.fromtimestamp(now, timezone.utc)
        run_objs = [
            make(ln.Run, uid=uid, name=name, transform_id=transform_id[kind], started_at=when)
            for uid, kind, name in graph["runs"]
        ]  # fmt: skip
        ln.Run.objects.bulk_create(run_objs, batch_size=5000)
        run_id = dict(ln.Run.objects.values_list("uid", "id"))
        art_objs = [
            make(ln.Artifact, uid=uid, key=key, suffix=".txt", size=1, hash=uid[:22],
                 _hash_type="md5", storage_id=storage.id, run_id=run_id.get(run) if run else None,
                 _key_is_virtual=True, _overwrite_versions=False, is_latest=True)
            for uid, key, run in graph["artifacts"]
        ]  # fmt: skip
        ln.Artifact.objects.bulk_create(art_objs, batch_size=5000)
        art_id = dict(ln.Artifact.objects.values_list("uid", "id"))
        link = ln.Artifact.input_of_runs.through
        link.objects.bulk_create(
            [link(artifact_id=art_id[a], run_id=run_id[r]) for r, a in graph["used"]],
            batch_size=5000,
        )
    fig["build_s"] = time.perf_counter() - t0
    fig["records"] = (
        ln.Artifact.objects.count() + ln.Run.objects.count() + ln.Transform.objects.count()
    )
    _say("lamindb", f"built {fig['records']} records in {fig['build_s']:.1f} s")

    data = ln.Artifact.get(graph["deepest"])

    def parents(data, depth):
        """lamindb's `_get_all_parent_runs`, stopped after `depth` rounds (None: never)."""
        name = "artifact"
        out = []
        runs = [data.run] if data.run is not None else []
        rounds = 0
        while len(runs) > 0 and (depth is None or rounds < depth):
            rounds += 1
            inputs = []
            for r in runs:
                inputs_run = r.input_artifacts.all().filter(branch_id__in=[0, 1]).to_list()
                inputs_run += r.input_collections.all().filter(branch_id__in=[0, 1]).to_list()
                outputs_run = r.output_artifacts.all().filter(branch_id__in=[0, 1]).to_list()
                outputs_run += r.output_collections.all().filter(branch_id__in=[0, 1]).to_list()
                overlap = set(inputs_run).intersection(outputs_run)
                if overlap:
                    inputs_run = list(set(inputs_run) - overlap)
                if len(inputs_run) > 0:
                    out += [(inputs_run, r)]
                if len(outputs_run) > 0:
                    out += [(r, outputs_run)]
                inputs += inputs_run
            runs = [f.run for f in inputs if f.run is not None]
        del name
        return out

    def runs_of(depth):
        values = hp._get_all_parent_runs(data) if depth is None else parents(data, depth)
        return values + hp._get_all_child_runs(data)

    def lineage_graph(depth):
        return hp._df_edges_from_runs(runs_of(depth))

    def size(df) -> dict:
        nodes = set(df["source"]) | set(df["target"])
        return {"nodes": len(nodes), "edges": len(df)}

    # the copy of the parent loop gives lamindb's own result when unbounded
    own = hp._df_edges_from_runs(hp._get_all_parent_runs(data))
    copy = hp._df_edges_from_runs(parents(data, None))
    fig["parent_copy_matches"] = sorted(zip(own["source"], own["target"])) == sorted(
        zip(copy["source"], copy["target"])
    )
    for depth in plan["depths"]:
        repeats = plan["lamindb_repeats"] if depth is not None else plan["lamindb_repeats_all"]
        times, df = _times(lambda d=depth: lineage_graph(d), plan["lamindb_warmup"], repeats)
        key = depth_name(depth)
        fig[f"depth_{key}_p50_ms"] = _pct(times, 50) * 1e3
        fig[f"depth_{key}_min_ms"] = min(times) * 1e3
        fig[f"depth_{key}_size"] = size(df)
        # the same without `_df_edges_from_runs` (which loads each run's transform for its label)
        times, _ = _times(lambda d=depth: runs_of(d), 0, max(3, repeats // 2))
        fig[f"depth_{key}_runs_only_p50_ms"] = _pct(times, 50) * 1e3
        _say("lamindb", f"depth {key}: p50 {fig[f'depth_{key}_p50_ms']:.1f} ms, {size(df)}")
    fig["version"] = ln.__version__
    print(json.dumps(fig))


# -- lineage (this process) ------------------------------------------------------------------------


def write_graph(
    conn,
    nodes: dict[str, list[dict]],
    edges: list[tuple[str, str, str, str, str]],
) -> dict[str, int]:
    """Create many records and provenance edges at once: `UNWIND` batches, ids from the counters.

    `nodes` maps a label to property dicts (stored names; `uid` required); `edges` are
    `(type, source label, source uid, target label, target uid)`. Only for building large
    synthetic graphs quickly: records made through `lineage` carry more (creator, storage).
    """
    # The bulk-write primitives of graph/records.py, private there: only this benchmark bypasses
    # the record API to build 100k-node graphs in seconds.
    from graph.records import _check_props, _take_ids, now

    batch_size = 10_000
    stamp = now()
    written = {"nodes": 0, "edges": 0}
    for label, rows in nodes.items():
        for start in range(0, len(rows), batch_size):
            batch = [dict(r) for r in rows[start : start + batch_size]]
            for row in batch:
                _check_props(label, row)
                row.setdefault("branch", 1)
                row.setdefault("created_at", stamp)
                row.setdefault("updated_at", row["created_at"])
                if label != "Run":
                    row.setdefault("is_latest", True)

            def work(tx, label: str = label, batch: list = batch) -> None:
                for row, new_id in zip(batch, _take_ids(tx, label, len(batch))):
                    row["id"] = new_id
                tx.run(
                    f"UNWIND $rows AS row CREATE (n:`{label}`) SET n = row", rows=batch
                ).consume()

            conn.write(work)
            written["nodes"] += len(batch)
    groups: dict[tuple[str, str, str], list[list[str]]] = {}
    for kind, src_label, src, dst_label, dst in edges:
        groups.setdefault((kind, src_label, dst_label), []).append([src, dst])
    for (kind, src_label, dst_label), pairs in groups.items():
        for start in range(0, len(pairs), batch_size):
            pair_batch = pairs[start : start + batch_size]
            query = (
                f"UNWIND $pairs AS p MATCH (a:`{src_label}` {{uid: p[0]}}) "
                f"MATCH (b:`{dst_label}` {{uid: p[1]}}) CREATE (a)-[:`{kind}`]->(b) "
                "RETURN count(*) AS n"
            )
            made = conn.write(lambda tx, q=query, b=pair_batch: tx.run(q, pairs=b).single()["n"])
            if made != len(pair_batch):
                raise RuntimeError(f"{len(pair_batch) - made} {kind} edges name missing nodes")
            written["edges"] += made
    return written


def build_lineage(conn, graph: dict) -> float:
    t0 = time.perf_counter()
    nodes = {
        "Transform": [{"uid": uid, "key": f"{k}.py", "kind": "pipeline"}
                      for k, uid in graph["transforms"].items()],
        "Run": [{"uid": uid + "0000", "name": name, "status": "completed"}
                for uid, _, name in graph["runs"]],
        "Artifact": [{"uid": uid, "key": key, "suffix": ".txt", "size": 1}
                     for uid, key, _ in graph["artifacts"]],
    }  # fmt: skip
    edges = [("EXECUTES", "Run", uid + "0000", "Transform", graph["transforms"][kind])
             for uid, kind, _ in graph["runs"]]  # fmt: skip
    edges += [("GENERATED_BY", "Artifact", uid, "Run", run + "0000")
              for uid, _, run in graph["artifacts"] if run]  # fmt: skip
    edges += [("USED", "Run", run + "0000", "Artifact", a) for run, a in graph["used"]]
    write_graph(conn, nodes, edges)
    return time.perf_counter() - t0


def run_lineage(plan: dict, tmp: Path, install_dir: Path) -> tuple[dict, dict]:
    import lineage as ln
    from lineage._lineage import traverse

    from _lineage_env import scratch_lineage

    graph = plan["graph"]
    fig: dict = {}
    with scratch_lineage(tmp, install_dir, lambda m: _say("lineage", m)):
        instance = ln.connect()
        _say("lineage", f"connected: {instance!r}")
        fig["build_s"] = build_lineage(instance.connection, graph)
        _say("lineage", f"built {graph['n_nodes']} records in {fig['build_s']:.1f} s")
        record = ln.Artifact.get(graph["deepest"])
        for depth in plan["depths"]:

            def call(depth: int | None = depth) -> dict:  # what view_lineage() runs first
                return traverse(
                    record,
                    upstream=True,
                    downstream=True,
                    depth=depth,
                    what="view_lineage()",
                    features=True,
                )

            times, result = _times(call, plan["warmup"], plan["repeats"])
            key = depth_name(depth)
            fig[f"depth_{key}_p50_ms"] = _pct(times, 50) * 1e3
            fig[f"depth_{key}_p95_ms"] = _pct(times, 95) * 1e3
            fig[f"depth_{key}_min_ms"] = min(times) * 1e3
            fig[f"depth_{key}_size"] = {
                "nodes": len(result["nodes"]),
                "edges": len(result["edges"]),
            }
            _say(
                "lineage",
                f"depth {key}: p50 {fig[f'depth_{key}_p50_ms']:.2f} ms, {fig[f'depth_{key}_size']}",
            )
        fig["version"] = getattr(ln, "__version__", None)
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        return fig, {"lineage": fig["version"], "neo4j": instance.server_version}


def run_lamindb(
    args: argparse.Namespace, plan_file: Path, tmp: Path, venv_dir: Path
) -> tuple[dict, dict]:
    from _lamindb_env import ensure_lamindb, init_instance, run_worker

    lenv = ensure_lamindb(venv_dir, spec=args.lamindb_spec)
    _say("lamindb", f"lamindb {lenv.version} from {venv_dir}; lamin init")
    root = tmp / "lamindb"
    root.mkdir()
    init_s = init_instance(lenv, root, root / "storage")
    fig = run_worker(
        lenv, root, [str(Path(__file__).resolve()), "--worker", "lamindb", str(plan_file)]
    )
    fig.update(init_s=init_s, venv=str(venv_dir), venv_reused=lenv.reused)
    return fig, {"lamindb": lenv.version}


# -- report ------------------------------------------------------------------------------------------
def report(plan: dict, results: dict, versions: dict, errors: dict, extra: dict) -> dict:
    ours, theirs = results.get("lineage") or {}, results.get("lamindb") or {}
    speedup, ours_ms = {}, {}
    print()
    print(f"lineage of the deepest artifact, with children; {plan['graph']['n_nodes']} records "
          f"({plan['lanes']} lanes x {plan['steps']} steps)")  # fmt: skip
    print(f"{'depth':>6s} {'lineage p50 ms':>15s} {'min':>7s} {'p95':>7s} {'lamindb p50 ms':>15s}"
          f" {'ratio':>7s}  {'nodes/edges (lineage | lamindb)':>32s}")  # fmt: skip
    for depth in plan["depths"]:
        key = depth_name(depth)
        a, b = ours.get(f"depth_{key}_p50_ms"), theirs.get(f"depth_{key}_p50_ms")
        ratio = b / a if a and b else None
        speedup[key] = round(ratio, 2) if ratio else None
        ours_ms[key] = round(a, 3) if a is not None else None
        so, st = ours.get(f"depth_{key}_size") or {}, theirs.get(f"depth_{key}_size") or {}
        p95, low = ours.get(f"depth_{key}_p95_ms"), ours.get(f"depth_{key}_min_ms")

        def num(value, digits):
            return "-" if value is None else f"{value:.{digits}f}"

        print(
            f"{key:>6s} {num(a, 2):>15} {num(low, 2):>7} {num(p95, 2):>7} "
            f"{num(b, 1):>15} {'-' if ratio is None else f'{ratio:.1f}x':>7}"
            f"  {so.get('nodes', '-')}/{so.get('edges', '-')} | {st.get('nodes', '-')}/{st.get('edges', '-')}"
        )
    print(
        "(lamindb's graph has each run's sibling outputs and co-inputs but no transforms; ours has"
    )
    print(
        " what is reachable: each run's inputs upstream and outputs downstream, and its transform)"
    )
    goals = {
        "lineage_depth50_le_16ms": None
        if ours_ms.get("50") is None
        else ours_ms["50"] <= GOAL_MS_DEPTH_50,
        "speedup_depth50_ge_10x": None
        if speedup.get("50") is None
        else speedup["50"] >= GOAL_SPEEDUP_DEPTH_50,
    }
    for name, met in goals.items():
        print(f"goal {name:32s} {({True: 'met', False: 'NOT met', None: 'n/a'})[met]}")
    if theirs and theirs.get("parent_copy_matches") is False:
        print("!! the depth-limited copy of lamindb's parent loop differs from lamindb's own")
    busy = max(extra.get("loadavg_1m_start", 0), extra.get("loadavg_1m_end", 0))
    if busy > (extra.get("cpus") or 1):
        print(
            f"note: load average {busy:.1f} on {extra.get('cpus')} CPUs: other processes competed; figures are noisy"
        )
    print(f"versions: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    for side, message in errors.items():
        print(f"ERROR {side}: {message.splitlines()[0] if message else ''}")

    def rounded(d):
        return (
            {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()} if d else None
        )

    return {
        "n": {
            "lanes": plan["lanes"],
            "steps": plan["steps"],
            "records": plan["graph"]["n_nodes"],
            "edges": plan["graph"]["n_edges"],
            "repeats": plan["repeats"],
        },
        "versions": versions,
        "lineage": rounded(ours),
        "lamindb": rounded(theirs),
        "goals": goals,
        "errors": errors or None,
        **extra,
        "lineage_ms": ours_ms,
        "speedup_vs_lamindb": speedup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="~5k records (6 lanes) instead of ~100k"
    )
    parser.add_argument("--lanes", type=int, default=None, help="default 125 (--quick: 6)")
    parser.add_argument(
        "--steps", type=int, default=100, help="main runs per lane (the chain's depth)"
    )
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per depth (lineage)")
    parser.add_argument(
        "--lamindb-repeats", type=int, default=10, help="timed calls per depth (lamindb)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lamindb", action="store_true")
    parser.add_argument("--skip-lineage", action="store_true")
    parser.add_argument("--lamindb-venv", type=Path, default=None)
    parser.add_argument("--lamindb-spec", default=None)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        if args.worker[0] != "lamindb":
            parser.error(f"unknown worker {args.worker[0]!r}")
        _worker_lamindb(args.worker[1])
        return 0
    lanes = args.lanes or (6 if args.quick else 125)
    if min(lanes, args.steps, args.repeats, args.lamindb_repeats) < 1:
        parser.error("--lanes, --steps and the repeats must be positive")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    # This file is called lineage.py: with its own directory first on sys.path, `import lineage`
    # would import it again instead of the package. The repository root goes first.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lamindb_env
    from _lamindb_env import DEFAULT_SPEC, default_venv_dir
    from _lineage_env import database_note, run_namespace
    from graph.server import default_install_dir

    args.lamindb_spec = args.lamindb_spec or DEFAULT_SPEC
    venv_dir = args.lamindb_venv or default_venv_dir()
    install_dir = default_install_dir()

    namespace = run_namespace()
    graph = make_graph(lanes, args.steps, args.seed, namespace)
    plan = {
        "lanes": lanes,
        "steps": args.steps,
        "depths": list(DEPTHS),
        "repeats": args.repeats,
        "warmup": 50,  # a fresh server: let the JVM compile the query paths first
        "lamindb_repeats": args.lamindb_repeats,
        "lamindb_repeats_all": max(3, args.lamindb_repeats // 2),
        "lamindb_warmup": 1,
        "graph": graph,
    }
    _say(
        "bench",
        f"{graph['n_nodes']} records, {graph['n_edges']} edges ({lanes} lanes x {args.steps} steps)",
    )
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-lineage-", dir=args.tmp_dir))
    results: dict = {}
    versions: dict = {"python": platform.python_version()}
    errors: dict = {}
    extra: dict = {
        "cpus": os.cpu_count(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "database": database_note(namespace),
    }
    try:
        plan_file = tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))
        sides = []
        if not args.skip_lamindb:
            sides.append(("lamindb", lambda: run_lamindb(args, plan_file, tmp, venv_dir)))
        if not args.skip_lineage:
            sides.append(("lineage", lambda: run_lineage(plan, tmp, install_dir)))
        for side, run in sides:
            t0 = time.perf_counter()
            try:
                fig, ver = run()
            except Exception as exc:  # noqa: BLE001 - report the other side anyway
                traceback.print_exc()
                errors[side] = f"{type(exc).__name__}: {exc}"
                continue
            fig["side_wall_s"] = round(time.perf_counter() - t0, 2)
            results[side] = fig
            versions.update(ver)
        extra["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        summary = report(plan, results, versions, errors, extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
