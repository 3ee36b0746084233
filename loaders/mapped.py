"""MappedCollection: a PyTorch map-style dataset over many AnnData stores (.h5ad files and zarr
stores), read in whole batches.

API-compatible with lamindb's `MappedCollection` (same constructor arguments, attributes, sample
dicts and label encoders), with a second, faster way to read it:

- **Whole batches, the fast path.** `ds[indices]`, with a list (or array, or slice) of row
  indices, is one batch as a dict of numpy arrays: `"X"` and each layer a 2-D array (rows in the
  order asked), `"obsm_<key>"` likewise, `"_store_idx"` and each obs key a 1-D array. Rows are
  grouped by file, sorted, merged into runs and read with a few bulk reads straight into that
  array: byte ranges of an .h5ad file (`loaders._h5rows`), whole chunks of a zarr store,
  decoded once and cached (`loaders._zarrrows`). Hand a DataLoader the indices of a batch at a
  time (a `BatchSampler`) with `batch_size=None`: each item it fetches is then a whole batch,
  and it turns the arrays into tensors one array at a time, with no work per row.
- **Per sample, lamindb's path.** `ds[i]` is lamindb's sample dict, and
  `DataLoader(ds, batch_size=B, shuffle=True)` yields what lamindb's does (a dict of tensors per
  key). The DataLoader fetches each batch through `__getitems__`, which reads it in bulk as above
  and splits it into sample dicts; torch then stacks the samples back row by row.

Measured by `benchmarks/mapped.py` (4 files x 50,000 cells x 2,000 genes, CSR at 5%, batches of
256, rows per CPU-second): per sample with `shuffle=True` ~155k; whole batches of random rows
~260k; whole batches from `BlockShuffleSampler(ds, block_size=4096, window=0)` ~1.3M. Torch's
stacking of 256 sample rows is most of the gap between the first two.

In a batch, each key has one dtype for the whole collection: X and layers the files' common
dtype (or `dtype=`); an obs key int64 for encoded labels (float64 when some row is missing a
label: NaN), numbers as numbers, anything else (strings) an object array, which torch leaves as
is. A file without an obs column gives its rows NaN there (its samples leave the key out); a
file without a requested layer or obsm key, or arrays of different widths, cannot be batched and
`ds[indices]` says which (the per-sample path still reads them).

Only `indptr`, label codes, categories and open handles are kept, plus, for zarr stores, decoded
chunks up to `ZARR_CHUNK_CACHE_BYTES` per collection and process (a zarr chunk is decoded whole
to read any row of it); memory stays flat over an epoch. File handles belong to one process: a
DataLoader worker (forked or spawned) opens its own on first use, and pickling drops them. Nothing here touches another
library's state: importing or using this changes how no other DataLoader collates.

>>> import anndata as ad, numpy as np, pandas as pd
>>> path = "a.h5ad"
>>> obs = pd.DataFrame({"cell_type": pd.Categorical(["T", "B", "T"])}, index=["a", "b", "c"])
>>> ad.AnnData(X=np.eye(3, dtype="float32"), obs=obs).write_h5ad(path)
>>> with MappedCollection([path], obs_keys="cell_type") as ds:
...     sample, batch = ds[1], ds[[2, 1]]
>>> ds.encoders["cell_type"], sample["X"].tolist(), sample["cell_type"]
({'B': 0, 'T': 1}, [0.0, 1.0, 0.0], 0)
>>> batch["X"].tolist(), batch["cell_type"].tolist(), batch["_store_idx"].tolist()
([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], [1, 0], [0, 0])

Training, the recommended way: whole batches through a DataLoader, here of 4 rows in shuffled
blocks of 2 neighbouring rows (`BlockShuffleSampler`; torch's `RandomSampler(ds)` in its place
for uniformly random rows). Call `blocks.set_epoch(epoch)` before each epoch for a new order;
`num_workers` works as usual.

>>> from torch.utils.data import BatchSampler, DataLoader
>>> from loaders import BlockShuffleSampler
>>> ds = MappedCollection(["sample.h5ad"], obs_keys="cell_type")
>>> blocks = BlockShuffleSampler(ds, block_size=2)
>>> loader = DataLoader(ds, batch_size=None, sampler=BatchSampler(blocks, 4, drop_last=False))
>>> [(batch["X"].shape, batch["X"].dtype, batch["cell_type"].tolist()) for batch in loader]
[(torch.Size([4, 4]), torch.float32, [2, 2, 0, 1]), (torch.Size([2, 4]), torch.float32, [0, 2])]
>>> ds.close()
"""

