"""Which samples: the cost of recording the rows a run saw, and of asking which runs saw rows.

    python benchmarks/samples.py               # 1,000,000 rows in 4 files, 50 runs
    python benchmarks/samples.py --quick       # 100,000 rows, 10 runs

Builds a collection of `--files` `.h5ad` files with `--rows` rows in all (obs names
`f<file>_cell<row>`, a `cell_type` column of 20 labels in random order, X one column), then
`--runs` tracked runs, each `collection.mapped(obs_filter={"cell_type": <5 random labels>})`
(about a quarter of the rows, scattered) and a model artifact, then `ln.finish()`, which writes
each run's row sets. Timed:

- `used_by`: `ln.lineage.used_by(collection, obs=<100 random obs names>)`, p50 of `--repeats`
  calls with other names each time; the first call (which reads the files' obs indexes) is
  reported apart as `used_by_first_ms`. Goal: p50 <= 50 ms at 1M rows and 50 runs.
- `samples`: `ln.lineage.samples(run)` of one run (decodes its row sets, names from the
  indexes).
- `finish`: `ln.finish()` of one run (its row sets encoded and written with the run).
- The row-set encodings on a 1M-row file for five selections, in bytes: what is stored (the
  smaller of a plain bitmap and zlib-compressed ranges, `loaders.rowsets`) against a plain
  bitmap, a zlib-compressed bitmap and zlib-compressed (start, stop) int64 ranges.

lamindb has no sample-level lineage (a run's inputs are whole artifacts and collections), so
there is no lamindb side; the JSON says so. Runs on `NEO4J_URI` if set, else a local server in
a temporary lineage home (`_lineage_env.py`). Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

GOAL_USED_BY_MS = 50.0
N_LABELS = 20


def _say(message: str) -> None:
    print(f"[samples {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ranges_bytes(rows, np) -> int:  # type: ignore[no-untyped-def]
    """Sorted rows as (start, stop) int64 pairs, zlib-compressed: the alternative encoding."""
    if len(rows) == 0:
        return len(zlib.compress(b""))
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([[rows[0]], rows[breaks + 1]])
    stops = np.concatenate([rows[breaks] + 1, [rows[-1] + 1]])
    return len(zlib.compress(np.stack([starts, stops], 1).astype(np.int64).tobytes(), 6))


def encodings(np) -> dict:  # type: ignore[no-untyped-def]
    from loaders.rowsets import RANGES, encode_rows

    n = 1_000_000
    rng = np.random.default_rng(0)
    labels = rng.integers(0, N_LABELS, n)
    selections = {
        "all rows": np.arange(n),
        "first half": np.arange(n // 2),
        "every other row": np.arange(0, n, 2),
        "5 of 20 labels, scattered (25%)": np.flatnonzero(labels < 5),
        "random 1%": np.flatnonzero(rng.random(n) < 0.01),
    }
    out = {}
    for name, rows in selections.items():
        t0 = time.perf_counter()
        bitmap = encode_rows(rows, n)
        ms = (time.perf_counter() - t0) * 1000
        out[name] = {
            "rows": len(rows),
            "stored_bytes": len(bitmap),
            "stored_as": "ranges" if bitmap[0] == RANGES else "bitmap",
            "bitmap_bytes": (n + 7) // 8 + 1,
            "bitmap_zlib_bytes": len(
                zlib.compress(np.packbits(np.isin(np.arange(n), rows)).tobytes(), 6)
            ),
            "ranges_zlib_bytes": _ranges_bytes(rows, np),
            "encode_ms": round(ms, 2),
        }
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict:
    import anndata as ad
    import numpy as np
    import pandas as pd
    from _lineage_env import database_note, run_namespace, scratch_lineage

    import lineage as ln
    from graph.server import default_install_dir

    namespace = run_namespace()
    fig: dict = {"database": database_note(namespace), "encodings_1M_rows": encodings(np)}
    rng = np.random.default_rng(1)
    per_file = args.rows // args.files
    with scratch_lineage(tmp, default_install_dir(), _say):
        ln.connect()
        t0 = time.perf_counter()
        artifacts = []
        for f in range(args.files):
            obs = pd.DataFrame(
                {
                    "cell_type": pd.Categorical(
                        [f"type{i}" for i in rng.integers(0, N_LABELS, per_file)]
                    )
                },
                index=[f"{namespace}f{f}_cell{i}" for i in range(per_file)],
            )
            adata = ad.AnnData(X=np.zeros((per_file, 1), dtype=np.float32), obs=obs)
            artifacts.append(ln.Artifact(adata, key=f"{namespace}bench/f{f}.h5ad").save())
        collection = ln.Collection(artifacts, key=f"{namespace}bench").save()
        fig["build_files_s"] = round(time.perf_counter() - t0, 2)
        finish_ms, mapped_ms = [], []
        runs = []
        for r in range(args.runs):
            run = ln.track(f"{namespace}train.py")
            chosen = tuple(f"type{i}" for i in rng.choice(N_LABELS, 5, replace=False))
            t0 = time.perf_counter()
            collection.mapped(obs_filter={"cell_type": chosen}).close()
            mapped_ms.append((time.perf_counter() - t0) * 1000)
            df = pd.DataFrame({"run": [r]})
            ln.Artifact(df, key=f"{namespace}models/model{r}.parquet").save()
            t0 = time.perf_counter()
            ln.finish()
            finish_ms.append((time.perf_counter() - t0) * 1000)
            runs.append(run)
        fig["mapped_construct_ms_p50"] = round(statistics.median(mapped_ms), 1)
        fig["finish_ms_p50"] = round(statistics.median(finish_ms), 1)
        stored = ln.cypher(
            "MATCH (:Run)-[e:USED]->(:Artifact) WHERE e.rows IS NOT NULL "
            "RETURN count(e) AS edges, sum(size(e.rows)) AS bytes"
        ).iloc[0]
        fig["row_set_edges"], fig["row_set_bytes"] = int(stored["edges"]), int(stored["bytes"])

        def names() -> list[str]:
            picks = rng.integers(0, per_file * args.files, 100)
            return [f"{namespace}f{p // per_file}_cell{p % per_file}" for p in picks]

        t0 = time.perf_counter()
        found = ln.lineage.used_by(collection, obs=names())
        fig["used_by_first_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        times = []
        for _ in range(args.repeats):
            asked = names()
            t0 = time.perf_counter()
            found = ln.lineage.used_by(collection, obs=asked)
            times.append((time.perf_counter() - t0) * 1000)
        fig["used_by_ms_p50"] = round(statistics.median(times), 2)
        fig["used_by_ms_p90"] = round(statistics.quantiles(times, n=10)[-1], 2)
        fig["used_by_runs_found_last"] = len(found)
        times = []
        for _ in range(max(3, args.repeats // 10)):
            t0 = time.perf_counter()
            seen = ln.lineage.samples(runs[0])
            times.append((time.perf_counter() - t0) * 1000)
        fig["samples_ms_p50"] = round(statistics.median(times), 1)
        fig["samples_rows"] = len(seen)
    return fig


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 10 runs, 20 repeats")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.runs, args.repeats = 100_000, 10, 20
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))  # _lineage_env
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-samples-") as tmp:
        fig = run(args, Path(tmp))
    goal = args.rows >= 1_000_000 and args.runs >= 50
    out = {
        "benchmark": "samples",
        "quick": args.quick,
        "rows": args.rows,
        "files": args.files,
        "runs": args.runs,
        "lineage": fig,
        "lamindb": None,
        "lamindb_omitted": "lamindb records no sample-level lineage: a run's inputs are whole "
        "artifacts and collections, so there is nothing to compare",
        "goal_used_by_ms_p50": GOAL_USED_BY_MS,
        "goal_met": (fig["used_by_ms_p50"] <= GOAL_USED_BY_MS) if goal else None,
        "loadavg_1m_start": load_start,
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
