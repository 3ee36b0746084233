"""Loading artifacts, collections and querysets into memory, and mapping .h5ad collections
(docs/architecture.md, "Loaders"): real files, a real Neo4j, S3 through a moto server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import lineage as ln
import loaders
from tests.conftest import make_artifact
from tests.s3 import S3Bucket


def df_artifact(key: str, df: pd.DataFrame) -> ln.Artifact:
    return ln.Artifact(df, key=key).save()


def make_adata(n_obs: int, genes: list[str], batch: str, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = sparse.random(
        n_obs, len(genes), density=0.5, format="csr", random_state=seed, dtype=np.float32
    )
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], size=n_obs)),
            "batch": pd.Categorical([batch] * n_obs),
        },
        index=[f"{batch}_cell{i}" for i in range(n_obs)],
    )
    adata = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes))
    adata.layers["counts"] = x.copy()
    adata.obsm["X_pca"] = rng.normal(size=(n_obs, 2)).astype(np.float32)
    return adata


@pytest.fixture
def h5ad_collection(storage: Path) -> ln.Collection:
    first = ln.Artifact(make_adata(5, ["g1", "g2", "g3"], "b1", 1), key="scrna/one.h5ad").save()
    second = ln.Artifact(make_adata(3, ["g2", "g3", "g4"], "b2", 2), key="scrna/two.h5ad").save()
    return ln.Collection([first, second], key="scrna").save()


@pytest.fixture
def table_collection(storage: Path) -> ln.Collection:
    one = df_artifact("t/one.parquet", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    two = df_artifact("t/two.parquet", pd.DataFrame({"a": [3], "c": [0.5]}))
    return ln.Collection([one, two], key="tables").save()


# -- single artifacts ----------------------------------------------------------------------------
def test_artifact_load_by_suffix(storage: Path, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert df_artifact("df.parquet", df).load().equals(df)
    assert df_artifact("df2.parquet", df).load(columns=["a"]).columns.tolist() == ["a"]

    csv = make_artifact(storage, "t.csv", "a,b\n1,x\n2,y\n")
    pd.testing.assert_frame_equal(csv.load(), df)
    tsv = make_artifact(storage, "t.tsv", "a\tb\n1\tx\n2\ty\n")
    pd.testing.assert_frame_equal(tsv.load(), df)
    assert make_artifact(storage, "d.json", json.dumps({"k": [1, 2]})).load() == {"k": [1, 2]}
    assert make_artifact(storage, "notes.txt", "hello\n").load() == "hello\n"

    adata = make_adata(4, ["g1", "g2"], "b", 0)
    loaded = ln.Artifact(adata, key="a.h5ad").save().load()
    assert isinstance(loaded, ad.AnnData)
    assert loaded.shape == (4, 2)
    assert (loaded.X != adata.X).nnz == 0


def test_formats_lamindb_does_not_parse_load_as_their_path(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """lamindb's `load()` returns the local path of what it only displays in IPython (.html,
    images, .svg) and of .rds (with a warning), instead of raising."""
    for name in ("page.html", "plot.png", "photo.jpg", "anim.gif", "figure.svg", "model.rds"):
        artifact = make_artifact(storage, name)
        assert artifact.load() == artifact.path, name
    assert "use R" in caplog.text
    assert make_artifact(storage, "seq.fasta", ">s1\nACGT\n").load() == ">s1\nACGT\n"
    with pytest.raises(ValueError, match="cannot concatenate"):
        ln.Collection(
            [make_artifact(storage, "a.png"), make_artifact(storage, "b.png")], key="pngs"
        ).save().load()


def test_s3_png_loads_as_its_cached_path(storage: Path, s3_bucket: S3Bucket) -> None:
    ln.settings.storage = f"{s3_bucket.uri}/root"
    ln.settings.storage_options = s3_bucket.storage_options
    artifact = make_artifact(storage, "plot.png", "\x89PNG")
    path = artifact.load()
    assert path == artifact.cache() and path.is_relative_to(ln.settings.cache_dir)
    assert path.read_text() == "\x89PNG"


def test_artifact_load_of_unknown_suffix_names_it(storage: Path) -> None:
    artifact = make_artifact(storage, "blob.bin", "\x00\x01")
    with pytest.raises(ValueError, match=r"'\.bin'"):
        artifact.load()


def test_s3_artifact_load_goes_through_the_cache(storage: Path, s3_bucket: S3Bucket) -> None:
    ln.settings.storage = f"{s3_bucket.uri}/root"
    ln.settings.storage_options = s3_bucket.storage_options
    df = pd.DataFrame({"a": [1, 2, 3]})
    artifact = df_artifact("s3.parquet", df)
    assert artifact.load().equals(df)
    assert artifact.cache().is_relative_to(ln.settings.cache_dir / s3_bucket.name)


# -- collections ---------------------------------------------------------------------------------
def test_parquet_collection_outer_and_inner_join(table_collection: ln.Collection) -> None:
    outer = table_collection.load()
    assert outer.columns.tolist() == ["a", "b", "c"]
    assert outer["a"].tolist() == [1, 2, 3]  # member order
    assert outer["b"].isna().tolist() == [False, False, True]
    inner = table_collection.load(join="inner")
    assert inner.columns.tolist() == ["a"]
    assert inner["a"].tolist() == [1, 2, 3]


def test_csv_collection_load_passes_reader_arguments(storage: Path) -> None:
    one = make_artifact(storage, "1.csv", "id,v\nr1,1\nr2,2\n")
    two = make_artifact(storage, "2.csv", "id,v,w\nr3,3,9\n")
    collection = ln.Collection([two, one], key="csvs").save()
    df = collection.load(index_col="id")
    assert df.index.tolist() == ["r3", "r1", "r2"]
    assert df.columns.tolist() == ["v", "w"]
    assert collection.load(join="inner", index_col="id").columns.tolist() == ["v"]


def test_h5ad_collection_labels_observations_with_artifact_uids(
    h5ad_collection: ln.Collection,
) -> None:
    members = h5ad_collection.ordered_artifacts.to_list()
    adata = h5ad_collection.load()  # outer: the union of genes
    assert adata.n_obs == 8
    assert sorted(adata.var_names) == ["g1", "g2", "g3", "g4"]
    label = adata.obs["artifact_uid"]
    assert isinstance(label.dtype, pd.CategoricalDtype)
    assert label.cat.categories.tolist() == [a.uid for a in members]
    assert label.tolist() == [members[0].uid] * 5 + [members[1].uid] * 3
    assert adata.obs["batch"].tolist() == ["b1"] * 5 + ["b2"] * 3
    inner = h5ad_collection.load(join="inner")
    assert inner.var_names.tolist() == ["g2", "g3"]


def test_mixed_suffixes_are_refused_and_nothing_is_tracked(storage: Path) -> None:
    csv = make_artifact(storage, "a.csv", "a\n1\n")
    parquet = df_artifact("b.parquet", pd.DataFrame({"a": [2]}))
    collection = ln.Collection([csv, parquet], key="mixed").save()
    run = ln.track("mixed")
    with pytest.raises(ValueError, match=r"'\.csv', '\.parquet'"):
        collection.load()
    with pytest.raises(ValueError, match=r"'\.csv', '\.parquet'"):
        ln.Artifact.filter(key__in=["a.csv", "b.parquet"]).load()
    assert run.input_collections.count() == 0 and run.input_artifacts.count() == 0
    ln.finish()


def test_collection_of_unconcatenable_files_names_the_suffix(storage: Path) -> None:
    a = make_artifact(storage, "a.json", "{}")
    b = make_artifact(storage, "b.json", "[]")
    with pytest.raises(ValueError, match=r"'\.json'"):
        ln.Collection([a, b], key="jsons").save().load()


def test_load_records_the_collection_as_input_after_success(
    table_collection: ln.Collection,
) -> None:
    run = ln.track("load-inputs")
    table_collection.load()
    assert [c.uid for c in run.input_collections] == [table_collection.uid]
    assert run.input_artifacts.count() == 0
    ln.finish()


def test_failed_load_tracks_nothing(storage: Path) -> None:
    good = make_artifact(storage, "good.csv", "a\n1\n")
    broken = make_artifact(storage, "broken.csv", '"a\n')  # an unterminated quote
    collection = ln.Collection([good, broken], key="broken").save()
    run = ln.track("load-fails")
    with pytest.raises(pd.errors.ParserError):
        collection.load()
    assert run.input_collections.count() == 0
    ln.finish()


# -- querysets -----------------------------------------------------------------------------------
def test_queryset_load_in_queryset_order_tracks_artifacts(table_collection: ln.Collection) -> None:
    run = ln.track("qs-load")
    df = ln.Artifact.filter(key__startswith="t/").order_by("-key").load()
    assert df["a"].tolist() == [3, 1, 2]  # two.parquet first
    assert sorted(a.key for a in run.input_artifacts) == ["t/one.parquet", "t/two.parquet"]
    assert run.input_collections.count() == 0
    ln.finish()


def test_queryset_load_errors(table_collection: ln.Collection) -> None:
    with pytest.raises(ln.errors.InvalidArgument, match="QuerySet of artifacts, not of Collection"):
        ln.Collection.filter().load()
    with pytest.raises(ln.errors.InvalidArgument, match="not of ULabel"):
        ln.ULabel.filter().mapped()
    with pytest.raises(ln.errors.InvalidArgument, match="matches no artifacts"):
        ln.Artifact.filter(key="nothing").load()


# -- loaders.load directly -----------------------------------------------------------------------
def test_load_files_rules(tmp_path: Path) -> None:
    for i in range(2):
        pd.DataFrame({"a": [i]}).to_parquet(tmp_path / f"{i}.parquet")
    (tmp_path / "x.json").write_text('{"k": 1}')
    single = loaders.load_files([tmp_path / "0.parquet"], [".parquet"])
    assert single["a"].tolist() == [0]
    assert loaders.load_files([tmp_path / "x.json"], None) == {"k": 1}
    with pytest.raises(ValueError, match=r"'\.json', '\.parquet'"):
        loaders.load_files([tmp_path / "0.parquet", tmp_path / "x.json"])
    with pytest.raises(ValueError, match="2 keys for 1 files"):
        loaders.load_files([tmp_path / "0.parquet"], keys=["a", "b"])
    with pytest.raises(ValueError, match="join must be"):
        loaders.load_files([tmp_path / "0.parquet", tmp_path / "1.parquet"], join="left")
    with pytest.raises(ValueError, match=r"'\.xyz'"):
        loaders.load_file(tmp_path / "a.xyz")


def test_load_files_anndata_keys(tmp_path: Path) -> None:
    paths = []
    for i, genes in enumerate((["g1", "g2"], ["g2", "g3"])):
        paths.append(tmp_path / f"{i}.h5ad")
        make_adata(2, genes, f"b{i}", i).write_h5ad(paths[-1])
    adata = loaders.load_files(paths, [".h5ad", ".h5ad"], join="inner", keys=["first", "second"])
    assert adata.var_names.tolist() == ["g2"]
    assert adata.obs["artifact_uid"].cat.categories.tolist() == ["first", "second"]


# -- mapped --------------------------------------------------------------------------------------
def _mapped_collection_class() -> Any:
    try:
        from loaders import MappedCollection
    except ImportError:
        pytest.skip("loaders.MappedCollection is not there yet")
    return MappedCollection


def test_mapped_refuses_other_suffixes(storage: Path) -> None:
    a = make_artifact(storage, "a.csv", "a\n1\n")
    adata = ln.Artifact(make_adata(2, ["g"], "b", 0), key="x.h5ad").save()
    collection = ln.Collection([a, adata], key="mixed").save()
    with pytest.raises(ValueError, match=r"\.h5ad, \.zarr artifacts only.*'\.csv'"):
        collection.mapped()
    with pytest.raises(ValueError, match=r"'\.csv'"):
        ln.Artifact.filter(suffix=".csv").mapped()


def test_collection_mapped_over_local_files(h5ad_collection: ln.Collection) -> None:
    MappedCollection = _mapped_collection_class()
    run = ln.track("mapped")
    with h5ad_collection.mapped(obs_keys="cell_type", join="inner") as mapped:
        assert isinstance(mapped, MappedCollection)
        assert len(mapped) == 8
        item = mapped[0]
        assert "cell_type" in item and "X" in item
        assert np.asarray(item["X"]).shape[-1] == 2  # inner join: g2, g3
        assert item["_store_idx"] == 0
        assert mapped[7]["_store_idx"] == 1
    assert [c.uid for c in run.input_collections] == [h5ad_collection.uid]
    assert run.input_artifacts.count() == 0
    ln.finish()


def test_queryset_mapped_tracks_artifacts(h5ad_collection: ln.Collection) -> None:
    _mapped_collection_class()
    run = ln.track("qs-mapped")
    with ln.Artifact.filter(suffix=".h5ad").order_by("key").mapped(obs_keys="batch") as mapped:
        assert len(mapped) == 8
    assert run.input_artifacts.count() == 2
    ln.finish()


def test_mapped_over_s3_cached_and_streamed(storage: Path, s3_bucket: S3Bucket) -> None:
    _mapped_collection_class()
    ln.settings.storage = f"{s3_bucket.uri}/root"
    ln.settings.storage_options = s3_bucket.storage_options
    first = ln.Artifact(make_adata(4, ["g1", "g2"], "b1", 1), key="one.h5ad").save()
    second = ln.Artifact(make_adata(2, ["g1", "g2"], "b2", 2), key="two.h5ad").save()
    collection = ln.Collection([first, second], key="s3-scrna").save()
    with collection.mapped(obs_keys="batch") as mapped:
        assert len(mapped) == 6
    assert all(p.is_file() for p in collection.cache())  # mapped() cached them
    with collection.mapped(obs_keys="batch", stream=True) as streamed:
        assert len(streamed) == 6
        assert streamed[5]["_store_idx"] == 1
