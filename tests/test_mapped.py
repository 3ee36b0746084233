"""MappedCollection on real .h5ad files and zarr stores: lamindb's mapped tests, joins,
DataLoader, S3 streaming.

No Neo4j: these exercise `loaders` alone. Ground truth comes from anndata reading the same files.
"""

from __future__ import annotations

import gc
import pickle
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import zarr
from anndata.io import write_elem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse import csc_matrix, csr_matrix
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

import loaders
from loaders.mapped import MappedCollection

# -- lamindb's fixture data ----------------------------------------------------------------------


def _adata() -> ad.AnnData:
    return ad.AnnData(
        X=np.array([[1, 2, 3], [4, 5, 6]]),
        obs={"feat1": ["A", "B"]},
        var=pd.DataFrame(index=["MYC", "TCF7", "GATA1"]),
        obsm={"X_pca": np.array([[1, 2], [3, 4]])},
    )


def _adata2() -> ad.AnnData:
    return ad.AnnData(
        X=np.array([[1, 2, 5], [4, 5, 8]]),
        obs={"feat1": ["A", "B"]},
        var=pd.DataFrame(index=["MYC", "TCF7", "GATA1"]),
        obsm={"X_pca": np.array([[1, 2], [3, 4]])},
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """lamindb's test_mapped files: part one (dense), part two (CSR), other vars (CSR, a NaN
    label), a CSC layer; plus a file with .raw."""
    root = tmp_path_factory.mktemp("mapped")
    adata = _adata()
    adata.strings_to_categoricals()
    adata.obs["feat2"] = adata.obs["feat1"]
    adata.layers["layer1"] = adata.X.copy()
    adata.layers["layer1"][0, 0] = 0
    adata2 = _adata2()
    adata2.X = csr_matrix(adata2.X)
    adata2.layers["layer1"] = adata2.X.copy()
    adata2.obs["feat2"] = adata2.obs["feat1"]
    adata2.strings_to_categoricals()
    adata3 = adata2.copy()
    adata3.var_names = ["A", "B", "C"]
    adata3.obs.loc["0", "feat1"] = np.nan
    adata4 = adata.copy()
    adata4.layers["layer1"] = csc_matrix(adata4.layers["layer1"])
    adata5 = adata2.copy()
    adata5.raw = adata5
    adata5.X = csr_matrix(np.array([[10, 20, 30], [40, 50, 60]]))
    paths = {}
    for name, data in [
        ("one", adata),
        ("two", adata2),
        ("other", adata3),
        ("csc", adata4),
        ("raw", adata5),
    ]:
        paths[name] = str(root / f"{name}.h5ad")
        data.write_h5ad(paths[name])
    return paths


# -- lamindb's test_mapped, mirrored -------------------------------------------------------------


def test_encoders(files: dict[str, str]) -> None:
    two = [files["one"], files["two"]]
    with pytest.raises(ValueError, match="encode_labels"):
        MappedCollection(two, encode_labels=["feat1"])
    with pytest.raises(ValueError, match="encode_labels"):
        MappedCollection(two, obs_keys="feat1", encode_labels=["feat3"])
    with pytest.raises(ValueError, match="unknown_label"):
        MappedCollection(two, obs_keys="feat1", unknown_label={"feat3": "Unknown"})
    with MappedCollection(two, obs_keys=["feat1", "feat2"], unknown_label="A") as ds:
        assert ds.encoders["feat1"] == {"A": -1, "B": 0}
        assert ds.encoders["feat2"] == {"A": -1, "B": 0}
        assert [ds[0]["feat1"], ds[1]["feat1"], ds[0]["feat2"], ds[1]["feat2"]] == [-1, 0, -1, 0]
    with MappedCollection(two, obs_keys=["feat1", "feat2"], unknown_label={"feat1": "A"}) as ds:
        assert ds.encoders["feat1"] == {"A": -1, "B": 0}
        assert ds.encoders["feat2"] == {"A": 0, "B": 1}  # sorted categories
        assert [ds[0]["feat1"], ds[1]["feat1"], ds[0]["feat2"], ds[1]["feat2"]] == [-1, 0, 0, 1]
    with MappedCollection(
        two, obs_keys=["feat1", "feat2"], unknown_label="A", encode_labels=["feat1"]
    ) as ds:
        assert ds.encoders["feat1"] == {"A": -1, "B": 0}
        assert "feat2" not in ds.encoders
        assert (ds[0]["feat1"], ds[1]["feat1"]) == (-1, 0)
        assert (ds[0]["feat2"], ds[1]["feat2"]) == ("A", "B")
    with MappedCollection(two, obs_keys="feat1", encode_labels=False) as ds:
        assert ds.encoders == {}
        assert [s["feat1"] for s in ds.__getitems__([0, 1, 2, 3])] == ["A", "B", "A", "B"]


def test_basics_weights_and_vars(files: dict[str, str]) -> None:
    ds = MappedCollection([files["one"], files["two"]], obs_keys="feat1")
    assert not ds.closed
    assert len(ds) == 4 and ds.shape == (4, 3) and ds.n_obs == 4 and ds.n_vars == 3
    assert list(ds[0]) == ["X", "_store_idx", "feat1"]
    assert len(ds[0]["X"]) == 3
    assert np.array_equal(ds[2]["X"], np.array([1, 2, 5]))
    assert np.array_equal(ds[-1]["X"], np.array([4, 5, 8]))
    assert ds.original_shapes == [(2, 3), (2, 3)]
    assert list(ds.var_joint) == ["MYC", "TCF7", "GATA1"]
    weights = ds.get_label_weights("feat1")
    assert len(weights) == 4 and all(weights == 0.5)
    weights = ds.get_label_weights(["feat1", "feat2"])
    assert len(weights) == 4 and all(weights == 0.5)
    assert all(ds.get_label_weights(["feat1", "feat2"], scaler=1.0) == 1.0 / 3.0)
    categories = ds.get_label_weights(["feat1", "feat2"], scaler=1.0, return_categories=True)
    assert categories == {"A__A": 1.0 / 3.0, "B__B": 1.0 / 3.0}
    assert ds.get_merged_labels("feat1").tolist() == ["A", "B", "A", "B"]
    assert ds.get_merged_categories("feat2") == ["A", "B"]
    assert not ds.check_vars_sorted(ascending=True)
    assert not ds.check_vars_sorted(ascending=False)
    assert ds.check_vars_non_aligned(["MYC", "TCF7", "GATA1"]) == []
    ds.var_list = None
    assert not ds.check_vars_sorted()
    ds.var_list = None
    assert ds.check_vars_non_aligned(["MYC", "TCF7", "GATA1"]) == []
    assert all(isinstance(f, h5py.File) for f in ds.storages)
    with pytest.raises(IndexError):
        ds[4]
    with pytest.raises(IndexError):
        ds.__getitems__([0, 4])
    ds.close()
    assert ds.closed
    with pytest.raises(ValueError, match="closed"):
        ds[0]


def test_dtype_and_context_manager(files: dict[str, str]) -> None:
    with MappedCollection(
        [files["one"], files["two"]], obs_keys="feat1", join="inner", dtype="float32"
    ) as ds:
        assert not ds.closed
        assert len(ds) == 4 and len(ds[0]) == 3 and len(ds[2]) == 3
        assert str(ds[0]["X"].dtype) == "float32" and str(ds[2]["X"].dtype) == "float32"
        assert {str(s["X"].dtype) for s in ds.__getitems__([0, 1, 2, 3])} == {"float32"}
    assert ds.closed
    with MappedCollection([files["one"], files["two"]]) as ds:
        assert np.issubdtype(ds[0]["X"].dtype, np.integer)
        assert np.issubdtype(ds[2]["X"].dtype, np.integer)


def test_parallel(files: dict[str, str]) -> None:
    ds = MappedCollection([files["one"], files["two"]], obs_keys="feat1", parallel=True)
    assert ds.storages == [files["one"], files["two"]]
    assert len(ds[0]) == 3 and len(ds[2]) == 3
    assert ds[0]["_store_idx"] == 0 and ds[2]["_store_idx"] == 1
    ds.close()
    assert ds.closed
    assert ds[3]["_store_idx"] == 1  # lamindb: closing has no effect with parallel=True


def test_layers_and_obsm(files: dict[str, str]) -> None:
    with MappedCollection(
        [files["one"], files["two"]], layers_keys=["layer1"], obsm_keys=["X_pca"], obs_keys="feat1"
    ) as ds:
        assert np.array_equal(ds[0]["layer1"], np.array([0, 2, 3]))
        assert np.array_equal(ds[2]["layer1"], np.array([1, 2, 5]))
        assert np.array_equal(ds[2]["obsm_X_pca"], np.array([1, 2]))
        assert np.array_equal(ds[3]["obsm_X_pca"], np.array([3, 4]))
        assert list(ds[0]) == ["layer1", "obsm_X_pca", "_store_idx", "feat1"]
        assert ds.shape == (4, 3)
        assert ds.original_shapes[0] == (2, 3) and ds.original_shapes[1] == (2, 3)
    with MappedCollection(
        [files["one"], files["two"]],
        layers_keys=["X", "layer1"],
        obsm_keys="X_pca",
        dtype="float64",
    ) as ds:
        sample = ds.__getitems__([0])[0]
        assert sample["X"].tolist() == [1.0, 2.0, 3.0] and sample["layer1"].tolist() == [
            0.0,
            2.0,
            3.0,
        ]
        assert sample["obsm_X_pca"].dtype == np.float64


def test_outer_join(files: dict[str, str]) -> None:
    paths = [files["one"], files["two"], files["other"]]
    with pytest.raises(ValueError, match="shared variables"):
        MappedCollection(paths, obs_keys="feat1", join="inner")
    with MappedCollection(
        paths, layers_keys="X", obsm_keys="X_pca", obs_keys="feat1", join="outer"
    ) as ds:
        assert ds.shape == (6, 6)
        assert ds.join_vars == "outer"
        assert list(ds.var_joint) == ["A", "B", "C", "GATA1", "MYC", "TCF7"]
        assert len(ds[0]) == 4 and len(ds[0]["X"]) == 6
        expected = [
            [0, 0, 0, 3, 1, 2],
            [0, 0, 0, 6, 4, 5],
            [0, 0, 0, 5, 1, 2],
            [0, 0, 0, 8, 4, 5],
            [1, 2, 5, 0, 0, 0],
            [4, 5, 8, 0, 0, 0],
        ]
        assert [ds[i]["X"].tolist() for i in range(6)] == expected
        assert [s["X"].tolist() for s in ds.__getitems__(range(6))] == expected
        assert ds[4]["feat1"] is np.nan
        assert ds.__getitems__([4])[0]["feat1"] is np.nan
        assert np.issubdtype(ds[2]["X"].dtype, np.integer)
        assert np.issubdtype(ds[4]["X"].dtype, np.integer)
        assert np.array_equal(ds[3]["obsm_X_pca"], np.array([3, 4]))
        assert ds.check_vars_non_aligned(["MYC", "TCF7", "GATA1"]) == [2]
        assert not ds.check_vars_sorted()
        assert len(ds.get_label_weights("feat1")) == 6
        assert ds.original_shapes == [(2, 3), (2, 3), (2, 3)]
    with MappedCollection(paths, layers_keys="layer1", join="outer") as ds:
        assert np.array_equal(ds[0]["layer1"], np.array([0, 0, 0, 3, 0, 2]))
        assert np.array_equal(ds[4]["layer1"], np.array([1, 2, 5, 0, 0, 0]))


def test_csc_raises_naming_the_file(files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"layers/layer1 in .*csc\.h5ad is a csc matrix"):
        MappedCollection([files["csc"], files["two"]], layers_keys="layer1")
    path = tmp_path / "csc_x.h5ad"
    ad.AnnData(X=csc_matrix(np.eye(3))).write_h5ad(path)
    with pytest.raises(ValueError, match=r"X in .*csc_x\.h5ad is a csc matrix"):
        MappedCollection([files["one"], path])


def test_obs_filter(files: dict[str, str]) -> None:
    two = [files["one"], files["two"]]
    outer = [files["one"], files["two"], files["other"]]
    with pytest.warns(FutureWarning, match="deprecated"):
        ds = MappedCollection(two, obs_filter=("feat1", ("A", "B")))
    assert ds.shape == (4, 3)
    assert np.array_equal(ds[1]["X"], np.array([4, 5, 6]))
    assert np.array_equal(ds[3]["X"], np.array([4, 5, 8]))
    assert all(ds.get_label_weights("feat1") == 0.5)
    with pytest.warns(FutureWarning):
        ds = MappedCollection(two, obs_filter=("feat1", "B"))
    assert ds.shape == (2, 3)
    assert np.array_equal(ds[0]["X"], np.array([4, 5, 6]))
    assert np.array_equal(ds[1]["X"], np.array([4, 5, 8]))
    weights = ds.get_label_weights("feat2")
    assert len(weights) == 2 and all(weights == 0.5)
    with MappedCollection(two, obs_filter={"feat1": "B", "feat2": ("A", "B")}) as ds:
        assert ds.shape == (2, 3)
        assert ds.original_shapes == [(1, 3), (1, 3)]
        assert [s["X"].tolist() for s in ds.__getitems__([0, 1])] == [[4, 5, 6], [4, 5, 8]]
        assert ds.indices_list[0].tolist() == [1] and ds.indices_list[1].tolist() == [1]
    with MappedCollection(outer, obs_filter={"feat1": np.nan}, join="outer") as ds:
        assert ds.shape == (1, 6)
        assert np.array_equal(ds[0]["X"], np.array([1, 2, 5, 0, 0, 0]))
    with MappedCollection(
        outer, obs_filter={"feat1": (np.nan,), "feat2": ["A", "B"]}, join="outer"
    ) as ds:
        assert ds.shape == (1, 6)
    with MappedCollection(outer, obs_filter={"feat1": (np.nan, "A", "B")}, join="outer") as ds:
        assert ds.shape == (6, 6)
    with MappedCollection(outer, obs_filter={"feat1": ["A", "B"]}, join="outer") as ds:
        assert ds.shape == (5, 6)
    with MappedCollection(outer, obs_filter={"feat1": ("A", np.nan)}, join="outer") as ds:
        assert ds.shape == (3, 6)
    with MappedCollection(two, obs_filter={"no_such_column": "A"}) as ds:
        assert ds.shape == (0, 3)


def test_missing_keys_are_omitted(files: dict[str, str], tmp_path: Path) -> None:
    bare = tmp_path / "bare.h5ad"
    ad.AnnData(
        X=np.array([[7, 8, 9]]), var=pd.DataFrame(index=["MYC", "TCF7", "GATA1"])
    ).write_h5ad(bare)
    with MappedCollection(
        [files["one"], bare], layers_keys=["X", "layer1"], obsm_keys="X_pca", obs_keys="feat1"
    ) as ds:
        assert list(ds[0]) == ["X", "layer1", "obsm_X_pca", "_store_idx", "feat1"]
        assert list(ds[2]) == ["X", "_store_idx"]
        batch = ds.__getitems__([2, 0])
        assert list(batch[0]) == ["X", "_store_idx"] and batch[0]["X"].tolist() == [7, 8, 9]
        assert list(batch[1]) == list(ds[0])
        assert ds.get_merged_labels("feat1").tolist() == ["A", "B"]  # files without it skipped


def test_raw_x(files: dict[str, str]) -> None:
    with MappedCollection([files["raw"], files["two"]], layers_keys=["X", "raw.X"]) as ds:
        assert ds[0]["X"].tolist() == [10, 20, 30]
        assert ds[0]["raw.X"].tolist() == [1, 2, 5]
        assert "raw.X" not in ds[2]  # part two has no .raw
        assert [s["raw.X"].tolist() for s in ds.__getitems__([1, 0])] == [[4, 5, 8], [1, 2, 5]]


def test_join_none(files: dict[str, str], tmp_path: Path) -> None:
    with MappedCollection([files["one"], files["other"]], join=None) as ds:
        assert ds.join_vars is None and ds.n_vars is None and ds.var_joint is None
        assert ds.original_shapes == [(2, None), (2, None)]
        assert ds[2]["X"].tolist() == [1, 2, 5]  # no alignment: as stored
    wide = tmp_path / "wide.h5ad"
    ad.AnnData(X=np.ones((2, 4))).write_h5ad(wide)
    with pytest.raises(ValueError, match=r"wide\.h5ad has 4"):
        MappedCollection([files["one"], wide], join=None)


def test_inner_join_keeps_shared_variables(tmp_path: Path) -> None:
    a = ad.AnnData(
        X=csr_matrix(np.array([[1.0, 0, 3], [0, 5, 6]])), var=pd.DataFrame(index=["g1", "g2", "g3"])
    )
    b = ad.AnnData(X=np.array([[7.0, 8, 9, 1]]), var=pd.DataFrame(index=["g3", "g4", "g1", "g0"]))
    for name, data in (("a", a), ("b", b)):
        data.write_h5ad(tmp_path / f"{name}.h5ad")
    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    with MappedCollection(paths, join="inner") as ds:
        assert list(ds.var_joint) == ["g1", "g3"]
        expected = [[1.0, 3.0], [0.0, 6.0], [9.0, 7.0]]
        assert [ds[i]["X"].tolist() for i in range(3)] == expected
        assert [s["X"].tolist() for s in ds.__getitems__([0, 1, 2])] == expected


def test_bad_inputs(files: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="join"):
        MappedCollection([files["one"]], join="left")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="missing.h5ad"):
        MappedCollection([tmp_path / "missing.h5ad"])
    with pytest.raises(ValueError, match="empty"):
        MappedCollection([])
    with pytest.raises(ValueError, match=r"s3://bucket/x\.h5ad is remote.*stream=True"):
        MappedCollection(["s3://bucket/x.h5ad"])
    not_h5 = tmp_path / "text.h5ad"
    not_h5.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5ad is not a readable"):
        MappedCollection([not_h5])


