"""Objects to files and files to (otype, n_observations), on real DataFrames and AnnData."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from loaders.formats import describe_file, n_observations, otype_of, write_object


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"gene": ["a", "b", "c", "d", "e"], "count": [1, 2, 3, 4, 5]})


@pytest.fixture
def adata() -> ad.AnnData:
    rng = np.random.default_rng(0)
    x = sp.random(7, 4, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(["T", "B", "T", "NK", "B", "T", "NK"])},
        index=[f"cell{i}" for i in range(7)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(4)])
    return ad.AnnData(X=x, obs=obs, var=var)


def test_otype_and_n_observations(frame: pd.DataFrame, adata: ad.AnnData) -> None:
    assert otype_of(frame) == "DataFrame"
    assert otype_of(adata) == "AnnData"
    assert otype_of(frame["gene"]) is None  # a Series is not a DataFrame
    assert otype_of(np.zeros(3)) is None
    assert n_observations(frame) == 5
    assert n_observations(adata) == 7
    assert n_observations({"a": 1}) is None


def test_dataframe_round_trip(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = write_object(frame, tmp_path / "new" / "dir")
    assert path.parent == tmp_path / "new" / "dir"
    assert path.suffix == ".parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert describe_file(path) == ("DataFrame", 5)
    assert write_object(frame, tmp_path) != write_object(frame, tmp_path)  # fresh names


def test_anndata_round_trip(tmp_path: Path, adata: ad.AnnData) -> None:
    path = write_object(adata, str(tmp_path))
    assert path.suffix == ".h5ad"
    back = ad.read_h5ad(path)
    assert back.shape == (7, 4)
    assert sp.issparse(back.X)
    assert list(back.obs["cell_type"].cat.categories) == ["B", "NK", "T"]
    assert describe_file(path) == ("AnnData", 7)


def test_describe_h5ad_without_an_index_column_uses_x(tmp_path: Path, adata: ad.AnnData) -> None:
    path = write_object(adata, tmp_path)
    with h5py.File(path, "r+") as f:
        del f["obs"][f["obs"].attrs["_index"]]
    assert describe_file(path) == ("AnnData", 7)


def test_describe_file_by_given_suffix_and_other_formats(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    stored = tmp_path / "abc"  # no suffix on disk: the caller knows it
    write_object(frame, tmp_path).rename(stored)
    assert describe_file(stored) == (None, None)
    assert describe_file(stored, suffix=".parquet") == ("DataFrame", 5)
    csv = tmp_path / "t.csv"
    frame.to_csv(csv)
    assert describe_file(csv) == (None, None)


def test_write_object_rejects_other_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"builtins\.list.*pandas\.DataFrame or anndata\.AnnData"):
        write_object([1, 2, 3], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_object_surfaces_pyarrow_refusals(tmp_path: Path) -> None:
    with pytest.raises((TypeError, ValueError)):
        write_object(pd.DataFrame({"a": [object()]}), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_object_leaves_no_partial_file(
    tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_write(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        Path(path).write_bytes(b"PAR1")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_object(frame, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_describe_file_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        describe_file(tmp_path / "missing.parquet")
    fake = tmp_path / "fake.h5ad"
    fake.write_text("not hdf5")
    with pytest.raises(ValueError, match=r"fake\.h5ad is not a readable h5ad file"):
        describe_file(fake)
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet")
    with pytest.raises(ValueError, match=r"fake\.parquet is not a readable Parquet file"):
        describe_file(fake)