from __future__ import annotations

import copy
import operator
import os
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from loaders._mapped_labels import (
    _batch_dtype,
    _batch_lookup,
    _Labels,
    _make_encoder,
    _sample_lookup,
)
from loaders._mapped_rows import (
    _MISSING,
    _batch_array,
    _batch_labels,
    _group_by_file,
    _one_row,
    _sample_arrays,
    _sample_labels,
)
from loaders._mapped_store import _FileState, _Store
from loaders._zarrrows import ChunkCache
from loaders.rowsets import decode_rows, encode_rows

__all__ = ["ZARR_CHUNK_CACHE_BYTES", "MappedCollection"]

# Decoded zarr chunks kept per collection and process: a few chunks per array serve block
# sampling (anndata's chunks decode to ~0.5-5 MB); uniformly random rows gain only while the
# cache holds much of the data.
ZARR_CHUNK_CACHE_BYTES = 128 * 2**20


class MappedCollection:
    """Map-style PyTorch dataset that virtually concatenates the rows of many AnnData stores:
    .h5ad files and zarr stores (format 2 or 3, sharded or not), as lamindb's does.

    Same arguments and behaviour as lamindb's `MappedCollection`: `ds[i]` is a dict with one
    entry per layer in `layers_keys` (`"X"` is `.X`, `"raw.X"` is `.raw.X`), `"obsm_<key>"` per
    `obsm_keys`, `"_store_idx"` (which file) and one entry per `obs_keys` (integer codes where
    encoded, NaN where missing). Keys a file lacks are left out of its samples. `ds[indices]`
    is a whole batch, the same keys as arrays (see the module's docstring): the fast path.

    Args:
        path_list: local .h5ad files or zarr folders, or s3:// URIs together with
            `stream=True`. A path that is not a file is read as a zarr store.
        layers_keys: keys of `.layers`; None or "X" means `.X`, "raw.X" means `.raw.X`.
        obs_keys: `.obs` columns to return.
        obsm_keys: `.obsm` keys to return, as `"obsm_<key>"`.
        obs_filter: keep only rows whose `.obs` column has one of the values, e.g.
            `{"cell_type": ("T", "B")}`; NaN among the values keeps missing labels.
        join: "inner" or "outer" join of the variables across files; None for no join (all
            files must have as many variables).
        encode_labels: encode `obs_keys` (True) or those listed as integers.
        unknown_label: a label (or {obs_key: label}) encoded as -1.
        cache_categories: kept for compatibility; categories are always held (they are small).
        parallel: open files lazily in each process (DataLoader workers) instead of now.
        dtype: numpy dtype of the returned arrays (X, layers, obsm).
        stream: read s3:// files over the network instead of requiring local copies.
        storage_options: fsspec/s3fs options for remote paths.

    >>> import anndata as ad, numpy as np
    >>> path = "a.h5ad"
    >>> ad.AnnData(X=np.arange(6, dtype="float32").reshape(3, 2)).write_h5ad(path)
    >>> ds = MappedCollection([path, path], dtype="float64")
    >>> ds.shape, ds[4]["X"].tolist(), ds[[0, 5]]["_store_idx"].tolist()
    ((6, 2), [2.0, 3.0], [0, 1])
    >>> ds.close()
    """

    def __init__(
        self,
        path_list: list[str | Path],
        layers_keys: str | list[str] | None = None,
        obs_keys: str | list[str] | None = None,
        obsm_keys: str | list[str] | None = None,
        obs_filter: dict[str, Any] | None = None,
        join: Literal["inner", "outer"] | None = "inner",
        encode_labels: bool | list[str] = True,
        unknown_label: str | dict[str, str] | None = None,
        cache_categories: bool = True,
        parallel: bool = False,
        dtype: str | None = None,
        stream: bool = False,
        storage_options: dict | None = None,
    ):
        if join not in (None, "inner", "outer"):
            raise ValueError(f"join must be None, 'inner' or 'outer'; got {join!r}")
        if isinstance(path_list, (str, os.PathLike)):
            raise TypeError("path_list must be a list of paths, not a single path")
        path_list = list(path_list)
        if not path_list:
            raise ValueError(
                "path_list is empty: MappedCollection needs at least one .h5ad file or zarr store"
            )
        self.filtered = obs_filter is not None
        if self.filtered and not isinstance(obs_filter, dict):
            warnings.warn(
                "Passing a tuple to `obs_filter` is deprecated, use a dictionary",
                FutureWarning,
                stacklevel=2,
            )
            obs_filter = {obs_filter[0]: obs_filter[1]}  # type: ignore[index]

        self.layers_keys: list[str] = (
            ["X"]
            if layers_keys is None
            else [layers_keys]
            if isinstance(layers_keys, str)
            else list(layers_keys)
        )
        self.obsm_keys: list[str] | None = [obsm_keys] if isinstance(obsm_keys, str) else obsm_keys
        self.obs_keys: list[str] | None = [obs_keys] if isinstance(obs_keys, str) else obs_keys
        if isinstance(encode_labels, list):
            if len(encode_labels) == 0:
                encode_labels = False
            elif self.obs_keys is None or not all(k in self.obs_keys for k in encode_labels):
                raise ValueError("All elements of `encode_labels` should be in `obs_keys`.")
        elif encode_labels:
            encode_labels = list(self.obs_keys) if self.obs_keys is not None else False
        self.encode_labels: list[str] | Literal[False] = encode_labels  # type: ignore[assignment]
        if (
            encode_labels
            and isinstance(unknown_label, dict)
            and not all(k in encode_labels for k in unknown_label)  # type: ignore[operator]
        ):
            raise ValueError(
                "All keys of `unknown_label` should be in `encode_labels` and `obs_keys`."
            )
        self.unknown_label = unknown_label
        self.cache_categories = cache_categories
        self.parallel = parallel
        self.path_list = path_list
        self.stream = stream
        self._dtype = np.dtype(dtype) if dtype is not None else None
        self._closed = False
        # Called once by close(): what whoever built this dataset must undo then (lineage's
        # mapped() releases its hold on the cached copies).
        self._on_close: list[Callable[[], Any]] = []
        # Output keys of the arrays, in sample order, and of the labels (obs keys, once each).
        self._array_keys = list(dict.fromkeys(self.layers_keys)) + [
            f"obsm_{key}" for key in dict.fromkeys(self.obsm_keys or [])
        ]
        self._label_keys = list(dict.fromkeys(self.obs_keys or []))

        self._chunks = ChunkCache(ZARR_CHUNK_CACHE_BYTES)
        stores = [_Store(p, stream, storage_options, self._chunks) for p in path_list]
        self._files: list[_FileState] = []
        try:
            for store in stores:
                self._files.append(
                    _FileState.read(
                        store, self.layers_keys, self.obsm_keys or [], self._label_keys, obs_filter
                    )
                )
            self._index_rows()
            self._make_lookups()
            self._make_join_vars(join)
            self._plan_batches()
        except BaseException:
            for store in stores:
                store.close()
            raise
        if parallel:  # lamindb's parallel mode holds no handle; each process opens its own
            for file in self._files:
                file.store.close()

    # -- construction ---------------------------------------------------------------------------

    def _index_rows(self) -> None:
        self.n_obs = sum(file.n_obs for file in self._files)
        self.indices = np.concatenate([file.rows for file in self._files]).astype(np.int64)
        self.storage_idx = np.repeat(np.arange(len(self._files)), self.n_obs_list)
        # Whether some file lacks a requested key, so samples may differ in their keys.
        self._may_miss_keys = any(
            None in file.arrays.values() or None in file.labels.values() for file in self._files
        )

    def _make_lookups(self) -> None:
        """Encoders, then per file and obs key what a code becomes in a sample and in a batch."""
        self.encoders: dict[str, dict[Any, int]] = {}
        for key in self.encode_labels or []:
            if isinstance(self.unknown_label, dict):
                unknown = self.unknown_label.get(key)
            else:
                unknown = self.unknown_label
            self.encoders[key] = _make_encoder(self.get_merged_categories(key), unknown)
        self._label_dtypes: dict[str, np.dtype] = {}
        shown = [file for file in self._files if file.n_obs]  # files with rows in the dataset
        for key in self._label_keys:
            encoder = self.encoders.get(key)
            value_sets, missing = [], False
            for file in shown:
                labels = file.labels[key]
                if labels is None:
                    missing = True
                    continue
                missing = missing or bool((labels.codes[file.rows] < 0).any())
                values = labels.values
                value_sets.append(
                    np.array([encoder[v] for v in values]) if encoder is not None else values
                )
            dtype = _batch_dtype(value_sets, missing)
            self._label_dtypes[key] = dtype
            for file in self._files:
                labels = file.labels[key]
                if labels is None:
                    file.sample_lookups[key] = file.batch_lookups[key] = None
                else:
                    file.sample_lookups[key] = _sample_lookup(labels.values, encoder)
                    file.batch_lookups[key] = _batch_lookup(labels.values, encoder, dtype)

    def _make_join_vars(self, join: Literal["inner", "outer"] | None) -> None:
        self.join_vars: Literal["inner", "outer"] | None = join
        self.var_indices: list[np.ndarray] | None = None
        self.var_joint: pd.Index | None = None
        self.n_vars: int | None = None
        first = self._files[0]
        if join is None:
            for file in self._files:
                if file.width != first.width:
                    raise ValueError(
                        f"join=None needs the same number of variables in every file, but "
                        f"{file.uri} has {file.width} and {first.uri} has {first.width}; "
                        "use join='inner' or 'outer'"
                    )
            return
        var_list = self._read_vars()
        if all(var_list[0].equals(v) for v in var_list[1:]):
            self.join_vars = None
            self.var_joint = var_list[0]
            # One object for all: pickling (DataLoader workers) then writes the names once.
            for file in self._files:
                file.var_names = self.var_joint
        elif join == "inner":
            self.var_joint = reduce(pd.Index.intersection, var_list)
            if len(self.var_joint) == 0:
                raise ValueError(
                    "The provided AnnData objects don't have shared variables "
                    f"({', '.join(f.uri for f in self._files)}).\nUse join='outer'."
                )
            self.var_indices = [v.get_indexer(self.var_joint) for v in var_list]
            for file, v, idx in zip(self._files, var_list, self.var_indices):
                col_map = np.full(len(v), -1, dtype=np.int64)
                col_map[idx] = np.arange(len(idx))
                file.col_map = col_map
        else:
            self.var_joint = reduce(pd.Index.union, var_list)
            self.var_indices = [self.var_joint.get_indexer(v) for v in var_list]
            for file, idx in zip(self._files, self.var_indices):
                file.col_map = idx.astype(np.int64)
        self.n_vars = len(self.var_joint)
        if self.join_vars is not None and "raw.X" in self.layers_keys:
            for file, names in zip(self._files, var_list):
                raw = file.arrays["raw.X"]
                if raw is not None and raw.shape[1] != len(names):
                    raise ValueError(
                        f"raw.X in {file.uri} has {raw.shape[1]} variables but var has "
                        f"{len(names)}: a join cannot align it; use join=None or map files with "
                        "the same variables"
                    )

    def file_rows(self) -> list[tuple[np.ndarray, int]]:
        """Per file, in `path_list` order: the file rows the dataset shows (sorted indices,
        after `obs_filter`) and how many rows the file has. Known since construction: nothing
        is read.

        >>> with MappedCollection(["sample.h5ad"], obs_filter={"cell_type": "T"}) as ds:
        ...     [(rows.tolist(), n) for rows, n in ds.file_rows()]
        [([0, 2, 5], 6)]
        """
        return [(file.rows, file.n_file_rows) for file in self._files]

    def _read_vars(self) -> list[pd.Index]:
        return [file.read_var_names() for file in self._files]

    def _plan_batches(self) -> None:
        """Each array key's (dtype, width) in a batch, or why the collection cannot be read in
        whole batches: a file with rows lacks the key, or the widths differ."""
        self._batch_arrays: dict[str, tuple[np.dtype, int]] = {}
        self._batch_problem: str | None = None
        shown = [file for file in self._files if file.n_obs] or self._files
        for key in self._array_keys:
            lacking = [file for file in shown if file.arrays[key] is None]
            if lacking:
                self._batch_problem = (
                    f"{lacking[0].uri} has no {key!r}: whole batches need every file to have every "
                    "requested layer and obsm key; leave the key out, or read per sample (ds[i], "
                    "or a DataLoader with batch_size=B)"
                )
                return
            widths = {file.out_width(key, self.n_vars): file.uri for file in shown}
            if len(widths) > 1:
                (w1, uri1), (w2, uri2) = list(widths.items())[:2]
                self._batch_problem = (
                    f"{key!r} has {w1} columns in {uri1} but {w2} in {uri2}: rows of different "
                    "widths cannot share one batch array; read them per sample (ds[i], or a "
                    "DataLoader with batch_size=B)"
                )
                return
            dtypes = [element.dtype for file in shown if (element := file.arrays[key])]
            dtype = self._dtype if self._dtype is not None else np.result_type(*dtypes)
            self._batch_arrays[key] = (dtype, next(iter(widths)))

    # -- lamindb's attributes -------------------------------------------------------------------

    @property
    def n_obs_list(self) -> list[int]:
        """Rows per file (with `obs_filter` applied).

        >>> MappedCollection(["sample.h5ad", "sample.h5ad"]).n_obs_list
        [6, 6]
        """
        return [file.n_obs for file in self._files]

    @property
    def indices_list(self) -> list[np.ndarray]:
        """Per file, the rows the collection shows (all, or those passing `obs_filter`).

        >>> ds = MappedCollection(["sample.h5ad"], obs_filter={"cell_type": "B"})
        >>> ds.indices_list[0].tolist()
        [1, 4]
        """
        return [file.rows for file in self._files]

    @property
    def var_list(self) -> list[pd.Index] | None:
        """Per file, its var index; None until read (a join reads it; so do the checks below).

        >>> list(MappedCollection(["sample.h5ad"]).var_list[0])
        ['gene0', 'gene1', 'gene2', 'gene3']
        """
        names = [file.var_names for file in self._files]
        return None if any(n is None for n in names) else names  # type: ignore[return-value]

    @var_list.setter
    def var_list(self, value: list[pd.Index] | None) -> None:
        names = [None] * len(self._files) if value is None else list(value)
        for file, name in zip(self._files, names):
            file.var_names = name

    @property
    def n_vars_list(self) -> list[int] | None:
        """Per file, its number of variables; None until the var indices are read.

        >>> MappedCollection(["sample.h5ad"], join=None).n_vars_list is None
        True
        """
        var_list = self.var_list
        return None if var_list is None else [len(v) for v in var_list]

    def __len__(self) -> int:
        return self.n_obs

    @property
    def shape(self) -> tuple[int, int | None]:
        """Shape of the (virtually joined) dataset.

        >>> MappedCollection(["sample.h5ad", "sample.h5ad"]).shape
        (12, 4)
        """
        return (self.n_obs, self.n_vars)

    @property
    def original_shapes(self) -> list[tuple[int, int | None]]:
        """Shapes of the files (with `obs_filter` applied).

        >>> MappedCollection(["sample.h5ad"], obs_filter={"cell_type": "T"}).original_shapes
        [(3, 4)]
        """
        n_vars_list = self.n_vars_list
        widths = n_vars_list if n_vars_list is not None else [None] * len(self._files)
        return list(zip(self.n_obs_list, widths))

    @property
    def storages(self) -> list[Any]:
        """The open h5py files and zarr groups, one per path (the paths themselves when
        parallel=True, as in lamindb, where each process opens its own).

        >>> MappedCollection(["sample.h5ad"], parallel=True).storages
        ['sample.h5ad']
        """
        if self.parallel:
            return list(self.path_list)
        self._check_open()
        return [file.store.file() for file in self._files]

    # -- reading --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed and not self.parallel:
            raise ValueError("This MappedCollection is closed; create a new one to read again")

    def _position(self, idx: int) -> int:
        i = idx + self.n_obs if idx < 0 else idx
        if not 0 <= i < self.n_obs:
            raise IndexError(f"index {idx} is out of range for {self.n_obs} observations")
        return i

    def _positions(self, indices: Sequence[int] | np.ndarray | slice) -> np.ndarray:
        if isinstance(indices, slice):
            return np.arange(self.n_obs, dtype=np.int64)[indices]
        idx = np.asarray(indices).reshape(-1)
        if idx.dtype.kind not in "iu" and idx.size:
            raise TypeError(
                f"MappedCollection indices must be integers (one, or a sequence), got {indices!r}"
            )
        idx = idx.astype(np.int64, copy=False)
        bad = (idx < -self.n_obs) | (idx >= self.n_obs)
        if bad.any():
            raise IndexError(f"index {idx[bad][0]} is out of range for {self.n_obs} observations")
        return np.where(idx < 0, idx + self.n_obs, idx)

    def __getitem__(self, idx: int | Sequence[int] | np.ndarray | slice) -> dict[str, Any]:
        """lamindb's sample dict for an integer index; for a sequence of indices (or a slice),
        the whole batch as a dict of arrays (see the module's docstring).

        >>> ds = MappedCollection(["sample.h5ad"], obs_keys="cell_type")
        >>> sorted(ds[0]), ds[0]["X"].shape, ds[[0, 1]]["X"].shape, ds[:3]["cell_type"].tolist()
        (['X', '_store_idx', 'cell_type'], (4,), (2, 4), [2, 0, 2])
        """
        try:
            i = operator.index(idx)  # type: ignore[arg-type]
        except TypeError:
            return self._batch(idx)  # type: ignore[arg-type]
        return self._sample(i)

    def _sample(self, idx: int) -> dict[str, Any]:
        self._check_open()
        i = self._position(idx)
        file_idx = int(self.storage_idx[i])
        file = self._files[file_idx]
        row = int(self.indices[i])
        out: dict[str, Any] = {}
        for key in self._array_keys:
            if file.arrays[key] is not None:
                out[key] = _one_row(file, key, row, self._dtype, self.n_vars)
        out["_store_idx"] = file_idx
        for key in self._label_keys:
            lookup, labels = file.sample_lookups[key], file.labels[key]
            if lookup is not None and labels is not None:
                out[key] = lookup[labels.codes[row]]
        return out

    def _batch(self, indices: Sequence[int] | np.ndarray | slice) -> dict[str, Any]:
        self._check_open()
        if self._batch_problem is not None:
            raise ValueError(self._batch_problem)
        idx = self._positions(indices)
        self._chunks.begin()
        stores = self.storage_idx[idx]
        rows = self.indices[idx]
        groups = _group_by_file(stores)
        out: dict[str, Any] = {}
        for key, (dtype, width) in self._batch_arrays.items():
            out[key] = _batch_array(self._files, groups, rows, key, dtype, width)
        out["_store_idx"] = stores
        for key, dtype in self._label_dtypes.items():
            out[key] = _batch_labels(self._files, groups, rows, key, dtype)
        return out

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Many samples at once, as `[self[i] for i in indices]` returns them, read in bulk.

        PyTorch's DataLoader calls this with each batch's indices when automatic batching is on
        (`batch_size=B`); it then collates the samples row by row. `ds[indices]` returns the
        batch as arrays instead, which is faster.

        >>> import anndata as ad, numpy as np
        >>> path = "a.h5ad"
        >>> ad.AnnData(X=np.arange(6, dtype="float32").reshape(3, 2)).write_h5ad(path)
        >>> with MappedCollection([path]) as ds:
        ...     [s["X"].tolist() for s in ds.__getitems__([2, 0])]
        [[4.0, 5.0], [0.0, 1.0]]
        """
        self._check_open()
        idx = self._positions(indices)
        if len(idx) == 0:
            return []
        self._chunks.begin()
        stores = self.storage_idx[idx]
        rows = self.indices[idx]
        groups = _group_by_file(stores)
        keys: list[str] = []
        columns: list[list[Any]] = []
        for key in self._array_keys:
            keys.append(key)
            columns.append(_sample_arrays(self._files, groups, rows, key, self._dtype, self.n_vars))
        keys.append("_store_idx")
        columns.append(stores.tolist())
        for key in self._label_keys:
            keys.append(key)
            columns.append(_sample_labels(self._files, groups, rows, key))
        if self._may_miss_keys:
            return [
                {k: v for k, v in zip(keys, sample) if v is not _MISSING}
                for sample in zip(*columns)
            ]
        return [dict(zip(keys, sample)) for sample in zip(*columns)]

    # -- labels ---------------------------------------------------------------------------------

    def get_label_weights(
        self,
        obs_keys: str | list[str],
        scaler: float | None = None,
        return_categories: bool = False,
    ) -> np.ndarray | dict[str, float]:
        """Weights `1 / count of the label` per observation (`scaler / (count + scaler)` with a
        scaler), e.g. for a `WeightedRandomSampler`. Several keys are joined with "__". With
        `return_categories`, a dict from label to weight instead.

        >>> import anndata as ad, numpy as np, pandas as pd
        >>> path = "a.h5ad"
        >>> obs = pd.DataFrame({"t": pd.Categorical(["a", "b", "a"])}, index=["0", "1", "2"])
        >>> ad.AnnData(X=np.ones((3, 1)), obs=obs).write_h5ad(path)
        >>> MappedCollection([path], obs_keys="t").get_label_weights("t").tolist()
        [0.5, 1.0, 0.5]
        """
        if isinstance(obs_keys, str):
            obs_keys = [obs_keys]
        labels_list = [self.get_merged_labels(k).astype(str).astype("O") for k in obs_keys]
        labels: list[str] | np.ndarray
        if len(labels_list) > 1:
            labels = ["__".join(obs) for obs in zip(*labels_list)]
        else:
            labels = labels_list[0]
        counter = Counter(labels)
        if return_categories:
            return {
                k: 1.0 / v if scaler is None else scaler / (v + scaler) for k, v in counter.items()
            }
        counts = np.array([counter[label] for label in labels])
        return 1.0 / counts if scaler is None else scaler / (counts + scaler)

    def _labels_of(self, label_key: str, file: _FileState) -> _Labels | None:
        if label_key in file.labels:
            return file.labels[label_key]
        return _Labels.read(file.store.file(), label_key, file.uri)

    def get_merged_labels(self, label_key: str) -> np.ndarray:
        """The labels of `label_key` over all files that have it (NaN where missing).

        >>> import anndata as ad, numpy as np, pandas as pd
        >>> path = "a.h5ad"
        >>> obs = pd.DataFrame({"t": pd.Categorical(["a", "b"])}, index=["0", "1"])
        >>> ad.AnnData(X=np.ones((2, 1)), obs=obs).write_h5ad(path)
        >>> MappedCollection([path, path]).get_merged_labels("t").tolist()
        ['a', 'b', 'a', 'b']
        """
        merged = []
        for file in self._files:
            labels = self._labels_of(label_key, file)
            if labels is None:
                continue
            values = labels.labels()
            merged.append(values[file.rows] if self.filtered else values)
        return np.hstack(merged) if merged else np.array([], dtype=object)

    def get_merged_categories(self, label_key: str) -> list[Any]:
        """The sorted categories of `label_key` over all files (values, for a column that is not
        categorical).

        >>> import anndata as ad, numpy as np, pandas as pd
        >>> path = "a.h5ad"
        >>> obs = pd.DataFrame({"t": pd.Categorical(["b", "a"])}, index=["0", "1"])
        >>> ad.AnnData(X=np.ones((2, 1)), obs=obs).write_h5ad(path)
        >>> MappedCollection([path]).get_merged_categories("t")
        ['a', 'b']
        """
        merged: set[Any] = set()
        for file in self._files:
            labels = self._labels_of(label_key, file)
            if labels is not None:
                merged.update(labels.values.tolist())
        return sorted(merged)

    def check_vars_sorted(self, ascending: bool = True) -> bool:
        """Whether the variables of every file are sorted.

        >>> MappedCollection(["sample.h5ad"]).check_vars_sorted()
        True
        """
        var_list = self.var_list if self.var_list is not None else self._read_vars()
        if ascending:
            return all(v.is_monotonic_increasing for v in var_list)
        return all(v.is_monotonic_decreasing for v in var_list)

    def check_vars_non_aligned(self, vars: pd.Index | list) -> list[int]:
        """Indices of the files whose variables differ from `vars`.

        >>> MappedCollection(["sample.h5ad"]).check_vars_non_aligned(["gene0", "gene1"])
        [0]
        """
        var_list = self.var_list if self.var_list is not None else self._read_vars()
        expected = pd.Index(vars)
        return [i for i, v in enumerate(var_list) if not v.equals(expected)]

    # -- pickling: what a DataLoader worker receives -----------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """What pickling keeps: no handle (each `_Store` drops its own) and no per-row array but
        the label codes. The position arrays (`indices`, `storage_idx`: 16 bytes a row) are
        rebuilt on unpickling, and each file's rows travel as a row set (`loaders.rowsets`: a few
        bytes for a whole file, a bitmap at most), so a spawned worker gets the dataset in
        about 1 byte per row and obs key."""
        state = self.__dict__.copy()
        del state["indices"], state["storage_idx"]
        # A copy in a DataLoader worker is not the owner: closing it must not undo the
        # original's holds on the shared cache. (The decoded-chunk cache pickles empty.)
        state["_on_close"] = []
        files = []
        for file in self._files:
            light = copy.copy(file)
            light.rows = np.zeros(0, dtype=np.int64)
            files.append(light)
        state["_files"] = files
        state["_rowsets"] = [encode_rows(f.rows, f.n_file_rows) for f in self._files]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        rowsets = state.pop("_rowsets")
        self.__dict__.update(state)
        for file, rowset in zip(self._files, rowsets):
            file.rows = decode_rows(rowset, file.n_file_rows).astype(np.int64, copy=False)
        self._index_rows()

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close this process's file handles; reading afterwards raises (unless parallel=True,
        where each read opens what it needs, as in lamindb).

        >>> ds = MappedCollection(["sample.h5ad"])
        >>> ds.close(); ds.closed
        True
        """
        for file in getattr(self, "_files", []):
            file.store.close()
        if hasattr(self, "_chunks"):
            self._chunks.clear()
        callbacks, self._on_close = getattr(self, "_on_close", []), []
        for callback in callbacks:
            callback()
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    def __enter__(self) -> MappedCollection:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"MappedCollection({len(self._files)} files, shape={self.shape}, "
            f"join={self.join_vars!r}, closed={self._closed})"
        )

    @classmethod
    def torch_worker_init_fn(cls, worker_id: int) -> None:
        """lamindb's `worker_init_fn`; not needed here (workers open their own files on first
        use), kept so code written for lamindb runs unchanged.

        >>> from torch.utils.data import DataLoader
        >>> ds = MappedCollection(["sample.h5ad"])
        >>> loader = DataLoader(ds, worker_init_fn=MappedCollection.torch_worker_init_fn)
        """
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None and isinstance(info.dataset, MappedCollection):
            for file in info.dataset._files:
                file.store.file()