# -- ground truth over larger files, DataLoader, pickling ----------------------------------------


def _write_zarr(adata: ad.AnnData, path: Path, layout: str) -> str:
    """Write `adata` as a zarr store with X stored as `layout`: zarr<format>-<X>[-...], e.g.
    zarr2-csr (anndata's defaults, format 2), zarr3-csr-sharded (small chunks inside shards, so
    reads cross both), zarr2-dense-chunks (X cut into bands of 7 rows and 13 columns)."""
    fmt = int(layout[4])
    x = adata.X
    dense = x.toarray() if sp.issparse(x) else np.asarray(x)
    previous = ad.settings.zarr_write_format
    ad.settings.zarr_write_format = fmt
    try:
        with warnings.catch_warnings():  # anndata's note that format 2 stops being its default
            warnings.simplefilter("ignore", UserWarning)
            adata.write_zarr(path)
        group = zarr.open_group(path, mode="r+", use_consolidated=False)
        kwargs: dict = {
            "zarr3-csr-sharded": {"chunks": (50,), "shards": (200,)},
            "zarr2-csr-chunks": {"chunks": (50,)},
            "zarr3-csr-raw": {"chunks": (64,), "compressors": None},
            "zarr2-dense-chunks": {"chunks": (7, 13)},
            "zarr3-dense-sharded": {"chunks": (7, 15), "shards": (28, 30)},
        }.get(layout, {})
        if "-csr" in layout:
            write_elem(group, "X", csr_matrix(dense), dataset_kwargs=kwargs)
        else:
            write_elem(group, "X", dense, dataset_kwargs=kwargs)
        with warnings.catch_warnings():  # zarr's note that format 3 has no consolidated metadata
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(path)  # anndata writes consolidated metadata: keep it true
    finally:
        ad.settings.zarr_write_format = previous
    return str(path)


