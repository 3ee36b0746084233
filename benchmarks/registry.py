"""Registry speed against lamindb 2.x, same inputs, same run.

    python benchmarks/registry.py                      # 10k bulk, 1000-collection, 100k queries
    python benchmarks/registry.py --n-bulk 200 --n-collection 100 --n-large 1000   # a quick look
    python benchmarks/registry.py --skip-lamindb       # our figures only, ratios null

Scenarios, run by the same function against `lineage` (in this process) and `lamindb` (in a
subprocess, in its own venv, see `_lamindb_env.py`):

1. bulk: `ln.Artifact(path, key="bench/{i}.txt")` for `--n-bulk` tiny distinct files (the
   constructor hashes each file), then one `ln.save(artifacts)`; construct and save are timed
   apart and together.
2. collection: `ln.Collection(first --n-collection of them, key="bench-collection").save()`.
3. large: more artifacts (`bench/{n_bulk}.txt`, ...), `ln.save`d in batches of `--batch`, until
   the registry holds `--n-large` of them; then `ln.Artifact.get(uid)` for `--n-get` random uids and
   `ln.Artifact.filter(key__startswith="bench/123").to_list()` for `--n-filter` random 3-digit
   prefixes, each timed alone (p50, p95). Results are checked: the right uid, the right count.

lamindb runs against a fresh SQLite instance (`lamin init --storage DIR`) whose settings, cache
and HOME live in a temporary directory; the venv is `$LINEAGE_HOME/bench/lamindb-venv`, made on
first use. lineage runs against `NEO4J_URI` if set (the benchmark writes ~n-large artifacts
there, it does not wipe), else a local server started in a temporary lineage home on a free port
(the Neo4j jars are shared with the user's install) and stopped at the end.

Prints a table (ratio = lamindb time / lineage time, > 1: lineage is faster) and, last, one JSON
line with every figure, the n's, the versions and which goals are met:
bulk save >= 5x lamindb, 1000-artifact collection save <= lamindb's, get(uid) p50 < 3 ms,
filter(key__startswith) p50 < 20 ms at 100k artifacts.
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

KEY = "bench/{}.txt"
COLLECTION_KEY = "bench-collection"

GOALS = {
    "bulk_save_5x": "bulk ln.save >= 5x faster than lamindb",
    "bulk_total_5x": "bulk construct+save >= 5x faster than lamindb",
    "collection_le_lamindb": "1000-artifact collection construct+save <= lamindb's",
    "collection_again_le_lamindb": "  the same, second collection (warm server)",
    "get_p50_lt_3ms": "Artifact.get(uid) p50 < 3 ms",
    "filter_p50_lt_20ms": "Artifact.filter(key__startswith) p50 < 20 ms",
}


def _say(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# -- the scenarios: one function, either registry ---------------------------------------------


def run_scenarios(ln, plan: dict, tag: str, probe=None) -> dict:
    """Run every scenario against the module `ln` (lineage or lamindb); return the figures.

    `probe(ln, uid, prefix)`, if given, runs last, untimed, and adds its figures.
    """
    files = Path(plan["files_dir"])
    n_bulk, n_collection, n_total, batch = (
        plan["n_bulk"],
        plan["n_collection"],
        plan["n_total"],
        plan["batch"],
    )
    path = lambda i: str(files / f"{i}.txt")  # noqa: E731
    ns = plan["namespace"]  # "" on a scratch database (see _lineage_env.run_namespace)
    fig: dict = {}

    # 1. bulk
    paths = [path(i) for i in range(n_bulk)]
    keys = [ns + KEY.format(i) for i in range(n_bulk)]
    _say(tag, f"bulk: constructing {n_bulk} artifacts")
    t0 = time.perf_counter()
    artifacts = [ln.Artifact(p, key=k) for p, k in zip(paths, keys)]
    fig["bulk_construct_s"] = time.perf_counter() - t0
    _say(tag, f"bulk: ln.save of {n_bulk} artifacts")
    t0 = time.perf_counter()
    ln.save(artifacts)
    fig["bulk_save_s"] = time.perf_counter() - t0
    fig["bulk_total_s"] = fig["bulk_construct_s"] + fig["bulk_save_s"]
    uids = [a.uid for a in artifacts]

    # 2. collection
    _say(tag, f"collection: {n_collection} artifacts")
    members = artifacts[:n_collection]
    t0 = time.perf_counter()
    collection = ln.Collection(members, key=ns + COLLECTION_KEY)
    fig["collection_construct_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    collection.save()
    fig["collection_save_s"] = time.perf_counter() - t0
    fig["collection_total_s"] = fig["collection_construct_s"] + fig["collection_save_s"]
    # Again with the next artifacts: the first save on a fresh server also pays the server's
    # one-off costs (query planning in a cold JVM); the second is what later saves cost.
    if len(artifacts) >= 2 * n_collection:
        members = artifacts[n_collection : 2 * n_collection]
        t0 = time.perf_counter()
        collection = ln.Collection(members, key=ns + COLLECTION_KEY + "-again")
        fig["collection2_construct_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        collection.save()
        fig["collection2_save_s"] = time.perf_counter() - t0
        fig["collection2_total_s"] = fig["collection2_construct_s"] + fig["collection2_save_s"]
    del artifacts, members, collection

    # 3. fill to n_total, then query
    fill_construct = fill_save = 0.0
    for start in range(n_bulk, n_total, batch):
        stop = min(start + batch, n_total)
        t0 = time.perf_counter()
        chunk = [ln.Artifact(path(i), key=ns + KEY.format(i)) for i in range(start, stop)]
        t1 = time.perf_counter()
        ln.save(chunk)
        t2 = time.perf_counter()
        fill_construct += t1 - t0
        fill_save += t2 - t1
        uids.extend(a.uid for a in chunk)
        _say(tag, f"fill: {stop}/{n_total} artifacts ({(stop - start) / (t2 - t0):.0f}/s)")
        del chunk
    n_filled = max(n_total - n_bulk, 0)
    fig["fill_n"] = n_filled
    fig["fill_construct_s"] = fill_construct
    fig["fill_save_s"] = fill_save
    fig["fill_total_s"] = fill_construct + fill_save
    fig["fill_per_s"] = n_filled / (fill_construct + fill_save) if n_filled else None

    _say(tag, f"get(uid): {len(plan['get_indices'])} uids out of {len(uids)}")
    for i in plan["get_warmup"]:
        ln.Artifact.get(uids[i])
    times, wrong = [], 0
    for i in plan["get_indices"]:
        t0 = time.perf_counter()
        record = ln.Artifact.get(uids[i])
        times.append(time.perf_counter() - t0)
        wrong += record.uid != uids[i]
    fig["get_p50_ms"] = _pct(times, 50) * 1e3
    fig["get_p95_ms"] = _pct(times, 95) * 1e3
    fig["get_mean_ms"] = statistics.fmean(times) * 1e3
    fig["get_wrong"] = wrong

    _say(tag, f"filter(key__startswith): {len(plan['prefixes'])} prefixes")
    for prefix in plan["filter_warmup"]:
        ln.Artifact.filter(key__startswith=prefix).to_list()
    times, wrong, rows = [], 0, 0
    for prefix, expected in zip(plan["prefixes"], plan["expected_counts"]):
        t0 = time.perf_counter()
        result = ln.Artifact.filter(key__startswith=prefix).to_list()
        times.append(time.perf_counter() - t0)
        rows += len(result)
        wrong += len(result) != expected
    fig["filter_p50_ms"] = _pct(times, 50) * 1e3
    fig["filter_p95_ms"] = _pct(times, 95) * 1e3
    fig["filter_mean_ms"] = statistics.fmean(times) * 1e3
    fig["filter_rows_mean"] = rows / len(times)
    fig["filter_wrong_counts"] = wrong
    fig["registry_artifacts"] = len(uids)
    if probe is not None:
        fig.update(probe(ln, uids[plan["get_indices"][0]], plan["prefixes"][0]))
    return fig


def _worker_lamindb(plan_file: str) -> None:
    """`--worker lamindb PLAN`: runs in the lamindb venv, inside the isolated instance."""
    plan = json.loads(Path(plan_file).read_text())
    import lamindb as ln
    import lamindb_setup

    # No hub without internet: say the instance is not on it before saving path artifacts.
    lamindb_setup.settings.instance._is_on_hub = False
    ln.settings.verbosity = "error"  # else one "no run & transform got linked" per artifact
    fig = run_scenarios(ln, plan, "lamindb")
    fig["version"] = ln.__version__
    fig["lamindb_setup_version"] = lamindb_setup.__version__
    fig["instance"] = lamindb_setup.settings.instance.slug
    fig["db"] = str(lamindb_setup.settings.instance.db).split("://")[0]
    print(json.dumps(fig))


# -- the parent: inputs, both sides, report ----------------------------------------------------


def make_plan(args: argparse.Namespace, files_dir: Path, namespace: str) -> dict:
    n_total = max(args.n_large, args.n_bulk)
    rng = random.Random(args.seed)
    if n_total >= args.n_get + 10:  # distinct uids, the first 10 for warm-up
        picks = rng.sample(range(n_total), args.n_get + 10)
        warmup, get_indices = picks[:10], picks[10:]
    else:
        warmup = rng.sample(range(n_total), min(10, n_total))
        get_indices = [rng.randrange(n_total) for _ in range(args.n_get)]
    numbers = rng.sample(range(100, 1000), min(args.n_filter + 3, 900))
    prefixes = [f"{namespace}bench/{k}" for k in numbers]
    keys = [namespace + KEY.format(i) for i in range(n_total)]
    expected = [sum(k.startswith(p) for k in keys) for p in prefixes[3:]]
    return {
        "namespace": namespace,
        "files_dir": str(files_dir),
        "n_bulk": args.n_bulk,
        "n_collection": args.n_collection,
        "n_total": n_total,
        "batch": args.batch,
        "get_warmup": warmup,
        "get_indices": get_indices,
        "filter_warmup": prefixes[:3],
        "prefixes": prefixes[3:],
        "expected_counts": expected,
    }


def make_files(files_dir: Path, n: int, namespace: str) -> float:
    """n tiny files with distinct content: `{i}.txt` (the namespace in it: no hash matches an
    earlier run's file in a shared database)."""
    t0 = time.perf_counter()
    files_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (files_dir / f"{i}.txt").write_text(f"lineage registry benchmark file {namespace}{i}\n")
    return time.perf_counter() - t0


def run_lamindb(
    args: argparse.Namespace, plan_file: Path, tmp: Path, venv_dir: Path
) -> tuple[dict, dict]:
    from _lamindb_env import ensure_lamindb, init_instance, run_worker

    lenv = ensure_lamindb(venv_dir, spec=args.lamindb_spec)
    extra = {
        "venv": str(venv_dir),
        "spec": lenv.spec,
        "venv_setup_s": lenv.setup_s,
        "venv_reused": lenv.reused,
    }
    if not lenv.version.startswith("2."):
        _say("lamindb", f"note: lamindb {lenv.version} installed, not 2.x")
    _say("lamindb", f"lamindb {lenv.version} from {venv_dir}; lamin init")
    root = tmp / "lamindb"
    root.mkdir()
    extra["init_s"] = init_instance(lenv, root, root / "storage")
    fig = run_worker(
        lenv, root, [str(Path(__file__).resolve()), "--worker", "lamindb", str(plan_file)]
    )
    fig.update(extra)
    return fig, {"lamindb": lenv.version}


def run_lineage(
    args: argparse.Namespace, plan: dict, tmp: Path, install_dir: Path
) -> tuple[dict, dict]:
    import lineage as ln
    from _lineage_env import scratch_lineage

    with scratch_lineage(tmp, install_dir, lambda m: _say("lineage", m)):
        t0 = time.perf_counter()
        instance = ln.connect()
        connect_s = time.perf_counter() - t0
        _say("lineage", f"connected: {instance!r}")
        ln.settings.storage = str(tmp / "lineage-storage")
        fig = run_scenarios(ln, plan, "lineage", probe=_queries_per_call)
        fig["connect_s"] = connect_s
        fig["version"] = getattr(ln, "__version__", None)
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        fig["neo4j_source"] = instance.source
        return fig, {"lineage": fig["version"], "neo4j": instance.server_version}


def _queries_per_call(ln, uid: str, prefix: str) -> dict:
    """Cypher statements the driver sends for one get(uid) and one filter (the "one round trip")."""
    try:
        import neo4j

        classes = [neo4j.Session, neo4j.ManagedTransaction, neo4j.Transaction]
    except (ImportError, AttributeError):
        return {}
    sent = [0]
    originals = {cls: cls.__dict__.get("run") for cls in classes}

    def counting(original):
        def run(self, *args, **kwargs):
            sent[0] += 1
            return original(self, *args, **kwargs)

        return run

    for cls in classes:
        setattr(cls, "run", counting(cls.run))
    try:
        sent[0] = 0
        ln.Artifact.get(uid)
        get_queries = sent[0]
        sent[0] = 0
        ln.Artifact.filter(key__startswith=prefix).to_list()
        filter_queries = sent[0]
    except Exception:  # noqa: BLE001 - informational only
        return {}
    finally:
        for cls, original in originals.items():
            if original is None:
                delattr(cls, "run")
            else:
                setattr(cls, "run", original)
    return {"get_queries": get_queries, "filter_queries": filter_queries}


ROWS = [
    # label, figure, unit
    ("bulk: construct {n_bulk}", "bulk_construct_s", "s"),
    ("bulk: ln.save {n_bulk}", "bulk_save_s", "s"),
    ("bulk: construct + save", "bulk_total_s", "s"),
    ("collection {n_collection}: construct", "collection_construct_s", "s"),
    ("collection {n_collection}: save", "collection_save_s", "s"),
    ("collection: construct + save", "collection_total_s", "s"),
    ("collection again: construct + save", "collection2_total_s", "s"),
    ("fill to {n_total}: construct + save", "fill_total_s", "s"),
    ("get(uid) p50", "get_p50_ms", "ms"),
    ("get(uid) p95", "get_p95_ms", "ms"),
    ("filter(key__startswith) p50", "filter_p50_ms", "ms"),
    ("filter(key__startswith) p95", "filter_p95_ms", "ms"),
]


def ratios(ours: dict | None, theirs: dict | None) -> dict:
    out = {}
    for _, name, _ in ROWS:
        a = (ours or {}).get(name)
        b = (theirs or {}).get(name)
        out[name] = (
            (b / a)
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0
            else None
        )
    return out


def goals(ours: dict | None, theirs: dict | None, ratio: dict) -> dict:
    def at_least(value, bound):
        return None if value is None else value >= bound

    def below(value, bound):
        return None if value is None else value < bound

    ours = ours or {}
    coll = None
    if "collection_total_s" in ours and theirs and "collection_total_s" in theirs:
        coll = ours["collection_total_s"] <= theirs["collection_total_s"]
    coll2 = None
    if "collection2_total_s" in ours and theirs and "collection2_total_s" in theirs:
        coll2 = ours["collection2_total_s"] <= theirs["collection2_total_s"]
    correct = ours.get("get_wrong") == 0 and ours.get("filter_wrong_counts") == 0 if ours else None
    return {
        "bulk_save_5x": at_least(ratio.get("bulk_save_s"), 5),
        "bulk_total_5x": at_least(ratio.get("bulk_total_s"), 5),
        "collection_le_lamindb": coll,
        "collection_again_le_lamindb": coll2,
        "get_p50_lt_3ms": below(ours.get("get_p50_ms"), 3) if correct is not False else False,
        "filter_p50_lt_20ms": below(ours.get("filter_p50_ms"), 20)
        if correct is not False
        else False,
    }


def _fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if unit == "s" else f"{value:.2f}"


def report(plan: dict, results: dict, versions: dict, errors: dict, extra: dict) -> dict:
    ours, theirs = results.get("lineage"), results.get("lamindb")
    ratio = ratios(ours, theirs)
    met = goals(ours, theirs, ratio)
    n = {k: plan[k] for k in ("n_bulk", "n_collection", "n_total", "batch")}
    n["n_get"], n["n_filter"] = len(plan["get_indices"]), len(plan["prefixes"])

    print()
    print(f"{'figure':38s} {'unit':>4s} {'lineage':>10s} {'lamindb':>10s} {'ratio':>8s}")
    for label, name, unit in ROWS:
        r = ratio[name]
        print(
            f"{label.format(**n):38s} {unit:>4s} {_fmt((ours or {}).get(name), unit):>10s} "
            f"{_fmt((theirs or {}).get(name), unit):>10s} {'-' if r is None else f'{r:.2f}x':>8s}"
        )
    for side, fig in (("lineage", ours), ("lamindb", theirs)):
        if fig and (fig.get("get_wrong") or fig.get("filter_wrong_counts")):
            print(
                f"!! {side}: {fig['get_wrong']} wrong get(uid), {fig['filter_wrong_counts']} wrong filter counts"
            )
    if ours and "get_queries" in ours:
        print(
            f"lineage: {ours['get_queries']} Cypher statement(s) per get(uid), {ours['filter_queries']} per filter"
        )
    print(f"versions: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    full = n["n_bulk"] >= 10_000 and n["n_collection"] >= 1000 and n["n_total"] >= 100_000
    if not full:
        print(
            "note: n's below the issue's (10k bulk, 1000 collection, 100k nodes); goals are indicative"
        )
    for key, text in GOALS.items():
        mark = {True: "met", False: "NOT met", None: "n/a"}[met[key]]
        print(f"goal {text:52s} {mark}")
    busy = max(extra.get("loadavg_1m_start", 0), extra.get("loadavg_1m_end", 0))
    if busy > (extra.get("cpus") or 1):
        print(
            f"note: load average {busy:.1f} on {extra.get('cpus')} CPUs: other processes competed; figures are noisy"
        )
    for side, message in errors.items():
        print(f"ERROR {side}: {message.splitlines()[0] if message else ''}")

    def rounded(d):
        if d is None:
            return None
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}

    return {
        "n": n,
        "full_size": full,
        "versions": versions,
        "lineage": rounded(ours),
        "lamindb": rounded(theirs),
        "ratios": rounded(ratio),
        "goals": met,
        "errors": errors or None,
        **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-bulk", type=int, default=10_000)
    parser.add_argument("--n-collection", type=int, default=1000)
    parser.add_argument(
        "--n-large", type=int, default=100_000, help="artifacts in the registry for the queries"
    )
    parser.add_argument(
        "--batch", type=int, default=10_000, help="ln.save batch size while filling to --n-large"
    )
    parser.add_argument("--n-get", type=int, default=200)
    parser.add_argument("--n-filter", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-lamindb", action="store_true", help="our figures only; ratios null")
    parser.add_argument(
        "--skip-lineage", action="store_true", help="lamindb figures only (to check the set-up)"
    )
    parser.add_argument(
        "--lamindb-venv", type=Path, default=None, help="default $LINEAGE_HOME/bench/lamindb-venv"
    )
    parser.add_argument(
        "--lamindb-spec", default=None, help='pip requirement, default "lamindb>=2,<3"'
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the temporary files go")
    parser.add_argument(
        "--keep-tmp", action="store_true", help="leave the temporary directory behind"
    )
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        system, plan_file = args.worker
        if system != "lamindb":
            parser.error(f"unknown worker {system!r}")
        _worker_lamindb(plan_file)
        return 0

    if not 0 < args.n_collection <= args.n_bulk:
        parser.error("--n-collection must be between 1 and --n-bulk")
    if min(args.n_bulk, args.batch, args.n_get, args.n_filter) < 1:
        parser.error("--n-bulk, --batch, --n-get and --n-filter must be positive")

    # A `kill` still runs the finally blocks: stop our Neo4j server, remove the temporary files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    # benchmarks/ holds lineage.py (the lineage benchmark): with this directory first on
    # sys.path, `import lineage` would import it instead of the package. The root goes first.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lamindb_env, _lineage_env
    from _lamindb_env import DEFAULT_SPEC, default_venv_dir
    from _lineage_env import database_note, run_namespace
    from graph.server import default_install_dir

    args.lamindb_spec = args.lamindb_spec or DEFAULT_SPEC
    # Both read LINEAGE_HOME: compute them before the lineage side points it at a temporary home.
    venv_dir = args.lamindb_venv or default_venv_dir()
    install_dir = default_install_dir()

    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-registry-", dir=args.tmp_dir))
    results: dict = {}
    versions: dict = {"python": platform.python_version()}
    errors: dict = {}
    namespace = run_namespace()
    extra: dict = {"database": database_note(namespace)}
    try:
        plan = make_plan(args, tmp / "files", namespace)
        extra["cpus"] = os.cpu_count()
        extra["loadavg_1m_start"] = round(os.getloadavg()[0], 2)
        extra["files_s"] = round(make_files(tmp / "files", plan["n_total"], namespace), 3)
        _say("bench", f"{plan['n_total']} input files in {extra['files_s']:.1f} s under {tmp}")
        plan_file = tmp / "plan.json"
        plan_file.write_text(json.dumps(plan))

        sides = []
        if not args.skip_lamindb:
            sides.append(("lamindb", lambda: run_lamindb(args, plan_file, tmp, venv_dir)))
        if not args.skip_lineage:
            sides.append(("lineage", lambda: run_lineage(args, plan, tmp, install_dir)))
        for side, run in sides:
            t0 = time.perf_counter()
            try:
                fig, ver = run()
            except Exception as exc:  # noqa: BLE001 - report the other side's figures anyway
                traceback.print_exc()
                errors[side] = f"{type(exc).__name__}: {exc}"
                continue
            fig["side_wall_s"] = time.perf_counter() - t0
            results[side] = fig
            versions.update(ver)
        extra["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        summary = report(plan, results, versions, errors, extra)
    finally:
        if args.keep_tmp:
            _say("bench", f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
