"""Training-loader throughput: our `loaders.MappedCollection` against lamindb's and the newest
single-cell loaders (scDataset, annbatch), same cells, same run, warm and cold.

    python benchmarks/mapped.py                       # 4 files x 50k cells x 2,000 genes
    python benchmarks/mapped.py --quick               # 4 files x 5k cells: a quick look
    python benchmarks/mapped.py --data /tmp/mc-data   # keep the h5ad files and reuse them next time
    python benchmarks/mapped.py --device cuda --no-lamindb --no-peers   # on a GPU machine
    python benchmarks/mapped.py --store zarr          # the same cells as AnnData zarr stores

Inputs: `--files` h5ad files of `--cells` x `--genes`, X a CSR float32 matrix at `--density`
(default 5%), obs with two categoricals, `cell_type` (20 categories, uneven) and `batch` (4), all
written by anndata (uncompressed) into a temporary directory, or into `--data DIR` and reused when
their parameters match (`bench-params.json` there). With `--store zarr` the same cells
are written as AnnData zarr stores instead (`--zarr-format`, default 3; anndata's default chunks
and compression), read by lamindb and ours (random, block, balanced, weighted, workers), warm only;
the ceiling, the pre-shuffled copy, the peers and the stream mode need .h5ad files and are left out.

Loaders, each in its own fresh subprocess so that its peak RSS (VmHWM) is its own, batches of 256
rows with `cell_type`, `num_workers=0`:

1. lamindb: `lamindb.core.MappedCollection(paths, obs_keys=["cell_type"])`, `batch_size=256`,
   shuffled, run with the lamindb venv's interpreter (`_lamindb_env.py`; the venv imports the
   project's torch through a `.pth` file). ~2k rows/s, so capped (`--lamindb-rows`,
   `--lamindb-budget`).
2. ours per-sample: lamindb's usage (`batch_size=256`, shuffled) on `loaders.MappedCollection`.
3. ours random: whole batches, `batch_size=None, sampler=BatchSampler(RandomSampler(ds), 256)`.
4. ours block: whole batches from `loaders.BlockShuffleSampler(ds, block_size=B, window=W)`, the
   config picked by a short sweep over `--block-sizes` ("B" or "B:W") unless `--block-size B[:W]`
   is given (each config's rows/s and shuffle quality are printed). At least one full pass, RSS
   after 1/4 of it, after it and at the end.
   ours preshuffled: the same on a copy of the cells in random order (`make_shuffled`, written
   once; its shuffle quality is measured in the original rows), the layout annbatch reads.
5. ours balanced: `loaders.BalancedBlockSampler(ds.get_merged_labels("cell_type"))` (its defaults)
   against 6. ours weighted: lamindb's recipe, `WeightedRandomSampler(ds.get_label_weights(...))`;
   both report how even the classes came out over an epoch (largest / smallest count).
7. scDataset (`_peer_env.py`: its own venv sharing our torch), over an `AnnCollection` of backed
   AnnData, with its defaults (`BlockShuffling(block_size=8)`, `fetch_factor=16`), matched to
   ours (our block size, fetches of our window of blocks) and its random access (block 1).
8. annbatch (`_peer_env.py`: first tried on this Python with `--ignore-requires-python`, which
   fails to import, recorded; then its own Python >= 3.12 venv, without torch), over the cells
   converted once into its pre-shuffled zarr collection (`DatasetCollection.add_adatas`, its
   defaults; the time is reported), with its defaults (`chunk_size=512, preload_nchunks=32`),
   matched to ours (`chunk_size=B`, `preload_nchunks=W`) and its random access (`chunk_size=1`,
   4,096 rows preloaded); batches densified like everyone's.
9. ceiling: consecutive 256-row slices straight from h5py, densified by scipy's C loop.

Each loader reads one batch untimed (warm-up), then until it has read `--rows` rows (default one
epoch) and spent `--min-seconds`, or `--budget` seconds; `--rounds` interleaved rounds (default 2),
the best kept. Then, unless `--no-cold`, each loader once more **cold**: every file (annbatch: its
store) evicted from the page cache with `posix_fadvise(POSIX_FADV_DONTNEED)` (as `vmtouch -e`)
before each epoch, one epoch; the bytes read from the disk come from `/proc/self/io`, and the
disk's sequential read speed (the files evicted, then read in 16 MiB reads) is measured at the
start and the end of the same run.

Every loader's **shuffle quality** is measured on what it yielded: the mean distance between
consecutive samples' source rows over n/3 (a uniformly random order gives 1, reading in order 0).

Two more modes: **workers** (the dataset's pickled size, and for `--workers` 0,1,2 with persistent
workers the time to the first batch of epochs 1 and 2 and their rows/s), and **stream**
(`MappedCollection(stream=True)` on s3:// served by moto over HTTP in its own process, which
counts requests: rows/s of a first epoch and requests per batch, block and random, against
lamindb's cache-first path: the whole files downloaded with s3fs, then read locally).

With `--device cuda` each batch goes through pinned memory, `.to("cuda", non_blocking=True)` and
a `Linear(n_genes, 64)` step, `torch.cuda.synchronize()` before the clock stops; without CUDA the
run stops at once with a message saying so. `--profile` prints each worker's top functions.

Prints a table (warm and cold rows/s, cold MB/s from disk and its share of the sequential speed,
shuffle quality, time to first batch warm and cold, peak RSS), the ratios, the goals (random >=
3x the best peer's random access; block >= the best peer at equal or better shuffle quality;
cold block >= 70% of the disk's sequential speed), the load average at start and end, and last one JSON line with every
figure (per loader under "loaders"). The random-access goal compares our random path with the
peers' random access (their one-row settings); the block goal compares every config of ours
(sweep, block, preshuffled, random) with the fastest peer at any setting, at equal or better
shuffle quality.
"""

from __future__ import annotations

import argparse
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
import warnings
from pathlib import Path

# Standard library only above this line: `--worker lamindb` runs this file with the lamindb
# venv's interpreter, where `loaders` cannot be imported; numpy, h5py and torch are imported
# where they are used.

BATCH = 256
OBS_KEY = "cell_type"
N_CELL_TYPES = 20
N_BATCHES = 4
PARAMS_FILE = "bench-params.json"
GOAL_RANDOM_X = 30.0  # ours random >= 30x lamindb
GOAL_BLOCK_ROWS_S = 250_000.0  # ours block >= 250k rows/s
MODES = (
    "lamindb",
    "samples",
    "random",
    "block",
    "preshuffled",
    "balanced",
    "weighted",
    "scdataset",
    "annbatch",
    "ceiling",
    "workers",
    "stream",
)
# The rows of the table: a mode and, for the peers, their two settings.
LOADERS = (
    "lamindb",
    "samples",
    "random",
    "block",
    "preshuffled",
    "balanced",
    "weighted",
    "scdataset",
    "scdataset-matched",
    "scdataset-random",
    "annbatch",
    "annbatch-matched",
    "annbatch-random",
    "ceiling",
)


def _say(tag: str, message: str) -> None:
    print(f"[{tag} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- inputs ------------------------------------------------------------------------------------


def _file_params(args: argparse.Namespace) -> dict:
    params = {
        "files": args.files,
        "cells": args.cells,
        "genes": args.genes,
        "density": args.density,
        "seed": args.seed,
        "format": 1,  # bump when the generator changes
    }
    if args.store == "zarr":
        params["zarr_format"] = args.zarr_format
    return params


def _random_csr(rng, n_cells: int, n_genes: int, density: float, chunk_rows: int = 4096):
    """A CSR float32 matrix with i.i.d. Bernoulli(density) entries, built by row chunks.

    Thresholding a chunk of uniforms gives each row's column indices already sorted and unique;
    a chunk is at most 4096 x n_genes floats, never the whole dense matrix (400M entries for
    the default four files).
    """
    import numpy as np
    import scipy.sparse as sp

    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    indices_parts, data_parts = [], []
    for start in range(0, n_cells, chunk_rows):
        stop = min(start + chunk_rows, n_cells)
        mask = rng.random((stop - start, n_genes), dtype=np.float32) < density
        rows, cols = np.nonzero(mask)  # row-major: sorted by row, then column
        indices_parts.append(cols.astype(np.int32))
        indptr[start + 1 : stop + 1] = (
            np.cumsum(np.bincount(rows, minlength=stop - start)) + indptr[start]
        )
        # Counts-like values >= 1, so the densified rows are not all ones.
        data_parts.append(np.ceil(rng.exponential(2.0, cols.size)).astype(np.float32))
    indices = np.concatenate(indices_parts) if indices_parts else np.zeros(0, np.int32)
    data = np.concatenate(data_parts) if data_parts else np.zeros(0, np.float32)
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)  # what anndata/scanpy write for matrices this size
    return sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