def _write(adata: ad.AnnData, path: Path, layout: str) -> str:
    """Write `adata` with X stored as `layout`: csr (anndata's chunked default), csr-chunks,
    csr-gzip, csr-contiguous, dense, dense-gzip, dense-chunked; zarr layouts (`_write_zarr`)
    go to a `.zarr` store beside `path`."""
    if layout.startswith("zarr"):
        return _write_zarr(adata, path.with_suffix(".zarr"), layout)
    adata = adata.copy()
    x = adata.X
    adata.X = None
    adata.write_h5ad(path)
    dense = x.toarray() if sp.issparse(x) else np.asarray(x)
    with h5py.File(path, "r+") as f:
        if layout == "csr":
            write_elem(f, "X", csr_matrix(dense))
        elif layout == "csr-chunks":  # many small chunks: reads cross chunk boundaries
            write_elem(f, "X", csr_matrix(dense), dataset_kwargs={"chunks": (50,)})
        elif layout == "csr-gzip":
            write_elem(f, "X", csr_matrix(dense), dataset_kwargs={"compression": "gzip"})
        elif layout == "csr-contiguous":
            m = csr_matrix(dense)
            g = f.create_group("X")
            g.attrs.update(
                {"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": m.shape}
            )
            for name in ("data", "indices", "indptr"):
                g.create_dataset(name, data=getattr(m, name))
        elif layout == "dense":
            write_elem(f, "X", dense)
        elif layout == "dense-gzip":
            write_elem(f, "X", dense, dataset_kwargs={"compression": "gzip"})
        elif layout == "dense-chunked":
            write_elem(f, "X", dense, dataset_kwargs={"chunks": (7, dense.shape[1])})
        else:
            raise AssertionError(layout)
    return str(path)


def _random_adata(
    rng: np.random.Generator, n_obs: int, var_names: list[str], prefix: str
) -> ad.AnnData:
    x = sp.random(
        n_obs, len(var_names), density=0.3, format="csr", dtype=np.float32, random_state=rng
    )
    x.data[:] = rng.integers(1, 50, x.nnz)
    labels = rng.choice(["T", "B", "NK", None], n_obs).astype(object)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(labels),
            "cell_id": np.arange(n_obs, dtype=np.int64) + (0 if prefix == "a" else 10_000),
        },
        index=[f"{prefix}{i}" for i in range(n_obs)],
    )
    out = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=var_names))
    out.obsm["emb"] = rng.normal(size=(n_obs, 3)).astype(np.float32)
    return out


H5_LAYOUTS = [
    "csr",
    "csr-chunks",
    "csr-gzip",
    "csr-contiguous",
    "dense",
    "dense-gzip",
    "dense-chunked",
]
ZARR_LAYOUTS = [
    "zarr2-csr",
    "zarr3-csr",
    "zarr3-csr-sharded",
    "zarr2-csr-chunks",
    "zarr3-csr-raw",
    "zarr2-dense",
    "zarr3-dense",
    "zarr2-dense-chunks",
    "zarr3-dense-sharded",
]
LAYOUTS = H5_LAYOUTS + ZARR_LAYOUTS


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Files in every layout over overlapping variables, and the anndata ground truth."""
    root = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(7)
    genes = [f"g{i:02d}" for i in range(40)]
    a = _random_adata(rng, 230, genes[:30], "a")
    b = _random_adata(rng, 170, genes[10:], "b")
    out = {"a": a, "b": b, "paths": {}}
    for layout in LAYOUTS:
        out["paths"][layout] = (
            _write(a, root / f"a-{layout}.h5ad", layout),
            _write(b, root / f"b-{layout}.h5ad", layout),
        )
    return out


def _read(path: str) -> ad.AnnData:
    """anndata's own reading of a file or store."""
    return ad.read_zarr(path) if path.endswith(".zarr") else ad.read_h5ad(path)


