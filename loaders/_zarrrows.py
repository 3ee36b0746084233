"""Many rows at once from the arrays of an AnnData zarr store (dense arrays and CSR groups).

A zarr array is cut into chunks along its first axis (a CSR group's `data` and `indices` are
1-D arrays chunked along their values; a dense X into bands of rows, maybe also split by
columns), and each chunk is compressed on its own: reading any part of a chunk decodes all of
it, and each zarr call costs about half a millisecond before any byte is read. So a batch is
read by chunks. `DenseRows`/`CsrRows` (`loaders._h5rows`) sort and merge its rows into runs as
for HDF5; the unit reader here names the chunks those runs touch, fetches the missing ones
(neighbouring chunks in one zarr call, which fetches and decodes them concurrently), keeps them
in a least-recently-used cache of decoded chunks (`ChunkCache`, one per `MappedCollection`,
bounded in bytes), and gathers the batch's units with one numpy copy per chunk. Nothing loops
over rows in Python. Sharded arrays (zarr format 3) are read by their inner chunks, which zarr
fetches from the shard by byte range.

Block sampling reads neighbouring rows batch after batch, so the chunks a batch needs are
mostly cached already; uniformly random rows touch many chunks per batch, and a chunk is
decoded again once the cache has dropped it.

>>> import anndata as ad, numpy as np, scipy.sparse as sp, zarr
>>> ad.AnnData(X=sp.csr_matrix(np.eye(4, dtype="float32"))).write_zarr("eye.zarr")
>>> rows = open_zarr_rows(zarr.open_group("eye.zarr", mode="r")["X"], ChunkCache(2**20), "X")
>>> out = np.zeros((2, 4), dtype="float32")
>>> rows.read_into(out, np.array([0, 1]), np.array([3, 1]))
>>> out.tolist()
[[0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np

from loaders._h5rows import CsrRows, DenseRows, Runs, encoding_of, expand_ranges

__all__ = ["ChunkCache", "open_zarr_rows"]


class ChunkCache:
    """Decoded chunks, the least recently used dropped first once they hold more than
    `max_bytes`, except those the current batch used (`begin()` starts a batch).

    That exception keeps uniformly random batches from wiping the cache: when a batch needs
    more chunks than fit, plain LRU would evict each chunk before the next batch asks for it
    again (no hits at all); here the chunks kept stay, and the next batch finds as many of its
    chunks as the cache holds. Block sampling, whose batches share a few chunks, sees plain
    LRU.

    One per `MappedCollection` and process: pickling (a DataLoader worker started fresh) gives an
    empty cache with the same bound, and a forked worker starts its own as soon as it stores a
    chunk (its copy of the parent's chunks is dropped, not shared).

    >>> cache = ChunkCache(16)
    >>> cache.begin(); cache.put("a", np.zeros(2))  # 16 bytes: full
    >>> cache.begin(); cache.put("b", np.zeros(2))  # "a" (an earlier batch's) makes room
    >>> cache.put("c", np.zeros(1))  # only "b", this batch's, could: "c" is not kept
    >>> cache.get("a") is None, cache.get("b").tolist(), cache.get("c"), cache.nbytes
    (True, [0.0, 0.0], None, 16)
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        # key -> (chunk, the batch that last used it), least recently used first
        self._chunks: OrderedDict[Hashable, tuple[np.ndarray, int]] = OrderedDict()
        self.nbytes = 0
        self._batch = 0
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["max_bytes"])  # type: ignore[misc]

    def _own(self) -> None:
        if self._pid != os.getpid():  # forked: start empty rather than count the parent's
            self.__init__(self.max_bytes)  # type: ignore[misc]

    def begin(self) -> None:
        """A new batch: the chunks earlier batches used may make room for this one's."""
        self._batch += 1

    def get(self, key: Hashable) -> np.ndarray | None:
        """The chunk stored under `key` (now the most recently used), None if not cached."""
        self._own()
        found = self._chunks.get(key)
        if found is None:
            return None
        self._chunks[key] = (found[0], self._batch)
        self._chunks.move_to_end(key)
        return found[0]

    def put(self, key: Hashable, chunk: np.ndarray) -> None:
        """Keep `chunk` under `key` if room can be made: by dropping the least recently used
        chunks of earlier batches, never this batch's."""
        self._own()
        old = self._chunks.pop(key, None)
        if old is not None:
            self.nbytes -= old[0].nbytes
        room = self.max_bytes - self.nbytes
        if chunk.nbytes > room:
            victims = []
            for victim, (held, batch) in self._chunks.items():  # least recently used first
                if batch == self._batch:
                    break  # from here on, all were used by this batch
                victims.append(victim)
                room += held.nbytes
                if room >= chunk.nbytes:
                    break
            if room < chunk.nbytes:
                return  # only this batch's chunks could make room: keep them instead
            for victim in victims:
                self.nbytes -= self._chunks.pop(victim)[0].nbytes
        self._chunks[key] = (chunk, self._batch)
        self.nbytes += chunk.nbytes

    def clear(self) -> None:
        """Drop every chunk."""
        self._chunks.clear()
        self.nbytes = 0


