"""Local files to in-memory objects, one at a time or concatenated (lamindb's `load()`).

Tables (`.parquet`, `.csv`, `.tsv`, also gzip/bz2/zip-compressed text) load as pandas DataFrames
and concatenate with `pd.concat`; `.h5ad` files and AnnData `.zarr` folders load as AnnData and
concatenate with `anndata.concat`, labelling each observation's source in `obs[label]`.
`.json`, `.yaml`/`.yml` and `.txt`/`.fasta` load one at a time. Formats lamindb does not parse
either (`.html`, images, `.svg`, `.rds`) give back the local path, as lamindb's `load()` does
outside IPython. Anything else raises ValueError naming the suffix.

>>> import pandas as pd
>>> for i in (1, 2): pd.DataFrame({"a": [i]}).to_parquet(f"{i}.parquet")
>>> load_files(["1.parquet", "2.parquet"])["a"].tolist()
[1, 2]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from loaders.formats import zarr_encoding
from loaders.storage import suffix_of

__all__ = ["CONCATENABLE", "FOLDER_LOADABLE", "LOADABLE", "PATH_ONLY", "load_file", "load_files"]

logger = logging.getLogger("loaders")


def _read_parquet(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    return pd.read_parquet(path, **kwargs)


def _read_csv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    return pd.read_csv(path, **kwargs)


def _read_tsv(path: Path, **kwargs: Any) -> Any:
    import pandas as pd

    return pd.read_csv(path, **{"sep": "\t", **kwargs})


def _read_h5ad(path: Path, **kwargs: Any) -> Any:
    import anndata as ad

    return ad.read_h5ad(path, **kwargs)


def _read_zarr(path: Path, **kwargs: Any) -> Any:
    import anndata as ad

    encoding = zarr_encoding(path)
    if encoding != "anndata":
        raise ValueError(
            f"{path} is not an AnnData zarr store (its root declares encoding-type "
            f"{encoding!r}); open it with .open() for the zarr group, or .cache() for the path"
        )
    return ad.read_zarr(path, **kwargs)


def _read_json(path: Path, **kwargs: Any) -> Any:
    with open(path, encoding="utf-8") as fp:
        return json.load(fp, **kwargs)


def _read_yaml(path: Path, **kwargs: Any) -> Any:
    try:
        import yaml
    except ImportError:  # not a dependency: only needed by those who store yaml
        raise ValueError(f"loading {path.name} needs PyYAML: pip install pyyaml") from None
    with open(path, encoding="utf-8") as fp:
        return yaml.safe_load(fp, **kwargs)


def _read_text(path: Path, **kwargs: Any) -> Any:
    return path.read_text(**{"encoding": "utf-8", **kwargs})


def _the_path(path: Path) -> Path:
    """lamindb's loader for what it displays in IPython and returns the path of elsewhere."""
    return path


def _rds_path(path: Path) -> Path:
    logger.warning("use R (e.g. laminr) to read .rds files; returning the path %s", path)
    return path


# suffix -> (reader, kind); files of one kind concatenate, "DataFrame" and "AnnData" only.
_TEXT_TABLES = {".csv": _read_csv, ".tsv": _read_tsv}
_LOADERS: dict[str, tuple[Callable[..., Any], str]] = {
    ".parquet": (_read_parquet, "DataFrame"),
    ".h5ad": (_read_h5ad, "AnnData"),
    ".json": (_read_json, "json"),
    ".yaml": (_read_yaml, "yaml"),
    ".yml": (_read_yaml, "yaml"),
    ".txt": (_read_text, "text"),
    ".fasta": (_read_text, "text"),
    ".zarr": (_read_zarr, "AnnData"),
    ".rds": (_rds_path, "path"),
}
for _suffix in (".html", ".gif", ".jpg", ".png", ".svg"):
    _LOADERS[_suffix] = (_the_path, "path")
for _suffix, _reader in _TEXT_TABLES.items():
    _LOADERS[_suffix] = (_reader, "DataFrame")
    for _compression in (".gz", ".bz2", ".zip"):  # pandas infers it from the name
        _LOADERS[_suffix + _compression] = (_reader, "DataFrame")

LOADABLE: frozenset[str] = frozenset(_LOADERS)
CONCATENABLE: frozenset[str] = frozenset(
    s for s, (_, kind) in _LOADERS.items() if kind in ("DataFrame", "AnnData")
)
PATH_ONLY: frozenset[str] = frozenset(s for s, (_, kind) in _LOADERS.items() if kind == "path")
# Suffixes whose reader takes a folder: an AnnData zarr store, a parquet dataset directory.
FOLDER_LOADABLE: frozenset[str] = frozenset({".zarr", ".parquet"})


