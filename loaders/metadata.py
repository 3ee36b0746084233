"""What a table or AnnData file holds, read from its metadata and indexes, never its data.

`summarize(uri)` describes a `.parquet` file from its footer (row count, columns and their
types: pyarrow reads the footer alone, one ranged read on S3) and an `.h5ad` file from its HDF5
groups and attributes (shape, obs and var names and columns, layers and obsm keys: h5py opens
the groups it is asked for and reads the two index datasets, never `X`, a layer or an obsm
matrix). Other suffixes have no summary. `lineage.diff` compares two summaries.

>>> import pandas as pd
>>> from loaders import write_object
>>> path = write_object(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), "objects")
>>> summarize(path)
{'otype': 'DataFrame', 'rows': 2, 'columns': {'a': 'int64', 'b': 'string'}}
>>> summary = summarize("sample.h5ad")
>>> summary["shape"], summary["obs"], summary["layers"], summary["obsm"]
([6, 4], {'cell_type': 'category', 'batch': 'category'}, [], [])
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loaders.access import open_file
from loaders.storage import filesystem, is_remote, suffix_of

__all__ = ["SUMMARIZED_SUFFIXES", "obs_names", "summarize"]

SUMMARIZED_SUFFIXES = (".parquet", ".h5ad")


def summarize(
    uri: str | os.PathLike[str],
    suffix: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A plain description of a `.parquet` or `.h5ad` file (local path or `s3://` URI), read
    from its metadata; None for any other suffix.

    DataFrame: `{"otype", "rows", "columns": {name: dtype}}`. AnnData: `{"otype", "shape":
    [n_obs, n_vars], "obs_names", "var_names", "obs": {name: dtype}, "var": {...}, "layers",
    "obsm"}`. dtypes are pandas' names for numbers, booleans and times (`int64`, `float32`,
    `bool`, `datetime64[ns]`), `string`, `category`, and the nullable `Int64`/`boolean`.
    FileNotFoundError if the file is not there; ValueError if it is not the format its suffix
    says.
    """
    kind = (suffix if suffix is not None else suffix_of(uri)).lower()
    if kind not in SUMMARIZED_SUFFIXES:
        return None
    fs, path = filesystem(uri, storage_options)
    if not fs.exists(path):
        raise FileNotFoundError(f"No such file: {uri}")
    local = not is_remote(str(uri))
    try:
        if kind == ".parquet":
            if local:
                return _parquet(path)
            with fs.open(path, "rb") as handle:
                return _parquet(handle)
        if local:
            return _h5ad(path)
        with fs.open(path, "rb") as handle:
            return _h5ad(handle)
    except (FileNotFoundError, IsADirectoryError):
        raise
    except Exception as exc:
        name = "Parquet" if kind == ".parquet" else "h5ad"
        raise ValueError(f"{uri} is not a readable {name} file: {exc}") from exc


