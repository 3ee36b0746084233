"""The `.obs` columns of `MappedCollection`: codes and values, filters, encoders, lookups.

One column of one file is held as integer codes (-1 where missing) and the values they stand
for (`_Labels`). A per-file lookup turns codes into what a sample returns (lamindb's encoded
integer, or the value, NaN where missing); a typed lookup does the same for a whole batch as one
numpy array (`_batch_dtype`, `_batch_lookup`).

>>> import h5py, io, numpy as np
>>> f = h5py.File(io.BytesIO(), "w")
>>> _ = f.create_dataset("obs/t/codes", data=np.array([1, -1, 0], dtype="int8"))
>>> _ = f.create_dataset("obs/t/categories", data=np.array([b"a", b"b"]))
>>> labels = _Labels.read(f, "t", "mem.h5ad")
>>> labels.labels().tolist()
['b', nan, 'a']
>>> lookup = _batch_lookup(labels.values, {"a": 0, "b": 1}, np.dtype("float64"))
>>> lookup[labels.codes].tolist()
[1.0, nan, 0.0]
>>> f.close()  # before its in-memory buffer goes: h5py crashes the interpreter otherwise
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import pandas as pd

from loaders._h5rows import is_array, is_group

__all__: list[str] = []


def _decode(dset: Any) -> np.ndarray:
    """An HDF5 dataset's or zarr array's values with strings as Python str (h5py gives bytes,
    zarr numpy's StringDType)."""
    if isinstance(dset, h5py.Dataset) and h5py.check_string_dtype(dset.dtype) is not None:
        return dset.asstr()[...]
    values = np.asarray(dset[...])
    if values.dtype.kind == "T":  # numpy's variable-width strings
        return values.astype(object)
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
    def read(cls, file: Any, key: str, path: str) -> _Labels | None:
        """The column `key` of the obs of `file` (an h5py file or a zarr group), None where it
        has no such column."""
        obs = file["obs"]
        if is_array(obs):
            raise ValueError(
                f"{path} stores obs in the pre-0.7 anndata format; write it again with a "
                "current anndata to read it with MappedCollection"
            )
        legacy = obs.get("__categories")
        if is_group(legacy) and key in legacy and key in obs:
            return cls(np.asarray(obs[key][...]), _decode(legacy[key]).astype(object), True)
        if key not in obs:
            return None
        column = obs[key]
        if is_group(column):
            if "codes" in column and "categories" in column:
                codes = np.asarray(column["codes"][...])
                return cls(codes, _decode(column["categories"]).astype(object), True)
            if "values" in column and "mask" in column:  # nullable integer/boolean/string
                raw = _decode(column["values"]).astype(object)
                raw[np.asarray(column["mask"][...]).astype(bool)] = np.nan
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
    """An object lookup from code to value: code -1 indexes the last element, NaN (lamindb's
    value for a missing label, the `np.nan` object itself)."""
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[:-1] = list(values)
    lookup[-1] = np.nan
    return lookup


def _filter_mask(file: Any, path: str, n_obs: int, obs_filter: dict[str, Any]) -> np.ndarray:
    """Which rows of `file` pass lamindb's `obs_filter` ({column: value or values}; NaN among
    the values keeps missing labels; a column the file lacks matches nothing)."""
    keep = np.ones(n_obs, dtype=bool)
    for key, values in obs_filter.items():
        if isinstance(values, tuple):
            values = list(values)
        elif not isinstance(values, list):
            values = [values]
        labels = _Labels.read(file, key, path)
        if labels is None:
            keep[:] = False
            continue
        wanted = {v for v in values if not _is_na(v)}
        hits = np.fromiter(
            (v in wanted for v in labels.values), dtype=bool, count=len(labels.values)
        )
        hits = np.append(hits, any(_is_na(v) for v in values))  # code -1: missing label
        keep &= hits[labels.codes]
    return keep


def _make_encoder(categories: list[Any], unknown: Any) -> dict[Any, int]:
    """lamindb's label encoder: sorted categories to 0, 1, ...; `unknown` (if present) to -1."""
    categories = list(categories)
    encoder: dict[Any, int] = {}
    if unknown is not None and unknown in categories:
        categories.remove(unknown)
        encoder[unknown] = -1
    encoder.update({cat: i for i, cat in enumerate(categories)})
    return encoder


def _sample_lookup(values: np.ndarray, encoder: dict[Any, int] | None) -> np.ndarray:
    """Code -> what a sample dict holds: the encoded int or the value itself, NaN for -1."""
    return _with_nan([encoder[v] for v in values] if encoder is not None else values)


def _batch_dtype(value_sets: list[np.ndarray], missing: bool) -> np.dtype:
    """The one dtype a label column has in every batch: integer (bool) where all the values are,
    float64 where they are numbers and some row lacks a value (NaN), else object (strings).

    One dtype for the whole collection, not per batch: a batch without a missing label would
    otherwise come as int64 and the next one as float64.

    >>> _batch_dtype([np.array([0, 2]), np.array([1])], missing=False)
    dtype('int64')
    >>> _batch_dtype([np.array([0, 2])], missing=True), _batch_dtype([np.array(["a"])], False)
    (dtype('float64'), dtype('O'))
    """
    values = [v for vs in value_sets for v in vs.tolist()]
    kinds = {np.asarray(v).dtype.kind for v in values}
    if kinds <= {"b"} and values:
        return np.dtype(np.float64) if missing else np.dtype(bool)
    if kinds <= {"b", "i", "u"}:
        return np.dtype(np.float64) if missing else np.dtype(np.int64)
    if kinds <= {"b", "i", "u", "f"}:
        return np.dtype(np.float64)
    return np.dtype(object)


def _batch_lookup(
    values: np.ndarray, encoder: dict[Any, int] | None, dtype: np.dtype
) -> np.ndarray:
    """Code -> batch value as a `dtype` array; code -1 (last element) gives NaN where the dtype
    holds one (it is never looked up otherwise: `_batch_dtype` saw no missing row)."""
    lookup = np.zeros(len(values) + 1, dtype=dtype)
    lookup[:-1] = [encoder[v] for v in values] if encoder is not None else list(values)
    if dtype.kind in "fO":
        lookup[-1] = np.nan
    return lookup
