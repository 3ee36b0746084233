"""Load at scale: 100k artifacts and 10k collections through the public API, then queries.

    python benchmarks/scale.py                  # 100k artifacts, 10k collections of 10
    python benchmarks/scale.py --quick          # 10k artifacts, 1k collections
    python benchmarks/scale.py --artifacts 50000 --collections 5000 --keep

Against a fresh local Neo4j started by this script in its own temporary lineage home on a free
port (the Neo4j jars are shared with the user's install; `NEO4J_URI` is ignored), stopped at the
end unless `--keep`. Phases, each timed:

1. files: `--artifacts` tiny files with distinct content in a temporary directory (not timed
   against the registry; the constructor hashes them).
2. artifacts: per chunk of `--chunk`, `ln.Artifact(path, key="scale/{i:06d}.txt")` for each file
   (hash + duplicate-check round trip each), then one `ln.save(chunk)`. Construct and save are
   timed apart. Only the uids are kept afterwards, so the Python process holds no more records
   than one chunk's.
3. collections: `--collections` collections of `--members` consecutive artifacts each. Per chunk
   of `--collection-chunk` collections: the members are fetched again with one
   `ln.Artifact.filter(uid__in=...)` (timed apart: it is this benchmark's way of not holding 100k
   artifacts, not part of registering), `ln.Collection(members, key=...)` for each, then one
   `ln.save(chunk)`. `ln.save` writes new artifacts and new collections with `UNWIND` in bulk
   (one transaction per batch); the script counts the write transactions of the first chunk's
   `ln.save` and reports which path it took.
4. queries, with the whole graph loaded, each call timed alone (p50/p95/p99/max, ms):
   `ln.Artifact.get(uid)` for `--n-get` random uids; `ln.Artifact.filter(key__startswith=p)`
   for random prefixes matching 10, 100 and 1000 artifacts (zero-padded keys: "scale/00012"
   matches 100), `.to_list()` (records built), `.df(limit=None)` (a DataFrame of every row)
   and `.count()` (one count query); and
   `ln.Collection.get(uid)` then `.ordered_artifacts.to_list()` for `--n-collection-get` random
   collections. Results are checked: the right uid, the right number of rows and members.

Memory: peak RSS of this process (`ru_maxrss`) and its RSS (`/proc/self/status` VmRSS) after
every chunk, with the slope of RSS against records registered over the second half of each
phase (MB per 10k records: near 0 when memory is bounded); the Neo4j JVM's VmRSS and VmHWM at
the end. The load average is reported since other processes may share the machine.

Prints the figures as they come (stderr) and a summary (stdout), then, last, one JSON line with
every figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

KEY = "scale/{:06d}.txt"  # six digits: a prefix of k digits after "scale/" matches 10^(6-k) keys
COLLECTION_KEY = "scale-collection/{:05d}"
SIZES = (10, 100, 1000)  # rows a filter prefix should match


def _say(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _proc_kb(pid: int | str, field: str) -> int | None:
    """A `/proc/<pid>/status` memory field (VmRSS, VmHWM) in kB, None if unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _rss_mb() -> float:
    kb = _proc_kb("self", "VmRSS")
    return kb / 1024 if kb is not None else float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _pcts(times_s: list[float]) -> dict[str, float]:
    ms = sorted(t * 1e3 for t in times_s)
    q = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else ms * 99
    return {
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "max": ms[-1],
        "mean": statistics.fmean(ms),
        "n": len(ms),
    }


