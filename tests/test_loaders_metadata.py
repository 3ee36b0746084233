"""loaders.metadata.summarize: what a parquet or h5ad file holds, from its metadata only."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaders.metadata import summarize


def test_parquet_summary_names_pandas_dtypes_and_leaves_the_index_out(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "sample": ["s1", "s2", "s3"],
            "n": [1, 2, 3],
            "score": [0.5, None, 1.5],
            "tissue": pd.Categorical(["blood", "lung", "blood"]),
            "when": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
            "count": pd.array([1, None, 3], dtype="Int64"),
            "ok": pd.array([True, None, False], dtype="boolean"),
            "flag": [True, False, True],
        }
    ).set_index("sample")
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    assert summarize(path) == {
        "otype": "DataFrame",
        "rows": 3,
        "columns": {
            "n": "int64", "score": "float64", "tissue": "category", "when": "datetime64[ns]",
            "count": "Int64", "ok": "boolean", "flag": "bool",
        },
    }  # fmt: skip
    plain = tmp_path / "plain.parquet"  # written by pyarrow without pandas metadata
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), plain)
    assert summarize(plain) == {
        "otype": "DataFrame",
        "rows": 2,
        "columns": {"a": "int64", "b": "string"},
    }


def test_h5ad_summary_reads_names_columns_and_keys(tmp_path: Path) -> None:
    obs = {
        "cell_type": pd.Categorical(["T", "B", "T"]),
        "n": [1, 2, 3],
        "label": ["x", "y", "z"],  # all different: anndata keeps it a string column
        "hits": pd.array([1, None, 2], dtype="Int32"),
    }
    adata = ad.AnnData(
        X=np.ones((3, 2), dtype=np.float32),
        obs=pd.DataFrame(obs, index=["c1", "c2", "c3"]),
        var=pd.DataFrame({"mean": [0.1, 0.2]}, index=["g1", "g2"]),
    )
    adata.layers["counts"] = adata.X.copy()
    adata.obsm["X_umap"] = np.zeros((3, 2))
    path = tmp_path / "a.h5ad"
    adata.write_h5ad(path)
    summary = summarize(path)
    assert summary == {
        "otype": "AnnData",
        "shape": [3, 2],
        "obs_names": ["c1", "c2", "c3"],
        "var_names": ["g1", "g2"],
        "obs": {"cell_type": "category", "n": "int64", "label": "string", "hits": "Int32"},
        "var": {"mean": "float64"},
        "layers": ["counts"],
        "obsm": ["X_umap"],
    }


def test_other_suffixes_have_no_summary_and_bad_files_are_errors(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a\n1\n")
    assert summarize(csv) is None
    with pytest.raises(FileNotFoundError, match="No such file"):
        summarize(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable h5ad file"):
        summarize(bad)
    fake = tmp_path / "fake.bin"
    fake.write_text("x")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        summarize(fake, suffix=".parquet")