def _truth(big: dict, join: str, layout: str | None = None) -> tuple[np.ndarray, pd.Index]:
    """X of the files joined as `join` (anndata reads them; without `layout`, the objects that
    were written), and its variables."""
    parts = [big["a"], big["b"]] if layout is None else [_read(p) for p in big["paths"][layout]]
    joined = ad.concat(parts, join=join, fill_value=0)  # an outer join's gaps are zeros
    genes = joined.var_names.sort_values() if join == "outer" else joined.var_names
    x = joined[:, genes].X
    return (x.toarray() if sp.issparse(x) else np.asarray(x)), genes


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("join", ["outer", "inner"])
def test_all_rows_match_anndata(big: dict, layout: str, join: str) -> None:
    expected, genes = _truth(big, join, layout)
    with MappedCollection(list(big["paths"][layout]), join=join, obs_keys="cell_id") as ds:
        assert list(ds.var_joint) == list(genes)
        order = np.random.default_rng(0).permutation(len(ds))
        got = np.stack([s["X"] for s in ds.__getitems__(order)])
        np.testing.assert_array_equal(got, expected[order])
        assert (
            np.stack([ds[int(i)]["X"] for i in order[:50]]).tolist()
            == expected[order[:50]].tolist()
        )


@pytest.mark.parametrize(("num_workers", "context"), [(0, None), (2, None), (2, "forkserver")])
def test_dataloader_matches_anndata(big: dict, num_workers: int, context: str | None) -> None:
    """Workers forked (Linux's default before Python 3.14) or started fresh (forkserver, the
    default from 3.14: the dataset travels pickled) read the same rows as anndata."""
    expected, _ = _truth(big, "outer")
    ids = np.concatenate([big["a"].obs["cell_id"].to_numpy(), big["b"].obs["cell_id"].to_numpy()])
    emb = np.concatenate([big["a"].obsm["emb"], big["b"].obsm["emb"]])
    ds = MappedCollection(
        list(big["paths"]["csr"]),
        join="outer",
        obs_keys=["cell_type", "cell_id"],
        obsm_keys="emb",
        encode_labels=["cell_type"],
        dtype="float32",
    )
    order = np.random.default_rng(1).permutation(len(ds)).tolist()
    loader = DataLoader(
        ds, batch_size=64, sampler=order, num_workers=num_workers, multiprocessing_context=context
    )
    xs, id_batches, types, stores, embs = [], [], [], [], []
    for batch in loader:
        assert batch["X"].dtype == torch.float32 and batch["X"].shape[1] == 40
        xs.append(batch["X"].numpy())
        id_batches.append(batch["cell_id"].numpy())
        types.append(batch["cell_type"].numpy())
        stores.append(batch["_store_idx"].numpy())
        embs.append(batch["obsm_emb"].numpy())
    np.testing.assert_array_equal(np.concatenate(xs), expected[order])
    np.testing.assert_array_equal(np.concatenate(id_batches), ids[order])
    np.testing.assert_array_equal(np.concatenate(embs), emb[order])
    np.testing.assert_array_equal(np.concatenate(stores), (np.asarray(order) >= 230).astype(int))
    labels = (
        pd.concat([big["a"].obs["cell_type"], big["b"].obs["cell_type"]]).astype(object).to_numpy()
    )
    encoded = np.concatenate(types)  # NaN labels make the batch float
    for got, label in zip(encoded, labels[order]):
        assert np.isnan(got) if pd.isna(label) else got == ds.encoders["cell_type"][label]
    if context is not None:
        return  # starting fresh workers is slow: once is enough
    # The default loader, shuffled: every row once.
    seen = np.concatenate(
        [
            b["cell_id"].numpy()
            for b in DataLoader(ds, batch_size=50, shuffle=True, num_workers=num_workers)
        ]
    )
    assert sorted(seen.tolist()) == sorted(ids.tolist())


def test_dataloader_with_distributed_sampler(big: dict) -> None:
    ds = MappedCollection(
        list(big["paths"]["csr"]), join="outer", obs_keys="cell_id", encode_labels=False
    )
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        seen += [b["cell_id"] for b in DataLoader(ds, batch_size=32, sampler=sampler)]
    assert sorted(torch.cat(seen).tolist()) == sorted(
        big["a"].obs["cell_id"].tolist() + big["b"].obs["cell_id"].tolist()
    )


def test_block_sampler_in_a_dataloader(big: dict) -> None:
    expected, _ = _truth(big, "outer")
    ds = MappedCollection(list(big["paths"]["csr-contiguous"]), join="outer")
    sampler = loaders.BlockShuffleSampler(ds, block_size=16, window=4, seed=5)
    order = list(sampler)
    got = np.concatenate([b["X"].numpy() for b in DataLoader(ds, batch_size=64, sampler=sampler)])
    np.testing.assert_array_equal(got, expected[order])


def test_balanced_block_sampler_feeds_two_workers(big: dict) -> None:
    """Whole batches drawn by BalancedBlockSampler through a DataLoader with 2 workers: the rows
    the sampler drew, in its order, with every cell type (and the missing label) balanced."""
    expected, _ = _truth(big, "outer")
    ds = MappedCollection(list(big["paths"]["csr"]), join="outer", obs_keys="cell_type")
    labels = ds.get_merged_labels("cell_type")
    sampler = loaders.BalancedBlockSampler(labels, block_size=8, seed=2)
    sampler.set_epoch(1)
    order = sampler.indices()
    loader = DataLoader(
        ds,
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size=32, drop_last=False),
        num_workers=2,
        persistent_workers=True,
    )
    got = np.concatenate([b["X"].numpy() for b in loader])
    np.testing.assert_array_equal(got, expected[order])
    drawn = pd.Series(labels[order]).fillna("missing").value_counts()
    assert len(drawn) == 4 and drawn.max() - drawn.min() <= 1  # T, B, NK and missing
    ds.close()


def test_pickle_round_trip_reopens(big: dict) -> None:
    ds = MappedCollection(list(big["paths"]["csr"]), join="outer", obs_keys="cell_type")
    before = ds.__getitems__([3, 300])
    copy = pickle.loads(pickle.dumps(ds))
    assert len(pickle.dumps(ds)) < 100_000  # handles and indptr caches are not pickled
    after = copy.__getitems__([3, 300])
    for x, y in zip(before, after):
        assert x.keys() == y.keys()
        np.testing.assert_array_equal(x["X"], y["X"])
        assert x["cell_type"] == y["cell_type"] or (
            np.isnan(x["cell_type"]) and np.isnan(y["cell_type"])
        )
    copy.close()
    assert ds[3]["X"].tolist() == before[0]["X"].tolist()  # the original keeps its own handles