def make_files(args: argparse.Namespace, data_dir: Path) -> tuple[list[Path], float, bool]:
    """The h5ad files (generated, or reused when `bench-params.json` matches); (paths, seconds, reused)."""
    params = _file_params(args)
    paths = [data_dir / f"cells-{i}.{args.store}" for i in range(args.files)]
    marker = data_dir / PARAMS_FILE
    if marker.exists() and all(p.exists() for p in paths):
        try:
            if json.loads(marker.read_text()) == params:
                return paths, 0.0, True
        except json.JSONDecodeError:
            pass

    import anndata as ad
    import numpy as np
    import pandas as pd

    t0 = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(args.seed)
    cell_types = [f"type-{i:02d}" for i in range(N_CELL_TYPES)]
    batches = [f"batch-{i}" for i in range(N_BATCHES)]
    type_p = rng.dirichlet(np.ones(N_CELL_TYPES))  # uneven, like real cell type frequencies
    var = pd.DataFrame(index=pd.Index([f"gene-{j}" for j in range(args.genes)]))
    for i, path in enumerate(paths):
        x = _random_csr(rng, args.cells, args.genes, args.density)
        obs = pd.DataFrame(
            {
                "cell_type": pd.Categorical.from_codes(
                    rng.choice(N_CELL_TYPES, size=args.cells, p=type_p), categories=cell_types
                ),
                "batch": pd.Categorical.from_codes(
                    rng.integers(0, N_BATCHES, args.cells), categories=batches
                ),
            },
            index=pd.Index([f"f{i}-c{j}" for j in range(args.cells)]),
        )
        adata = ad.AnnData(X=x, obs=obs, var=var)
        if args.store == "zarr":
            ad.settings.zarr_write_format = args.zarr_format
            shutil.rmtree(path, ignore_errors=True)
            with warnings.catch_warnings():  # anndata's and zarr's notes on future defaults
                warnings.simplefilter("ignore")
                adata.write_zarr(path)
        else:
            adata.write_h5ad(path)
        _say("data", f"{path.name}: {args.cells} x {args.genes}, {x.nnz} stored values")
    marker.write_text(json.dumps(params))
    return paths, time.perf_counter() - t0, False


def make_shuffled(
    args: argparse.Namespace, data_dir: Path, paths: list[Path]
) -> tuple[list[Path], float]:
    """The same cells in a random order over as many files (what annbatch's `DatasetCollection`
    does to its copy), obs `src_row` holding each cell's row in the original files; written
    once, reused while the parameters match. (paths, seconds spent writing, 0 when reused)."""
    params = {**_file_params(args), "shuffled": 1}
    out = [data_dir / f"shuffled-{i}.h5ad" for i in range(args.files)]
    marker = data_dir / "shuffled-params.json"
    if (
        marker.exists()
        and all(p.exists() for p in out)
        and marker.read_text() == json.dumps(params)
    ):
        return out, 0.0
    import anndata as ad
    import numpy as np

    t0 = time.perf_counter()
    marker.unlink(missing_ok=True)
    whole = ad.concat([ad.read_h5ad(p) for p in paths], index_unique=None)
    whole.obs["src_row"] = np.arange(whole.n_obs, dtype=np.int64)
    order = np.random.default_rng([args.seed, 1]).permutation(whole.n_obs)
    for i, part in enumerate(np.array_split(order, args.files)):
        whole[part].copy().write_h5ad(out[i])
    marker.write_text(json.dumps(params))
    return out, time.perf_counter() - t0


def _h5_layout(path: Path) -> dict:
    """How X/data is stored (chunking and compression matter for every reader)."""
    if path.is_dir():  # a zarr store
        import zarr

        data = zarr.open_group(path, mode="r")["X"]["data"]
        return {
            "x_encoding": "csr_matrix",
            "zarr_format": data.metadata.zarr_format,
            "x_data_chunks": list(data.chunks),
            "x_data_shards": list(data.shards) if getattr(data, "shards", None) else None,
            "bytes": sum(p.stat().st_size for p in path.rglob("*") if p.is_file()),
        }
    import h5py

    with h5py.File(path, "r") as f:
        data = f["X"]["data"]
        group = f["X"]
        n_rows = int(group.attrs["shape"][0])
        x_bytes = sum(
            group[k].size * group[k].dtype.itemsize for k in ("data", "indices", "indptr")
        )
        return {
            "x_bytes_per_row": x_bytes / max(n_rows, 1),
            "x_encoding": f["X"].attrs.get("encoding-type", "?"),
            "x_data_chunks": list(data.chunks) if data.chunks else None,
            "x_compression": data.compression,
            "bytes": path.stat().st_size,
        }


# -- the workers: one mode per process ---------------------------------------------------------


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB; peak from VmHWM, else ru_maxrss."""
    try:
        fields = {}
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    fields[key] = int(value.split()[0]) / 1024
        if len(fields) == 2:
            return fields["VmRSS"], fields["VmHWM"]
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS
    return peak_mb, peak_mb


def _read_bytes() -> int | None:
    """Bytes this process caused to be read from storage (`read_bytes` of /proc/self/io)."""
    try:
        with open("/proc/self/io") as fh:
            for line in fh:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _files_under(paths: list[str]) -> list[str]:
    out = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                out.extend(os.path.join(root, name) for name in names)
        else:
            out.append(path)
    return out


def _evict(paths: list[str]) -> None:
    """Drop the files (or every file under a folder) from the page cache, as `vmtouch -e` does:
    `posix_fadvise(POSIX_FADV_DONTNEED)` on the whole file; clean pages go at once."""
    for path in _files_under(paths):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def disk_speed(paths: list[str], block: int = 16 << 20) -> dict:
    """The disk's sequential read speed: the files evicted, then read whole in 16 MiB reads."""
    _evict(paths)
    total, t0 = 0, time.perf_counter()
    for path in _files_under(paths):
        fd = os.open(path, os.O_RDONLY)
        try:
            while chunk := os.read(fd, block):
                total += len(chunk)
        finally:
            os.close(fd)
    seconds = time.perf_counter() - t0
    return {"mb": total / 1e6, "seconds": seconds, "mb_per_s": total / 1e6 / seconds}


class _Positions:
    """The source positions (global row numbers) of the samples a loader yielded, per epoch; the
    shuffle-quality figure is the mean distance between consecutive ones over `n / 3`, what a
    uniformly random order gives (so ~1: random, ~0: in order)."""

    def __init__(self):
        self.epochs: list[list] = []

    def new_epoch(self) -> None:
        self.epochs.append([])

    def add(self, positions) -> None:
        if not self.epochs:
            self.new_epoch()
        self.epochs[-1].append(positions)

    def quality(self, n: int, source=None) -> float | None:
        """`source` maps a position to the row it came from (a pre-shuffled copy's `src_row`)."""
        import numpy as np

        total = count = 0
        for parts in self.epochs:
            if not parts:
                continue
            pos = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1) for p in parts])
            if source is not None:
                pos = source[pos]
            if len(pos) > 1:
                total += float(np.abs(np.diff(pos)).sum())
                count += len(pos) - 1
        return None if not count or n < 2 else (total / count) / (n / 3)


class _Recorded:
    """A sampler (of indices, or of lists of indices) that notes what it hands out."""

    def __init__(self, sampler, positions: _Positions):
        self.sampler, self.positions = sampler, positions

    def __iter__(self):
        self.positions.new_epoch()
        for item in self.sampler:
            self.positions.add([item] if isinstance(item, int) else item)
            yield item

    def __len__(self) -> int:
        return len(self.sampler)


class _Step:
    """What each batch goes through after the loader: nothing on CPU; on CUDA a copy and a train step."""

    def __init__(self, device: str, n_genes: int):
        try:
            import torch
        except ImportError:  # annbatch's venv (Python >= 3.12) has no torch: count rows only
            torch = None
        self.torch = torch
        self.cuda = device == "cuda"
        if self.cuda:
            if torch is None or not torch.cuda.is_available():
                raise SystemExit(
                    "--device cuda: torch.cuda.is_available() is False in the worker"
                    + (" (no torch in this venv)" if torch is None else "")
                )
            self.model = torch.nn.Linear(n_genes, 64).to("cuda")
            self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)

    def __call__(self, x, y) -> int:
        torch = self.torch
        if torch is None:
            return int(x.shape[0])
        if not isinstance(x, torch.Tensor):
            x = torch.from_numpy(x)
        if self.cuda:
            x = x.to("cuda", non_blocking=True)
            y = torch.as_tensor(y).to("cuda", non_blocking=True)  # moved as a training loop would
            loss = self.model(x.float()).square().mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return int(x.shape[0])

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()


