"""Moving in and out at scale: import a large lamindb instance, export and import a dump.

    python benchmarks/transfer.py                        # 100k lamindb artifacts (and 20k, for memory)
    python benchmarks/transfer.py --sizes 20000,100000,500000
    python benchmarks/transfer.py --sizes 2000           # a quick look
    python benchmarks/transfer.py --keep-dumps DIR       # and keep each dump as DIR/dump-<N>

For each size N in `--sizes` (artifacts), against a fresh local Neo4j started in a temporary
lineage home on a free port (the Neo4j jars are shared with the user's install; `NEO4J_URI` is
ignored), stopped at the end:

1. build: a lamindb SQLite instance made by lamindb 2.x itself (`lamin init --storage DIR` in
   its own venv, see `_lamindb_env.py`), then filled by this file's `--worker lamindb` half in
   that venv through lamindb's Django models with `bulk_create` (lamindb's `save()` would take
   hours for 100k records; the rows are the same ones, only the per-record checks and file
   hashing are skipped): N artifacts in families of 4 versions (`bench/<i>.txt`, uids
   `<16-char stem><4-char version>`, one `is_latest` per family, distinct hashes), N/10 runs of
   N/100 transforms (each artifact the output of one run, and an input of the next run),
   N/100 collections of 10 members, 100 ulabels and one label link per artifact. Not timed
   against the import.
2. import lamindb: `ln.import_lamindb(instance)` in this process, timed. Records/s counts the
   rows of lamindb's registries read (users, storages, transforms, runs, labels, artifacts,
   collections); rows/s also counts the link rows (members, labels, run inputs).
3. export: `ln.export_graph(DIR)` of the whole graph in a child process, timed, with the child's
   RSS just before the export (after `import lineage` and connecting) and its peak RSS during
   the export (VmHWM, reset just before it through `/proc/self/clear_refs`), so the growth is
   the export's own.
4. import: `ln.import_graph(DIR)` into another, empty local server (its own home and port) in a
   child process, timed, peak RSS the same way; the node and edge counts are checked equal to
   the export's.

Records/s of a dump counts its nodes; lines/s counts nodes and edges (each a JSON line). Memory
stays flat when the peak RSS growth is about the same at every size.

Prints progress on stderr and, last, one JSON line with every figure and which goals are met:
lamindb import >= 5,000 records/s, dump export and import >= 20,000 records/s each (at the
largest size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# Standard library only above this line: `--worker lamindb` runs this file with the lamindb
# venv's interpreter, where neither `graph` nor `lineage` can be imported.

VERSIONS = 4  # artifacts per version family
MEMBERS = 10  # artifacts per collection
N_LABELS = 100

GOALS = {
    "import_lamindb_5k": "lamindb import >= 5,000 records/s",
    "export_20k": "dump export >= 20,000 records/s",
    "import_dump_20k": "dump import >= 20,000 records/s",
}


def _say(message: str) -> None:
    print(f"[transfer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _reset_peak() -> None:
    """Start VmHWM (peak RSS) again from the current RSS (Linux >= 4.0), so the peak read
    afterwards is the phase's own, not `import lineage`'s."""
    Path("/proc/self/clear_refs").write_text("5")


# -- the lamindb half (runs in lamindb's venv) -------------------------------------------------


def lamindb_worker(n: int) -> dict[str, Any]:
    """Fill the current (fresh) lamindb instance with `n` artifacts and what goes with them."""
    import lamindb as ln
    import lamindb_setup
    from django.db import models as djm

    lamindb_setup.settings.instance._is_on_hub = False
    ln.settings.verbosity = "error"

    def raw(cls: Any, **fields: Any) -> Any:
        # lamindb's constructors take a path and hash it; Django's takes the fields as they are.
        obj = cls.__new__(cls)
        djm.Model.__init__(obj, **fields)
        return obj

    t0 = time.perf_counter()
    user = ln.User.get(uid=lamindb_setup.settings.user.uid)
    storage = ln.settings.storage.record
    batch = 5000
    n_transforms, n_runs, n_coll = max(n // 100, 1), max(n // 10, 1), max(n // 100, 1)
    transforms = ln.Transform.objects.bulk_create(
        [
            raw(
                ln.Transform,
                uid=f"T{i:011d}0000",
                key=f"pipe/{i}.py",
                kind="pipeline",
                is_latest=True,
                created_by=user,
            )
            for i in range(n_transforms)
        ],
        batch_size=batch,
    )
    runs = ln.Run.objects.bulk_create(
        [
            raw(
                ln.Run,
                uid=f"R{i:019d}",
                transform=transforms[i % n_transforms],
                created_by=user,
                name=f"run {i}",
            )
            for i in range(n_runs)
        ],
        batch_size=batch,
    )
    labels = ln.ULabel.objects.bulk_create(
        [
            raw(ln.ULabel, uid=f"L{i:07d}", name=f"label {i}", created_by=user)
            for i in range(N_LABELS)
        ],
        batch_size=batch,
    )
    artifacts = ln.Artifact.objects.bulk_create(
        [
            raw(
                ln.Artifact,
                uid=f"A{i // VERSIONS:015d}{i % VERSIONS:04d}",
                key=f"bench/{i // VERSIONS}.txt",
                suffix=".txt",
                kind="dataset",
                size=100 + i,
                hash=f"h{i:021d}",
                _hash_type="md5",
                storage=storage,
                run=runs[i // 10],
                created_by=user,
                is_latest=(i % VERSIONS == VERSIONS - 1 or i == n - 1),
                version=str(i % VERSIONS + 1),
                _key_is_virtual=True,
                _overwrite_versions=False,
            )
            for i in range(n)
        ],
        batch_size=batch,
    )
    collections = ln.Collection.objects.bulk_create(
        [
            raw(
                ln.Collection,
                uid=f"C{i:015d}0000",
                key=f"coll/{i}",
                hash=f"c{i:021d}",
                run=runs[i % n_runs],
                created_by=user,
                is_latest=True,
            )
            for i in range(n_coll)
        ],
        batch_size=batch,
    )
    links = ln.models.CollectionArtifact.objects.bulk_create(
        [
            ln.models.CollectionArtifact(collection=c, artifact=artifacts[(i * MEMBERS + j) % n])
            for i, c in enumerate(collections)
            for j in range(MEMBERS)
        ],
        batch_size=batch,
    )
    label_links = ln.models.ArtifactULabel.objects.bulk_create(
        [
            ln.models.ArtifactULabel(artifact=a, ulabel=labels[i % N_LABELS])
            for i, a in enumerate(artifacts)
        ],
        batch_size=batch,
    )
    through = ln.Artifact.input_of_runs.through
    inputs = through.objects.bulk_create(
        [
            through(artifact=a, run=runs[i // 10 + 1])
            for i, a in enumerate(artifacts)
            if i // 10 + 1 < n_runs
        ],
        batch_size=batch,
    )
    return {
        "lamindb": ln.__version__,
        "seconds": round(time.perf_counter() - t0, 2),
        "transforms": len(transforms),
        "runs": len(runs),
        "ulabels": len(labels),
        "artifacts": len(artifacts),
        "collections": len(collections),
        "collection_members": len(links),
        "label_links": len(label_links),
        "run_inputs": len(inputs),
    }


# -- the child phases (this project's venv) ----------------------------------------------------


def phase(name: str, directory: Path) -> dict[str, Any]:
    """Export or import a dump in this (child) process; its timing and memory."""
    import lineage as ln

    ln.connect()
    gc.collect()
    _reset_peak()
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    if name == "export":
        report = ln.export_graph(directory)
        nodes, edges = sum(report.nodes.values()), sum(report.edges.values())
    else:
        imported = ln.import_graph(directory)
        nodes = sum(c["read"] for c in imported.records.values())
        edges = sum(imported.edges.values())
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "nodes": nodes,
        "edges": edges,
        "records_per_s": nodes / seconds,
        "lines_per_s": (nodes + edges) / seconds,
        "rss_before_mb": rss_before,
        "peak_rss_mb": _status_mb("VmHWM"),
        "peak_growth_mb": _status_mb("VmHWM") - rss_before,
    }


def _child(name: str, directory: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--dir", str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} child failed (rc {proc.returncode}): {proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def one_size(ln: Any, lenv: Any, tmp: Path, n: int, keep: Path | None) -> dict[str, Any]:
    from _lamindb_env import init_instance, run_worker
    from _lineage_env import free_port

    from graph.server import LocalServer

    fig: dict[str, Any] = {"artifacts": n}
    root, storage = tmp / f"lamin-{n}", tmp / f"lamin-{n}" / "storage"
    root.mkdir()
    _say(f"[{n}] lamin init")
    init_instance(lenv, root, storage)
    _say(f"[{n}] filling the lamindb instance (bulk_create)")
    fig["build"] = run_worker(lenv, root, [__file__, "--worker", "lamindb", "--n", str(n)])
    _say(f"[{n}] built: {fig['build']}")
    ln.connect()

    _say(f"[{n}] ln.import_lamindb")
    t0 = time.perf_counter()
    report = ln.import_lamindb(storage)
    seconds = time.perf_counter() - t0
    records = sum(c["read"] for c in report.records.values())
    rows = records + sum(report.edges.values())
    fig["import_lamindb"] = {
        "seconds": seconds,
        "records": records,
        "edges": sum(report.edges.values()),
        "records_per_s": records / seconds,
        "rows_per_s": rows / seconds,
        "skipped": report.skipped,
    }
    _say(f"[{n}] import lamindb: {records} records in {seconds:.1f} s ({records / seconds:.0f}/s)")
    dump = tmp / f"dump-{n}"
    ln.disconnect()
    fig["export"] = _child("export", dump)
    _say(f"[{n}] export: {fig['export']}")
    fig["dump_mb"] = sum(f.stat().st_size for f in dump.iterdir()) / 2**20
    # Into another, empty server (its own home and port), as a move between servers is.
    saved = {k: os.environ[k] for k in ("LINEAGE_HOME", "LINEAGE_NEO4J_PORT")}
    os.environ["LINEAGE_HOME"] = str(tmp / f"lineage-home-import-{n}")
    os.environ["LINEAGE_NEO4J_PORT"] = str(free_port())
    try:
        LocalServer().start()
        fig["import_dump"] = _child("import", dump)
    finally:
        LocalServer().stop()
        shutil.rmtree(os.environ["LINEAGE_HOME"], ignore_errors=True)
        os.environ.update(saved)
    _say(f"[{n}] import: {fig['import_dump']}")
    exported, imported = fig["export"], fig["import_dump"]
    fig["round_trip_counts_equal"] = (exported["nodes"], exported["edges"]) == (
        imported["nodes"],
        imported["edges"],
    )
    if keep is not None:  # for benchmarks/offline_import.py
        keep.mkdir(parents=True, exist_ok=True)
        shutil.move(dump, keep / dump.name)
    shutil.rmtree(dump, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    # The next size starts from an empty server of its own.
    LocalServer().stop()
    shutil.rmtree(os.environ["LINEAGE_HOME"], ignore_errors=True)
    return fig


def _rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 2)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="20000,100000", help="artifacts per lamindb instance")
    parser.add_argument("--tmp-dir", default=None)
    parser.add_argument("--keep-dumps", type=Path, default=None, help="keep each dump there")
    parser.add_argument("--worker", choices=["lamindb"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["export", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(lamindb_worker(args.n)))
        return 0
    here = Path(__file__).resolve().parent
    # benchmarks/ holds lineage.py (the lineage benchmark): the root goes first on sys.path.
    sys.path[:] = [str(here.parent)] + [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.append(str(here))
    if args.phase:
        print(json.dumps(phase(args.phase, args.dir)))
        return 0

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in args.sizes.split(",")]
    from _lamindb_env import default_venv_dir, ensure_lamindb
    from _lineage_env import free_port

    lenv = ensure_lamindb(default_venv_dir())  # read before LINEAGE_HOME changes
    from graph.server import LocalServer, default_install_dir

    install_dir = default_install_dir()
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-transfer-", dir=args.tmp_dir))
    for var in ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        os.environ.pop(var, None)
    os.environ["LINEAGE_HOME"] = str(tmp / "lineage-home")
    os.environ["LINEAGE_NEO4J_INSTALL"] = str(install_dir)
    os.environ["LINEAGE_NEO4J_PORT"] = str(free_port())
    fig: dict[str, Any] = {
        "benchmark": "transfer",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "lamindb": lenv.version,
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "database": "scratch: a local Neo4j server of its own, empty at the start",
        "sizes": {},
    }
    ok = False
    try:
        import lineage as ln

        server = LocalServer()
        fig["neo4j_heap"], fig["neo4j_pagecache"] = server.heap, server.pagecache
        for n in sizes:
            fig["sizes"][str(n)] = one_size(ln, lenv, tmp, n, args.keep_dumps)
            fig[f"loadavg_1m_after_{n}"] = round(os.getloadavg()[0], 2)
        largest = fig["sizes"][str(max(sizes))]
        fig["goals"] = {
            "import_lamindb_5k": largest["import_lamindb"]["records_per_s"] >= 5000,
            "export_20k": largest["export"]["records_per_s"] >= 20000,
            "import_dump_20k": largest["import_dump"]["records_per_s"] >= 20000,
        }
        for key, text in GOALS.items():
            _say(f"{'met   ' if fig['goals'][key] else 'MISSED'} {text}")
        ok = True
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        try:
            if "lineage" in sys.modules:
                sys.modules["lineage"].disconnect()
        finally:
            LocalServer().stop()
            shutil.rmtree(tmp, ignore_errors=True)
    if ok:
        print(json.dumps(_rounded(fig)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