def _slope_mb_per_10k(samples: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of RSS (MB) against records registered, over the second half of
    the samples (the first chunks also fill what is bounded: imports, the driver's connection
    pool, the Storage and User records cached per instance)."""
    tail = samples[len(samples) // 2 :]
    if len(tail) < 5:  # fewer: one allocator step of 1 MB reads as a slope of tens of MB per 10k
        return None
    xs, ys = [float(n) for n, _ in tail], [mb for _, mb in tail]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var * 10_000


def _list_mb(strings: list[str]) -> float:
    """What the benchmark's own list of uids takes: part of any RSS growth, not lineage's."""
    return (sys.getsizeof(strings) + sum(sys.getsizeof(s) for s in strings)) / 2**20


def _show_samples(samples: list[tuple[int, float]], k: int = 6) -> str:
    """A few (count, RSS) samples spread over the phase, first and last included, and the
    growth from the first to the last."""
    if len(samples) <= k:
        picked = samples
    else:
        picked = [samples[round(i * (len(samples) - 1) / (k - 1))] for i in range(k)]
    growth = samples[-1][1] - samples[0][1]
    return (
        ", ".join(f"{n}: {mb:.0f} MB" for n, mb in picked) + f" (first to last: {growth:+.1f} MB)"
    )


class WriteCounter:
    """Counts `Connection.write` calls (one each per write transaction) while active."""

    def __init__(self) -> None:
        from graph.connection import Connection

        self.cls = Connection
        self.original = Connection.write
        self.count = 0

    def __enter__(self) -> Self:
        original = self.original

        def write(conn, work):  # type: ignore[no-untyped-def]
            self.count += 1
            return original(conn, work)

        self.cls.write = write  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.cls.write = self.original  # type: ignore[method-assign]


# -- the phases ----------------------------------------------------------------------------------


def make_files(files_dir: Path, n: int) -> float:
    t0 = time.perf_counter()
    files_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (files_dir / f"{i}.txt").write_text(f"lineage scale benchmark file {i}\n")
    return time.perf_counter() - t0


def load_artifacts(ln: Any, files_dir: Path, n: int, chunk: int) -> tuple[dict, list[str]]:
    fig: dict[str, Any] = {"n": n, "chunk": chunk}
    construct = save = 0.0
    uids: list[str] = []
    samples: list[tuple[int, float]] = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t0 = time.perf_counter()
        batch = [
            ln.Artifact(str(files_dir / f"{i}.txt"), key=KEY.format(i)) for i in range(start, stop)
        ]
        t1 = time.perf_counter()
        ln.save(batch)
        t2 = time.perf_counter()
        construct += t1 - t0
        save += t2 - t1
        uids.extend(a.uid for a in batch)
        del batch  # the chunk's records are the only ones this loop holds
        samples.append((stop, _rss_mb()))
        _say(
            f"artifacts {stop}/{n}: {(stop - start) / (t2 - t0):.0f}/s "
            f"(construct {t1 - t0:.1f} s, save {t2 - t1:.1f} s), RSS {samples[-1][1]:.0f} MB, "
            f"load {os.getloadavg()[0]:.1f}"
        )
    fig.update(_phase_figures(n, construct, save, samples, uids))
    return fig, uids


def _phase_figures(
    n: int, construct: float, save: float, samples: list, uids: list[str]
) -> dict[str, Any]:
    """Throughput and memory figures of one loading phase (artifacts or collections)."""
    return {
        "construct_s": construct,
        "save_s": save,
        "total_s": construct + save,
        "per_s": n / (construct + save),
        "construct_per_s": n / construct,
        "save_per_s": n / save,
        "rss_samples": samples,
        "rss_slope_mb_per_10k": _slope_mb_per_10k(samples),
        "uid_list_mb": _list_mb(uids),
    }


def load_collections(
    ln: Any, artifact_uids: list[str], n: int, members: int, chunk: int
) -> tuple[dict, list[str]]:
    fig: dict[str, Any] = {"n": n, "members": members, "chunk": chunk}
    fetch = construct = save = 0.0
    uids: list[str] = []
    samples: list[tuple[int, float]] = []
    writes_first_chunk: int | None = None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        wanted = artifact_uids[start * members : stop * members]
        t0 = time.perf_counter()
        by_uid = {a.uid: a for a in ln.Artifact.filter(uid__in=wanted).to_list()}
        t1 = time.perf_counter()
        batch = [
            ln.Collection(
                [by_uid[u] for u in wanted[(j - start) * members : (j - start + 1) * members]],
                key=COLLECTION_KEY.format(j),
            )
            for j in range(start, stop)
        ]
        t2 = time.perf_counter()
        with WriteCounter() as writes:
            ln.save(batch)
        t3 = time.perf_counter()
        if writes_first_chunk is None:
            writes_first_chunk = writes.count
            per_record = writes.count >= len(batch)
            fig["save_path"] = "per-record (one transaction each)" if per_record else "bulk"
            fig["writes_first_chunk"] = writes.count
            fig["collections_first_chunk"] = len(batch)
            # The first chunk also pays Neo4j's planning of each statement it has not seen
            # (~30-120 ms each in a fresh JVM; once per server start): reported apart.
            fig["save_first_chunk_s"] = t3 - t2
        fetch += t1 - t0
        construct += t2 - t1
        save += t3 - t2
        uids.extend(c.uid for c in batch)
        del batch, by_uid
        samples.append((stop, _rss_mb()))
        _say(
            f"collections {stop}/{n}: {(stop - start) / (t3 - t1):.0f}/s "
            f"(fetch members {t1 - t0:.2f} s, construct {t2 - t1:.1f} s, save {t3 - t2:.1f} s), "
            f"RSS {samples[-1][1]:.0f} MB, load {os.getloadavg()[0]:.1f}"
        )
    fig.update(fetch_members_s=fetch, **_phase_figures(n, construct, save, samples, uids))
    rest = save - fig["save_first_chunk_s"]
    fig["save_per_s_after_first_chunk"] = (
        (n - fig["collections_first_chunk"]) / rest if rest else None
    )
    return fig, uids


def _timed(calls: list[Callable[[], Any]], check: Callable[[int, Any], bool]) -> tuple[dict, int]:
    times, wrong = [], 0
    for i, call in enumerate(calls):
        t0 = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - t0)
        wrong += not check(i, result)
    return _pcts(times), wrong


def run_queries(
    ln: Any,
    artifact_uids: list[str],
    collection_uids: list[str],
    args: argparse.Namespace,
) -> dict:
    rng = random.Random(args.seed)
    n = len(artifact_uids)
    fig: dict[str, Any] = {}

    # Warm-up outside the timings: the first queries of a shape pay Cypher planning.
    for uid in rng.sample(artifact_uids, min(20, n)):
        ln.Artifact.get(uid)
    picks = [rng.randrange(n) for _ in range(args.n_get)]
    _say(f"queries: Artifact.get(uid) x {len(picks)}")
    fig["artifact_get"], fig["artifact_get_wrong"] = _timed(
        [lambda i=i: ln.Artifact.get(artifact_uids[i]) for i in picks],
        lambda k, rec: rec.uid == artifact_uids[picks[k]],
    )

    for size in SIZES:
        digits = 6 - len(str(size)) + 1  # digits after "scale/" that fix all but log10(size)
        blocks = max(n // size, 1)
        prefixes = [
            f"scale/{b:0{digits}d}" for b in (rng.randrange(blocks) for _ in range(args.n_filter))
        ]
        # Expected rows, from the keys registered: block b holds keys b*size .. (b+1)*size - 1.
        expected = [min((int(p[6:]) + 1) * size, n) - int(p[6:]) * size for p in prefixes]
        for p in prefixes[:5]:
            ln.Artifact.filter(key__startswith=p).to_list()
            ln.Artifact.filter(key__startswith=p).df(limit=None)
            ln.Artifact.filter(key__startswith=p).count()
        _say(
            f"queries: filter(key__startswith) ~{size} rows x {len(prefixes)}, to_list, df and count"
        )
        fig[f"filter_{size}_to_list"], fig[f"filter_{size}_to_list_wrong"] = _timed(
            [lambda p=p: ln.Artifact.filter(key__startswith=p).to_list() for p in prefixes],
            lambda k, rows, expected=expected: len(rows) == expected[k],
        )
        fig[f"filter_{size}_df"], fig[f"filter_{size}_df_wrong"] = _timed(
            [lambda p=p: ln.Artifact.filter(key__startswith=p).df(limit=None) for p in prefixes],
            lambda k, frame, expected=expected: len(frame) == expected[k],
        )
        fig[f"filter_{size}_count"], fig[f"filter_{size}_count_wrong"] = _timed(
            [lambda p=p: ln.Artifact.filter(key__startswith=p).count() for p in prefixes],
            lambda k, count, expected=expected: count == expected[k],
        )
        fig[f"filter_{size}_rows_mean"] = statistics.fmean(expected)

    if collection_uids:
        for uid in rng.sample(collection_uids, min(20, len(collection_uids))):
            ln.Collection.get(uid).ordered_artifacts.to_list()
        cpicks = [rng.choice(collection_uids) for _ in range(args.n_collection_get)]
        _say(f"queries: Collection.get(uid) + ordered_artifacts.to_list() x {len(cpicks)}")
        get_times, members_times, wrong = [], [], 0
        for uid in cpicks:
            t0 = time.perf_counter()
            collection = ln.Collection.get(uid)
            t1 = time.perf_counter()
            artifacts = collection.ordered_artifacts.to_list()
            t2 = time.perf_counter()
            get_times.append(t1 - t0)
            members_times.append(t2 - t1)
            # Members were consecutive artifacts: their keys must come in order.
            keys = [a.key for a in artifacts]
            wrong += collection.uid != uid or len(artifacts) != args.members or keys != sorted(keys)
        fig["collection_get"] = _pcts(get_times)
        fig["collection_ordered_artifacts"] = _pcts(members_times)
        fig["collection_get_plus_members"] = _pcts(
            [a + b for a, b in zip(get_times, members_times)]
        )
        fig["collection_wrong"] = wrong
    return fig


# -- report ------------------------------------------------------------------------------------


def _row(label: str, p: dict) -> str:
    return f"{label:52s} {p['p50']:8.2f} {p['p95']:8.2f} {p['p99']:8.2f} {p['max']:8.2f} {p['mean']:8.2f} {p['n']:6d}"


def report(fig: dict) -> None:
    a, c, q, m = (
        fig["artifacts"],
        fig.get("collections"),
        fig.get("queries"),
        fig["memory"],
    )
    print()
    print(f"artifacts: {a['n']} in chunks of {a['chunk']}")
    print(
        f"  construct {a['construct_s']:.1f} s ({a['construct_per_s']:.0f}/s), ln.save {a['save_s']:.1f} s "
        f"({a['save_per_s']:.0f}/s), together {a['total_s']:.1f} s = {a['per_s']:.0f} artifacts/s"
    )
    print(f"  RSS after chunks: {_show_samples(a['rss_samples'])}")
    if a["rss_slope_mb_per_10k"] is not None:
        print(f"  RSS slope, second half: {a['rss_slope_mb_per_10k']:+.2f} MB per 10k artifacts")
    print(
        f"  of which this script's list of {a['n']} uids: {a['uid_list_mb']:.1f} MB "
        f"({a['uid_list_mb'] / a['n'] * 10_000:.2f} MB per 10k)"
    )
    if c:
        print(f"collections: {c['n']} of {c['members']} artifacts, in chunks of {c['chunk']}")
        print(
            f"  construct {c['construct_s']:.1f} s ({c['construct_per_s']:.0f}/s), ln.save {c['save_s']:.1f} s "
            f"({c['save_per_s']:.0f}/s), together {c['total_s']:.1f} s = {c['per_s']:.0f} collections/s"
        )
        if c["save_per_s_after_first_chunk"] is not None:
            print(
                f"  ln.save after the first chunk ({c['save_first_chunk_s']:.2f} s, new statements "
                f"planned): {c['save_per_s_after_first_chunk']:.0f} collections/s"
            )
        print(
            f"  ln.save path for collections: {c['save_path']} ({c['writes_first_chunk']} write "
            f"transactions for {c['collections_first_chunk']} collections); fetching members again "
            f"(filter uid__in, not counted above): {c['fetch_members_s']:.1f} s"
        )
        print(f"  RSS after chunks: {_show_samples(c['rss_samples'])}")
        if c["rss_slope_mb_per_10k"] is not None:
            print(
                f"  RSS slope, second half: {c['rss_slope_mb_per_10k']:+.2f} MB per 10k collections"
            )
        print(
            f"  of which this script's list of {c['n']} uids: {c['uid_list_mb']:.1f} MB "
            f"({c['uid_list_mb'] / c['n'] * 10_000:.2f} MB per 10k)"
        )
    print(
        f"memory: Python peak RSS (ru_maxrss) {m['python_peak_rss_mb']:.0f} MB, RSS at end "
        f"{m['python_rss_end_mb']:.0f} MB (after gc {m['python_rss_end_after_gc_mb']:.0f} MB); "
        f"Neo4j JVM (pid {m['neo4j_pid']}) VmRSS {m['neo4j_rss_mb'] or float('nan'):.0f} MB, "
        f"VmHWM {m['neo4j_hwm_mb'] or float('nan'):.0f} MB (heap {m['neo4j_heap']}, pagecache {m['neo4j_pagecache']})"
    )
    if q:
        print()
        print(
            f"{'query (ms, each call timed alone)':52s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'max':>8s} {'mean':>8s} {'n':>6s}"
        )
        print(_row("Artifact.get(uid)", q["artifact_get"]))
        for size in SIZES:
            rows = q[f"filter_{size}_rows_mean"]
            print(
                _row(
                    f"Artifact.filter(key__startswith) {rows:.0f} rows .to_list()",
                    q[f"filter_{size}_to_list"],
                )
            )
            if f"filter_{size}_df" in q:
                print(
                    _row(
                        f"Artifact.filter(key__startswith) {rows:.0f} rows .df(limit=None)",
                        q[f"filter_{size}_df"],
                    )
                )
            print(
                _row(
                    f"Artifact.filter(key__startswith) {rows:.0f} rows .count()",
                    q[f"filter_{size}_count"],
                )
            )
        if "collection_get" in q:
            print(_row("Collection.get(uid)", q["collection_get"]))
            print(_row("  .ordered_artifacts.to_list()", q["collection_ordered_artifacts"]))
            print(
                _row(
                    "  get + ordered_artifacts together",
                    q["collection_get_plus_members"],
                )
            )
        wrong = {k: v for k, v in q.items() if k.endswith("_wrong") and v}
        if wrong:
            print(f"!! wrong results: {wrong}")
    print(
        f"machine: {fig['cpus']} CPUs, load average (1 min) {fig['loadavg_1m_start']} at start, "
        f"{fig['loadavg_1m_max']} highest seen between phases, {fig['loadavg_1m_end']} at end"
    )
    if fig["loadavg_1m_max"] > (fig["cpus"] or 1):
        print(
            "note: load above the CPU count: other processes competed; throughput figures are low-side"
        )


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--artifacts",
        type=int,
        default=None,
        help="default 100000 (10000 with --quick)",
    )
    parser.add_argument(
        "--collections",
        type=int,
        default=None,
        help="default 10000 (1000 with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="10k artifacts, 1k collections")
    parser.add_argument("--members", type=int, default=10, help="artifacts per collection")
    parser.add_argument("--chunk", type=int, default=2000, help="artifacts per ln.save")
    parser.add_argument("--collection-chunk", type=int, default=200, help="collections per ln.save")
    parser.add_argument("--n-get", type=int, default=1000)
    parser.add_argument(
        "--n-filter",
        type=int,
        default=100,
        help="prefixes per size (10, 100, 1000 rows)",
    )
    parser.add_argument("--n-collection-get", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the server and temporary files for inspection",
    )
    parser.add_argument(
        "--tmp-dir", type=Path, default=None, help="where the temporary directory goes"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write a cProfile of the load phases here",
    )
    args = parser.parse_args()
    n_art = args.artifacts if args.artifacts is not None else (10_000 if args.quick else 100_000)
    n_coll = args.collections if args.collections is not None else (1_000 if args.quick else 10_000)
    if (
        n_art < 1
        or n_coll < 0
        or min(args.members, args.chunk, args.collection_chunk, args.n_get, args.n_filter) < 1
    ):
        parser.error("sizes must be positive")
    if n_coll * args.members > n_art:
        parser.error(
            f"{n_coll} collections of {args.members} need {n_coll * args.members} artifacts, not {n_art}"
        )
    if n_art > 1_000_000:
        parser.error("keys have six digits: at most 1000000 artifacts")

    # A `kill` still runs the finally block: stop our Neo4j server, remove the temporary files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    here = Path(__file__).resolve().parent
    # benchmarks/ holds lineage.py (the lineage benchmark): with this directory first on
    # sys.path, `import lineage` would import it instead of the package. The root goes first.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lineage_env
    from _lineage_env import database_note, free_port
    from graph.server import LocalServer, default_install_dir

    # The jars of the user's install (read from the real LINEAGE_HOME), everything else ours.
    install_dir = default_install_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-scale-", dir=args.tmp_dir))
    for var in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        os.environ.pop(var, None)  # always a fresh local server, never someone's database
    os.environ["LINEAGE_HOME"] = str(tmp / "lineage-home")
    os.environ["LINEAGE_NEO4J_INSTALL"] = str(install_dir)
    os.environ["LINEAGE_NEO4J_PORT"] = str(free_port())

    fig: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "database": database_note(""),  # NEO4J_URI is ignored: always a server of its own
        "args": {
            "artifacts": n_art,
            "collections": n_coll,
            **{k: v for k, v in vars(args).items() if k not in ("tmp_dir", "profile")},
        },
    }
    loads = [fig["loadavg_1m_start"]]
    ok = False
    try:
        _say(f"writing {n_art} files under {tmp}")
        fig["files_s"] = make_files(tmp / "files", n_art)
        import lineage as ln

        t0 = time.perf_counter()
        instance = ln.connect()
        fig["connect_s"] = time.perf_counter() - t0
        fig["neo4j"] = f"{instance.server_version} {instance.server_edition}"
        server = LocalServer()
        status = server.status()
        _say(f"connected in {fig['connect_s']:.1f} s: {instance!r}, server pid {status.pid}")
        ln.settings.storage = str(tmp / "storage")
        fig["python_rss_before_load_mb"] = _rss_mb()

        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        fig["artifacts"], artifact_uids = load_artifacts(ln, tmp / "files", n_art, args.chunk)
        loads.append(os.getloadavg()[0])
        collection_uids: list[str] = []
        if n_coll:
            fig["collections"], collection_uids = load_collections(
                ln, artifact_uids, n_coll, args.members, args.collection_chunk
            )
            loads.append(os.getloadavg()[0])
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
            _say(f"cProfile of the load phases: {args.profile}")

        fig["queries"] = run_queries(ln, artifact_uids, collection_uids, args)
        loads.append(os.getloadavg()[0])

        rss_end = _rss_mb()
        gc.collect()
        fig["memory"] = {
            "python_peak_rss_mb": _peak_rss_mb(),
            "python_rss_before_load_mb": fig.pop("python_rss_before_load_mb"),
            "python_rss_end_mb": rss_end,
            "python_rss_end_after_gc_mb": _rss_mb(),
            "neo4j_pid": status.pid,
            "neo4j_rss_mb": (_proc_kb(status.pid, "VmRSS") or 0) / 1024 or None,
            "neo4j_hwm_mb": (_proc_kb(status.pid, "VmHWM") or 0) / 1024 or None,
            "neo4j_heap": server.heap,
            "neo4j_pagecache": server.pagecache,
            "neo4j_store_mb": sum(
                f.stat().st_size for f in (tmp / "lineage-home").rglob("*") if f.is_file()
            )
            / 2**20,
        }
        fig["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        fig["loadavg_1m_max"] = round(max(loads + [fig["loadavg_1m_end"]]), 2)
        report(fig)
        ok = True
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        try:
            if "lineage" in sys.modules:
                sys.modules["lineage"].disconnect()
        except Exception:  # noqa: BLE001 - stopping the server matters more
            traceback.print_exc()
        if args.keep:
            st = LocalServer().status()
            _say(
                f"kept: server {st.uri if st.running else '(not running)'} pid {st.pid}, home {tmp}"
            )
            _say(
                f"stop it with: LINEAGE_HOME={tmp / 'lineage-home'} python -m lineage server stop; rm -rf {tmp}"
            )
        else:
            LocalServer().stop()  # the temporary home's server; a no-op if it never started
            shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        print(json.dumps(_rounded(fig)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