def _pickled_types(obj: object) -> tuple[bytes, set[str]]:
    """`obj` pickled, and the module-qualified type of every object the pickler was handed."""
    import io

    seen: set[str] = set()

    class Recorder(pickle.Pickler):
        def reducer_override(self, value: object) -> object:
            seen.add(f"{type(value).__module__}.{type(value).__qualname__}")
            return NotImplemented

    buffer = io.BytesIO()
    Recorder(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue(), seen


@pytest.mark.parametrize("filtered", [False, True])
def test_pickles_small_without_handles(tmp_path: Path, filtered: bool) -> None:
    """What a spawned DataLoader worker receives: no h5py object or open file, and no per-row
    array but the label codes. Bound: one byte per row and obs key (the int8 codes, which a
    worker needs for its batches) plus 16 KiB (names, encoders, row sets); the position arrays
    the dataset keeps (16-24 bytes a row) would make it 25x that."""
    n_rows, rng = 20_000, np.random.default_rng(3)
    paths = []
    for i in range(2):
        obs = pd.DataFrame(
            {"cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], n_rows // 2))},
            index=[f"c{i}-{j}" for j in range(n_rows // 2)],
        )
        x = sp.random(n_rows // 2, 30, density=0.1, format="csr", dtype=np.float32, random_state=i)
        paths.append(str(tmp_path / f"p{i}.h5ad"))
        ad.AnnData(X=x, obs=obs).write_h5ad(paths[-1])
    keep = {"cell_type": ("T", "NK")} if filtered else None
    ds = MappedCollection(paths, obs_keys="cell_type", obs_filter=keep)
    batch = ds[list(range(0, len(ds), 7))]  # handles open and indptr read: nothing of it travels
    data, types = _pickled_types(ds)
    assert not [t for t in types if t.startswith("h5py") or t.startswith("_io.")], types
    assert len(data) < n_rows + 16 * 1024, len(data)
    copy = pickle.loads(data)
    np.testing.assert_array_equal(copy.indices, ds.indices)
    np.testing.assert_array_equal(copy.storage_idx, ds.storage_idx)
    again = copy[list(range(0, len(ds), 7))]
    np.testing.assert_array_equal(again["X"], batch["X"])
    np.testing.assert_array_equal(again["cell_type"], batch["cell_type"])
    assert [r.tolist() for r, _ in copy.file_rows()] == [r.tolist() for r, _ in ds.file_rows()]
    copy.close()
    ds.close()


def test_memory_stays_flat_over_epochs(big: dict) -> None:
    ds = MappedCollection(list(big["paths"]["csr"]), join="outer", obs_keys="cell_type")
    loader = DataLoader(ds, batch_size=32, shuffle=True)

    def epoch() -> None:
        for _ in loader:
            pass

    epoch()  # first epoch fills the indptr caches
    assert _growth_over_epochs(epoch) < 64 * 1024


# -- __getitems__ is exactly the per-item path ---------------------------------------------------


def _same_sample(x: dict, y: dict) -> None:
    assert list(x) == list(y)
    for key in x:
        if isinstance(x[key], np.ndarray):
            assert x[key].dtype == y[key].dtype and x[key].shape == y[key].shape, key
            np.testing.assert_array_equal(x[key], y[key])
        elif isinstance(x[key], float) and np.isnan(x[key]):
            assert y[key] is x[key]  # lamindb's np.nan, the object itself
        else:
            assert x[key] == y[key] and type(x[key]) is type(y[key]), key


CONFIGS = [
    dict(layout=layout, join=join, dtype=dtype, obs_filter=obs_filter)
    for layout in LAYOUTS
    for join, dtype, obs_filter in [
        ("outer", None, None),
        ("inner", "float64", None),
        ("outer", "float32", {"cell_type": ("T", np.nan)}),
    ]
]


@pytest.fixture(scope="module")
def mapped_configs(big: dict) -> list[MappedCollection]:
    out = []
    for config in CONFIGS:
        out.append(
            MappedCollection(
                list(big["paths"][config["layout"]]),
                join=config["join"],
                dtype=config["dtype"],
                obs_filter=config["obs_filter"],
                obs_keys=["cell_type", "cell_id"],
                obsm_keys="emb",
                encode_labels=["cell_type"],
            )
        )
    yield out
    for ds in out:
        ds.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_getitems_equals_getitem(
    mapped_configs: list[MappedCollection], data: st.DataObject
) -> None:
    ds = data.draw(st.sampled_from(mapped_configs))
    n = len(ds)
    indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=80))
    batch = ds.__getitems__(indices)
    assert len(batch) == len(indices)
    for i, sample in zip(indices, batch):
        _same_sample(ds[i], sample)


# -- S3, streamed --------------------------------------------------------------------------------


def test_stream_from_s3(files: dict[str, str], s3_bucket) -> None:  # noqa: ANN001
    uris = []
    for name in ("one", "two"):
        s3_bucket.client.upload_file(files[name], s3_bucket.name, f"data/{name}.h5ad")
        uris.append(f"{s3_bucket.uri}/data/{name}.h5ad")
    with pytest.raises(ValueError, match="stream=True"):
        MappedCollection(uris, storage_options=s3_bucket.storage_options)
    local = MappedCollection(
        [files["one"], files["two"]], obs_keys="feat1", layers_keys=["X", "layer1"]
    )
    with MappedCollection(
        uris,
        obs_keys="feat1",
        layers_keys=["X", "layer1"],
        stream=True,
        storage_options=s3_bucket.storage_options,
    ) as ds:
        assert ds.shape == (4, 3)
        for i in range(4):
            _same_sample(local[i], ds[i])
        for x, y in zip(local.__getitems__([3, 0, 2]), ds.__getitems__([3, 0, 2])):
            _same_sample(x, y)
        copy = pickle.loads(pickle.dumps(ds))
        _same_sample(copy[1], local[1])
        copy.close()
        for workers in (0, 2):
            batches = list(DataLoader(ds, batch_size=3, num_workers=workers))
            assert torch.cat([b["X"] for b in batches]).tolist() == [
                [1, 2, 3],
                [4, 5, 6],
                [1, 2, 5],
                [4, 5, 8],
            ]


def test_duplicate_columns_in_a_csr_row_add_up_as_in_scipy(tmp_path: Path) -> None:
    x = csr_matrix(
        (np.array([1.0, 2.0, 5.0, 3.0]), np.array([0, 0, 2, 1]), np.array([0, 3, 4])), shape=(2, 3)
    )
    assert not x.has_canonical_format
    path = tmp_path / "dup.h5ad"
    ad.AnnData(X=x, var=pd.DataFrame(index=["a", "b", "c"])).write_h5ad(path)
    other = tmp_path / "other.h5ad"
    ad.AnnData(X=np.ones((1, 2)), var=pd.DataFrame(index=["c", "a"])).write_h5ad(other)
    expected = ad.read_h5ad(path).X.toarray()
    with MappedCollection([path]) as ds:
        assert ds[0]["X"].tolist() == expected[0].tolist() == [3.0, 0.0, 5.0]
        assert [s["X"].tolist() for s in ds.__getitems__([1, 0])] == expected[::-1].tolist()
    with MappedCollection([path, other], join="inner") as ds:  # var_joint: a, c
        assert ds[0]["X"].tolist() == [3.0, 5.0]
        assert ds.__getitems__([0])[0]["X"].tolist() == [3.0, 5.0]


@pytest.mark.parametrize("layout", H5_LAYOUTS)
def test_row_reader_scatters_rows_in_any_order(big: dict, layout: str) -> None:
    from loaders._h5rows import open_rows

    x = big["a"].X.toarray()
    rows = np.array([5, 3, 5, 200, 0, 229, 3])  # repeats, any order
    out_rows = np.array([9, 2, 4, 0, 7, 1, 8])  # distinct, any order
    with h5py.File(big["paths"][layout][0], "r") as f, open(big["paths"][layout][0], "rb") as raw:
        for fd in (raw.fileno(), None):  # direct reads and h5py reads
            out = np.zeros((10, x.shape[1]), dtype=np.float64)
            open_rows(f["X"], fd).read_into(out, out_rows, rows)
            expected = np.zeros_like(out)
            expected[out_rows] = x[rows]
            np.testing.assert_array_equal(out, expected)


def test_corrupt_csr_column_index_raises_instead_of_crashing(tmp_path: Path) -> None:
    """The bulk fill has no bounds checks of its own: a column index past the last variable in a
    damaged file must be a ValueError naming the file, never a segfault."""
    path = tmp_path / "bad.h5ad"
    x = sp.random(20, 8, density=0.5, format="csr", random_state=0, dtype=np.float32)
    ad.AnnData(X=x).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        indices = f["X/indices"][...]
        indices[3] = 1000  # outside 0..7
        f["X/indices"][...] = indices
    with MappedCollection([path]) as ds:
        with pytest.raises(ValueError, match="bad.h5ad.*corrupt"):
            ds.__getitems__(list(range(20)))


# -- whole batches: ds[indices], the fast path ---------------------------------------------------


def _same_batch(ds: MappedCollection, indices: list[int], batch: dict) -> None:
    """`batch` holds, key by key, what the samples `ds[i]` hold."""
    samples = [ds[i] for i in indices]
    assert list(batch) == list(samples[0])  # same keys, same order
    for key, column in batch.items():
        assert isinstance(column, np.ndarray) and len(column) == len(indices), key
        values = [s[key] for s in samples]
        if column.ndim == 2:  # X, layers, obsm: rows as the samples have them
            np.testing.assert_array_equal(column, np.stack(values))
            assert all(column.dtype == v.dtype for v in values), key
            continue
        for got, want in zip(column.tolist(), values):
            if isinstance(want, float) and np.isnan(want):
                assert np.isnan(got), key
            else:
                assert got == want, key


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_batch_equals_samples(mapped_configs: list[MappedCollection], data: st.DataObject) -> None:
    ds = data.draw(st.sampled_from(mapped_configs))
    n = len(ds)
    indices = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=80))
    batch = ds[indices]
    _same_batch(ds, indices, batch)
    # One dtype per key for the whole collection, whichever rows a batch holds.
    assert batch["cell_type"].dtype == np.float64  # some labels are missing: NaN
    assert batch["cell_id"].dtype == np.int64 and batch["_store_idx"].dtype == np.int64
    assert ds[indices[:1]]["cell_type"].dtype == np.float64


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batch_path_through_a_dataloader(big: dict, num_workers: int) -> None:
    """DataLoader(batch_size=None) over a BatchSampler: each item is `ds[indices]`, turned into
    tensors array by array; with BlockShuffleSampler, and with workers."""
    expected, _ = _truth(big, "outer")
    ids = np.concatenate([big["a"].obs["cell_id"].to_numpy(), big["b"].obs["cell_id"].to_numpy()])
    ds = MappedCollection(
        list(big["paths"]["csr"]),
        join="outer",
        obs_keys=["cell_type", "cell_id"],
        obsm_keys="emb",
        encode_labels=["cell_type"],
        dtype="float32",
    )
    blocks = loaders.BlockShuffleSampler(ds, block_size=16, window=2, seed=5)
    blocks.set_epoch(2)
    order = list(blocks)
    loader = DataLoader(
        ds,
        batch_size=None,
        sampler=BatchSampler(blocks, batch_size=64, drop_last=False),
        num_workers=num_workers,
    )
    xs, seen, stores = [], [], []
    for batch in loader:
        assert list(batch) == ["X", "obsm_emb", "_store_idx", "cell_type", "cell_id"]
        assert batch["X"].dtype == torch.float32 and batch["X"].shape[1] == 40
        assert batch["obsm_emb"].shape == (len(batch["X"]), 3)
        assert batch["cell_type"].dtype == torch.float64  # NaN where a label is missing
        xs.append(batch["X"].numpy())
        seen.append(batch["cell_id"].numpy())
        stores.append(batch["_store_idx"].numpy())
    assert [len(x) for x in xs] == [64] * 6 + [16]
    np.testing.assert_array_equal(np.concatenate(xs), expected[order])
    np.testing.assert_array_equal(np.concatenate(seen), ids[order])
    np.testing.assert_array_equal(np.concatenate(stores), (np.asarray(order) >= 230).astype(int))
    # Uniformly random rows: torch's RandomSampler in place of the block sampler.
    random_batches = BatchSampler(RandomSampler(ds), batch_size=50, drop_last=False)
    got = [b["cell_id"] for b in DataLoader(ds, batch_size=None, sampler=random_batches)]
    assert sorted(torch.cat(got).tolist()) == sorted(ids.tolist())
    ds.close()


def test_batch_indices_and_errors(files: dict[str, str], tmp_path: Path) -> None:
    two = [files["one"], files["two"]]
    with MappedCollection(two, obs_keys="feat1", obsm_keys="X_pca") as ds:
        rows = [[1, 2, 3], [4, 5, 6], [1, 2, 5], [4, 5, 8]]
        assert ds[[3, -4, 1]]["X"].tolist() == [rows[3], rows[0], rows[1]]
        assert ds[np.array([2, 2])]["X"].tolist() == [rows[2], rows[2]]
        assert ds[1:3]["X"].tolist() == rows[1:3] and ds[::-2]["_store_idx"].tolist() == [1, 0]
        assert ds[range(4)]["feat1"].tolist() == [0, 1, 0, 1]
        empty = ds[[]]
        assert empty["X"].shape == (0, 3) and empty["obsm_X_pca"].shape == (0, 2)
        assert empty["feat1"].shape == (0,) and empty["feat1"].dtype == np.int64
        assert ds[np.int64(2)]["X"].tolist() == rows[2]  # a numpy integer is one sample
        with pytest.raises(IndexError, match="index 4 is out of range"):
            ds[[0, 4]]
        with pytest.raises(IndexError, match="index -5"):
            ds[[-5]]
        with pytest.raises(TypeError, match="integers"):
            ds[[0.5, 1.0]]
    with pytest.raises(ValueError, match="closed"):
        ds[[0]]
    # Labels left as values: strings come as an object array, untouched by torch.
    with MappedCollection(two, obs_keys="feat1", encode_labels=False) as ds:
        labels = ds[[0, 3]]["feat1"]
        assert labels.dtype == object and labels.tolist() == ["A", "B"]
    # A file without the obs column: NaN for its rows (its samples leave the key out).
    bare = tmp_path / "bare.h5ad"
    ad.AnnData(
        X=np.array([[7, 8, 9]]), var=pd.DataFrame(index=["MYC", "TCF7", "GATA1"])
    ).write_h5ad(bare)
    with MappedCollection([files["one"], bare], obs_keys="feat1") as ds:
        batch = ds[[2, 0]]
        assert batch["X"].tolist() == [[7, 8, 9], [1, 2, 3]]
        assert batch["feat1"].dtype == np.float64 and np.isnan(batch["feat1"][0])
        assert batch["feat1"][1] == 0.0 and "feat1" not in ds[2]
    # An array a file lacks cannot be batched: say which, and keep the per-sample path.
    with MappedCollection([files["one"], bare], layers_keys=["X", "layer1"]) as ds:
        with pytest.raises(ValueError, match=r"bare\.h5ad has no 'layer1'.*per sample"):
            ds[[0, 1]]
        assert list(ds[2]) == ["X", "_store_idx"] and len(ds.__getitems__([0, 2])) == 2
    wide = tmp_path / "wide_pca.h5ad"
    adata = _adata()
    adata.obsm["X_pca"] = np.ones((2, 5))
    adata.write_h5ad(wide)
    with MappedCollection([files["one"], wide], obsm_keys="X_pca") as ds:
        with pytest.raises(ValueError, match=r"'obsm_X_pca' has 2 columns .* but 5"):
            ds[[0]]
        assert ds[3]["obsm_X_pca"].tolist() == [1.0] * 5


def test_batch_dtypes_follow_the_files_or_dtype(files: dict[str, str]) -> None:
    """Files of different dtypes share one batch array of their common dtype (as numpy
    promotes them); `dtype=` wins."""
    raw_int = [files["one"], files["raw"]]  # X: int64 dense and int64 CSR
    with MappedCollection(raw_int, obsm_keys="X_pca") as ds:
        assert ds[[0, 2]]["X"].dtype == np.int64
    with MappedCollection(raw_int, dtype="float32") as ds:
        batch = ds[[3, 0]]
        assert batch["X"].dtype == np.float32 and batch["X"].tolist() == [[40, 50, 60], [1, 2, 3]]


@pytest.mark.parametrize("layout", ["csr", "zarr3-csr-sharded"])
def test_batch_path_memory_stays_flat(big: dict, layout: str) -> None:
    """Over epochs nothing accumulates; for zarr, the chunk cache is full after the first."""
    ds = MappedCollection(list(big["paths"][layout]), join="outer", obs_keys="cell_type")
    loader = DataLoader(
        ds, batch_size=None, sampler=BatchSampler(RandomSampler(ds), batch_size=32, drop_last=False)
    )

    def epoch() -> None:
        for _ in loader:
            pass

    epoch()
    assert _growth_over_epochs(epoch) < 64 * 1024


def test_no_global_side_effects_on_torch_collate(big: dict) -> None:
    """Using MappedCollection through DataLoaders (per sample, whole batches, with workers)
    leaves torch's collate rules as they were: a plain DataLoader over numpy arrays collates as
    before, and no rule for a type of ours is registered (not even by an earlier test)."""
    from torch.utils.data import default_collate
    from torch.utils.data._utils import collate

    rules_before = dict(collate.default_collate_fn_map)
    arrays = [np.arange(3, dtype=np.float32) + i for i in range(6)]
    plain_before = list(DataLoader(arrays, batch_size=4))
    rows = np.arange(12.0).reshape(4, 3)
    stacked_before = default_collate(list(rows))

    ds = MappedCollection(list(big["paths"]["csr"]), join="outer", obs_keys="cell_type")
    for _ in DataLoader(ds, batch_size=64, shuffle=True):
        pass
    for _ in DataLoader(ds, batch_size=64, shuffle=True, num_workers=2):
        pass
    batches = BatchSampler(RandomSampler(ds), batch_size=64, drop_last=False)
    for _ in DataLoader(ds, batch_size=None, sampler=batches):
        pass
    samples = ds.__getitems__([0, 1, 300])
    assert all(type(s["X"]) is np.ndarray for s in samples)  # plain arrays, no subclass
    ds.close()

    assert collate.default_collate_fn_map.keys() == rules_before.keys()
    assert all(collate.default_collate_fn_map[k] is v for k, v in rules_before.items())
    types = [
        t for k in collate.default_collate_fn_map for t in (k if isinstance(k, tuple) else (k,))
    ]
    assert not [t for t in types if t.__module__.startswith("loaders")]
    plain_after = list(DataLoader(arrays, batch_size=4))
    assert len(plain_after) == len(plain_before) == 2
    for x, y in zip(plain_before, plain_after):
        assert x.dtype == y.dtype == torch.float32 and torch.equal(x, y)
    stacked_after = default_collate(list(rows))
    assert torch.equal(stacked_before, stacked_after)
    # Collating rows of one array still stacks them into a new tensor of its own.
    assert stacked_after.data_ptr() != torch.from_numpy(rows).data_ptr()


def test_batch_streamed_from_s3(files: dict[str, str], s3_bucket) -> None:
    """Whole batches over streamed files (read through h5py, not preadv) match local ones."""
    uris = []
    for name in ("one", "two"):
        s3_bucket.client.upload_file(files[name], s3_bucket.name, f"batch/{name}.h5ad")
        uris.append(f"{s3_bucket.uri}/batch/{name}.h5ad")
    keys = {"obs_keys": "feat1", "layers_keys": ["X", "layer1"]}
    with (
        MappedCollection([files["one"], files["two"]], **keys) as local,
        MappedCollection(
            uris, stream=True, storage_options=s3_bucket.storage_options, **keys
        ) as ds,
    ):
        for indices in ([3, 0, 2], [1], []):
            got, want = ds[indices], local[indices]
            assert list(got) == list(want)
            for key in got:
                assert got[key].dtype == want[key].dtype
                np.testing.assert_array_equal(got[key], want[key])
        _same_batch(ds, [3, 0, 2], ds[[3, 0, 2]])


def _growth_over_epochs(epoch: Callable[[], None]) -> int:
    """Bytes still allocated after three more epochs than after one (the first already run)."""
    gc.collect()
    tracemalloc.start()
    try:
        epoch()
        gc.collect()
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            epoch()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()


# -- zarr stores: what only zarr has ---------------------------------------------------------------


@pytest.mark.parametrize("layout", ZARR_LAYOUTS)
@pytest.mark.parametrize("cache_bytes", [0, 2048, 2**30])
def test_zarr_row_reader_scatters_rows_in_any_order(
    big: dict, layout: str, cache_bytes: int
) -> None:
    """Bulk reads of a zarr X are the rows anndata reads, whether the chunk cache keeps nothing,
    a few chunks, or everything; twice in a row (the second read from what the cache kept)."""
    from loaders._zarrrows import ChunkCache, open_zarr_rows

    path = big["paths"][layout][0]
    x = _read(path).X
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    rows = np.array([5, 3, 5, 200, 0, 229, 3, 51, 50, 49])  # repeats, any order, chunk edges
    out_rows = np.array([9, 2, 4, 0, 7, 1, 8, 10, 11, 3])  # distinct, any order
    cache = ChunkCache(cache_bytes)
    reader = open_zarr_rows(zarr.open_group(path, mode="r")["X"], cache, "X")
    for _ in range(2):
        out = np.zeros((12, x.shape[1]), dtype=np.float64)
        reader.read_into(out, out_rows, rows)
        expected = np.zeros_like(out)
        expected[out_rows] = x[rows]
        np.testing.assert_array_equal(out, expected)
    one = reader.read_row(200)  # the plain path: zarr's own slicing
    if "dense" in layout:
        assert one.tolist() == x[200].tolist()
    else:
        row = np.zeros(x.shape[1])
        np.add.at(row, one[1], one[0])
        assert row.tolist() == x[200].tolist()
    assert 0 <= cache.nbytes <= cache_bytes
    if cache_bytes == 2**30:
        assert cache.nbytes > 0


def _zarr_csr_store(path: Path, n_obs: int, chunk: int, seed: int = 1) -> sp.csr_matrix:
    """A format-3 AnnData zarr store whose CSR X has `chunk` values per chunk; returns X."""
    x = sp.random(n_obs, 20, density=0.2, format="csr", dtype=np.float32, random_state=seed)
    ad.AnnData(X=x).write_zarr(path)
    group = zarr.open_group(path, mode="r+", use_consolidated=False)
    write_elem(group, "X", x, dataset_kwargs={"chunks": (chunk,)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(path)
    return x


def test_zarr_batch_reads_each_chunk_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch fetches the chunks its rows touch, each once, as whole chunks (neighbours in one
    call), and a batch whose chunks are cached reads nothing."""
    path = tmp_path / "chunks.zarr"
    x = _zarr_csr_store(path, 1000, chunk=100)
    reads: list[tuple[str, slice]] = []
    original = zarr.Array.__getitem__

    def counting(self: zarr.Array, selection: Any) -> Any:
        reads.append((self.path, selection))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", counting)
    rows = np.sort(np.random.default_rng(2).choice(1000, 64, replace=False))
    with MappedCollection([path]) as ds:
        reads.clear()  # opening read indptr and obs
        batch = ds[rows.tolist()]
        np.testing.assert_array_equal(batch["X"], x[rows].toarray())
        starts, ends = x.indptr[rows], x.indptr[rows + 1]
        touched = set()
        for s, e in zip(starts.tolist(), ends.tolist()):
            touched |= set(range(s // 100, (e - 1) // 100 + 1)) if e > s else set()
        for name in ("X/data", "X/indices"):
            slices = [sel for p, sel in reads if p == name]
            read = [c for sel in slices for c in range(sel.start // 100, -(-sel.stop // 100))]
            assert all(sel.start % 100 == 0 for sel in slices)  # whole chunks
            assert sorted(read) == sorted(touched)  # those the rows touch, each once
            assert len(slices) < len(touched)  # neighbouring chunks share a call
        reads.clear()
        np.testing.assert_array_equal(ds[rows[::-1]]["X"], x[rows[::-1]].toarray())
        assert reads == []  # every chunk was cached


def test_zarr_chunk_cache_keeps_its_chunks_when_batches_need_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches that need more chunks than the cache holds do not wipe it (plain LRU would drop
    each chunk before the next batch asks for it again): the next batch finds every chunk the
    cache kept, and reads only the others."""
    path = tmp_path / "wide.zarr"
    x = _zarr_csr_store(path, 1000, chunk=100)  # ~4,000 values: ~40 chunks per array, 400 B each
    monkeypatch.setattr(loaders.mapped, "ZARR_CHUNK_CACHE_BYTES", 20 * 400)  # 20 chunks fit
    reads: list[int] = []
    original = zarr.Array.__getitem__

    def counting(self: zarr.Array, selection: Any) -> Any:
        if isinstance(selection, slice) and self.path.startswith("X/"):
            reads.append(-(-(selection.stop - selection.start) // 100))
        return original(self, selection)

    monkeypatch.setattr(zarr.Array, "__getitem__", counting)
    everything = list(range(1000))
    with MappedCollection([path]) as ds:
        for round_ in range(3):
            reads.clear()
            kept = len(ds._chunks._chunks)
            np.testing.assert_array_equal(ds[everything[::-1]]["X"], x[::-1].toarray())
            n_chunks = sum(-(-n // 100) for n in (len(x.data), len(x.indices)))
            assert sum(reads) == n_chunks - kept  # every kept chunk was a hit
            assert kept == (0 if round_ == 0 else 20)
            assert ds._chunks.nbytes <= 20 * 400


def test_zarr_obs_columns_read_as_from_h5ad(tmp_path: Path) -> None:
    """Every obs encoding (categorical with NaN, string array, nullable integer and boolean,
    numbers, booleans) gives the same labels, encoders, filters and weights from a zarr store,
    format 2 or 3, as from the same AnnData written as .h5ad."""
    n = 40
    rng = np.random.default_rng(3)
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(["T", "B", None], n)),
            "text": rng.choice(["x", "y", "z"], n).astype(object),
            "nint": pd.array(rng.choice([1, 2, None], n), dtype="Int64"),
            "nbool": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "num": rng.normal(size=n),
            "count": rng.integers(0, 5, n),
            "flag": rng.random(n) > 0.5,
        },
        index=[f"c{i}" for i in range(n)],
    )
    adata = ad.AnnData(X=rng.normal(size=(n, 3)).astype(np.float32), obs=obs)
    h5 = tmp_path / "cells.h5ad"
    adata.write_h5ad(h5, convert_strings_to_categoricals=False)
    stores = []
    for fmt in (2, 3):
        store = tmp_path / f"cells{fmt}.zarr"
        previous, ad.settings.zarr_write_format = ad.settings.zarr_write_format, fmt
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                adata.write_zarr(store, convert_strings_to_categoricals=False)
        finally:
            ad.settings.zarr_write_format = previous
        stores.append(store)
    keys = list(obs.columns)
    order = rng.permutation(n).tolist()
    for encode in (True, False, ["cat", "text"]):
        with MappedCollection([h5], obs_keys=keys, encode_labels=encode) as want:
            for store in stores:
                with MappedCollection([store], obs_keys=keys, encode_labels=encode) as got:
                    assert got.encoders == want.encoders
                    for i in order[:10]:
                        _same_sample(got[i], want[i])
                    b1, b2 = got[order], want[order]
                    for key in b2:
                        assert b1[key].dtype == b2[key].dtype, key
                        if b2[key].ndim == 2:
                            np.testing.assert_array_equal(b1[key], b2[key])
                        else:
                            assert pd.Series(b1[key]).equals(pd.Series(b2[key])), key
                    for key in keys:
                        assert pd.Series(got.get_merged_labels(key)).equals(
                            pd.Series(want.get_merged_labels(key))
                        ), key
                    assert got.get_label_weights("text").tolist() == (
                        want.get_label_weights("text").tolist()
                    )
    for store in stores:
        with (
            MappedCollection([store], obs_filter={"text": ("x", "z"), "cat": "T"}) as got,
            MappedCollection([h5], obs_filter={"text": ("x", "z"), "cat": "T"}) as want,
        ):
            assert got.file_rows()[0][0].tolist() == want.file_rows()[0][0].tolist() != []


@pytest.mark.parametrize("context", [None, "forkserver"])
def test_zarr_through_dataloader_workers(big: dict, context: str | None) -> None:
    """Two workers, forked or started fresh (the dataset pickled, its chunk cache empty), read
    a sharded zarr store as anndata does, in whole batches and per sample."""
    expected, _ = _truth(big, "outer", "zarr3-csr-sharded")
    ds = MappedCollection(list(big["paths"]["zarr3-csr-sharded"]), join="outer", dtype="float32")
    ds[[0, 1, 399]]  # the parent's cache holds chunks now; the workers must not count on them
    assert len(pickle.dumps(ds)) < 100_000
    order = np.random.default_rng(4).permutation(len(ds)).tolist()
    batches = BatchSampler(order, batch_size=50, drop_last=False)
    loader = DataLoader(
        ds, batch_size=None, sampler=batches, num_workers=2, multiprocessing_context=context
    )
    np.testing.assert_array_equal(np.concatenate([b["X"] for b in loader]), expected[order])
    per_sample = DataLoader(
        ds, batch_size=64, sampler=order, num_workers=2, multiprocessing_context=context
    )
    np.testing.assert_array_equal(np.concatenate([b["X"] for b in per_sample]), expected[order])
    ds.close()


def _upload_folder(bucket: Any, folder: str, key: str) -> str:
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            rel = path.relative_to(folder).as_posix()
            bucket.client.upload_file(str(path), bucket.name, f"{key}/{rel}")
    return f"{bucket.uri}/{key}"


@pytest.mark.parametrize("layout", ["zarr2-csr", "zarr3-csr-sharded", "zarr3-dense-sharded"])
def test_zarr_streamed_from_s3(big: dict, layout: str, s3_bucket: Any) -> None:
    """Zarr stores read in place over S3 (moto over HTTP) give the local stores' batches and
    samples; a prefix without the .zarr suffix is a zarr store too (it is not a file)."""
    local_paths = list(big["paths"][layout])
    uris = [
        _upload_folder(s3_bucket, local_paths[0], f"{layout}/a.zarr"),
        _upload_folder(s3_bucket, local_paths[1], f"{layout}/b-store"),
    ]
    keys = {"join": "outer", "obs_keys": ["cell_type", "cell_id"], "obsm_keys": "emb"}
    with (
        MappedCollection(local_paths, **keys) as local,
        MappedCollection(
            uris, stream=True, storage_options=s3_bucket.storage_options, **keys
        ) as ds,
    ):
        assert ds.shape == local.shape and ds.encoders == local.encoders
        order = np.random.default_rng(5).permutation(len(ds))
        for part in np.array_split(order, 4):
            got, want = ds[part], local[part]
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])
        for i in (0, 229, 230, 399):
            _same_sample(ds[i], local[i])
        if layout == "zarr2-csr":
            workers = DataLoader(ds, batch_size=None, sampler=BatchSampler(order, 100, False),
                                 num_workers=2)  # fmt: skip
            np.testing.assert_array_equal(
                np.concatenate([b["X"] for b in workers]), local[order]["X"]
            )


def test_zarr_stores_that_cannot_be_mapped_say_why(tmp_path: Path) -> None:
    csc = tmp_path / "csc.zarr"
    ad.AnnData(X=csc_matrix(np.eye(3, dtype=np.float32))).write_zarr(csc)
    with pytest.raises(ValueError, match=r"X in .*csc\.zarr is a csc matrix"):
        MappedCollection([csc])
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"plain is not a readable zarr group"):
        MappedCollection([plain])
    no_x = tmp_path / "no_x.zarr"
    zarr.open_group(no_x, mode="w").create_group("obs")
    with pytest.raises(ValueError, match=r"no_x\.zarr has no X"):
        MappedCollection([no_x])