def _drive(make_epoch, step: _Step, plan: dict, checkpoints: dict[str, int] | None = None) -> dict:
    """Consume (x, y) batches from `make_epoch()`: one untimed, then the measured ones; the figures.

    Measures until `max_rows` rows and `min_s` seconds are both behind it, or `budget_s` seconds,
    with at least `min_batches` batches; starts another epoch when one runs out (a fast mode on
    small files would otherwise be timed over a few milliseconds). `checkpoints` maps a name to a
    row count at which to record (RSS, peak RSS); "end" is recorded at the end.
    """
    evict = plan.get("evict") if plan.get("cold") else None

    def fresh_epoch():
        if evict:  # cold: nothing of the files in the page cache when an epoch begins
            _evict(evict)
        return iter(make_epoch())

    t0 = time.perf_counter()
    epoch = fresh_epoch()
    step(*next(epoch))
    step.sync()
    first_s = time.perf_counter() - t0

    max_rows, budget, min_batches = plan["max_rows"], plan["budget_s"], plan["min_batches"]
    min_s = min(plan.get("min_s", 0.0), budget)
    pending = sorted((checkpoints or {}).items(), key=lambda kv: kv[1])
    marks: dict = {}
    rows = n = epochs = 0

    def mark(name: str) -> None:
        rss, peak = _rss_mb()
        marks[name] = {"rows": rows, "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1)}

    profiler = None
    if plan.get("profile"):  # the measured loop only: not imports, set-up or the warm-up batch
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu_start = time.perf_counter(), time.process_time()
    disk_start = _read_bytes()
    while True:
        batch = next(epoch, None)
        if batch is None:  # epoch over: go on with a fresh one
            epochs += 1
            epoch = fresh_epoch()
            continue
        rows += step(*batch)
        n += 1
        while pending and rows >= pending[0][1]:
            mark(pending.pop(0)[0])
        if n >= min_batches:
            elapsed = time.perf_counter() - start
            if (rows >= max_rows and elapsed >= min_s) or elapsed >= budget:
                break
    step.sync()
    seconds = time.perf_counter() - start
    disk_bytes = _read_bytes() - disk_start if disk_start is not None else None
    # CPU seconds of this process (all its threads): on a shared machine rows per CPU-second
    # moves much less than rows per wall-second when others compete for the cores.
    cpu_s = time.process_time() - cpu_start
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(
            f"--- profile of the measured batches (tottime) ---\n{out.getvalue()}",
            file=sys.stderr,
            flush=True,
        )
    if checkpoints:
        mark("end")
    return {
        "rows": rows,
        "batches": n,
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds > 0 else None,
        "cpu_s": cpu_s,
        "rows_per_cpu_s": rows / cpu_s if cpu_s > 0 else None,
        "epochs_started": epochs + 1,
        "first_batch_s": first_s,
        "checkpoints": marks or None,
        "cold": bool(evict),
        # Bytes this process had read from the disk (not the page cache) while measured.
        "disk_read_mb": None if disk_bytes is None else disk_bytes / 1e6,
        "disk_mb_per_s": None if disk_bytes is None or seconds <= 0 else disk_bytes / 1e6 / seconds,
    }


def _pairs(loader, x_key: str = "X", y_key: str = OBS_KEY):
    """(x, y) out of each batch dict a loader yields."""
    for batch in loader:
        yield batch[x_key], batch[y_key]


def _loader(dataset, plan: dict, **kwargs):
    """A DataLoader collating 256 samples a batch (lamindb's way, and our per-sample path)."""
    from torch.utils.data import DataLoader

    # A batched dataset may ship its own collate (its __getitems__ returns a whole batch).
    collate = getattr(dataset, "collate_fn", None)
    if callable(collate):
        kwargs["collate_fn"] = collate
    return DataLoader(
        dataset,
        batch_size=BATCH,
        num_workers=0,
        pin_memory=plan["device"] == "cuda",
        **kwargs,
    )


def _batch_loader(dataset, plan: dict, sampler, positions: _Positions | None = None, **kwargs):
    """A DataLoader fetching whole batches: `dataset[indices]` for 256 indices of `sampler` at a
    time (`batch_size=None`: torch only turns each array of the batch into a tensor)."""
    from torch.utils.data import BatchSampler, DataLoader

    batches = BatchSampler(sampler, BATCH, drop_last=False)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=batches if positions is None else _Recorded(batches, positions),
        pin_memory=plan["device"] == "cuda",
        **{"num_workers": 0, **kwargs},
    )


def _run_lamindb(plan: dict, step: _Step) -> tuple[dict, dict]:
    import lamindb_setup

    # No instance: MappedCollection only needs lamindb_setup's UPath and anndata accessors.
    from lamindb.core._mapped_collection import MappedCollection
    from torch.utils.data import RandomSampler

    t0 = time.perf_counter()
    ds = MappedCollection(plan["paths"], obs_keys=[OBS_KEY])
    setup = time.perf_counter() - t0
    positions = _Positions()
    # shuffle=True, spelled out so that the positions it draws are noted.
    loader = _loader(ds, plan, sampler=_Recorded(RandomSampler(ds), positions))
    fig = _drive(lambda: _pairs(loader), step, plan)
    ds.close()
    import importlib.metadata as md

    info = {"lamindb": md.version("lamindb"), "lamindb_setup": lamindb_setup.__version__}
    return {**fig, "setup_s": setup, "shuffle_quality": positions.quality(len(ds))}, info


def _ours(plan: dict):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo's loaders
    import loaders

    return loaders


def _block_config(text: str) -> tuple[int, int | None]:
    """ "1024" -> (1024, None): the sampler's default window; "1024:0" -> (1024, 0)."""
    size, _, window = text.strip().partition(":")
    return int(size), (int(window) if window else None)


def _block_label(size: int | None, window: int | None) -> str:
    return f"{size}" if window is None else f"{size}:{window}"


def _run_ours(plan: dict, step: _Step, mode: str) -> tuple[dict, dict]:
    import numpy as np
    from torch.utils.data import RandomSampler, WeightedRandomSampler

    loaders = _ours(plan)
    t0 = time.perf_counter()
    ds = loaders.MappedCollection(plan["paths"], obs_keys=[OBS_KEY])
    setup = time.perf_counter() - t0
    checkpoints = None
    sampler = None
    positions = _Positions()
    extra: dict = {}
    if mode == "samples":
        loader = _loader(ds, plan, sampler=_Recorded(RandomSampler(ds), positions))
    elif mode == "random":
        loader = _batch_loader(ds, plan, RandomSampler(ds), positions)
    elif mode == "weighted":
        # lamindb's way to balance classes: per-row weights, rows drawn with replacement.
        weights = ds.get_label_weights(OBS_KEY)
        sampler = WeightedRandomSampler(weights, num_samples=len(ds), replacement=True)
        loader = _batch_loader(ds, plan, sampler, positions)
    elif mode == "balanced":
        labels = ds.get_merged_labels(OBS_KEY)
        kwargs = {k: plan[k] for k in ("block_size", "block_window") if plan.get(k) is not None}
        if "block_window" in kwargs:
            kwargs["window"] = kwargs.pop("block_window")
        sampler = loaders.BalancedBlockSampler(labels, seed=plan["seed"], **kwargs)
        loader = _batch_loader(ds, plan, sampler, positions)
        extra = {"block_size": sampler.block_size, "block_window": sampler.window}
    else:  # block
        kw = {} if plan.get("block_window") is None else {"window": plan["block_window"]}
        sampler = loaders.BlockShuffleSampler(
            ds, block_size=plan["block_size"], seed=plan["seed"], **kw
        )
        loader = _batch_loader(ds, plan, sampler, positions)
        extra = {"block_size": plan["block_size"], "block_window": sampler.window}
        if plan.get("full_pass"):
            # At least one whole pass (the warm-up batch is its first), RSS after a quarter of it
            # and at its end: what the sampler or the dataset keep must not grow with the epoch.
            n = len(ds) - BATCH
            plan = {
                **plan,
                "max_rows": max(plan["max_rows"], n),
                "budget_s": max(plan["budget_s"], 600.0),
            }
            checkpoints = {"quarter": n // 4, "full": n}
    epochs = [0]

    def epoch():
        # A new block order each epoch, as a training loop calling set_epoch gets.
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epochs[0])
        epochs[0] += 1
        return _pairs(loader)

    fig = _drive(epoch, step, plan, checkpoints)
    if mode in ("balanced", "weighted") and positions.epochs:
        # How even the classes came out over the first epoch drawn: largest / smallest count.
        labels = ds.get_merged_labels(OBS_KEY)
        first = np.concatenate([np.asarray(p).reshape(-1) for p in positions.epochs[0]])
        counts = np.unique(labels[first].astype(str), return_counts=True)[1]
        extra["class_count_max_over_min"] = float(counts.max() / counts.min())
        extra["classes_seen"] = len(counts)
        extra["epoch_rows_counted"] = len(first)
    source = None
    if plan.get("preshuffled"):  # shuffle quality in the original files' rows
        import h5py

        parts = []
        for path in plan["paths"]:
            with h5py.File(path, "r") as f:
                parts.append(f["obs"]["src_row"][...])
        source = np.concatenate(parts)
        extra["preshuffled"] = True
    if hasattr(ds, "close"):
        ds.close()
    quality = positions.quality(len(ds), source)
    return {**fig, "setup_s": setup, "shuffle_quality": quality, **extra}, {}


