"""In-memory objects to files, and what kind of object a file holds (lamindb's `otype`).

>>> import pandas as pd
>>> path = write_object(pd.DataFrame({"a": [1, 2, 3]}), "objects")
>>> path.suffix, describe_file(path)
('.parquet', ('DataFrame', 3))
>>> otype_of(adata), n_observations(adata)
('AnnData', 6)
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loaders.storage import suffix_of

__all__ = ["describe_file", "n_observations", "otype_of", "write_object", "zarr_encoding"]

_ACCEPTED = "pandas.DataFrame or anndata.AnnData"


def _is_instance(obj: Any, module: str, name: str) -> bool:
    # An object of a module nobody imported cannot exist: skip importing anndata (slow) for it.
    loaded = sys.modules.get(module)
    cls = getattr(loaded, name, None) if loaded is not None else None
    return cls is not None and isinstance(obj, cls)


def otype_of(obj: Any) -> str | None:
    """The lamindb otype of an object: "DataFrame", "AnnData", or None for anything else.

    >>> import pandas as pd
    >>> otype_of(pd.DataFrame()), otype_of([1, 2])
    ('DataFrame', None)
    """
    if _is_instance(obj, "pandas", "DataFrame"):
        return "DataFrame"
    if _is_instance(obj, "anndata", "AnnData"):
        return "AnnData"
    return None


def n_observations(obj: Any) -> int | None:
    """Rows of a DataFrame, n_obs of an AnnData, else None.

    >>> import pandas as pd
    >>> n_observations(pd.DataFrame({"a": [1, 2]})), n_observations("text")
    (2, None)
    """
    otype = otype_of(obj)
    if otype == "DataFrame":
        return len(obj)
    if otype == "AnnData":
        return int(obj.n_obs)
    return None


def write_object(obj: Any, directory: str | os.PathLike[str]) -> Path:
    """Write a DataFrame as `.parquet` or an AnnData as `.h5ad` under a fresh random name.

    >>> import pandas as pd
    >>> write_object(pd.DataFrame({"a": [1]}), "objects")
    PosixPath('objects/....parquet')
    >>> write_object(adata, "objects").suffix
    '.h5ad'
    """
    otype = otype_of(obj)
    if otype is None:
        raise TypeError(
            f"Cannot write an object of type {type(obj).__module__}.{type(obj).__qualname__}; "
            f"expected a {_ACCEPTED}"
        )
    folder = Path(directory).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{secrets.token_hex(10)}{'.parquet' if otype == 'DataFrame' else '.h5ad'}"
    try:
        if otype == "DataFrame":
            obj.to_parquet(path, engine="pyarrow")
        else:
            obj.write_h5ad(path)
    except BaseException:
        # A failed write (e.g. non-string column names) must not leave a partial file behind.
        path.unlink(missing_ok=True)
        raise
    return path


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    # The footer alone: no column data is read.
    return int(pq.read_metadata(path).num_rows)


def _h5ad_n_obs(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        obs = f["obs"]
        if isinstance(obs, h5py.Dataset):  # anndata < 0.7 stored obs as a compound dataset
            return int(obs.shape[0])
        index = obs.attrs.get("_index", "_index")
        if index in obs:
            return int(obs[index].shape[0])
        x = f["X"]  # no index column: fall back on X's shape, dense or sparse
        return int(x.shape[0] if isinstance(x, h5py.Dataset) else x.attrs["shape"][0])


def _zarr_meta(node: Path, name: str) -> dict[str, Any]:
    """A zarr node's attributes (name ".zattrs") or array metadata (name ".zarray"), zarr
    format 2 or 3; {} where the node has none."""
    v3 = node / "zarr.json"
    if v3.is_file():
        meta = json.loads(v3.read_text(encoding="utf-8"))
        return dict(meta.get("attributes") or {}) if name == ".zattrs" else dict(meta)
    v2 = node / name
    return dict(json.loads(v2.read_text(encoding="utf-8"))) if v2.is_file() else {}


def zarr_encoding(path: str | os.PathLike[str]) -> str | None:
    """The anndata encoding a local zarr store declares at its root ("anndata" for an AnnData
    written with `write_zarr`), read from its metadata; None for a plain zarr store.

    >>> adata.write_zarr("sample.zarr")
    >>> zarr_encoding("sample.zarr")
    'anndata'
    """
    try:
        encoding = _zarr_meta(Path(path).expanduser(), ".zattrs").get("encoding-type")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} has unreadable zarr metadata: {exc}") from exc
    return encoding if isinstance(encoding, str) else None


def _zarr_description(path: Path) -> tuple[str | None, int | None]:
    """("AnnData", n_obs) for an AnnData zarr store, from its metadata; (None, None) otherwise."""
    if zarr_encoding(path) != "anndata":
        return None, None
    obs = path / "obs"
    index = _zarr_meta(obs, ".zattrs").get("_index", "_index")
    shape = _zarr_meta(obs / str(index), ".zarray").get("shape")
    return "AnnData", int(shape[0]) if shape else None


# suffix -> (otype, format name for errors, cheap row counter)
_READERS: dict[str, tuple[str, str, Callable[[Path], int]]] = {
    ".parquet": ("DataFrame", "Parquet", _parquet_rows),
    ".h5ad": ("AnnData", "h5ad", _h5ad_n_obs),
}


def describe_file(
    path: str | os.PathLike[str], suffix: str | None = None
) -> tuple[str | None, int | None]:
    """(otype, n_observations) of a local file, read from its metadata, not its data.

    `.parquet` -> ("DataFrame", rows), `.h5ad` and an AnnData `.zarr` folder -> ("AnnData", n_obs),
    anything else -> (None, None).
    A file whose suffix promises a format it does not hold raises ValueError.

    >>> describe_file("sample.h5ad"), describe_file("counts.csv")
    (('AnnData', 6), (None, None))
    """
    local = Path(path).expanduser()
    if not local.exists():
        raise FileNotFoundError(f"No such file: {path}")
    kind = (suffix if suffix is not None else suffix_of(local)).lower()
    if kind == ".zarr" and local.is_dir():
        try:
            return _zarr_description(local)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not a readable zarr store: {exc}") from exc
    if kind not in _READERS:
        return None, None
    otype, name, reader = _READERS[kind]
    try:
        return otype, reader(local)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable {name} file: {exc}") from exc
