"""Many rows at once from the arrays of an AnnData store (dense arrays and CSR groups).

The job: given a batch of row numbers, put those rows, densified, into a caller's array with as
few reads as possible. Rows are sorted and merged into runs; a CSR array's `indptr` is held in
memory (8 bytes a row), so its `data`/`indices` ranges are known without a read. `DenseRows` and
`CsrRows` do that for any store: they hand the runs to a unit reader, which reads them into one
buffer. This module's unit reader is HDF5's (`.h5ad`); `loaders._zarrrows` has zarr's.

In HDF5, where the bytes lie uncompressed in a local file (the contiguous layout, or unfiltered
chunks), the ranges are read with `os.preadv` straight into numpy buffers: h5py's per-slice cost
(~5 us, more for a union of hyperslabs) would otherwise dominate a 256-row batch. Anything else
(compression, a streamed file object) goes through h5py, one slice per merged run.

Nothing here caches data: per reader only `indptr` and the chunk table are held.

>>> import h5py, numpy as np
>>> with h5py.File("rows.h5", "w") as f:
...     _ = f.create_dataset("X", data=np.arange(12.0).reshape(4, 3))
>>> with h5py.File("rows.h5", "r") as f:
...     rows = open_rows(f["X"], None)
...     out = np.zeros((2, 3)); rows.read_into(out, np.array([0, 1]), np.array([3, 1]))
>>> out.tolist()
[[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import os
from typing import Any, Protocol

import h5py
import numpy as np

__all__ = [
    "CsrRows",
    "DenseRows",
    "Runs",
    "UnitReader",
    "encoding_of",
    "expand_ranges",
    "is_array",
    "is_group",
    "open_rows",
]

# Two ranges closer than this many bytes are read as one: a pread of page-cached bytes costs
# about 2 us per call plus ~1 us per 8 KiB, so reading a small gap beats a second call.
_MERGE_GAP_BYTES = 16 * 1024


def is_array(node: Any) -> bool:
    """Whether a node of an HDF5 file or a zarr store is an array (h5py.Dataset, zarr.Array)
    rather than a group: arrays have a dtype, groups none.

    >>> import h5py, io, numpy as np
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     _ = f.create_dataset("g/d", data=np.ones(2))
    ...     is_array(f["g/d"]), is_array(f["g"])
    (True, False)
    """
    return hasattr(node, "dtype") and hasattr(node, "shape")


def is_group(node: Any) -> bool:
    """Whether a node of an HDF5 file or a zarr store is a group (h5py.Group, zarr.Group).

    >>> import h5py, io
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     is_group(f.create_group("g")), is_group(None)
    (True, False)
    """
    return node is not None and not is_array(node) and hasattr(node, "attrs")


def encoding_of(elem: Any) -> str:
    """ "array", "csr_matrix", "csc_matrix" or another anndata encoding of an element (an HDF5 or
    zarr node).

    >>> import h5py, numpy as np, io
    >>> with h5py.File(io.BytesIO(), "w") as f:  # closed before its buffer goes: h5py needs that
    ...     _ = f.create_dataset("d", data=np.ones(2))
    ...     encoding_of(f["d"])
    'array'
    """
    if is_array(elem):
        return "array"
    kind = elem.attrs.get("encoding-type")
    if kind is None:  # anndata < 0.8 marked sparse groups with h5sparse_format
        legacy = elem.attrs.get("h5sparse_format")
        if legacy is None:
            return "unknown"
        kind = f"{legacy.decode() if isinstance(legacy, bytes) else legacy}_matrix"
    return kind.decode() if isinstance(kind, bytes) else str(kind)


class _RawLayout:
    """Where a dataset's units (elements of a 1-D dataset, rows of a 2-D one) lie in the file,
    when they can be read as plain bytes; None from `of` when they cannot."""

    def __init__(self, unit_bytes: int, chunk_units: int, offsets: np.ndarray):
        self.unit_bytes = unit_bytes
        self.chunk_units = chunk_units  # units per chunk; the whole dataset for contiguous
        self.offsets = offsets  # file offset of each chunk, by chunk number

    @classmethod
    def of(cls, dset: h5py.Dataset) -> _RawLayout | None:
        dtype = dset.dtype
        if dtype.hasobject or dtype.kind not in "biufc" or dset.ndim not in (1, 2):
            return None
        if dset.size == 0:
            return None
        plist = dset.id.get_create_plist()
        if plist.get_nfilters() or plist.get_external_count():
            return None
        n_units = dset.shape[0]
        unit_bytes = dtype.itemsize * (dset.shape[1] if dset.ndim == 2 else 1)
        layout = plist.get_layout()
        if layout == h5py.h5d.CONTIGUOUS:
            offset = dset.id.get_offset()
            if offset is None:  # never written: HDF5 would return the fill value
                return None
            return cls(unit_bytes, n_units, np.array([offset], dtype=np.int64))
        if layout != h5py.h5d.CHUNKED:
            return None
        chunks = dset.chunks
        if dset.ndim == 2 and chunks[1] != dset.shape[1]:
            return None  # a row spans several chunks: not worth the bookkeeping
        chunk_units = chunks[0]
        n_chunks = -(-n_units // chunk_units)
        offsets = np.full(n_chunks, -1, dtype=np.int64)
        try:

            def note(info: Any) -> None:
                number = info.chunk_offset[0] // chunk_units
                if number < n_chunks:
                    offsets[number] = info.byte_offset

            dset.id.chunk_iter(note)
        except (AttributeError, RuntimeError):  # HDF5 < 1.12.3: one call per chunk
            for i in range(dset.id.get_num_chunks()):
                info = dset.id.get_chunk_info(i)
                number = info.chunk_offset[0] // chunk_units
                if number < n_chunks:
                    offsets[number] = info.byte_offset
        if (offsets < 0).any():  # an unwritten chunk reads as the fill value: let HDF5 do it
            return None
        return cls(unit_bytes, chunk_units, offsets)


class Runs:
    """Sorted, non-overlapping [start, end) unit ranges merged into runs that are read whole:
    ranges closer than `gap` units share a run (reading the gap beats a second read)."""

    def __init__(self, starts: np.ndarray, ends: np.ndarray, gap: int):
        n = len(starts)
        cuts = np.flatnonzero(starts[1:] - ends[:-1] > gap) + 1
        first = np.concatenate(([0], cuts))
        self.starts = starts[first]
        self.ends = ends[np.concatenate((cuts, [n])) - 1]
        lengths = self.ends - self.starts
        self.at = np.zeros(len(first), dtype=np.int64)  # where each run begins in the buffer
        np.cumsum(lengths[:-1], out=self.at[1:])
        self.total = int(lengths.sum())
        run_of = np.repeat(np.arange(len(first)), np.diff(np.append(first, n)))
        # where each requested range begins in the buffer
        self.range_at = self.at[run_of] + (starts - self.starts[run_of])


class UnitReader(Protocol):
    """Reads the units (elements of a 1-D array, rows of a 2-D one) of a `Runs` plan from one
    stored array into one buffer: HDF5's `_Ranges` here, zarr's in `loaders._zarrrows`."""

    dtype: np.dtype
    merge_gap: int  # ranges closer than this many units are read as one run

    def read(self, runs: Runs) -> np.ndarray: ...


class _Ranges:
    """Reads the runs of a `Runs` plan from one HDF5 dataset into one buffer."""

    def __init__(self, dset: h5py.Dataset, fd: int | None):
        self.dset = dset
        self.dtype = dset.dtype
        self.tail = dset.shape[1:]
        self.layout = _RawLayout.of(dset) if fd is not None else None
        self.fd = fd
        unit = dset.dtype.itemsize * (int(np.prod(self.tail)) if self.tail else 1)
        self.merge_gap = max(1, _MERGE_GAP_BYTES // max(unit, 1))

    def read(self, runs: Runs) -> np.ndarray:
        buf = np.empty((runs.total, *self.tail), dtype=self.dtype)
        if runs.total == 0:
            return buf
        if self.layout is not None:
            self._pread(buf, runs)
        else:
            for s, e, at in zip(runs.starts.tolist(), runs.ends.tolist(), runs.at.tolist()):
                if e > s:
                    self.dset.read_direct(buf, np.s_[s:e], np.s_[at : at + e - s])
        return buf

    def _pread(self, buf: np.ndarray, runs: Runs) -> None:
        layout = self.layout
        assert layout is not None and self.fd is not None
        unit, per_chunk, offsets = layout.unit_bytes, layout.chunk_units, layout.offsets
        starts, ends, ats = runs.starts, runs.ends, runs.at
        if len(offsets) == 1:  # contiguous (or one chunk): a run is one read
            sizes = ((ends - starts) * unit).tolist()
            where = (starts * unit + int(offsets[0])).tolist()
            at = (ats * unit).tolist()
        else:
            # Split runs at chunk boundaries, all at once: one (buffer, size, file offset)
            # triple per read, so the loop below does nothing but read.
            first_chunk = starts // per_chunk
            n_pieces = np.maximum((ends - 1) // per_chunk - first_chunk + 1, 0)
            run = np.repeat(np.arange(len(starts)), n_pieces)
            piece_bounds = np.zeros(len(starts), dtype=np.int64)
            np.cumsum(n_pieces[:-1], out=piece_bounds[1:])
            chunk = first_chunk[run] + (np.arange(len(run)) - piece_bounds[run])
            chunk_start = chunk * per_chunk
            piece_start = np.maximum(starts[run], chunk_start)
            piece_end = np.minimum(ends[run], chunk_start + per_chunk)
            sizes = ((piece_end - piece_start) * unit).tolist()
            where = (offsets[chunk] + (piece_start - chunk_start) * unit).tolist()
            at = ((ats[run] + piece_start - starts[run]) * unit).tolist()
        # `.data` is memoryview(array); numpy's stubs only declare ndarray a Buffer on 3.12+.
        view = buf.reshape(-1).view(np.uint8).data
        fd, preadv = self.fd, os.preadv
        for pos, size, offset in zip(at, sizes, where):
            if size and preadv(fd, [view[pos : pos + size]], offset) != size:
                raise OSError(f"short read from {self.dset.file.filename} at byte {offset}")


class DenseRows:
    """Rows of a dense 2-D array (an HDF5 dataset or a zarr array), read in bulk by `units`."""

    def __init__(self, dset: Any, units: UnitReader):
        if dset.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {dset.shape}")
        self.dset = dset
        self.shape = tuple(int(n) for n in dset.shape)
        self.dtype = units.dtype
        self._ranges = units

    def read_row(self, row: int) -> np.ndarray:
        """One row, read through the array's own library (h5py, zarr)."""
        return np.asarray(self.dset[row])

    def read_into(
        self,
        out: np.ndarray,
        out_rows: np.ndarray,
        rows: np.ndarray,
        col_map: np.ndarray | None = None,
    ) -> None:
        """out[out_rows[i]] = row rows[i]; with col_map, file column j goes to out column
        col_map[j] (dropped where -1). Rows may repeat and come in any order; out_rows are
        distinct."""
        unique, inverse = _unique(rows)
        runs = Runs(unique, unique + 1, self._ranges.merge_gap)
        picked = self._ranges.read(runs)[runs.range_at[inverse]]
        if col_map is None:
            out[out_rows] = picked
            return
        keep = col_map >= 0
        targets = col_map[keep]
        out[out_rows[:, None], targets[None, :]] = picked[:, keep]


