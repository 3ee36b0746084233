"""Rows of a `MappedCollection`, read from its files: one row, or many in bulk.

A batch's indices are grouped by file; each file's rows are read with a few bulk reads straight
into one array per key (`loaders._h5rows`). `_batch_*` build what the batch path returns (one
array per key, one dtype per key for the whole collection); `_sample_*` build the columns the
per-sample path splits into lamindb's sample dicts (each file's own dtype, gaps where a file
lacks a key).

>>> import numpy as np
>>> [(f, p.tolist()) for f, p in _group_by_file(np.array([1, 0, 1]))]
[(0, [1]), (1, [0, 2])]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from loaders._h5rows import CsrRows, DenseRows
from loaders._mapped_store import _FileState

__all__: list[str] = []

# Marks a key a row's file lacks: its sample dict leaves the key out (as lamindb's does).
_MISSING: Any = object()


def _group_by_file(stores: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(file index, positions in the batch) for each file the batch touches, by file."""
    if len(stores) == 0:
        return []
    first = int(stores[0])
    if (stores == first).all():  # the common case with block sampling: one file
        return [(first, np.arange(len(stores)))]
    order = np.argsort(stores, kind="stable")
    cuts = np.flatnonzero(np.diff(stores[order])) + 1
    return [(int(stores[part[0]]), part) for part in np.split(order, cuts)]


# -- the batch path: one array per key -----------------------------------------------------------


def _batch_array(
    files: Sequence[_FileState],
    groups: list[tuple[int, np.ndarray]],
    rows: np.ndarray,
    key: str,
    dtype: np.dtype,
    width: int,
) -> np.ndarray:
    """Array key `key` of every row of the batch, in batch order (every file has `key`)."""
    out = np.zeros((len(rows), width), dtype=dtype)
    for file_idx, positions in groups:
        files[file_idx].read_into(key, out, positions, rows[positions])
    return out


def _batch_labels(
    files: Sequence[_FileState],
    groups: list[tuple[int, np.ndarray]],
    rows: np.ndarray,
    key: str,
    dtype: np.dtype,
) -> np.ndarray:
    """Obs key `key` of every row of the batch as one `dtype` array; NaN where the file has no
    such column (`_batch_dtype` then made the dtype float or object)."""
    if len(groups) == 1:
        file = files[groups[0][0]]
        lookup = file.batch_lookups[key]
        labels = file.labels[key]
        if lookup is not None and labels is not None:
            return lookup[labels.codes[rows]]
    out = np.empty(len(rows), dtype=dtype)
    for file_idx, positions in groups:
        file = files[file_idx]
        lookup = file.batch_lookups[key]
        labels = file.labels[key]
        if lookup is None or labels is None:
            out[positions] = np.nan
        else:
            out[positions] = lookup[labels.codes[rows[positions]]]
    return out


# -- the per-sample path: one value per row ------------------------------------------------------


def _sample_arrays(
    files: Sequence[_FileState],
    groups: list[tuple[int, np.ndarray]],
    rows: np.ndarray,
    key: str,
    dtype: np.dtype | None,
    n_vars: int | None,
) -> list[Any]:
    """Array key `key` per row of the batch, each as `ds[i]` returns it (the file's dtype
    unless `dtype`), `_MISSING` where the file lacks the key. Rows of the same dtype and width are
    read into one array and handed out as row views of it."""
    plans: dict[tuple[np.dtype, int], list[tuple[int, np.ndarray]]] = {}
    for file_idx, positions in groups:
        element = files[file_idx].arrays[key]
        if element is None:
            continue
        plan = (
            dtype if dtype is not None else element.dtype,
            files[file_idx].out_width(key, n_vars),
        )
        plans.setdefault(plan, []).append((file_idx, positions))
    column: list[Any] = [_MISSING] * len(rows)
    for (plan_dtype, width), parts in plans.items():
        if len(parts) == 1:
            positions_all = parts[0][1]
        else:
            positions_all = np.sort(np.concatenate([positions for _, positions in parts]))
        block = np.zeros((len(positions_all), width), dtype=plan_dtype)
        for file_idx, positions in parts:
            out_rows = (
                np.arange(len(positions))
                if len(parts) == 1
                else np.searchsorted(positions_all, positions)
            )
            files[file_idx].read_into(key, block, out_rows, rows[positions])
        for position, row in zip(positions_all.tolist(), block):
            column[position] = row
    return column


def _sample_labels(
    files: Sequence[_FileState],
    groups: list[tuple[int, np.ndarray]],
    rows: np.ndarray,
    key: str,
) -> list[Any]:
    """Obs key `key` per row of the batch as `ds[i]` returns it (lamindb's Python values, the
    `np.nan` object where missing); `_MISSING` where the file has no such column."""
    if len(groups) == 1:
        file = files[groups[0][0]]
        lookup = file.sample_lookups[key]
        labels = file.labels[key]
        if lookup is not None and labels is not None:
            return lookup[labels.codes[rows]].tolist()
    column: list[Any] = [_MISSING] * len(rows)
    for file_idx, positions in groups:
        file = files[file_idx]
        lookup = file.sample_lookups[key]
        labels = file.labels[key]
        if lookup is not None and labels is not None:
            values = lookup[labels.codes[rows[positions]]].tolist()
            for position, value in zip(positions.tolist(), values):
                column[position] = value
    return column


def _one_row(
    file: _FileState, key: str, row: int, dtype: np.dtype | None, n_vars: int | None
) -> np.ndarray:
    """One row of `key`, read through h5py as lamindb reads it: the plain path the bulk reads
    are checked against."""
    element, reader = file.arrays[key], file.reader(key)
    assert element is not None and reader is not None
    dtype = dtype if dtype is not None else reader.dtype
    col_map = file.col_map if element.aligned else None
    width = file.out_width(key, n_vars)
    if isinstance(reader, DenseRows):
        values = reader.read_row(row)
        if col_map is None:
            return values.astype(dtype, copy=False)
        out = np.zeros(width, dtype=dtype)
        keep = col_map >= 0
        out[col_map[keep]] = values[keep]
        return out
    assert isinstance(reader, CsrRows)
    data, columns = reader.read_row(row)
    out = np.zeros(width, dtype=dtype)
    # add.at, not assignment: a column stored twice in a row adds up, as in scipy.
    if col_map is None:
        np.add.at(out, columns, data.astype(out.dtype, copy=False))
    else:
        target = col_map[columns]
        keep = target >= 0
        np.add.at(out, target[keep], data[keep].astype(out.dtype, copy=False))
    return out
