"""One AnnData store of a `MappedCollection` (an .h5ad file or a zarr store): its handles and
row readers, and what it holds.

`_Store` opens the store (local, or streamed from S3) and keeps one row reader per array
(`loaders._h5rows` for HDF5, `loaders._zarrrows` for zarr); its handles belong to the process
that opened them, so a DataLoader worker, forked or spawned, opens its own on first use, and
pickling drops them. A store is zarr, as in lamindb, when it is not a file: a local directory, or
an `s3://` URI ending in `.zarr` (or naming a prefix). `_FileState` is the collection's one
object per store: its store, which rows it contributes, where each requested array lies, its
label columns and how its variables map onto the joined ones. Both formats lay an AnnData out
alike (`X`, `layers/`, `obs/`, ...), so everything above the row readers reads either.

>>> import anndata as ad, numpy as np, pandas as pd
>>> obs = pd.DataFrame({"t": pd.Categorical(["x", "y"])}, index=["a", "b"])
>>> ad.AnnData(X=np.ones((2, 3), dtype="float32"), obs=obs).write_h5ad("one.h5ad")
>>> state = _FileState.read(_Store("one.h5ad", False, None, ChunkCache(0)), ["X"], [], ["t"], None)
>>> state.n_obs, state.arrays["X"], state.labels["t"].values.tolist()
(2, _Element(path='X', dtype=dtype('float32'), shape=(2, 3), aligned=True), ['x', 'y'])
>>> state.store.close()
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import pandas as pd

from loaders._h5rows import CsrRows, DenseRows, encoding_of, is_group, open_rows
from loaders._mapped_labels import _decode, _filter_mask, _Labels
from loaders._zarrrows import ChunkCache, open_zarr_rows
from loaders.access import open_file
from loaders.storage import filesystem, is_remote, suffix_of

__all__: list[str] = []

# HDF5's chunk cache per dataset: enough for compressed chunks to be reused within a batch,
# small enough that memory stays flat.
_CHUNK_CACHE_BYTES = 4 * 2**20
# A streamed S3 file is read in blocks of this size, at most 32 blocks kept (s3fs blockcache).
_STREAM_BLOCK_BYTES = 2**20


class _Store:
    """One AnnData store's handles and row readers; they belong to the process that opened
    them. Decoded zarr chunks go to `chunks`, the collection's cache."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        stream: bool,
        storage_options: dict | None,
        chunks: ChunkCache,
    ):
        self.uri = str(path)
        self.remote = is_remote(self.uri)
        self.storage_options = storage_options
        self.chunks = chunks
        if self.remote and not stream:
            raise ValueError(
                f"{self.uri} is remote: cache it first (e.g. collection.cache()) and map the local "
                "copies, or pass stream=True to read it over the network"
            )
        fs, self.path = filesystem(self.uri, storage_options)
        if not self.remote:
            if not os.path.exists(self.path):
                raise FileNotFoundError(f"No such file: {self.uri}")
            self.zarr = os.path.isdir(self.path)
        else:
            suffix = suffix_of(self.uri.rstrip("/")).lower()
            self.zarr = suffix == ".zarr" or (suffix != ".h5ad" and not fs.isfile(self.path))
        self._pid: int | None = None
        self._file: Any = None  # an h5py.File, or a zarr.Group
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

    def file(self) -> Any:
        """This process's open h5py file or zarr group (opened now if need be)."""
        if self._pid != os.getpid():
            self._forget()
        if self._file is None:
            try:
                if self.zarr:
                    # zarr fetches its own chunks (through fsspec for s3://): no handle to keep.
                    self._file = open_file(self.uri, ".zarr", self.storage_options)
                elif self.remote:
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
        """The row reader of the array at `elem_path`, None where the store has none."""
        file = self.file()
        if elem_path not in self._readers:
            elem = file.get(elem_path)
            if elem is None:
                self._readers[elem_path] = None
            elif self.zarr:
                where = f"{elem_path} in {self.uri}"
                self._readers[elem_path] = open_zarr_rows(elem, self.chunks, where)
            else:
                fd = self._raw.fileno() if self._raw is not None else None
                self._readers[elem_path] = open_rows(elem, fd)
        return self._readers[elem_path]

    def close(self) -> None:
        """Close this process's handles (another process's copies are only forgotten)."""
        if self._pid == os.getpid():
            if self._file is not None:
                with contextlib.suppress(Exception):  # a half-open file may fail to close
                    self._file.close()
            for handle in (self._fobj, self._raw):
                if handle is not None:
                    handle.close()
        self._forget()


@dataclass(frozen=True)
class _Element:
    """One requested array of a file: its HDF5 path, dtype and (rows, columns) shape. `aligned`:
    its columns are the file's variables (X, layers, raw.X), so a join moves them; obsm arrays
    keep theirs."""

    path: str
    dtype: np.dtype
    shape: tuple[int, int]
    aligned: bool