def _ceiling_batches(paths: list[str]):
    """Consecutive 256-row slices of every file's X (densified) and cell_type codes, from h5py."""
    import h5py
    import numpy as np

    try:
        from scipy.sparse._sparsetools import csr_todense
    except ImportError:
        csr_todense = None
    for path in paths:
        with h5py.File(path, "r") as f:
            group = f["X"]
            data, indices, indptr_ds = group["data"], group["indices"], group["indptr"]
            codes = f["obs"][OBS_KEY]["codes"]
            n_rows, n_cols = (int(v) for v in group.attrs["shape"])
            for start in range(0, n_rows, BATCH):
                stop = min(start + BATCH, n_rows)
                indptr = indptr_ds[start : stop + 1]
                lo, hi = int(indptr[0]), int(indptr[-1])
                vals, cols = data[lo:hi], indices[lo:hi]
                out = np.zeros((stop - start, n_cols), dtype=vals.dtype)
                ptr = (indptr - lo).astype(np.int64, copy=False)
                if csr_todense is not None and vals.dtype in (np.float32, np.float64):
                    # scipy's C fill loop, without a csr_matrix's checks: the cheapest densify.
                    csr_todense(
                        stop - start, n_cols, ptr, cols.astype(np.int64, copy=False), vals, out
                    )
                else:
                    out[np.repeat(np.arange(stop - start), np.diff(ptr)), cols] = vals
                yield out, codes[start:stop].astype(np.int64)


def _run_ceiling(plan: dict, step: _Step) -> tuple[dict, dict]:
    import torch

    def batches():
        for x, y in _ceiling_batches(plan["paths"]):
            x, y = torch.from_numpy(x), torch.from_numpy(y)
            if plan["device"] == "cuda":
                x, y = x.pin_memory(), y.pin_memory()  # as the DataLoader's pin_memory=True does
            yield x, y

    return {**_drive(batches, step, plan), "setup_s": 0.0, "shuffle_quality": 0.0}, {}


def _run_scdataset(plan: dict, step: _Step) -> tuple[dict, dict]:
    """scDataset over the same files: `AnnCollection` of backed AnnData (its documented way to
    read several .h5ad files), `BlockShuffling(block_size)`, `fetch_factor` batches read per fetch
    (sorted, then shuffled in memory), batches of 256 through a DataLoader (`batch_size=None`)."""
    import importlib.metadata as md

    import anndata as ad
    import numpy as np
    from scdataset import BlockShuffling, MultiIndexable, scDataset
    from torch.utils.data import DataLoader

    try:
        from anndata.experimental import AnnCollection
    except ImportError:
        from anndata.experimental.multi_files import AnnCollection

    t0 = time.perf_counter()
    backed = [ad.read_h5ad(p, backed="r") for p in plan["paths"]]
    collection = AnnCollection(backed, join_vars=None)
    codes = np.concatenate([a.obs[OBS_KEY].cat.codes.to_numpy() for a in backed]).astype(np.int64)

    def fetch(coll, idx):
        # What scdataset.transforms.adata_to_mindex does (to_memory, dense X), plus the rows'
        # positions, so the shuffle quality is measured on what was yielded.
        x = coll[idx].X
        x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        return MultiIndexable(X=x, y=codes[idx], pos=np.asarray(idx))

    dataset = scDataset(
        collection,
        BlockShuffling(block_size=plan["sc_block_size"]),
        batch_size=BATCH,
        fetch_factor=plan["sc_fetch_factor"],
        fetch_callback=fetch,
        seed=plan["seed"],
    )
    loader = DataLoader(
        dataset, batch_size=None, num_workers=0, pin_memory=plan["device"] == "cuda"
    )
    setup = time.perf_counter() - t0
    positions = _Positions()

    def epoch():
        positions.new_epoch()
        for batch in loader:
            positions.add(batch["pos"])
            yield batch["X"], batch["y"]

    fig = _drive(epoch, step, plan)
    info = {
        "scdataset": md.version("scdataset"),
        "sc_block_size": plan["sc_block_size"],
        "sc_fetch_factor": plan["sc_fetch_factor"],
    }
    return {**fig, "setup_s": setup, "shuffle_quality": positions.quality(len(codes))}, info


def _annbatch_prepare(plan: dict) -> dict:
    """annbatch's recommended layout: `DatasetCollection(...).add_adatas(paths)` writes the cells
    pre-shuffled into sharded, compressed zarr stores (its defaults); obs keeps cell_type and each
    cell's source position, so shuffle quality is measured on what is yielded."""
    import anndata as ad
    import numpy as np
    from annbatch import DatasetCollection

    offsets = np.cumsum([0] + [plan["cells"]] * len(plan["paths"]))
    where = {p: int(o) for p, o in zip(plan["paths"], offsets)}

    def load(path):
        adata = ad.read_h5ad(path)
        adata.obs = adata.obs[[OBS_KEY]].copy()
        adata.obs["src_row"] = np.arange(adata.n_obs, dtype=np.int64) + where[str(path)]
        return adata

    t0 = time.perf_counter()
    DatasetCollection(plan["store"]).add_adatas(
        plan["paths"], load_adata=load, rng=np.random.default_rng(plan["seed"])
    )
    return {"convert_s": time.perf_counter() - t0}


def _run_annbatch(plan: dict, step: _Step) -> tuple[dict, dict]:
    """annbatch's `Loader` over its pre-shuffled collection: `chunk_size` contiguous rows per
    read, `preload_nchunks` chunks read together and shuffled in memory, batches of 256 (CSR,
    densified here as the other loaders' batches are dense)."""
    import importlib.metadata as md

    import numpy as np
    from annbatch import DatasetCollection, Loader

    t0 = time.perf_counter()
    loader = Loader(
        batch_size=BATCH,
        chunk_size=plan["ab_chunk_size"],
        preload_nchunks=plan["ab_preload_nchunks"],
        shuffle=True,
        preload_to_gpu=False,
        rng=np.random.default_rng(plan["seed"]),
    ).use_collection(DatasetCollection(plan["store"], mode="r"))
    setup = time.perf_counter() - t0
    positions = _Positions()

    def epoch():
        positions.new_epoch()
        for batch in loader:
            x = batch["X"]
            x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
            positions.add(batch["obs"]["src_row"].to_numpy())
            yield x, batch["obs"][OBS_KEY].cat.codes.to_numpy()

    fig = _drive(epoch, step, plan)
    info = {
        "annbatch": md.version("annbatch"),
        "ab_chunk_size": plan["ab_chunk_size"],
        "ab_preload_nchunks": plan["ab_preload_nchunks"],
    }
    return {**fig, "setup_s": setup, "shuffle_quality": positions.quality(loader.n_obs)}, info


def _run_workers(plan: dict, step: _Step) -> tuple[dict, dict]:
    """The dataset as DataLoader workers get it: its pickled size (what a spawned or forkserver
    worker receives; a forked one inherits it), then per `num_workers` (0, 1, 2; persistent
    workers) the time to the first batch of the first and the second epoch and the rows/s of one
    epoch, block sampling as in the block mode."""
    import pickle

    loaders = _ours(plan)
    ds = loaders.MappedCollection(plan["paths"], obs_keys=[OBS_KEY])
    ds[list(range(BATCH))]  # handles open, indptr read: none of it may travel
    t0 = time.perf_counter()
    data = pickle.dumps(ds)
    pickle_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pickle.loads(data).close()
    unpickle_s = time.perf_counter() - t0
    out: dict = {
        "pickled_bytes": len(data),
        "pickled_bytes_per_row": len(data) / len(ds),
        "pickle_s": pickle_s,
        "unpickle_s": unpickle_s,
        "per_workers": {},
    }
    kw = {} if plan.get("block_window") is None else {"window": plan["block_window"]}
    for workers in plan["worker_counts"]:
        sampler = loaders.BlockShuffleSampler(
            ds, block_size=plan["block_size"], seed=plan["seed"], **kw
        )
        loader = _batch_loader(
            ds, plan, sampler, num_workers=workers, persistent_workers=workers > 0
        )
        figures = {}
        for epoch in range(2):
            sampler.set_epoch(epoch)
            t0 = time.perf_counter()
            it = iter(loader)
            rows = step(*next(_pairs(it)))
            first = time.perf_counter() - t0
            budget_end = time.perf_counter() + plan["budget_s"]
            for x, y in _pairs(it):
                rows += step(x, y)
                if time.perf_counter() > budget_end:
                    break
            step.sync()
            seconds = time.perf_counter() - t0
            figures[f"epoch{epoch + 1}_first_batch_s"] = first
            figures[f"epoch{epoch + 1}_rows_per_s"] = rows / seconds
            del it
        out["per_workers"][str(workers)] = figures
        del loader
    ds.close()
    best = max(v["epoch2_rows_per_s"] for v in out["per_workers"].values())
    fig = {
        "rows": 0,
        "batches": 0,
        "seconds": 0.0,
        "rows_per_s": best,
        "cpu_s": None,
        "rows_per_cpu_s": None,
        "first_batch_s": out["per_workers"][str(plan["worker_counts"][0])]["epoch1_first_batch_s"],
        "setup_s": 0.0,
        **out,
    }
    return fig, {}