def _entry(suffix: str) -> tuple[Callable[..., Any], str]:
    entry = _LOADERS.get(suffix.lower())
    if entry is None:
        shown = repr(suffix) if suffix else "no suffix"
        raise ValueError(
            f"cannot load files with {shown}; loadable: {', '.join(sorted(LOADABLE))} "
            "(use .cache() for the local path)"
        )
    return entry


def load_file(path: str | os.PathLike[str], suffix: str | None = None, **kwargs: Any) -> Any:
    """Load one local file by its suffix (default: the path's): a DataFrame for tables, an
    AnnData for `.h5ad`, a dict/list for `.json`/`.yaml`, a str for `.txt`. `kwargs` go to the
    reader (`pd.read_parquet`, `pd.read_csv`, `anndata.read_h5ad`, ...).

    >>> load_file("counts.csv")
      gene  count
    0    a      1
    1    b      2
    2    c      3
    >>> load_file("sample.h5ad")
    AnnData object with n_obs × n_vars = 6 × 4
        obs: 'cell_type', 'batch'
    >>> load_file("counts.csv", suffix=".txt")[:10]
    'gene,count'
    """
    local = Path(path).expanduser()
    suffix = suffix if suffix is not None else suffix_of(local)
    reader, _ = _entry(suffix)
    if not local.exists():
        raise FileNotFoundError(f"No such file: {path}")
    return _read(reader, local, suffix, **kwargs)


def _read(reader: Callable[..., Any], path: Path, suffix: str, **kwargs: Any) -> Any:
    """`reader(path)`; a corrupt or truncated file raises an error naming the file (pyarrow
    says "'<Buffer>'", h5py only "Unable to open file": neither says which file). The error
    keeps its type (pandas' ParserError, pyarrow's ArrowInvalid, h5py's OSError), so callers
    that catch those still do; types that cannot be rebuilt from a message become ValueError."""
    try:
        return reader(path, **kwargs)
    except (FileNotFoundError, TypeError, MemoryError):  # a missing file, bad reader arguments
        raise
    except Exception as exc:
        message = f"{path} is not a readable {suffix or 'suffix-less'} file: {exc}"
        try:
            named = type(exc)(message)
        except Exception:
            named = ValueError(message)
        raise named from exc


def load_files(
    paths: Sequence[str | os.PathLike[str]],
    suffixes: Sequence[str] | None = None,
    join: str = "outer",
    keys: Sequence[str] | None = None,
    label: str = "artifact_uid",
    **kwargs: Any,
) -> Any:
    """Load local files of one suffix and concatenate them in order.

    A single file gives its object (`load_file`). DataFrames are joined with
    `pd.concat(join=join)`, as lamindb does (no key column); AnnData with
    `anndata.concat(join=join, label=label, keys=keys)`, so `obs[label]` is a categorical naming
    each observation's source (default keys: "0", "1", ...). `kwargs` go to each file's reader.

    >>> adata[:2].copy().write_h5ad("part1.h5ad"); adata[2:].copy().write_h5ad("part2.h5ad")
    >>> combined = load_files(["part1.h5ad", "part2.h5ad"], keys=["p1", "p2"])
    >>> combined.n_obs, combined.obs["artifact_uid"].tolist()
    (6, ['p1', 'p1', 'p2', 'p2', 'p2', 'p2'])
    """
    files = [Path(p).expanduser() for p in paths]
    if not files:
        raise ValueError("load_files() got no files")
    if suffixes is None:
        suffixes = [suffix_of(p) for p in files]
    if len(suffixes) != len(files):
        raise ValueError(f"load_files(): {len(suffixes)} suffixes for {len(files)} files")
    if keys is not None and len(keys) != len(files):
        raise ValueError(f"load_files(): {len(keys)} keys for {len(files)} files")
    if join not in ("inner", "outer"):
        raise ValueError(f"join must be 'inner' or 'outer', not {join!r}")
    distinct = sorted({s.lower() for s in suffixes})
    if len(distinct) > 1:
        raise ValueError(
            f"cannot load files of different suffixes together: {', '.join(map(repr, distinct))}; "
            "all must share one suffix"
        )
    reader, kind = _entry(distinct[0])
    if len(files) == 1:
        return load_file(files[0], suffixes[0], **kwargs)
    if kind not in ("DataFrame", "AnnData"):
        raise ValueError(
            f"cannot concatenate {len(files)} files with suffix {distinct[0]!r}; concatenable: "
            f"{', '.join(sorted(CONCATENABLE))}"
        )
    for f in files:
        if not f.exists():
            raise FileNotFoundError(f"No such file: {f}")
    objects = [_read(reader, f, s, **kwargs) for f, s in zip(files, suffixes)]
    if kind == "DataFrame":
        import pandas as pd

        # `join` was checked to be "inner" or "outer" above; the stubs want the Literal.
        return pd.concat(objects, join=cast(Literal["inner", "outer"], join))
    import anndata as ad

    return ad.concat(objects, join=join, label=label, keys=list(keys) if keys is not None else None)