@dataclass
class _FileState:
    """Everything the collection knows about one file.

    `arrays` maps each output key ("X", a layer, "raw.X", "obsm_<key>") to its `_Element`, None
    where the file lacks it; `labels` maps each obs key to its `_Labels`, None likewise. The
    lookups turn label codes into sample values (`sample_lookups`, lamindb's Python values) or
    batch values (`batch_lookups`, typed arrays); `col_map` sends file column j to output column
    `col_map[j]` (-1: dropped by an inner join), None where no join moves columns.
    """

    store: _Store
    width: int  # X's variables
    rows: np.ndarray  # the file rows the collection shows: all, or those passing obs_filter
    arrays: dict[str, _Element | None]
    labels: dict[str, _Labels | None]
    sample_lookups: dict[str, np.ndarray | None] = field(default_factory=dict)
    batch_lookups: dict[str, np.ndarray | None] = field(default_factory=dict)
    var_names: pd.Index | None = None
    col_map: np.ndarray | None = None
    n_file_rows: int = 0  # the file's rows, shown or not

    @property
    def uri(self) -> str:
        return self.store.uri

    @property
    def n_obs(self) -> int:
        return len(self.rows)

    def reader(self, key: str) -> DenseRows | CsrRows | None:
        """The row reader for output key `key`, None where the file lacks it."""
        element = self.arrays.get(key)
        return None if element is None else self.store.reader(element.path)

    def read_into(self, key: str, out: np.ndarray, out_rows: np.ndarray, rows: np.ndarray) -> None:
        """out[out_rows[i]] = file row rows[i] of `key`, its columns placed by `col_map` (obsm
        arrays keep their own columns); `out` must be zeros there."""
        element = self.arrays[key]
        reader = None if element is None else self.store.reader(element.path)
        assert element is not None and reader is not None
        reader.read_into(out, out_rows, rows, self.col_map if element.aligned else None)

    def out_width(self, key: str, n_vars: int | None) -> int:
        """Columns of `key`'s rows as returned: the joined variables where a join maps this
        array's columns (X, layers, raw.X), else as stored."""
        element = self.arrays[key]
        assert element is not None
        if not element.aligned or n_vars is None or self.col_map is None:
            return element.shape[1]
        return n_vars

    @classmethod
    def read(
        cls,
        store: _Store,
        layers_keys: list[str],
        obsm_keys: list[str],
        obs_keys: list[str],
        obs_filter: dict[str, Any] | None,
    ) -> _FileState:
        """Read a file's layout, labels and filter (not its data); raise naming the file when
        it cannot be mapped (no X, CSC or other unreadable encodings)."""
        file = store.file()
        uri = store.uri
        if "X" not in file:
            raise ValueError(f"{uri} has no X: is it an AnnData store (.h5ad or .zarr)?")
        x = _element(file, "X", "X", uri, aligned=True)
        assert x is not None
        n_rows, width = x.shape
        arrays: dict[str, _Element | None] = {}
        for key in layers_keys:
            if key == "X":
                arrays[key] = x
            elif key == "raw.X":
                arrays[key] = _element(file, "raw/X", "raw.X", uri, aligned=True)
            else:
                arrays[key] = _element(file, f"layers/{key}", f"layers/{key}", uri, aligned=True)
        for key in obsm_keys:
            arrays[f"obsm_{key}"] = _element(file, f"obsm/{key}", f"obsm/{key}", uri, aligned=False)
        labels = {key: _Labels.read(file, key, uri) for key in obs_keys}
        if obs_filter is not None:
            rows = np.flatnonzero(_filter_mask(file, uri, n_rows, obs_filter))
        else:
            rows = np.arange(n_rows)
        return cls(store, width, rows.astype(np.int64), arrays, labels, n_file_rows=n_rows)

    def read_var_names(self) -> pd.Index:
        """The file's var index (read now, held in `var_names`)."""
        var = self.store.file()["var"]
        index_key = var.attrs.get("_index", "_index")
        index_key = index_key.decode() if isinstance(index_key, bytes) else index_key
        if index_key not in var:
            raise ValueError(f"{self.uri} has no var index ({index_key!r})")
        self.var_names = pd.Index(_decode(var[index_key]))
        return self.var_names


def _element(file: Any, elem_path: str, name: str, uri: str, aligned: bool) -> _Element | None:
    """The array at `elem_path` of an h5py file or zarr group, None where absent; CSC and other
    encodings raise, as rows cannot be read from them."""
    elem = file.get(elem_path)
    if elem is None or (elem_path == "raw/X" and not is_group(file.get("raw"))):
        return None
    kind = encoding_of(elem)
    if kind == "csc_matrix":
        raise ValueError(
            f"{name} in {uri} is a csc matrix, `MappedCollection` doesn't support this format: "
            "it reads rows, so store it as CSR (e.g. adata.X = adata.X.tocsr()) or dense"
        )
    if kind not in ("array", "csr_matrix"):
        raise ValueError(
            f"{name} in {uri} is stored as {kind!r}; MappedCollection reads dense arrays and "
            "CSR matrices"
        )
    if kind == "array":
        shape = tuple(int(n) for n in elem.shape)
        dtype = elem.dtype
    else:
        shape = tuple(int(n) for n in elem.attrs["shape"])
        dtype = elem["data"].dtype
    if len(shape) != 2:
        raise ValueError(
            f"{name} in {uri} has shape {shape}; MappedCollection reads rows of 2-D arrays"
        )
    # h5py's numeric dtypes spell their byte order ('<f4'); the same dtype from its string
    # prints as numpy's own (float32).
    dtype = np.dtype(dtype)
    dtype = np.dtype(dtype.str) if dtype.kind in "biufc" else dtype
    return _Element(elem_path, dtype, (shape[0], shape[1]), aligned)
