"""MappedCollection: a PyTorch map-style dataset over many .h5ad files, read in batches.

API-compatible with lamindb's `MappedCollection` (same constructor arguments, attributes, sample
dicts and label encoders), but a DataLoader with automatic batching reads each batch through
`__getitems__`: rows are grouped by file, sorted, merged into runs and read with a few bulk reads
(`loaders._h5rows`), then densified in bulk with numpy. Only `indptr`, label codes, categories and
open handles are kept; no data is cached, so memory stays flat over an epoch.

File handles belong to one process: a DataLoader worker (forked or spawned) opens its own on
first use, and pickling drops them. Each sample's arrays are row views of one array per batch;
once torch's DataLoader is in use, a collate rule for that private row type is added to torch's
`default_collate_fn_map`, so `default_collate` hands the batch array over whole instead of
stacking 256 rows back into a copy (every other type collates as before).

>>> import anndata as ad, numpy as np, pandas as pd, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
>>> obs = pd.DataFrame({"cell_type": pd.Categorical(["T", "B", "T"])}, index=["a", "b", "c"])
>>> ad.AnnData(X=np.eye(3, dtype="float32"), obs=obs).write_h5ad(path)
>>> with MappedCollection([path], obs_keys="cell_type") as ds:
...     sample = ds[1]
...     print(len(ds), ds.encoders["cell_type"], sample["X"].tolist(), sample["cell_type"])
3 {'B': 0, 'T': 1} [0.0, 1.0, 0.0] 0
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd

from loaders._h5rows import CsrRows, DenseRows, encoding_of, open_rows
from loaders.storage import filesystem, is_remote

__all__ = ["MappedCollection"]

# HDF5's chunk cache per dataset: enough for compressed chunks to be reused within a batch,
# small enough that memory stays flat.
_CHUNK_CACHE_BYTES = 4 * 2**20
# A streamed S3 file is read in blocks of this size, at most 32 blocks kept (s3fs blockcache).
_STREAM_BLOCK_BYTES = 2**20
_MISSING = object()


class _BatchRows(np.ndarray):
    """A batch's rows, allocated once; each sample gets a row view. `default_collate` would stack
    the views back into a copy of this array, one tensor per row: the collate function registered
    below hands over the whole array instead when the views come back complete and in order."""

    _row_ids: list[int] | None = None


def _collate_batch_rows(batch: Sequence[np.ndarray], *, collate_fn_map: dict | None = None) -> Any:
    import torch
    from torch.utils.data._utils.collate import collate_numpy_array_fn

    owner = batch[0].base
    if (
        isinstance(owner, _BatchRows)
        and owner._row_ids is not None
        and owner.shape[0] == len(batch)
        and owner._row_ids == list(map(id, batch))
    ):
        tensor = torch.from_numpy(owner.view(np.ndarray))
        if torch.utils.data.get_worker_info() is None:
            return tensor
        # In a worker the batch goes to the main process through shared memory: copy it there
        # once, as torch's own tensor collate does.
        storage = tensor._typed_storage()._new_shared(tensor.numel(), device=tensor.device)
        return tensor.new(storage).resize_(tensor.shape).copy_(tensor)
    plain = [row.view(np.ndarray) for row in batch]
    return collate_numpy_array_fn(plain, collate_fn_map=collate_fn_map)


def _register_collate() -> None:
    # Only once torch's collate module is loaded (a DataLoader is in use): importing torch here
    # would make every MappedCollection pay for it.
    collate = sys.modules.get("torch.utils.data._utils.collate")
    if collate is not None and _BatchRows not in collate.default_collate_fn_map:
        collate.default_collate_fn_map[_BatchRows] = _collate_batch_rows


@functools.lru_cache(maxsize=64)
def _sample_builder(keys: tuple[str, ...]) -> Callable[[list[list[Any]]], list[dict[str, Any]]]:
    """A function turning columns into one dict per sample. A dict display with the keys
    written out builds 4x faster than dict(zip(keys, values)), 256 times a batch; the keys
    enter the source only through repr(), as string literals."""
    if not all(type(k) is str for k in keys):
        return lambda columns: [dict(zip(keys, sample)) for sample in zip(*columns)]
    names = [f"v{i}" for i in range(len(keys))]
    body = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names))
    source = f"lambda columns: [{{{body}}} for {', '.join(names)}, in zip(*columns)]"
    return eval(source, {"__builtins__": {"zip": zip}})


def _decode(dset: h5py.Dataset) -> np.ndarray:
    """A dataset's values with strings as Python str (h5py gives bytes)."""
    if h5py.check_string_dtype(dset.dtype) is not None:
        return dset.asstr()[...]
    values = dset[...]
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8").astype(object)
    if values.dtype.kind == "O":
        return np.array(
            [v.decode("utf-8") if isinstance(v, bytes) else v for v in values], dtype=object
        )
    return values