class _ZarrUnits:
    """Reads the runs of a `Runs` plan from one zarr array into one buffer, chunk by chunk
    (a `loaders._h5rows.UnitReader`)."""

    # Units of one chunk are decoded together whatever is asked: reading through a gap would
    # only copy more.
    merge_gap = 0

    def __init__(self, arr: Any, cache: ChunkCache, key: str):
        self.arr = arr
        self.dtype = np.dtype(arr.dtype)
        if self.dtype.kind not in "biufc":
            raise ValueError(f"{key} holds {self.dtype} values; rows are read from numeric arrays")
        self.tail = tuple(int(n) for n in arr.shape[1:])
        self.n_units = int(arr.shape[0])
        self.chunk_units = max(1, int(arr.chunks[0]))  # a sharded array's inner chunks
        self.cache = cache
        self.key = key

    def read(self, runs: Runs) -> np.ndarray:
        buf = np.empty((runs.total, *self.tail), dtype=self.dtype)
        if runs.total == 0:
            return buf
        lengths = runs.ends - runs.starts
        keep = lengths > 0
        starts, lengths = runs.starts[keep], lengths[keep]
        # The runs lie one after another in the buffer, so buffer unit k is file unit units[k].
        units = expand_ranges(starts, lengths)
        per = self.chunk_units
        first, last = starts // per, (starts + lengths - 1) // per
        ids = np.unique(expand_ranges(first, last - first + 1))
        chunks = self._chunks(ids.tolist())
        bounds = [*np.searchsorted(units, ids * per).tolist(), len(units)]
        for j, chunk_id in enumerate(ids.tolist()):
            lo, hi = bounds[j], bounds[j + 1]
            if lo == hi:
                continue
            chunk, base = chunks[chunk_id], chunk_id * per
            first_unit = int(units[lo]) - base
            if int(units[hi - 1]) - base - first_unit == hi - lo - 1:  # one piece: a plain copy
                buf[lo:hi] = chunk[first_unit : first_unit + hi - lo]
            else:
                np.take(chunk, units[lo:hi] - base, axis=0, out=buf[lo:hi])
        return buf

    def _chunks(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The decoded chunks `ids` (sorted): from the cache, the rest read now, neighbours in
        one call. Held here for this read even where the cache cannot keep them all."""
        got: dict[int, np.ndarray] = {}
        missing: list[int] = []
        for chunk_id in ids:
            chunk = self.cache.get((self.key, chunk_id))
            if chunk is None:
                missing.append(chunk_id)
            else:
                got[chunk_id] = chunk
        per, i = self.chunk_units, 0
        while i < len(missing):
            j = i
            while j + 1 < len(missing) and missing[j + 1] == missing[j] + 1:
                j += 1
            begin, end = missing[i] * per, min((missing[j] + 1) * per, self.n_units)
            block = np.asarray(self.arr[begin:end])
            for chunk_id in missing[i : j + 1]:
                at = (chunk_id - missing[i]) * per
                # A copy where the block holds several chunks, so dropping one from the cache
                # frees its bytes.
                chunk = block[at : at + per] if i == j else block[at : at + per].copy()
                got[chunk_id] = chunk
                self.cache.put((self.key, chunk_id), chunk)
            i = j + 1
        return got


def open_zarr_rows(elem: Any, cache: ChunkCache, where: str) -> DenseRows | CsrRows:
    """The row reader for a dense zarr array or a CSR group of a zarr store, caching decoded
    chunks in `cache` under keys that start with `where` (which names the element in errors,
    "X in /data/a.zarr"). CSC and other encodings raise ValueError.

    >>> import anndata as ad, numpy as np, zarr
    >>> ad.AnnData(X=np.ones((3, 2), dtype="float32")).write_zarr("ones.zarr")
    >>> open_zarr_rows(zarr.open_group("ones.zarr", mode="r")["X"], ChunkCache(2**20), "X").shape
    (3, 2)
    """
    kind = encoding_of(elem)
    if kind == "array":
        return DenseRows(elem, _ZarrUnits(elem, cache, where))
    if kind == "csr_matrix":
        data = _ZarrUnits(elem["data"], cache, f"{where}/data")
        indices = _ZarrUnits(elem["indices"], cache, f"{where}/indices")
        return CsrRows(elem, data, indices, where)
    raise ValueError(
        f"{where} is a {kind} element; only dense arrays and CSR matrices can be read by row"
    )