# A moto S3 server in a process of its own, counting the requests it serves: GET /__counts
# answers {"GET": n, "HEAD": n, ...} (not counted itself).
_MOTO_SERVER = """
import json, sys, threading
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server
app = DomainDispatcherApplication(create_backend_app)
counts = {}
lock = threading.Lock()
def counting(environ, start_response):
    if environ.get("PATH_INFO") == "/__counts":
        body = json.dumps(counts).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    with lock:
        method = environ["REQUEST_METHOD"]
        counts[method] = counts.get(method, 0) + 1
    return app(environ, start_response)
server = make_server("127.0.0.1", 0, counting, threaded=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _run_stream(plan: dict, step: _Step) -> tuple[dict, dict]:
    """`MappedCollection(stream=True)` on s3:// (moto over HTTP, in its own process): rows/s and
    requests per batch, block and random sampling; against the cache-first path lamindb requires
    (`collection.mapped()` caches every file first): the whole files downloaded with s3fs, then
    the local copies read in block mode."""
    import json as _json
    import urllib.request

    import boto3
    import fsspec
    from torch.utils.data import RandomSampler

    loaders = _ours(plan)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ[key] = value
    server = subprocess.Popen(
        [sys.executable, "-c", _MOTO_SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(server.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"

        def counts() -> dict:
            with urllib.request.urlopen(f"{endpoint}/__counts") as resp:
                return _json.loads(resp.read())

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        uris = []
        for path in plan["paths"]:
            key = Path(path).name
            client.upload_file(path, "bench", key)
            uris.append(f"s3://bench/{key}")
        options = {"endpoint_url": endpoint}
        out: dict = {"stream_files": len(uris)}
        n_rows = None
        for label, sampling in (("block", True), ("random", False)):
            before = counts()
            t0 = time.perf_counter()
            ds = loaders.MappedCollection(
                uris, obs_keys=[OBS_KEY], stream=True, storage_options=options
            )
            n_rows = len(ds)
            open_s = time.perf_counter() - t0
            opened = counts()
            if sampling:
                kw = {} if plan.get("block_window") is None else {"window": plan["block_window"]}
                sampler = loaders.BlockShuffleSampler(
                    ds, block_size=plan["block_size"], seed=plan["seed"], **kw
                )
            else:
                sampler = RandomSampler(ds)
            loader = _batch_loader(ds, plan, sampler)
            # One epoch (or the budget): the first pass is what streaming costs; s3fs keeps
            # 32 MiB of blocks, so later passes over a small file would be served from memory.
            fig = _drive(
                lambda loader=loader: _pairs(loader),
                step,
                {
                    **plan,
                    "max_rows": n_rows - BATCH,
                    "min_s": 0.0,
                    "budget_s": plan["stream_budget_s"],
                },
            )
            after = counts()
            measured = {k: after.get(k, 0) - opened.get(k, 0) for k in after}
            out[label] = {
                "rows_per_s": fig["rows_per_s"],
                "first_batch_s": open_s + fig["first_batch_s"],
                "open_requests": sum(opened.get(k, 0) - before.get(k, 0) for k in opened),
                # Over the warm-up batch and the measured ones.
                "requests_per_batch": sum(measured.values()) / (fig["batches"] + 1),
                "batches": fig["batches"],
            }
            ds.close()
        # lamindb's way: the whole files first (s3fs, as its cache does), then local reads.
        fs = fsspec.filesystem("s3", endpoint_url=endpoint, skip_instance_cache=True)
        local = Path(plan["tmp"]) / "cache-first"
        local.mkdir(parents=True, exist_ok=True)
        before = counts()
        t0 = time.perf_counter()
        copies = []
        for uri in uris:
            target = local / Path(uri).name
            fs.get(uri, str(target))
            copies.append(str(target))
        download_s = time.perf_counter() - t0
        downloaded = counts()
        ds = loaders.MappedCollection(copies, obs_keys=[OBS_KEY])
        kw = {} if plan.get("block_window") is None else {"window": plan["block_window"]}
        sampler = loaders.BlockShuffleSampler(
            ds, block_size=plan["block_size"], seed=plan["seed"], **kw
        )
        loader = _batch_loader(ds, plan, sampler)
        t1 = time.perf_counter()
        fig = _drive(
            lambda: _pairs(loader),
            step,
            {**plan, "max_rows": n_rows - BATCH, "min_s": 0.0, "budget_s": plan["stream_budget_s"]},
        )
        ds.close()
        out["cache_first"] = {
            "download_s": download_s,
            "download_requests": sum(downloaded.get(k, 0) - before.get(k, 0) for k in downloaded),
            "first_batch_s": (t1 - t0) + fig["first_batch_s"],
            "rows_per_s_after_download": fig["rows_per_s"],
            # One epoch end to end: the download, then the epoch at the local rate.
            "epoch_s": download_s + n_rows / fig["rows_per_s"],
        }
        out["stream_block_epoch_s"] = n_rows / out["block"]["rows_per_s"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    fig = {
        "rows": 0,
        "batches": 0,
        "seconds": 0.0,
        "rows_per_s": out["block"]["rows_per_s"],
        "cpu_s": None,
        "rows_per_cpu_s": None,
        "first_batch_s": out["block"]["first_batch_s"],
        "setup_s": 0.0,
        **out,
    }
    return fig, {}


def worker(mode: str, plan_file: str) -> None:
    """`--worker MODE PLAN`: one mode, one process; prints one JSON object, last."""
    plan = json.loads(Path(plan_file).read_text())
    if mode == "annbatch-prepare":
        print(json.dumps(_annbatch_prepare(plan)))
        return
    rss0, _ = _rss_mb()
    try:
        import torch
    except ImportError:  # annbatch's venv
        torch = None
    step = _Step(plan["device"], plan["genes"])
    rss_imports, _ = _rss_mb()
    if mode == "lamindb":
        fig, info = _run_lamindb(plan, step)
    elif mode in ("samples", "random", "block", "balanced", "weighted"):
        fig, info = _run_ours(plan, step, mode)
    elif mode == "ceiling":
        fig, info = _run_ceiling(plan, step)
    elif mode == "scdataset":
        fig, info = _run_scdataset(plan, step)
    elif mode == "annbatch":
        fig, info = _run_annbatch(plan, step)
    elif mode == "workers":
        fig, info = _run_workers(plan, step)
    elif mode == "stream":
        fig, info = _run_stream(plan, step)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    rss, peak = _rss_mb()
    fig.update(
        info,
        mode=mode,
        rss_start_mb=round(rss0, 1),
        rss_after_imports_mb=round(rss_imports, 1),
        rss_end_mb=round(rss, 1),
        peak_rss_mb=round(peak, 1),
        torch=None if torch is None else torch.__version__,
        torch_threads=None if torch is None else torch.get_num_threads(),
        python=platform.python_version(),
        device_name=torch.cuda.get_device_name(0)
        if plan["device"] == "cuda" and torch is not None
        else platform.processor() or "cpu",
    )
    print(json.dumps(fig))


# -- the parent --------------------------------------------------------------------------------


def _run_child(argv: list[str], timeout: float, python=None) -> dict:
    """`python argv` (this interpreter unless given); its last stdout line, a JSON object."""
    # -X faulthandler: a crash in compiled code (h5py, numpy, torch) leaves a traceback on stderr.
    env = None
    if python is not None:  # a peer's venv: nothing of this process's path leaks in
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(
        [str(python or sys.executable), "-X", "faulthandler", *argv],
        check=False,
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        how = f"rc {proc.returncode}"
        if proc.returncode < 0:
            how += f", {signal.Signals(-proc.returncode).name}"
        raise RuntimeError(f"worker failed ({how}); stdout tail:\n" + "\n".join(lines[-20:]))
    return json.loads(lines[-1])


_plan_count = [0]


def run_mode(mode: str, plan: dict, tmp: Path, args: argparse.Namespace, python=None) -> dict:
    """One worker process of `mode` (its `plan` as a JSON file); lamindb's runs in its isolated
    instance directory, a peer's with its venv's interpreter (`python`)."""
    _plan_count[0] += 1
    plan_file = tmp / f"plan-{_plan_count[0]}-{mode}.json"
    plan_file.write_text(json.dumps(plan))
    argv = [str(Path(__file__).resolve()), "--worker", mode, str(plan_file)]
    timeout = plan["budget_s"] * 8 + 900
    if mode != "lamindb":
        return _run_child(argv, timeout, python)
    from _lamindb_env import run_worker

    root = tmp / "lamindb"
    root.mkdir(exist_ok=True)
    return run_worker(python, root, argv, timeout=timeout)


def setup_lamindb(args: argparse.Namespace):
    """The lamindb venv, sharing our torch (see `_lamindb_env.share_torch`)."""
    import importlib.util

    from _lamindb_env import DEFAULT_SPEC, ensure_lamindb, share_torch

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        raise RuntimeError(
            "torch is not installed in this interpreter: nothing to share with the lamindb venv"
        )
    lenv = ensure_lamindb(args.lamindb_venv, spec=args.lamindb_spec or DEFAULT_SPEC)
    pth = share_torch(
        lenv, Path(spec.origin).parent.parent
    )  # == Path(torch.__file__).parent.parent
    _say(
        "lamindb",
        f"lamindb {lenv.version} in {lenv.python.parent.parent}; torch shared via {pth.name}",
    )
    return lenv


def plan_jobs(args, modes, base, budget, lamindb_budget, paths, tmp, meta, errors, attempt) -> dict:
    """name -> (worker mode, plan, interpreter or None) for every loader this run measures; the
    block sweep runs here (it picks the block config the block, workers and stream modes use)."""
    jobs: dict[str, tuple[str, dict, object]] = {}
    for mode in ("ceiling", "samples", "random"):
        if mode in modes:
            jobs[mode] = (mode, base, None)
    chosen = args.block_size
    if chosen is None and (
        {"block", "preshuffled", "workers", "stream", "scdataset", "annbatch"} & set(modes)
    ):
        # A short look at each config; the fastest gets the full pass below. The window matters
        # as much as the size: a batch's rows are spread over window x block_size rows, and what
        # lies between them is read too.
        sweep = {}
        short = {
            **base,
            "max_rows": min(base["max_rows"], 50_000),
            "budget_s": min(budget, 5.0),
            "min_s": 1.5,
        }
        for text in (t for t in args.block_sizes.split(",") if t.strip()):
            size, window = _block_config(text)
            label = _block_label(size, window)
            fig = attempt(
                f"block sweep {label}",
                "block",
                {**short, "block_size": size, "block_window": window},
            )
            if fig:
                sweep[label] = {
                    "rows_per_s": fig["rows_per_s"],
                    "shuffle_quality": fig["shuffle_quality"],
                }
        meta["block_sweep"] = sweep
        chosen = max(sweep, key=lambda k: sweep[k]["rows_per_s"]) if sweep else "4096:0"
    size, window = _block_config(chosen or "4096:0")
    block = {"block_size": size, "block_window": window}
    if "block" in modes:
        jobs["block"] = ("block", {**base, **block, "full_pass": True}, None)
    if "preshuffled" in modes:
        shuffled, seconds = make_shuffled(args, args.data or tmp / "data", paths)
        meta["preshuffle_s"] = round(seconds, 2)
        plan = {**base, **block, "paths": [str(p) for p in shuffled], "preshuffled": True}
        jobs["preshuffled"] = ("block", plan, None)
    if "balanced" in modes:  # the sampler's own defaults (blocks of 64, window 4)
        jobs["balanced"] = ("balanced", base, None)
    if "weighted" in modes:
        jobs["weighted"] = ("weighted", base, None)
    if "lamindb" in modes:
        try:
            lenv = setup_lamindb(args)
        except Exception as exc:
            traceback.print_exc()
            errors["lamindb"] = f"{type(exc).__name__}: {exc}"
        else:
            # Capped per round: at ~2k rows/s a whole epoch would take minutes.
            plan = {
                **base,
                "max_rows": min(base["max_rows"], args.lamindb_rows),
                "budget_s": lamindb_budget,
            }
            jobs["lamindb"] = ("lamindb", plan, lenv)
            meta["lamindb_version"] = lenv.version
    peer_window = max(window or 1, 1)
    if "scdataset" in modes:
        from _peer_env import ensure_shared

        try:
            env = ensure_shared("scdataset", "scdataset", "scdataset")
        except Exception as exc:
            traceback.print_exc()
            errors["scdataset"] = f"{type(exc).__name__}: {exc}"
        else:
            meta["scdataset_version"] = env.version
            # Its defaults (BlockShuffling(block_size=8), fetch_factor=16), and ours: our block
            # size, and fetches as large as our window of blocks.
            jobs["scdataset"] = (
                "scdataset",
                {**base, "sc_block_size": 8, "sc_fetch_factor": 16},
                env.python,
            )
            matched = {
                **base,
                "sc_block_size": size,
                "sc_fetch_factor": max(1, size * peer_window // BATCH),
            }
            jobs["scdataset-matched"] = ("scdataset", matched, env.python)
            # Its random access: blocks of one row (fetches still sorted, 16 batches at a time).
            random_plan = {**base, "sc_block_size": 1, "sc_fetch_factor": 16}
            jobs["scdataset-random"] = ("scdataset", random_plan, env.python)
    if "annbatch" in modes:
        from _peer_env import ensure_annbatch

        env, tried = ensure_annbatch(args.annbatch_python)
        meta["annbatch_attempts"] = tried
        if env is None:
            errors["annbatch"] = "cannot run here: " + "; ".join(tried)
        else:
            meta["annbatch_version"] = env.version
            meta["annbatch_python"] = str(env.python)
            store = str((args.data or tmp / "data") / "annbatch.zarr")
            marker = Path(store + ".params.json")
            want = json.dumps(_file_params(args))
            prepared = marker.exists() and marker.read_text() == want and Path(store).exists()
            if not prepared:
                shutil.rmtree(store, ignore_errors=True)
                fig = None
                try:
                    fig = run_mode(
                        "annbatch-prepare",
                        {**base, "store": store, "cells": args.cells, "budget_s": 600},
                        tmp,
                        args,
                        env.python,
                    )
                except Exception as exc:
                    traceback.print_exc()
                    errors["annbatch"] = f"converting to its collection failed: {exc}"
                if fig is not None:
                    meta["annbatch_convert_s"] = fig["convert_s"]
                    marker.write_text(want)
                    prepared = True
            if prepared:
                common = {**base, "store": store, "store_paths": [store]}
                # Its defaults (chunk_size=512, preload_nchunks=32), and ours.
                jobs["annbatch"] = (
                    "annbatch",
                    {**common, "ab_chunk_size": 512, "ab_preload_nchunks": 32},
                    env.python,
                )
                jobs["annbatch-matched"] = (
                    "annbatch",
                    {**common, "ab_chunk_size": size, "ab_preload_nchunks": peer_window},
                    env.python,
                )
                # Its random access ("chunk_size=1 for perfect random sampling"), 16 batches of
                # rows loaded at a time, as scDataset's fetches.
                jobs["annbatch-random"] = (
                    "annbatch",
                    {**common, "ab_chunk_size": 1, "ab_preload_nchunks": 16 * BATCH},
                    env.python,
                )
    if "workers" in modes:
        plan = {**base, **block, "worker_counts": args.worker_counts, "budget_s": min(budget, 8.0)}
        jobs["workers"] = ("workers", plan, None)
    if "stream" in modes:
        plan = {
            **base,
            **block,
            "paths": base["paths"][: args.stream_files],
            "stream_budget_s": min(budget, 8.0),
            "tmp": str(tmp),
        }
        jobs["stream"] = ("stream", plan, None)
    return jobs


def _ratio(a, b):
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0 else None


def _bytes_per_row(meta: dict) -> float | None:
    """Bytes of X (data + indices + indptr) on disk per row: rows/s times this is MB/s."""
    layout = meta.get("layout") or {}
    return layout.get("x_bytes_per_row")


def report(results: dict, cold: dict, errors: dict, meta: dict) -> dict:
    rate = {m: (results.get(m) or {}).get("rows_per_s") for m in LOADERS}
    cold_rate = {m: (cold.get(m) or {}).get("rows_per_s") for m in LOADERS}
    quality = {m: (results.get(m) or {}).get("shuffle_quality") for m in LOADERS}
    cpu_rate = {m: (results.get(m) or {}).get("rows_per_cpu_s") for m in LOADERS}
    block = results.get("block") or {}
    seq = meta.get("disk_seq_mb_per_s")
    per_row = _bytes_per_row(meta)
    peers = [m for m in LOADERS if m.startswith(("scdataset", "annbatch")) and rate.get(m)]
    best_peer = max(peers, key=lambda m: rate[m]) if peers else None
    # Random access against random access: each peer's one-row blocks/chunks.
    random_peers = [m for m in ("scdataset-random", "annbatch-random") if rate.get(m)]
    best_random_peer = max(random_peers, key=lambda m: rate[m]) if random_peers else None

    ratios = {
        "speedup_random_vs_lamindb": _ratio(rate["random"], rate["lamindb"]),
        "speedup_block_vs_lamindb": _ratio(rate["block"], rate["lamindb"]),
        "block_vs_ceiling": _ratio(rate["block"], rate["ceiling"]),
        "random_vs_samples": _ratio(rate["random"], rate["samples"]),
        "random_vs_best_peer": _ratio(rate["random"], rate.get(best_peer)) if best_peer else None,
        "random_vs_best_random_peer": _ratio(rate["random"], rate.get(best_random_peer))
        if best_random_peer
        else None,
        "block_vs_best_peer": _ratio(rate["block"], rate.get(best_peer)) if best_peer else None,
        "balanced_vs_weighted": _ratio(rate["balanced"], rate["weighted"]),
        "preshuffled_vs_best_peer": _ratio(rate["preshuffled"], rate.get(best_peer))
        if best_peer
        else None,
        # Per CPU-second of each loader's process (all its threads): steadier on a busy machine.
        "random_vs_best_peer_cpu": _ratio(cpu_rate["random"], cpu_rate.get(best_peer))
        if best_peer
        else None,
    }
    # Block mode against the best peer at equal or better shuffle quality: of every config of
    # ours measured (block sweep, block, random), the fastest whose quality is at least the
    # peer's.
    ours_configs = {f"block {k}": v for k, v in (meta.get("block_sweep") or {}).items()}
    for m in ("block", "random", "preshuffled"):
        if rate[m] is not None and quality[m] is not None:
            ours_configs[m] = {"rows_per_s": rate[m], "shuffle_quality": quality[m]}
    at_quality = None
    if best_peer and quality.get(best_peer) is not None:
        fit = {
            k: v
            for k, v in ours_configs.items()
            if (v["shuffle_quality"] or 0) >= quality[best_peer] * 0.98
        }
        if fit:
            name = max(fit, key=lambda k: fit[k]["rows_per_s"])
            at_quality = {
                "ours": name,
                **fit[name],
                "ratio": fit[name]["rows_per_s"] / rate[best_peer],
            }
    cold_block_mb = (cold.get("block") or {}).get("disk_mb_per_s")
    goals = {
        "random_ge_3x_best_random_peer": None
        if ratios["random_vs_best_random_peer"] is None
        else ratios["random_vs_best_random_peer"] >= 3.0,
        "block_ge_best_peer_at_equal_quality": None
        if at_quality is None
        else at_quality["ratio"] >= 1.0,
        "cold_block_ge_70pct_disk_seq": None
        if not (cold_block_mb and seq)
        else cold_block_mb / seq >= 0.7,
    }

    labels = {
        "lamindb": "lamindb MappedCollection, shuffle",
        "samples": "ours per-sample, shuffle",
        "random": "ours batches, RandomSampler",
        "block": f"ours batches, BlockShuffle({_block_label(block.get('block_size'), block.get('block_window'))})",
        "preshuffled": "ours block, on a pre-shuffled copy",
        "balanced": "ours BalancedBlockSampler (64, window 4)",
        "weighted": "ours WeightedRandomSampler (lamindb's)",
        "scdataset": "scDataset, its defaults",
        "scdataset-matched": "scDataset, matched to ours",
        "scdataset-random": "scDataset, random access (block 1)",
        "annbatch-random": "annbatch, random access (chunk 1)",
        "annbatch": "annbatch, its defaults",
        "annbatch-matched": "annbatch, matched to ours",
        "ceiling": "h5py contiguous slices (ceiling)",
    }
    print()
    print(f"device {meta['device']}; {meta['shape_text']}; batch {BATCH}, num_workers=0")
    print(
        f"disk, sequential cold read: {seq or 0:,.0f} MB/s; X on disk: {per_row or 0:,.0f} bytes a row"
    )
    print(
        f"{'loader':42s} {'warm rows/s':>11s} {'cold rows/s':>11s} {'cold MB/s':>9s} {'of seq':>6s} "
        f"{'shuffle':>7s} {'1st s warm':>10s} {'1st s cold':>10s} {'peak RSS':>8s}"
    )
    for m in LOADERS:
        fig, cfig = results.get(m), cold.get(m) or {}
        if not fig:
            print(f"{labels[m]:42s} {'ERROR' if m in errors else 'skipped':>11s}")
            continue
        mb = cfig.get("disk_mb_per_s")
        print(
            f"{labels[m]:42s} {fig['rows_per_s']:>11,.0f} {cfig.get('rows_per_s') or 0:>11,.0f} "
            f"{mb or 0:>9,.0f} {(mb / seq if mb and seq else 0):>6.0%} {fig.get('shuffle_quality') or 0:>7.3f} "
            f"{fig['first_batch_s']:>10.3f} {cfig.get('first_batch_s') or 0:>10.3f} {fig['peak_rss_mb']:>8.0f}"
        )
    print(
        "(shuffle: mean distance of consecutive samples' rows / (n/3); 1 = uniformly random, 0 = in order)"
    )
    sweep = meta.get("block_sweep")
    if sweep:
        print(
            "block sweep, block_size:window -> rows/s (shuffle): "
            + ", ".join(
                f"{b} {v['rows_per_s']:,.0f} ({v['shuffle_quality']:.3f})" for b, v in sweep.items()
            )
        )
    for m in ("balanced", "weighted"):
        fig = results.get(m) or {}
        if fig.get("class_count_max_over_min"):
            print(
                f"{labels[m]}: class counts over an epoch, largest/smallest {fig['class_count_max_over_min']:.3f} ({fig['classes_seen']} classes)"
            )
    workers = results.get("workers")
    if workers:
        print(
            f"pickled dataset: {workers['pickled_bytes']:,} bytes ({workers['pickled_bytes_per_row']:.2f} a row)"
        )
        for n, w in workers["per_workers"].items():
            print(
                f"  num_workers={n} (persistent): first batch {w['epoch1_first_batch_s']:.3f} s, epoch 2's "
                f"{w['epoch2_first_batch_s']:.3f} s; rows/s {w['epoch1_rows_per_s']:,.0f} / {w['epoch2_rows_per_s']:,.0f}"
            )
    stream = results.get("stream")
    if stream:
        for k in ("block", "random"):
            v = stream[k]
            print(
                f"stream=True on s3 (moto), {k}: {v['rows_per_s']:,.0f} rows/s, {v['requests_per_batch']:.2f} "
                f"requests a batch, first batch {v['first_batch_s']:.2f} s"
            )
        c = stream["cache_first"]
        print(
            f"cache-first (lamindb's): download {c['download_s']:.2f} s, then {c['rows_per_s_after_download']:,.0f} rows/s; "
            f"first batch {c['first_batch_s']:.2f} s; an epoch {c['epoch_s']:.2f} s vs streamed {stream['stream_block_epoch_s']:.2f} s"
        )
    for name, value in ratios.items():
        print(f"{name:38s} {'-' if value is None else f'{value:.2f}x':>9s}")
    if at_quality:
        print(
            f"best peer {best_peer} (shuffle {quality[best_peer]:.3f}) vs ours at >= its quality ({at_quality['ours']}, "
            f"{at_quality['shuffle_quality']:.3f}): {at_quality['ratio']:.2f}x"
        )
    for goal, ok in goals.items():
        print(f"goal {goal:40s} { {True: 'met', False: 'NOT met', None: 'n/a'}[ok] }")
    busy = max(meta.get("loadavg_1m_start", 0), meta.get("loadavg_1m_end", 0))
    if busy > (meta.get("cpus") or 1):
        print(
            f"note: load average {busy:.1f} on {meta.get('cpus')} CPUs: other processes competed; figures are noisy"
        )
    for side, message in errors.items():
        print(f"ERROR {side}: {message.splitlines()[0] if message else ''}")

    def rounded(d):
        if isinstance(d, list):
            return [rounded(v) for v in d]
        if not isinstance(d, dict):
            return round(d, 4) if isinstance(d, float) else d
        return {k: rounded(v) for k, v in d.items()}

    any_fig = next((results[m] for m in LOADERS if results.get(m)), {})
    loaders_summary = {
        m: {
            "warm_rows_per_s": rate[m],
            "cold_rows_per_s": cold_rate[m],
            "cold_disk_mb_per_s": (cold.get(m) or {}).get("disk_mb_per_s"),
            "cold_vs_disk_seq": _ratio((cold.get(m) or {}).get("disk_mb_per_s"), seq),
            "peak_rss_mb": (results.get(m) or {}).get("peak_rss_mb"),
            "peak_rss_mb_cold": (cold.get(m) or {}).get("peak_rss_mb"),
            "shuffle_quality": quality[m],
            "warm_rows_per_cpu_s": cpu_rate[m],
            "first_batch_s": (results.get(m) or {}).get("first_batch_s"),
            "first_batch_s_cold": (cold.get(m) or {}).get("first_batch_s"),
        }
        for m in LOADERS
        if results.get(m) or cold.get(m)
    }
    return rounded(
        {
            **ratios,
            "loaders": loaders_summary,
            "best_peer": best_peer,
            "best_random_peer": best_random_peer,
            "block_vs_best_peer_at_quality": at_quality,
            "goals": goals,
            "block_size": block.get("block_size"),
            "block_window": block.get("block_window"),
            "workers": {
                k: v
                for k, v in (workers or {}).items()
                if k
                in (
                    "pickled_bytes",
                    "pickled_bytes_per_row",
                    "pickle_s",
                    "unpickle_s",
                    "per_workers",
                )
            }
            or None,
            "stream": {
                k: v
                for k, v in (stream or {}).items()
                if k in ("block", "random", "cache_first", "stream_block_epoch_s", "stream_files")
            }
            or None,
            "torch": any_fig.get("torch"),
            "device": meta["device"],
            "device_name": any_fig.get("device_name"),
            **{k: v for k, v in meta.items() if k not in ("device", "shape_text")},
            "results": results,
            "cold_results": cold,
            "errors": errors or None,
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="4 files x 5k cells, shorter budgets")
    parser.add_argument("--files", type=int, default=None, help="h5ad files (default 4)")
    parser.add_argument(
        "--cells",
        type=int,
        default=None,
        help="cells per file (default 50,000; 5,000 with --quick)",
    )
    parser.add_argument("--genes", type=int, default=None, help="genes (default 2,000)")
    parser.add_argument("--density", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--store", choices=("h5ad", "zarr"), default="h5ad", help="write .h5ad files or zarr stores"
    )
    parser.add_argument("--zarr-format", type=int, choices=(2, 3), default=3)
    parser.add_argument(
        "--data", type=Path, default=None, help="keep the h5ad files here and reuse them"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--rows", type=int, default=None, help="rows per mode (default: one epoch)")
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds per mode (default 30; 10 with --quick)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each mode, interleaved; the best is kept"
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=3.0,
        help="measure each mode at least this long (more epochs)",
    )
    parser.add_argument(
        "--lamindb-rows", type=int, default=20_000, help="cap on lamindb's rows per round"
    )
    parser.add_argument(
        "--lamindb-budget",
        type=float,
        default=None,
        help="lamindb's seconds per round (default 20; 8 with --quick)",
    )
    parser.add_argument(
        "--block-size", default=None, metavar="B[:W]", help="skip the sweep: block size B, window W"
    )
    parser.add_argument(
        "--block-sizes",
        default="32,256,1024,256:0,1024:0,4096:0",
        help="B[:W] configs the sweep tries (W left out: the sampler's default window)",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"which of {','.join(MODES)} to run"
    )
    parser.add_argument(
        "--no-lamindb",
        action="store_true",
        help="skip lamindb (no venv needed); its ratios are null",
    )
    parser.add_argument(
        "--lamindb-venv", type=Path, default=None, help="default $LINEAGE_HOME/bench/lamindb-venv"
    )
    parser.add_argument(
        "--lamindb-spec", default=None, help='pip requirement, default "lamindb>=2,<3"'
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each worker; top functions on stderr"
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the temporary files go")
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the cold runs (page cache evicted per epoch)"
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="skip scDataset and annbatch (no venvs needed)"
    )
    parser.add_argument(
        "--annbatch-python", default=None, help="a Python >= 3.12 for annbatch's venv"
    )
    parser.add_argument(
        "--workers", default="0,1,2", help="num_workers values the workers mode measures"
    )
    parser.add_argument(
        "--stream-files", type=int, default=1, help="files uploaded to moto for the stream mode"
    )
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "PLAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        worker(*args.worker)
        return 0

    args.files = args.files or 4
    args.cells = args.cells or (5_000 if args.quick else 50_000)
    args.genes = args.genes or 2_000
    budget = args.budget or (10.0 if args.quick else 30.0)
    lamindb_budget = args.lamindb_budget or (8.0 if args.quick else 20.0)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(unknown)}")
    if args.no_lamindb and "lamindb" in modes:
        modes.remove("lamindb")
    if args.no_peers:
        modes = [m for m in modes if m not in ("scdataset", "annbatch")]
    args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.store == "zarr":
        # The ceiling reads HDF5 slices with h5py; the pre-shuffled copy, the peers' inputs, the
        # stream mode and the cold eviction (per file) are built from and for .h5ad files.
        dropped = ("ceiling", "preshuffled", "scdataset", "annbatch", "stream")
        modes = [m for m in modes if m not in dropped]
        args.no_cold = True
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if min(args.files, args.cells, args.genes) < 1 or not 0 < args.density <= 1:
        parser.error("--files, --cells, --genes must be positive and --density in (0, 1]")

    if args.device == "cuda":
        # Fail here, clearly, rather than in every worker.
        import torch

        if not torch.cuda.is_available():
            print(
                f"error: --device cuda, but torch {torch.__version__} sees no CUDA device "
                f"(torch.version.cuda={torch.version.cuda})",
                file=sys.stderr,
            )
            return 2

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks remove the temp dir
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]  # _lamindb_env; loaders
    tmp = Path(tempfile.mkdtemp(prefix="lineage-bench-mapped-", dir=args.tmp_dir))
    results: dict = {}
    cold: dict = {}
    errors: dict = {}
    meta: dict = {
        "cpus": os.cpu_count(),
        "loadavg_1m_start": round(os.getloadavg()[0], 2),
        "device": args.device,
    }
    try:
        data_dir = args.data or (tmp / "data")
        paths, gen_s, reused = make_files(args, data_dir)
        n_total = args.files * args.cells
        meta.update(
            files=args.files,
            cells_per_file=args.cells,
            genes=args.genes,
            density=args.density,
            total_rows=n_total,
            data_dir=str(data_dir) if args.data else None,
            generate_s=round(gen_s, 2),
            data_reused=reused,
            layout=_h5_layout(paths[0]),
            shape_text=f"{args.files} files x {args.cells:,} cells x {args.genes:,} genes, "
            f"CSR float32 at {args.density:.0%}"
            + (f", zarr format {args.zarr_format} stores" if args.store == "zarr" else ""),
        )
        _say(
            "bench",
            f"{'reused' if reused else f'generated in {gen_s:.1f} s'}: {meta['shape_text']} in {data_dir}",
        )
        base = {
            "paths": [str(p) for p in paths],
            "genes": args.genes,
            "device": args.device,
            "seed": args.seed,
            "min_batches": 10,
            "max_rows": args.rows or n_total,
            "budget_s": budget,
            "min_s": args.min_seconds,
            "profile": args.profile,
        }

        def attempt(name: str, mode: str, plan: dict, lamindb_python=None) -> dict | None:
            _say("bench", f"{name}: running")
            try:
                fig = run_mode(mode, plan, tmp, args, lamindb_python)
            except Exception as exc:
                traceback.print_exc()
                errors[name] = f"{type(exc).__name__}: {exc}"
                return None
            _say(
                "bench",
                f"{name}: {fig['rows_per_s']:,.0f} rows/s over {fig['rows']} rows, peak RSS {fig['peak_rss_mb']} MB",
            )
            return fig

        # The disk's sequential speed, before and after: cold figures are read against it.
        meta["disk_seq_start"] = disk_speed([str(p) for p in paths])
        _say("bench", f"disk, sequential cold read: {meta['disk_seq_start']['mb_per_s']:,.0f} MB/s")
        jobs = plan_jobs(
            args, modes, base, budget, lamindb_budget, paths, tmp, meta, errors, attempt
        )
        # Rounds interleave the modes, and each keeps its best round: on a shared machine a burst
        # of someone else's work then hits one round of one mode, not the whole comparison.
        for r in range(args.rounds):
            for name, (worker_mode, plan, python) in jobs.items():
                if name in ("workers", "stream") and r:
                    continue  # once is enough: each measures several settings
                label = name if args.rounds == 1 else f"{name} (round {r + 1}/{args.rounds})"
                fig = attempt(label, worker_mode, plan, python)
                if fig is None:
                    continue
                best = results.get(name)
                seen = [*(best or {}).get("rounds_rows_per_s", []), round(fig["rows_per_s"])]
                if best is None or fig["rows_per_s"] > best["rows_per_s"]:
                    best = fig
                best["rounds_rows_per_s"] = seen
                results[name] = best
        if not args.no_cold:
            # Cold: every loader once more with its files evicted before each epoch (one epoch,
            # or the budget); the first batch is cold too.
            for name, (worker_mode, plan, python) in jobs.items():
                if name in ("workers", "stream", "lamindb-weighted"):
                    continue
                evict = plan.get("store_paths") or plan["paths"]
                cold_plan = {**plan, "cold": True, "evict": evict, "min_s": 0.0, "full_pass": False}
                fig = attempt(f"{name} cold", worker_mode, cold_plan, python)
                if fig is not None:
                    cold[name] = fig
            meta["disk_seq_end"] = disk_speed([str(p) for p in paths])
            speeds = [meta["disk_seq_start"]["mb_per_s"], meta["disk_seq_end"]["mb_per_s"]]
            meta["disk_seq_mb_per_s"] = sum(speeds) / len(speeds)
        else:
            meta["disk_seq_mb_per_s"] = meta["disk_seq_start"]["mb_per_s"]
        results = {k: v for k, v in results.items() if v}
        meta["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        summary = report(results, cold, errors, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(summary))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
