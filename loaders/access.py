"""Streaming access to stored data without loading it into memory (lamindb's `Artifact.open()`).

| suffix | `open_file` returns |
|---|---|
| `.h5ad` | an AnnData in backed mode ("r"): arrays are read when indexed; `with` or `.close()` closes it |
| `.h5`, `.hdf5` | an `h5py.File` opened read-only |
| `.zarr` (a folder) | a `zarr.Group` opened read-only |
| `.parquet`, `.csv`, `.json`, `.orc`, `.arrow`, `.feather`, `.ipc`, or a folder of such files (one suffix) | a `pyarrow.dataset.Dataset` |

A local path is opened where it is; an `s3://` URI is read in place: HDF5 through an fsspec file,
zarr through its fsspec store, pyarrow through the fsspec filesystem. Nothing is downloaded first.
(anndata before 0.12.8 cannot open a remote `.h5ad` backed: see `streams_h5ad`.)

>>> with open_file("sample.h5ad") as backed:
...     backed.isbacked, backed.X[:2].shape
(True, (2, 4))
>>> open_file("counts.csv").to_table().num_rows
3
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from typing import Any

from loaders.folders import list_dir
from loaders.storage import _local_path, _with_endpoint, filesystem, is_remote, suffix_of

__all__ = ["DATASET_SUFFIXES", "OPENABLE", "open_file", "streams_h5ad"]

# suffix -> pyarrow.dataset format (lamindb's PYARROW_SUFFIXES)
_DATASET_FORMATS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".json": "json",
    ".orc": "orc",
    ".arrow": "ipc",
    ".feather": "feather",
    ".ipc": "ipc",
}
DATASET_SUFFIXES: tuple[str, ...] = tuple(_DATASET_FORMATS)
# "" is a folder of dataset files of one suffix (lamindb's "no suffix" folder).
OPENABLE: tuple[str, ...] = (".h5ad", ".h5", ".hdf5", ".zarr", *DATASET_SUFFIXES, "")


def open_file(
    uri: str | os.PathLike[str],
    suffix: str | None = None,
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Open a file or folder for streaming by its suffix (default: the URI's); `kwargs` go to
    the opener (`anndata.read_h5ad`, `h5py.File`, `zarr.open_group`, `pyarrow.dataset.dataset`).

    >>> table = open_file("counts.csv")
    >>> type(table).__name__, table.schema.names
    ('FileSystemDataset', ['gene', 'count'])
    """
    text = os.fspath(uri)
    kind = (suffix if suffix is not None else suffix_of(text)).lower()
    if kind == ".h5ad":
        return _open_h5ad(text, storage_options, **kwargs)
    if kind in (".h5", ".hdf5"):
        return _open_hdf5(text, storage_options, **kwargs)
    if kind == ".zarr":
        return _open_zarr(text, storage_options, **kwargs)
    if kind in _DATASET_FORMATS or kind == "":
        return _open_dataset(text, kind, storage_options, **kwargs)
    raise ValueError(
        f"cannot open {kind!r} files for streaming; open() reads "
        f"{', '.join(s for s in OPENABLE if s)} and folders of {', '.join(DATASET_SUFFIXES)} "
        "files (use .load() or .cache() instead)"
    )


def streams_h5ad() -> bool:
    """Whether the installed anndata opens an already open HDF5 file (here: an fsspec file over
    S3) in backed mode: from 0.12.8 on; before, it reopened the file by its name, so a remote
    `.h5ad` has to be cached before it can be opened backed.

    >>> isinstance(streams_h5ad(), bool)
    True
    """
    parts = re.findall(r"\d+", version("anndata"))[:3]
    return tuple(int(p) for p in parts) >= (0, 12, 8)


def _file_object(text: str, storage_options: dict[str, Any] | None) -> Any:
    fs, path = filesystem(text, storage_options)
    return fs.open(path, "rb")


def _open_h5ad(text: str, storage_options: dict[str, Any] | None, **kwargs: Any) -> Any:
    import anndata as ad

    if is_remote(text) and not streams_h5ad():
        raise ValueError(
            f"anndata {version('anndata')} cannot open {text} in backed mode without a local "
            "copy (0.12.8 and later can): cache it first, or upgrade anndata"
        )
    handle = _file_object(text, storage_options) if is_remote(text) else None
    try:
        adata = ad.read_h5ad(handle if handle is not None else _local_path(text), backed="r",
                             **kwargs)  # fmt: skip
    except BaseException:
        if handle is not None:
            handle.close()
        raise
    adata._lineage_handle = handle  # an fsspec file to close with the HDF5 file
    adata.__class__ = _closable(type(adata))
    return adata


_CLOSABLE: dict[type, type] = {}


def _closable(cls: type) -> type:
    """`cls` (AnnData) plus `close()` and the context-manager protocol, so `with
    artifact.open() as adata:` works as with lamindb's accessor; the object stays an AnnData."""
    if cls in _CLOSABLE:
        return _CLOSABLE[cls]

    def close(self: Any) -> None:
        self.file.close()
        handle = self.__dict__.get("_lineage_handle")
        if handle is not None:
            handle.close()

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(self: Any, *exc: object) -> None:
        self.close()

    namespace = {"close": close, "__enter__": __enter__, "__exit__": __exit__,
                 "__module__": cls.__module__, "__doc__": cls.__doc__}  # fmt: skip
    return _CLOSABLE.setdefault(cls, type(cls.__name__, (cls,), namespace))


def _open_hdf5(text: str, storage_options: dict[str, Any] | None, **kwargs: Any) -> Any:
    import h5py

    target = _file_object(text, storage_options) if is_remote(text) else _local_path(text)
    return h5py.File(target, "r", **kwargs)


def _open_zarr(text: str, storage_options: dict[str, Any] | None, **kwargs: Any) -> Any:
    import zarr

    try:
        if is_remote(text):
            options = _with_endpoint(storage_options) if text.startswith("s3") else storage_options
            return zarr.open_group(text, mode="r", storage_options=options, **kwargs)
        return zarr.open_group(str(_local_path(text)), mode="r", **kwargs)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        # zarr 3 raises its own FileNotFoundError/GroupNotFoundError subclasses for a folder
        # that holds no group; say which folder.
        raise ValueError(f"{text} is not a readable zarr group: {exc}") from exc


def _open_dataset(
    text: str, kind: str, storage_options: dict[str, Any] | None, **kwargs: Any
) -> Any:
    import pyarrow.dataset as pads

    if kind == "":
        kind = _folder_format(text, storage_options)
    kwargs.setdefault("format", _DATASET_FORMATS[kind])
    if is_remote(text):
        fs, path = filesystem(text, storage_options)
        return pads.dataset(path.rstrip("/"), filesystem=fs, **kwargs)
    return pads.dataset(str(_local_path(text)), **kwargs)


def _folder_format(text: str, storage_options: dict[str, Any] | None) -> str:
    """The one dataset suffix of the files in a folder without suffix (lamindb's rule: files
    without a suffix do not count)."""
    try:
        files = list_dir(text, storage_options)
    except NotADirectoryError:
        files = []
    suffixes = {suffix_of(rel) for rel, _ in files} - {""}
    if len(suffixes) != 1 or not suffixes <= set(_DATASET_FORMATS):
        found = ", ".join(sorted(suffixes)) or "none"
        raise ValueError(
            f"cannot open {text} for streaming: without a suffix it must be a folder of files "
            f"of one of {', '.join(DATASET_SUFFIXES)}; found suffixes: {found}"
        )
    return suffixes.pop()