class CsrRows:
    """Rows of a CSR group (`data`, `indices`, `indptr`; HDF5 or zarr), read in bulk by the unit
    readers of `data` and `indices`; `indptr` is held in memory. `where` names the group in
    errors ("X in /data/a.h5ad")."""

    def __init__(self, group: Any, data: UnitReader, indices: UnitReader, where: str):
        self.where = where
        self.shape = tuple(int(n) for n in group.attrs["shape"])
        self.data = group["data"]
        self.indices = group["indices"]
        self.dtype = data.dtype
        self.indptr = np.asarray(group["indptr"][...]).astype(np.int64, copy=False)
        self._data = data
        self._indices = indices
        # One plan serves both: merge by the wider of the two units.
        self._gap = min(self._data.merge_gap, self._indices.merge_gap)

    def read_row(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(values, column indices) of one row, read through the group's own library."""
        s = slice(int(self.indptr[row]), int(self.indptr[row + 1]))
        return np.asarray(self.data[s]), np.asarray(self.indices[s])

    def read_into(
        self,
        out: np.ndarray,
        out_rows: np.ndarray,
        rows: np.ndarray,
        col_map: np.ndarray | None = None,
    ) -> None:
        """Scatter rows into `out` (which must be zeros there): see DenseRows.read_into."""
        if len(out_rows) > 1 and not (out_rows[1:] > out_rows[:-1]).all():
            order = np.argsort(out_rows, kind="stable")
            out_rows, rows = out_rows[order], rows[order]
        unique, inverse = _unique(rows)
        starts, ends = self.indptr[unique], self.indptr[unique + 1]
        runs = Runs(starts, ends, self._gap)
        values, columns, at = self._data.read(runs), self._indices.read(runs), runs.range_at
        lengths = (ends - starts)[inverse]
        ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=ptr[1:])
        total = int(ptr[-1])
        if total == 0:
            return
        first = at[inverse]
        if total != len(values) or not np.array_equal(first, ptr[:-1]):
            # Positions of every stored value of every requested row, in request order.
            take = expand_ranges(first, lengths)
            values, columns = values[take], columns[take]
        if col_map is not None:
            columns = col_map[columns]
            keep = columns >= 0
            if not keep.all():  # an inner join drops some variables: shrink the rows
                kept = np.zeros(len(keep) + 1, dtype=np.int64)
                np.cumsum(keep, out=kept[1:])
                ptr, columns, values = kept[ptr], columns[keep], values[keep]
        if len(out_rows) != out.shape[0]:
            # Rows of `out` this call does not fill get empty ranges, so the fill writes
            # straight into `out` (out_rows are distinct and now increasing).
            counts = np.zeros(out.shape[0], dtype=np.int64)
            counts[out_rows] = np.diff(ptr)
            ptr = np.zeros(out.shape[0] + 1, dtype=np.int64)
            np.cumsum(counts, out=ptr[1:])
        # scipy's fill does no bounds checks: a corrupt file would crash the process, not raise.
        if len(columns) and (columns.min() < 0 or columns.max() >= out.shape[1]):
            raise ValueError(
                f"{self.where} is corrupt: a column index lies outside 0..{out.shape[1] - 1}"
            )
        if int(ptr[-1]) != len(values):
            raise ValueError(f"{self.where} is corrupt: indptr does not match the stored values")
        _fill_dense(out, ptr, columns, values)


def expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Every integer of the ranges [starts[i], starts[i] + lengths[i]), in order: concatenated
    aranges without a Python loop.

    >>> expand_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist()
    [5, 6, 9, 10, 11]
    """
    total = int(lengths.sum())
    offsets = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    out = np.repeat(np.asarray(starts, dtype=np.int64) - offsets, lengths)
    out += np.arange(total, dtype=np.int64)
    return out


def _unique(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct rows and, per requested row, its place among them."""
    if len(rows) < 2 or (rows[1:] > rows[:-1]).all():  # already sorted: skip the sort
        return rows, np.arange(len(rows))
    return np.unique(rows, return_inverse=True)


def _fill_dense(out: np.ndarray, ptr: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """out[i, columns[ptr[i]:ptr[i+1]]] += values[...] for every row i of a zeroed `out`:
    a column stored twice in a row (non-canonical CSR) adds up, as in scipy's toarray()."""
    values = values.astype(out.dtype, copy=False)
    try:
        from scipy.sparse import _sparsetools

        # scipy's C loop, without building a csr_matrix (whose checks cost more than the fill);
        # it wants one integer type for indptr and indices.
        _sparsetools.csr_todense(
            out.shape[0], out.shape[1], ptr, columns.astype(ptr.dtype, copy=False), values, out
        )
        return
    except (ImportError, AttributeError, TypeError, ValueError):  # a dtype it lacks (float16, ...)
        pass
    target = np.repeat(np.arange(out.shape[0], dtype=np.int64), np.diff(ptr))
    np.add.at(out.reshape(-1), target * out.shape[1] + columns, values)


def open_rows(elem: h5py.Group | h5py.Dataset, fd: int | None) -> DenseRows | CsrRows:
    """The row reader for a dense dataset or a CSR group of an HDF5 file; `fd` (an `os.open`
    descriptor of the same local file) enables direct reads, None reads through h5py. CSC and
    other encodings raise ValueError.

    >>> import h5py, io, numpy as np
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     _ = f.create_dataset("d", data=np.ones((2, 2)))
    ...     open_rows(f["d"], None).shape
    (2, 2)
    """
    kind = encoding_of(elem)
    if kind == "array":
        return DenseRows(elem, _Ranges(elem, fd))
    if kind == "csr_matrix":
        where = f"{elem.name} in {elem.file.filename}"
        return CsrRows(elem, _Ranges(elem["data"], fd), _Ranges(elem["indices"], fd), where)
    raise ValueError(
        f"{elem.name} in {elem.file.filename} is a {kind} element; only dense arrays and CSR "
        "matrices can be read by row"
    )