def obs_names(
    uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> pd.Index:
    """The obs index (cell names) of an `.h5ad` file or an AnnData zarr store (a folder, or a
    URI ending in `.zarr`), local or `s3://`, read from that one array (never `X`).
    FileNotFoundError if it is not there; ValueError if it is not a readable AnnData store.

    >>> obs_names("sample.h5ad")[:2].tolist()
    ['cell0', 'cell1']
    >>> adata.write_zarr("sample.zarr")
    >>> obs_names("sample.zarr")[:2].tolist()
    ['cell0', 'cell1']
    """
    fs, path = filesystem(uri, storage_options)
    if not fs.exists(path):
        raise FileNotFoundError(f"No such file: {uri}")
    if suffix_of(str(uri).rstrip("/")).lower() == ".zarr" or fs.isdir(path):
        try:
            obs = open_file(str(uri), ".zarr", storage_options)["obs"]
            index = obs[_text(obs.attrs.get("_index", "_index"))]
            return pd.Index(np.asarray(index[...]).astype(object), dtype=object)
        except Exception as exc:
            raise ValueError(f"{uri} is not a readable AnnData zarr store: {exc}") from exc
    try:
        if not is_remote(str(uri)):
            return _obs_index(path)
        with fs.open(path, "rb") as handle:
            return _obs_index(handle)
    except (FileNotFoundError, IsADirectoryError):
        raise
    except Exception as exc:
        raise ValueError(f"{uri} is not a readable h5ad file: {exc}") from exc


def _obs_index(source: Any) -> pd.Index:
    with h5py.File(source, "r") as f:
        group = f["obs"]
        if isinstance(group, h5py.Dataset):  # anndata < 0.7: a compound dataset
            return pd.Index(_dataframe(group)[0])
        index = _text(group.attrs.get("_index", "_index"))
        if index not in group:
            raise ValueError("it has no obs index")
        dset = group[index]
        if h5py.check_string_dtype(dset.dtype) is not None:
            return pd.Index(dset.asstr()[()], dtype=object)
        return pd.Index([_text(v) for v in dset[()]], dtype=object)


# -- parquet -----------------------------------------------------------------------------------
def _parquet(source: Any) -> dict[str, Any]:
    metadata = pq.read_metadata(source)  # the footer: schema and row groups, no column data
    schema = metadata.schema.to_arrow_schema()
    pandas_meta = schema.pandas_metadata or {}
    # A DataFrame's index is stored as a column named in the pandas metadata (a RangeIndex as
    # metadata only): it is the index, not a column.
    index = {c for c in pandas_meta.get("index_columns", []) if isinstance(c, str)}
    # pandas' own name for extension dtypes (Int64, boolean, Float32, ...): arrow's type has no
    # trace of them (a nullable Int64 column is an int64 with nulls).
    extension = {
        c.get("name"): c.get("numpy_type")
        for c in pandas_meta.get("columns", [])
        if _is_extension_name(c.get("numpy_type"))
    }
    columns = {
        f.name: extension.get(f.name) or _arrow_dtype(f.type) for f in schema if f.name not in index
    }
    return {"otype": "DataFrame", "rows": int(metadata.num_rows), "columns": columns}


def _is_extension_name(name: Any) -> bool:
    if not isinstance(name, str) or name == "object":
        return False
    try:
        np.dtype(name)
    except TypeError:
        return True
    return False


def _arrow_dtype(arrow_type: Any) -> str:
    if pa.types.is_dictionary(arrow_type):
        return "category"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    try:
        return str(np.dtype(arrow_type.to_pandas_dtype()))
    except (NotImplementedError, TypeError):  # nested, decimal, ...: arrow's own name
        return str(arrow_type)


# -- h5ad --------------------------------------------------------------------------------------
def _h5ad(source: Any) -> dict[str, Any]:
    with h5py.File(source, "r") as f:
        obs_names, obs = _dataframe(f["obs"])
        var_names, var = _dataframe(f["var"])
        return {
            "otype": "AnnData",
            "shape": [len(obs_names), len(var_names)],
            "obs_names": obs_names,
            "var_names": var_names,
            "obs": obs,
            "var": var,
            "layers": _keys(f, "layers"),
            "obsm": _keys(f, "obsm"),
        }


def _keys(f: Any, name: str) -> list[str]:
    return list(f[name].keys()) if name in f else []


def _dataframe(group: Any) -> tuple[list[str], dict[str, str]]:
    """(index names, {column: dtype}) of an anndata dataframe group, in the stored order."""
    if isinstance(group, h5py.Dataset):  # anndata < 0.7: a compound dataset
        fields = group.dtype.names or ()
        names = [_text(v) for v in group["index"]] if "index" in fields else []
        columns = {n: str(group.dtype[n]) for n in fields if n != "index"}
        return names, columns
    index = _text(group.attrs.get("_index", "_index"))
    names = [_text(v) for v in group[index][()]] if index in group else []
    order = [_text(c) for c in group.attrs.get("column-order", [])]
    columns = {name: _column_dtype(group[name]) for name in order if name in group}
    return names, columns


def _column_dtype(node: Any) -> str:
    encoding = _text(node.attrs.get("encoding-type", ""))
    if encoding == "categorical":
        return "category"
    if encoding in ("string-array", "nullable-string-array"):
        return "string"
    if encoding == "nullable-integer":
        return f"Int{node['values'].dtype.itemsize * 8}"
    if encoding == "nullable-boolean":
        return "boolean"
    if isinstance(node, h5py.Dataset):
        if h5py.check_string_dtype(node.dtype) is not None:
            return "string"
        return str(node.dtype)
    return encoding or "group"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
