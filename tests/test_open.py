"""`Artifact.open()`: streaming access without loading (docs/guide.md, "Load, cache and train"),
on real files, a real Neo4j, and S3 through the moto server; what it opens, that S3 data is read
in place (nothing cached), clear errors, and run inputs recorded only when opening works.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
import zarr

import lineage as ln
import loaders.access
from lineage import errors as E
from tests.s3 import S3Bucket


def adata(n: int = 6) -> ad.AnnData:
    return ad.AnnData(
        X=np.arange(n * 4, dtype=np.float32).reshape(n, 4),
        obs=pd.DataFrame(
            {"cell_type": ["T", "B", "NK"] * (n // 3)}, index=[f"c{i}" for i in range(n)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(4)]),
    )


TABLE = pd.DataFrame({"gene": ["a", "b", "c"], "count": [1, 2, 3]})


def check_h5ad(artifact: ln.Artifact, expected: ad.AnnData) -> None:
    with artifact.open() as backed:
        assert isinstance(backed, ad.AnnData) and backed.isbacked
        np.testing.assert_array_equal(backed.X[1:3], expected.X[1:3])
        assert backed.obs["cell_type"].tolist() == expected.obs["cell_type"].tolist()
        assert backed[2:4].to_memory().obs_names.tolist() == ["c2", "c3"]
    assert not backed.file.is_open  # the with block closed it


def check_table(artifact: ln.Artifact) -> None:
    dataset = artifact.open()
    assert isinstance(dataset, pads.Dataset)
    pd.testing.assert_frame_equal(dataset.to_table().to_pandas(), TABLE)


# -- local ---------------------------------------------------------------------------------------
def test_open_h5ad_is_backed_anndata(storage: Path) -> None:
    expected = adata()
    artifact = ln.Artifact(expected, key="cells.h5ad").save()
    check_h5ad(artifact, expected)
    opened = artifact.open()
    opened.close()
    assert not opened.file.is_open


def test_open_tables_give_pyarrow_datasets(storage: Path, tmp_path: Path) -> None:
    check_table(ln.Artifact(TABLE, key="t.parquet").save())
    csv = tmp_path / "t.csv"
    TABLE.to_csv(csv, index=False)
    check_table(ln.Artifact(csv, key="t.csv").save())
    parts = tmp_path / "parts"  # a folder without suffix, of parquet files: one dataset
    parts.mkdir()
    TABLE[:2].to_parquet(parts / "0.parquet")
    TABLE[2:].to_parquet(parts / "1.parquet")
    folder = ln.Artifact(parts, key="parts").save()
    table = folder.open().to_table().to_pandas().sort_values("count", ignore_index=True)
    pd.testing.assert_frame_equal(table, TABLE)
    assert folder.open(exclude_invalid_files=True).count_rows() == 3  # kwargs reach pyarrow


def test_open_zarr_folder_is_a_read_only_group(storage: Path, tmp_path: Path) -> None:
    expected = adata()
    expected.write_zarr(tmp_path / "cells.zarr")
    artifact = ln.Artifact(tmp_path / "cells.zarr", key="cells.zarr").save()
    group = artifact.open()
    assert isinstance(group, zarr.Group)
    np.testing.assert_array_equal(group["X"][1:3], expected.X[1:3])
    assert group.attrs["encoding-type"] == "anndata"
    with pytest.raises(Exception):  # noqa: B017 - zarr's own read-only error
        group.create_group("new")


def test_open_hdf5_is_an_h5py_file(storage: Path, tmp_path: Path) -> None:
    path = tmp_path / "arrays.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(10)
    artifact = ln.Artifact(path, key="arrays.h5").save()
    with artifact.open() as f:
        assert isinstance(f, h5py.File) and f.mode == "r"
        assert f["x"][3:5].tolist() == [3, 4]


def test_open_refuses_what_it_cannot_stream(storage: Path, tmp_path: Path) -> None:
    text = ln.Artifact(write(tmp_path / "notes.txt", b"hi"), key="notes.txt").save()
    with pytest.raises(E.InvalidArgument, match=r"suffix '\.txt'.*\.h5ad.*\.parquet"):
        text.open()
    bare = ln.Artifact(write(tmp_path / "README", b"read me"), key="README").save()
    with pytest.raises(E.InvalidArgument, match="suffix 'none'"):
        bare.open()
    h5ad = ln.Artifact(adata(), key="x.h5ad").save()
    with pytest.raises(E.InvalidArgument, match="read-only"):
        h5ad.open(mode="r+")
    with pytest.raises(E.NotSupported, match="polars"):
        h5ad.open(engine="polars")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    TABLE.to_parquet(mixed / "a.parquet")
    TABLE.to_csv(mixed / "b.csv")
    folder = ln.Artifact(mixed, key="mixed").save()
    with pytest.raises(E.DataError, match=r"found suffixes: \.csv, \.parquet"):
        folder.open()
    fake = tmp_path / "fake.zarr"
    fake.mkdir()
    write(fake / "notes.txt", b"not zarr")
    with pytest.raises(E.DataError, match="is not a readable zarr group"):
        ln.Artifact(fake, key="fake.zarr").save().open()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_open_records_the_run_input_only_when_it_works(storage: Path, tmp_path: Path) -> None:
    good = ln.Artifact(TABLE, key="t.parquet").save()
    bad = ln.Artifact(write(tmp_path / "fake.h5ad", b"not hdf5"), key="fake.h5ad").save()
    run = ln.track("streamer")
    try:
        good.open()
        with pytest.raises(OSError):
            bad.open()
        other = ln.Artifact(adata(), key="other.h5ad").save()
        other.open(is_run_input=False).close()
    finally:
        ln.finish()
    assert [a.uid for a in run.input_artifacts] == [good.uid]


# -- S3: read in place -----------------------------------------------------------------------------
@pytest.fixture
def s3_storage(storage: Path, s3_bucket: S3Bucket) -> S3Bucket:
    ln.settings.storage = f"{s3_bucket.uri}/root"
    ln.settings.storage_options = s3_bucket.storage_options
    return s3_bucket


def downloaded() -> list[Path]:
    cached = [p for p in ln.settings.cache_dir.rglob("*") if p.is_file()]
    return [
        p
        for p in cached
        if not {"staging", ".readers"} & set(p.parts) and not p.name.endswith(".json")
    ]


def test_open_streams_from_s3_without_caching(s3_storage: S3Bucket, tmp_path: Path) -> None:
    expected = adata()
    check_table(ln.Artifact(TABLE, key="t.parquet").save())
    expected.write_zarr(tmp_path / "cells.zarr")
    group = ln.Artifact(tmp_path / "cells.zarr", key="cells.zarr").save().open()
    np.testing.assert_array_equal(group["X"][:], expected.X)
    assert downloaded() == []
    h5ad = ln.Artifact(expected, key="cells.h5ad").save()
    assert h5ad.storage_path.startswith("s3://")
    check_h5ad(h5ad, expected)
    # anndata < 0.12.8 cannot stream HDF5 in backed mode: then the cached copy is opened.
    assert len(downloaded()) == (0 if loaders.access.streams_h5ad() else 1)


def test_open_h5ad_from_s3_with_an_older_anndata_uses_the_cache(
    s3_storage: S3Bucket, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(loaders.access, "streams_h5ad", lambda: False)
    expected = adata()
    h5ad = ln.Artifact(expected, key="cells.h5ad").save()
    with pytest.raises(ValueError, match="cannot open .* in backed mode without a local copy"):
        loaders.open_file(h5ad.storage_path, storage_options=s3_storage.storage_options)
    check_h5ad(h5ad, expected)
    assert "opening a cached copy" in caplog.text
    assert [p.name for p in downloaded()] == [f"{h5ad.uid}.h5ad"]