def _is_na(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list-like value is not a missing one
        return False


class _Labels:
    """One obs column of one file: integer codes (-1 where missing) and the values they stand
    for. Categorical columns come as stored; other columns are factorized once."""

    def __init__(self, codes: np.ndarray, values: np.ndarray, categorical: bool):
        self.codes = codes
        self.values = values  # object array of Python values
        self.categorical = categorical

    @classmethod
    def read(cls, file: h5py.File, key: str, path: str) -> _Labels | None:
        obs = file["obs"]
        if isinstance(obs, h5py.Dataset):
            raise ValueError(
                f"{path} stores obs in the pre-0.7 anndata format; write it again with a "
                "current anndata to read it with MappedCollection"
            )
        legacy = obs.get("__categories")
        if isinstance(legacy, h5py.Group) and key in legacy and key in obs:
            return cls(obs[key][...], _decode(legacy[key]).astype(object), True)
        if key not in obs:
            return None
        column = obs[key]
        if isinstance(column, h5py.Group):
            if "codes" in column and "categories" in column:
                return cls(column["codes"][...], _decode(column["categories"]).astype(object), True)
            if "values" in column and "mask" in column:  # nullable integer/boolean/string
                raw = _decode(column["values"]).astype(object)
                raw[column["mask"][...].astype(bool)] = np.nan
                return cls._factorize(raw)
            raise ValueError(f"obs/{key} in {path} has an unsupported encoding")
        return cls._factorize(_decode(column))

    @classmethod
    def _factorize(cls, raw: np.ndarray) -> _Labels:
        codes, uniques = pd.factorize(raw, use_na_sentinel=True)
        return cls(codes, np.asarray(uniques).astype(object), False)

    def labels(self) -> np.ndarray:
        """Every row's value, NaN where missing."""
        return _with_nan(self.values)[self.codes]


def _with_nan(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    # Code -1 indexes the last element: NaN, lamindb's value for a missing label.
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[:-1] = list(values)
    lookup[-1] = np.nan
    return lookup


class _Store:
    """One .h5ad file; its handles belong to the process that opened them."""

    def __init__(self, path: str | os.PathLike[str], stream: bool, storage_options: dict | None):
        self.uri = str(path)
        self.remote = is_remote(self.uri)
        self.storage_options = storage_options
        if self.remote and not stream:
            raise ValueError(
                f"{self.uri} is remote: cache it first (e.g. collection.cache()) and map the local "
                "copies, or pass stream=True to read it over the network"
            )
        _, self.path = filesystem(self.uri, storage_options)
        if not self.remote:
            if not os.path.exists(self.path):
                raise FileNotFoundError(f"No such file: {self.uri}")
            if os.path.isdir(self.path):
                raise ValueError(f"{self.uri} is a directory; MappedCollection reads .h5ad files")
        self._pid: int | None = None
        self._file: h5py.File | None = None
        self._fobj: Any = None
        self._raw: Any = None  # an unbuffered file object: its fd serves direct reads
        self._readers: dict[str, DenseRows | CsrRows | None] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_pid=None, _file=None, _fobj=None, _raw=None, _readers={})
        return state

    def _forget(self) -> None:
        # Handles inherited through fork are copies of the parent's: dropping them closes only
        # this process's copies.
        self._file = self._fobj = self._raw = None
        self._readers = {}
        self._pid = None

    def file(self) -> h5py.File:
        if self._pid != os.getpid():
            self._forget()
        if self._file is None:
            try:
                if self.remote:
                    fs, _ = filesystem(self.uri, self.storage_options)
                    self._fobj = fs.open(
                        self.path, "rb", cache_type="blockcache", block_size=_STREAM_BLOCK_BYTES
                    )
                    self._file = h5py.File(self._fobj, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
                else:
                    self._file = h5py.File(self.path, "r", rdcc_nbytes=_CHUNK_CACHE_BYTES)
                    self._raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
            except OSError as exc:
                self.close()
                raise ValueError(f"{self.uri} is not a readable .h5ad (HDF5) file: {exc}") from exc
            self._pid = os.getpid()
        return self._file

    def reader(self, elem_path: str) -> DenseRows | CsrRows | None:
        file = self.file()
        if elem_path not in self._readers:
            elem = file.get(elem_path)
            fd = self._raw.fileno() if self._raw is not None else None
            self._readers[elem_path] = None if elem is None else open_rows(elem, fd)
        return self._readers[elem_path]

    def close(self) -> None:
        if self._pid == os.getpid():
            if self._file is not None:
                with contextlib.suppress(Exception):  # a half-open file may fail to close
                    self._file.close()
            for handle in (self._fobj, self._raw):
                if handle is not None:
                    handle.close()
        self._forget()


class MappedCollection:
    """Map-style PyTorch dataset that virtually concatenates the rows of many .h5ad files.

    Same arguments and behaviour as lamindb's `MappedCollection`: `ds[i]` is a dict with one
    entry per layer in `layers_keys` (`"X"` is `.X`, `"raw.X"` is `.raw.X`), `"obsm_<key>"` per
    `obsm_keys`, `"_store_idx"` (which file) and one entry per `obs_keys` (integer codes where
    encoded, NaN where missing). Keys a file lacks are left out of its samples. A DataLoader with
    automatic batching reads whole batches through `__getitems__`, many times faster.

    Args:
        path_list: local .h5ad paths, or s3:// URIs together with `stream=True`.
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

    >>> import anndata as ad, numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
    >>> ad.AnnData(X=np.arange(6, dtype="float32").reshape(3, 2)).write_h5ad(path)
    >>> ds = MappedCollection([path, path], dtype="float64")
    >>> ds.shape, ds[4]["X"].tolist(), [s["_store_idx"] for s in ds.__getitems__([0, 5])]
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
            raise ValueError("path_list is empty: MappedCollection needs at least one .h5ad file")
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
        self._requested_join = join

        self._stores = [_Store(p, stream, storage_options) for p in path_list]
        try:
            self._read_metadata(obs_filter)
        except BaseException:
            self.close()
            raise
        if parallel:  # lamindb's parallel mode holds no handle; each process opens its own
            for store in self._stores:
                store.close()

    # -- construction ---------------------------------------------------------------------------

    def _read_metadata(self, obs_filter: dict[str, Any] | None) -> None:
        self._cache_obs_keys: list[set[str]] = []
        self._cache_layers_keys: list[set[str]] = []
        self._cache_obsm_keys: list[set[str]] = []
        self._cache_has_raw: list[bool] = []
        self._labels: dict[str, list[_Labels | None]] = {k: [] for k in self.obs_keys or []}
        self._widths: list[int] = []
        self.n_obs_list: list[int] = []
        self.indices_list: list[np.ndarray] = []
        for store in self._stores:
            file = store.file()
            path = store.uri
            if "X" not in file:
                raise ValueError(f"{path} has no X: is it an .h5ad file?")
            obs = file.get("obs")
            self._cache_obs_keys.append(set(obs.keys()) if isinstance(obs, h5py.Group) else set())
            self._cache_layers_keys.append(
                set(file["layers"].keys()) if "layers" in file else set()
            )
            self._cache_obsm_keys.append(set(file["obsm"].keys()) if "obsm" in file else set())
            self._cache_has_raw.append("raw" in file and "X" in file["raw"])
            x = file["X"]
            self._check_csc(x, "X", path)
            n_obs, width = (x.shape if isinstance(x, h5py.Dataset) else x.attrs["shape"])[:2]
            self._widths.append(int(width))
            for key in self.layers_keys:
                elem_path = self._elem_path(key, len(self._widths) - 1)
                if elem_path is not None and elem_path != "X":
                    self._check_csc(file[elem_path], elem_path.replace("raw/X", "raw.X"), path)
            for key in self.obsm_keys or []:
                if key in self._cache_obsm_keys[-1]:
                    self._check_csc(file["obsm"][key], f"obsm/{key}", path)
            for key in self._labels:
                self._labels[key].append(_Labels.read(file, key, path))
            if self.filtered:
                keep = self._filter_mask(file, path, int(n_obs), obs_filter or {})
                indices = np.flatnonzero(keep)
            else:
                indices = np.arange(int(n_obs))
            self.n_obs_list.append(len(indices))
            self.indices_list.append(indices)
        self.n_obs = int(sum(self.n_obs_list))
        self.indices = (
            np.hstack(self.indices_list).astype(np.int64)
            if self.n_obs_list
            else np.zeros(0, np.int64)
        )
        self.storage_idx = np.repeat(np.arange(len(self._stores)), self.n_obs_list)

        self._cache_cats: dict[str, list[np.ndarray | None]] = {
            key: [lab.values if lab is not None and lab.categorical else None for lab in labs]
            for key, labs in self._labels.items()
        }
        self.encoders: dict[str, dict[Any, int]] = {}
        for key in self.encode_labels or []:
            self._make_encoder(key)
        # Per label and file: code -> returned value (encoded or not), NaN for code -1.
        self._lookups: dict[str, list[np.ndarray | None]] = {}
        for key, labs in self._labels.items():
            encoder = self.encoders.get(key)
            self._lookups[key] = [
                None
                if lab is None
                else _with_nan(
                    [encoder[v] for v in lab.values] if encoder is not None else lab.values
                )
                for lab in labs
            ]

        self.var_indices: list[np.ndarray] | None = None
        self.var_joint: pd.Index | None = None
        self.n_vars_list: list[int] | None = None
        self.var_list: list[pd.Index] | None = None
        self.n_vars: int | None = None
        self._col_maps: list[np.ndarray | None] = [None] * len(self._stores)
        self._make_join_vars(self._requested_join)
        # Whether some file lacks a requested key, so samples may differ in their keys.
        self._may_miss_keys = (
            any(
                self._elem_path(key, i) is None
                for key in self.layers_keys
                for i in range(len(self._stores))
            )
            or any(
                key not in self._cache_obsm_keys[i]
                for key in self.obsm_keys or []
                for i in range(len(self._stores))
            )
            or any(lab is None for labs in self._labels.values() for lab in labs)
        )

    def _make_join_vars(self, join: Literal["inner", "outer"] | None) -> None:
        self.join_vars: Literal["inner", "outer"] | None = join
        if join is None:
            for store, width in zip(self._stores, self._widths):
                if width != self._widths[0]:
                    raise ValueError(
                        f"join=None needs the same number of variables in every file, but "
                        f"{store.uri} has {width} and {self._stores[0].uri} has {self._widths[0]}; "
                        "use join='inner' or 'outer'"
                    )
            return
        self._read_vars()
        assert self.var_list is not None
        if all(self.var_list[0].equals(v) for v in self.var_list[1:]):
            self.join_vars = None
            self.var_joint = self.var_list[0]
        elif join == "inner":
            self.var_joint = reduce(pd.Index.intersection, self.var_list)
            if len(self.var_joint) == 0:
                raise ValueError(
                    "The provided AnnData objects don't have shared variables "
                    f"({', '.join(s.uri for s in self._stores)}).\nUse join='outer'."
                )
            self.var_indices = [v.get_indexer(self.var_joint) for v in self.var_list]
            for i, (v, idx) in enumerate(zip(self.var_list, self.var_indices)):
                col_map = np.full(len(v), -1, dtype=np.int64)
                col_map[idx] = np.arange(len(idx))
                self._col_maps[i] = col_map
        else:
            self.var_joint = reduce(pd.Index.union, self.var_list)
            self.var_indices = [self.var_joint.get_indexer(v) for v in self.var_list]
            self._col_maps = [idx.astype(np.int64) for idx in self.var_indices]
        self.n_vars = len(self.var_joint)
        if self.join_vars is not None and "raw.X" in self.layers_keys:
            for i, store in enumerate(self._stores):
                reader = self._reader(i, "raw.X")
                if reader is not None and reader.shape[1] != len(self.var_list[i]):
                    raise ValueError(
                        f"raw.X in {store.uri} has {reader.shape[1]} variables but var has "
                        f"{len(self.var_list[i])}: a join cannot align it; use join=None or map "
                        "files with the same variables"
                    )

    def _read_vars(self) -> None:
        self.var_list = []
        self.n_vars_list = []
        for store in self._stores:
            var = store.file()["var"]
            index_key = var.attrs.get("_index", "_index")
            index_key = index_key.decode() if isinstance(index_key, bytes) else index_key
            if index_key not in var:
                raise ValueError(f"{store.uri} has no var index ({index_key!r})")
            names = pd.Index(_decode(var[index_key]))
            self.var_list.append(names)
            self.n_vars_list.append(len(names))

    def _filter_mask(self, file: h5py.File, path: str, n_obs: int, obs_filter: dict) -> np.ndarray:
        keep = np.ones(n_obs, dtype=bool)
        for key, values in obs_filter.items():
            if isinstance(values, tuple):
                values = list(values)
            elif not isinstance(values, list):
                values = [values]
            labels = _Labels.read(file, key, path)
            if labels is None:  # lamindb: a column the file lacks matches nothing
                keep[:] = False
                continue
            wanted = {v for v in values if not _is_na(v)}
            hits = np.fromiter(
                (v in wanted for v in labels.values), dtype=bool, count=len(labels.values)
            )
            hits = np.append(hits, any(_is_na(v) for v in values))  # code -1: missing label
            keep &= hits[labels.codes]
        return keep

    def _make_encoder(self, label: str) -> None:
        cats = self.get_merged_categories(label)
        if isinstance(self.unknown_label, dict):
            unknown = self.unknown_label.get(label)
        else:
            unknown = self.unknown_label
        encoder: dict[Any, int] = {}
        if unknown is not None and unknown in cats:
            cats.remove(unknown)
            encoder[unknown] = -1
        encoder.update({cat: i for i, cat in enumerate(cats)})
        self.encoders[label] = encoder

    def _check_csc(self, elem: h5py.Group | h5py.Dataset, key: str, path: str) -> None:
        kind = encoding_of(elem)
        if kind == "csc_matrix":
            raise ValueError(
                f"{key} in {path} is a csc matrix, `MappedCollection` doesn't support this format: "
                "it reads rows, so store it as CSR (e.g. adata.X = adata.X.tocsr()) or dense"
            )
        if kind not in ("array", "csr_matrix"):
            raise ValueError(
                f"{key} in {path} is stored as {kind!r}; MappedCollection reads dense arrays and "
                "CSR matrices"
            )

    # -- per-file readers -----------------------------------------------------------------------

    def _elem_path(self, key: str, store_idx: int) -> str | None:
        if key == "X":
            return "X"
        if key == "raw.X":
            return "raw/X" if self._cache_has_raw[store_idx] else None
        return f"layers/{key}" if key in self._cache_layers_keys[store_idx] else None

    def _reader(self, store_idx: int, key: str, obsm: bool = False) -> DenseRows | CsrRows | None:
        if obsm:
            if key not in self._cache_obsm_keys[store_idx]:
                return None
            elem_path: str | None = f"obsm/{key}"
        else:
            elem_path = self._elem_path(key, store_idx)
        if elem_path is None:
            return None
        return self._stores[store_idx].reader(elem_path)

    def _check_open(self) -> None:
        if self._closed and not self.parallel:
            raise ValueError("This MappedCollection is closed; create a new one to read again")

    # -- the dataset protocol -------------------------------------------------------------------

    def __len__(self) -> int:
        return self.n_obs

    @property
    def shape(self) -> tuple[int, int | None]:
        """Shape of the (virtually joined) dataset."""
        return (self.n_obs, self.n_vars)

    @property
    def original_shapes(self) -> list[tuple[int, int | None]]:
        """Shapes of the files (with `obs_filter` applied)."""
        n_vars_list = (
            self.n_vars_list if self.n_vars_list is not None else [None] * len(self.n_obs_list)
        )
        return list(zip(self.n_obs_list, n_vars_list))

    @property
    def storages(self) -> list[Any]:
        """The open h5py files, one per path (the paths themselves when parallel=True, as in
        lamindb, where each process opens its own)."""
        if self.parallel:
            return list(self.path_list)
        self._check_open()
        return [store.file() for store in self._stores]

    def _position(self, idx: Any) -> int:
        i = int(idx)
        if i < 0:
            i += self.n_obs
        if not 0 <= i < self.n_obs:
            raise IndexError(f"index {idx} is out of range for {self.n_obs} observations")
        return i

    def __getitem__(self, idx: int) -> dict[str, Any]:
        self._check_open()
        i = self._position(idx)
        store_idx = int(self.storage_idx[i])
        row = int(self.indices[i])
        out: dict[str, Any] = {}
        col_map = self._col_maps[store_idx]
        for key in self.layers_keys:
            reader = self._reader(store_idx, key)
            if reader is not None:
                out[key] = self._one_row(reader, row, col_map, self.n_vars)
        for key in self.obsm_keys or []:
            reader = self._reader(store_idx, key, obsm=True)
            if reader is not None:
                out[f"obsm_{key}"] = self._one_row(reader, row, None, None)
        out["_store_idx"] = store_idx
        for key, lookups in self._lookups.items():
            lookup = lookups[store_idx]
            if lookup is not None:
                out[key] = lookup[self._labels[key][store_idx].codes[row]]  # type: ignore[union-attr]
        return out

    def _one_row(
        self, reader: DenseRows | CsrRows, row: int, col_map: np.ndarray | None, width: int | None
    ) -> np.ndarray:
        # The plain one-row path, through h5py like lamindb: __getitems__ is checked against it.
        dtype = self._dtype if self._dtype is not None else reader.dtype
        if isinstance(reader, DenseRows):
            values = reader.read_row(row)
            if col_map is None:
                return values.astype(dtype, copy=False)
            out = np.zeros(width, dtype=dtype)  # type: ignore[arg-type]
            keep = col_map >= 0
            out[col_map[keep]] = values[keep]
            return out
        data, columns = reader.read_row(row)
        out = np.zeros(reader.shape[1] if col_map is None else width, dtype=dtype)  # type: ignore[arg-type]
        # add.at, not assignment: a column stored twice in a row adds up, as in scipy.
        if col_map is None:
            np.add.at(out, columns, data.astype(out.dtype, copy=False))
        else:
            target = col_map[columns]
            keep = target >= 0
            np.add.at(out, target[keep], data[keep].astype(out.dtype, copy=False))
        return out

    def __getitems__(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Many samples at once, as `[self[i] for i in indices]` returns them, read in bulk.

        PyTorch's DataLoader calls this with each batch's indices when automatic batching is on.

        >>> import anndata as ad, numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
        >>> ad.AnnData(X=np.arange(6, dtype="float32").reshape(3, 2)).write_h5ad(path)
        >>> with MappedCollection([path]) as ds:
        ...     [s["X"].tolist() for s in ds.__getitems__([2, 0])]
        [[4.0, 5.0], [0.0, 1.0]]
        """
        self._check_open()
        _register_collate()
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) == 0:
            return []
        if ((idx < -self.n_obs) | (idx >= self.n_obs)).any():
            bad = idx[(idx < -self.n_obs) | (idx >= self.n_obs)][0]
            raise IndexError(f"index {bad} is out of range for {self.n_obs} observations")
        idx = np.where(idx < 0, idx + self.n_obs, idx)
        stores = self.storage_idx[idx]
        rows = self.indices[idx]
        n = len(idx)
        first = int(stores[0])
        if (stores == first).all():
            groups = [(first, np.arange(n))]
        else:
            order = np.argsort(stores, kind="stable")
            cuts = np.flatnonzero(np.diff(stores[order])) + 1
            groups = [(int(stores[part[0]]), part) for part in np.split(order, cuts)]

        keys: list[str] = []
        columns: list[list[Any]] = []
        for key in self.layers_keys:
            keys.append(key)
            columns.append(self._batch_rows(groups, rows, n, key, obsm=False))
        for key in self.obsm_keys or []:
            keys.append(f"obsm_{key}")
            columns.append(self._batch_rows(groups, rows, n, key, obsm=True))
        keys.append("_store_idx")
        columns.append(stores.tolist())
        for key, lookups in self._lookups.items():
            keys.append(key)
            if len(groups) == 1 and lookups[groups[0][0]] is not None:
                codes = self._labels[key][groups[0][0]].codes  # type: ignore[union-attr]
                columns.append(lookups[groups[0][0]][codes[rows]].tolist())  # type: ignore[index]
                continue
            values = np.empty(n, dtype=object)
            values[:] = _MISSING
            for store_idx, positions in groups:
                lookup = lookups[store_idx]
                if lookup is not None:
                    codes = self._labels[key][store_idx].codes  # type: ignore[union-attr]
                    values[positions] = lookup[codes[rows[positions]]]
            columns.append(values.tolist())
        if self._may_miss_keys:
            return [
                {k: v for k, v in zip(keys, sample) if v is not _MISSING}
                for sample in zip(*columns)
            ]
        return _sample_builder(tuple(keys))(columns)

    def _batch_rows(
        self, groups: list[tuple[int, np.ndarray]], rows: np.ndarray, n: int, key: str, obsm: bool
    ) -> list[Any]:
        """One array key for the whole batch: a row view per sample (_MISSING where the file
        lacks the key). Files with the same output dtype and width share one array."""
        plans: dict[tuple[np.dtype, int], list[tuple[int, np.ndarray, Any]]] = {}
        for store_idx, positions in groups:
            reader = self._reader(store_idx, key, obsm=obsm)
            if reader is None:
                continue
            width = reader.shape[1] if obsm or self.n_vars is None else self.n_vars
            dtype = self._dtype if self._dtype is not None else reader.dtype
            plans.setdefault((np.dtype(dtype), int(width)), []).append(
                (store_idx, positions, reader)
            )
        if len(plans) == 1:
            (((dtype, width), parts),) = plans.items()
            covered = sum(len(p) for _, p, _ in parts)
            if covered == n:  # the common case: one array, rows in batch order
                owner = np.zeros((n, width), dtype=dtype).view(_BatchRows)
                for store_idx, positions, reader in parts:
                    reader.read_into(
                        owner,
                        positions,
                        rows[positions],
                        None if obsm else self._col_maps[store_idx],
                    )
                views = list(owner)
                owner._row_ids = list(map(id, views))
                return views
        column: list[Any] = [_MISSING] * n
        for (dtype, width), parts in plans.items():
            positions_all = np.sort(np.concatenate([p for _, p, _ in parts]))
            owner = np.zeros((len(positions_all), width), dtype=dtype).view(_BatchRows)
            for store_idx, positions, reader in parts:
                out_rows = np.searchsorted(positions_all, positions)
                reader.read_into(
                    owner, out_rows, rows[positions], None if obsm else self._col_maps[store_idx]
                )
            for position, view in zip(positions_all.tolist(), owner):
                column[position] = view
        return column

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

        >>> import anndata as ad, numpy as np, pandas as pd, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
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

    def _labels_of(self, label_key: str, store_idx: int) -> _Labels | None:
        if label_key in self._labels:
            return self._labels[label_key][store_idx]
        store = self._stores[store_idx]
        return _Labels.read(store.file(), label_key, store.uri)

    def get_merged_labels(self, label_key: str) -> np.ndarray:
        """The labels of `label_key` over all files that have it (NaN where missing).

        >>> import anndata as ad, numpy as np, pandas as pd, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
        >>> obs = pd.DataFrame({"t": pd.Categorical(["a", "b"])}, index=["0", "1"])
        >>> ad.AnnData(X=np.ones((2, 1)), obs=obs).write_h5ad(path)
        >>> MappedCollection([path, path]).get_merged_labels("t").tolist()
        ['a', 'b', 'a', 'b']
        """
        merged = []
        for i in range(len(self._stores)):
            labels = self._labels_of(label_key, i)
            if labels is None:
                continue
            values = labels.labels()
            merged.append(values[self.indices_list[i]] if self.filtered else values)
        return np.hstack(merged) if merged else np.array([], dtype=object)

    def get_merged_categories(self, label_key: str) -> list[Any]:
        """The sorted categories of `label_key` over all files (values, for a column that is not
        categorical).

        >>> import anndata as ad, numpy as np, pandas as pd, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.h5ad")
        >>> obs = pd.DataFrame({"t": pd.Categorical(["b", "a"])}, index=["0", "1"])
        >>> ad.AnnData(X=np.ones((2, 1)), obs=obs).write_h5ad(path)
        >>> MappedCollection([path]).get_merged_categories("t")
        ['a', 'b']
        """
        merged: set[Any] = set()
        for i in range(len(self._stores)):
            labels = self._labels_of(label_key, i)
            if labels is not None:
                merged.update(labels.values.tolist())
        return sorted(merged)

    def check_vars_sorted(self, ascending: bool = True) -> bool:
        """Whether the variables of every file are sorted."""
        if self.var_list is None:
            self._read_vars()
        assert self.var_list is not None
        if ascending:
            return all(v.is_monotonic_increasing for v in self.var_list)
        return all(v.is_monotonic_decreasing for v in self.var_list)

    def check_vars_non_aligned(self, vars: pd.Index | list) -> list[int]:
        """Indices of the files whose variables differ from `vars`."""
        if self.var_list is None:
            self._read_vars()
        assert self.var_list is not None
        expected = pd.Index(vars)
        return [i for i, v in enumerate(self.var_list) if not v.equals(expected)]

    # -- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close this process's file handles; reading afterwards raises (unless parallel=True,
        where each read opens what it needs, as in lamindb)."""
        for store in getattr(self, "_stores", []):
            store.close()
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
            f"MappedCollection({len(self._stores)} files, shape={self.shape}, "
            f"join={self.join_vars!r}, closed={self._closed})"
        )

    @classmethod
    def torch_worker_init_fn(cls, worker_id: int) -> None:
        """lamindb's `worker_init_fn`; not needed here (workers open their own files on first
        use), kept so code written for lamindb runs unchanged."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None and isinstance(info.dataset, MappedCollection):
            for store in info.dataset._stores:
                store.file()
