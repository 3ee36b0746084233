"""Folder artifacts (docs/architecture.md, "Registries"; docs/schema.md): lamindb's folder hash,
copies under `.lineage/<uid><suffix>/`, in-place folders, versions, deletion, doctor, loading,
`from_dir`, and bad folders, against real files and a real Neo4j. The S3 side (prefixes, uploads,
cache sync) runs against the moto server over HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr
from anndata.io import write_elem

import graph.records
import lineage as ln
import loaders
import loaders.cache
from benchmarks._lamindb_env import default_venv_dir, ensure_lamindb, isolated_env
from lineage import errors as E
from tests.s3 import S3Bucket

# lamindb's own venv (made by the benchmarks, reused here): found before the tests point
# LINEAGE_HOME at a temporary home.
LAMINDB_VENV = default_venv_dir()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        write(root / rel, data)
    return root


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]


def lamindb_folder_hash(file_hashes: list[str]) -> str:
    """lamindb_setup's `hash_from_hashes_list`, written out: md5 over the md5 digests of the
    sorted per-file hash strings."""
    digests = b"".join(hashlib.md5(h.encode()).digest() for h in sorted(file_hashes))
    return b64(hashlib.md5(digests).digest())


def rows() -> pd.DataFrame:
    return ln.cypher(
        "MATCH (a:Artifact) RETURN a.uid AS uid, a.storage_path AS path, a.n_files AS n_files, "
        "a.size AS size, a.hash_type AS hash_type ORDER BY a.uid"
    )


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def everything_under(root: Path) -> list[str]:
    """Every file and directory under `root/.lineage` (nothing may be left by a failed save)."""
    managed = root / ".lineage"
    return (
        sorted(p.relative_to(managed).as_posix() for p in managed.rglob("*"))
        if managed.exists()
        else []
    )


CONTENT = {
    "a.txt": b"alpha\n",
    "sub/b.txt": b"beta\n",
    "sub/deeper/c.bin": bytes(range(256)),
    ".hidden": b"",  # dotfiles count (zarr's .zattrs are dotfiles), as in lamindb
    "copy_of_a.txt": b"alpha\n",  # equal files both count
}


# -- hash ------------------------------------------------------------------------------------------
def test_folder_hash_is_lamindbs(storage: Path, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "my_folder", CONTENT)
    expected = lamindb_folder_hash([b64(hashlib.md5(d).digest()) for d in CONTENT.values()])
    info = loaders.dir_info(folder)
    assert (info.hash, info.hash_type) == (expected, "md5-d")
    assert info.n_files == 5
    assert info.size == sum(len(d) for d in CONTENT.values())

    artifact = ln.Artifact(folder, key="folders/my_folder")
    assert (artifact.hash, artifact.hash_type, artifact.n_files) == (expected, "md5-d", 5)
    assert artifact.size == info.size and artifact.suffix == ""
    assert artifact.otype is None

    # The value lamindb 2.12.1's own lamindb_setup.core.hashing.hash_dir gives for this folder
    # (computed with it once: a regression pin against the algorithm drifting from lamindb's).
    pinned = make_folder(
        tmp_path / "pinned", {"a.txt": b"a\n", "sub/b.txt": b"b\n", ".hidden": b""}
    )
    assert loaders.dir_info(pinned) == loaders.FileInfo(4, "7qcNA-dkCyFSNN6-jrZQdg", "md5-d", 3)


def test_file_artifacts_have_no_n_files(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt").save()
    assert artifact.n_files is None
    assert rows()["n_files"].isna().all()


# -- storage ---------------------------------------------------------------------------------------
def test_folder_is_copied_under_lineage_uid(storage: Path, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data.zarr", {"x/0": b"0", ".zgroup": b"{}"})
    artifact = ln.Artifact(folder, key="arrays/data.zarr").save()
    assert artifact.suffix == ".zarr"  # from the folder's name, as lamindb does
    copy = storage / ".lineage" / f"{artifact.uid}.zarr"
    assert artifact.storage_path == str(copy) and artifact.path == copy
    assert files_under(copy) == {"x/0": b"0", ".zgroup": b"{}"}
    stored = rows().iloc[0]
    assert (stored["n_files"], stored["size"], stored["hash_type"]) == (2, 3, "md5-d")
    assert artifact.cache() == copy
    # The copy is the folder that was hashed.
    assert loaders.dir_info(copy).hash == artifact.hash
    fetched = ln.Artifact.get(artifact.uid)
    assert fetched.n_files == 2 and fetched.path == copy


def test_same_folder_content_is_the_stored_artifact(storage: Path, tmp_path: Path) -> None:
    first = ln.Artifact(make_folder(tmp_path / "one", CONTENT), key="one").save()
    again = ln.Artifact(make_folder(tmp_path / "two", CONTENT), key="two")
    assert again.uid == first.uid and again._saved
    assert len(rows()) == 1


def test_folder_in_a_registered_root_is_registered_in_place(storage: Path) -> None:
    folder = make_folder(storage / "inbox" / "plate", {"a.txt": b"a", "b/c.txt": b"c"})
    artifact = ln.Artifact(folder, key="plates/plate").save()
    assert artifact.storage_path == str(folder.resolve())
    assert everything_under(storage) == []
    artifact.delete(permanent=True)  # never removes what it did not copy
    assert files_under(folder) == {"a.txt": b"a", "b/c.txt": b"c"}
    assert rows().empty


def test_delete_removes_the_copied_folder(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(make_folder(tmp_path / "f", CONTENT), key="f").save()
    assert everything_under(storage) != []
    artifact.delete()  # the trash keeps the copy
    assert Path(artifact.storage_path).is_dir()
    artifact.delete(permanent=True)
    assert everything_under(storage) == []
    assert rows().empty


@pytest.mark.parametrize("how", ["new family", "new version"])
def test_failed_write_removes_the_copied_folder(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    base = None
    if how == "new version":
        base = ln.Artifact(make_folder(tmp_path / "v1", {"a.txt": b"1"}), key="f").save()
    before = everything_under(storage)
    artifact = ln.Artifact(make_folder(tmp_path / "v2", CONTENT), key="f", revises=base)
    real = graph.records._take_ids
    seen: list[list[str]] = []

    def fail(tx: object, label: str, n: int) -> list[int]:
        if label != "Artifact":
            return real(tx, label, n)
        seen.append(everything_under(storage))  # the copy is there while the node is written
        raise RuntimeError("injected failure")

    monkeypatch.setattr(graph.records, "_take_ids", fail)
    with pytest.raises(RuntimeError, match="injected"):
        artifact.save()
    assert len(seen) == 1 and len(seen[0]) > len(before)
    assert everything_under(storage) == before  # files and directories removed again
    assert len(rows()) == (0 if base is None else 1)

    monkeypatch.setattr(graph.records, "_take_ids", real)
    artifact.save()
    assert files_under(artifact.path) == CONTENT


def test_bulk_save_of_files_and_folders_is_undone_together(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = [
        ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt"),
        ln.Artifact(make_folder(tmp_path / "f1", CONTENT), key="f1"),
        ln.Artifact(make_folder(tmp_path / "f2.zarr", {".zgroup": b"{}"}), key="f2.zarr"),
    ]
    real = graph.records.create_many

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure in create_many")

    monkeypatch.setattr(graph.records, "create_many", fail)
    with pytest.raises(RuntimeError, match="injected"):
        ln.save(batch)
    assert everything_under(storage) == []
    assert all(a.storage_path is None for a in batch)

    monkeypatch.setattr(graph.records, "create_many", real)
    ln.save(batch)
    names = {a.uid + (a.suffix or "") for a in batch}  # uids are random: compare as a set
    assert {p for p in everything_under(storage) if "/" not in p} == names
    assert files_under(batch[1].path) == CONTENT and batch[2].path.name.endswith(".zarr")
    assert sorted(rows()["n_files"].fillna(0).astype(int)) == [0, 1, 5]


def test_folder_versions(storage: Path, tmp_path: Path) -> None:
    v1 = ln.Artifact(make_folder(tmp_path / "v1", {"a.txt": b"1"}), key="runs/out").save()
    folder = make_folder(tmp_path / "v2", {"a.txt": b"2", "b.txt": b"b"})
    v2 = ln.Artifact(folder, revises=v1).save()
    assert v2.stem_uid == v1.stem_uid and v2.uid.endswith("0001")
    assert v2.key == "runs/out" and v2.is_latest and v2.n_files == 2
    # Each version keeps its own copy: the old one stays readable.
    assert files_under(v1.path) == {"a.txt": b"1"}
    assert files_under(v2.path) == {"a.txt": b"2", "b.txt": b"b"}
    # The same content again is the stored version, not a third one.
    assert ln.Artifact(folder, revises=v2).uid == v2.uid
    # A family holds folders or files, not both.
    with pytest.raises(E.InvalidArgument, match="family of a folder, the new data is a file"):
        ln.Artifact(write(tmp_path / "x.txt", b"x"), revises=v2)
    single = ln.Artifact(write(tmp_path / "y.txt", b"y"), key="y.txt").save()
    with pytest.raises(E.InvalidArgument, match="family of a file, the new data is a folder"):
        ln.Artifact(folder, revises=single)
    # Also when the family is the one a key names (a new version by key).
    with pytest.raises(E.InvalidArgument, match="key 'runs/out' names a version family of a fo"):
        ln.Artifact(write(tmp_path / "z.txt", b"z"), key="runs/out")
    ln.Artifact(write(tmp_path / "plain", b"p"), key="plain").save()
    with pytest.raises(E.InvalidArgument, match="key 'plain' names a version family of a file"):
        ln.Artifact(make_folder(tmp_path / "v3", {"c.txt": b"3"}), key="plain")
    # replace() swaps a file's bytes; a folder gets a new version instead.
    with pytest.raises(E.NotSupported, match="for a folder, save a new version"):
        v2.replace(write(tmp_path / "w.txt", b"w"))
    with pytest.raises(E.NotSupported, match="for a folder, save a new version"):
        single.replace(make_folder(tmp_path / "v4", {"d.txt": b"4"}))
    assert len(rows()) == 4


# -- reading ---------------------------------------------------------------------------------------
def small_adata(n: int, tag: str) -> ad.AnnData:
    return ad.AnnData(
        X=np.arange(n * 3, dtype=np.float32).reshape(n, 3),
        obs=pd.DataFrame(
            {"cell_type": ["T", "B"] * (n // 2)}, index=[f"{tag}{i}" for i in range(n)]
        ),
        var=pd.DataFrame(index=["g1", "g2", "g3"]),
    )


def test_anndata_zarr_folder_loads(storage: Path, tmp_path: Path) -> None:
    adata = small_adata(4, "c")
    adata.write_zarr(tmp_path / "cells.zarr")
    artifact = ln.Artifact(tmp_path / "cells.zarr", key="scrna/cells.zarr").save()
    assert (artifact.otype, artifact.n_observations, artifact.suffix) == ("AnnData", 4, ".zarr")
    loaded = artifact.load()
    assert isinstance(loaded, ad.AnnData)
    np.testing.assert_array_equal(loaded.X, adata.X)
    assert loaded.obs_names.tolist() == adata.obs_names.tolist()

    other = small_adata(2, "d")
    other.write_zarr(tmp_path / "more.zarr")
    second = ln.Artifact(tmp_path / "more.zarr", key="scrna/more.zarr").save()
    combined = ln.Collection([artifact, second], key="zarrs").save().load()
    assert combined.n_obs == 6
    assert combined.obs["artifact_uid"].tolist() == [artifact.uid] * 4 + [second.uid] * 2


def test_folders_that_cannot_load_say_so(storage: Path, tmp_path: Path) -> None:
    plain = ln.Artifact(make_folder(tmp_path / "plain", CONTENT), key="plain").save()
    with pytest.raises(
        E.InvalidArgument, match=r"is a folder \(5 files, suffix 'none'\).*\.cache\(\)"
    ):
        plain.load()
    not_anndata = make_folder(
        tmp_path / "raw.zarr", {".zgroup": b'{"zarr_format": 2}', ".zattrs": b"{}"}
    )
    artifact = ln.Artifact(not_anndata, key="raw.zarr").save()
    assert artifact.otype is None
    with pytest.raises(E.DataError, match="not an AnnData zarr store"):
        artifact.load()


def test_cache_and_load_of_a_folder_are_run_inputs(storage: Path, tmp_path: Path) -> None:
    small_adata(2, "c").write_zarr(tmp_path / "in.zarr")
    artifact = ln.Artifact(tmp_path / "in.zarr", key="in.zarr").save()
    run = ln.track("folder-reader")
    try:
        artifact.load()
    finally:
        ln.finish()
    assert [a.uid for a in run.input_artifacts] == [artifact.uid]


# -- zarr stores ------------------------------------------------------------------------------------
def write_zarr_store(adata: ad.AnnData, path: Path, fmt: int, x_kwargs: dict | None = None) -> Path:
    """`adata` as an AnnData zarr store of format `fmt`; `x_kwargs` rewrite X with those zarr
    settings (chunks, shards, compressors)."""
    previous, ad.settings.zarr_write_format = ad.settings.zarr_write_format, fmt
    try:
        with warnings.catch_warnings():  # anndata's notes on format 2 and on sharding
            warnings.simplefilter("ignore", UserWarning)
            adata.write_zarr(path)
    finally:
        ad.settings.zarr_write_format = previous
    if x_kwargs is not None:
        group = zarr.open_group(path, mode="r+", use_consolidated=False)
        write_elem(group, "X", adata.X, dataset_kwargs=x_kwargs)
        with warnings.catch_warnings():  # zarr's note that format 3 has no consolidated metadata
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(path)  # as anndata left it
    return path


@pytest.fixture(scope="module")
def lamindb_python() -> Path:
    """The interpreter of lamindb 2.x's own venv (created on first use, as the benchmarks do)."""
    return ensure_lamindb(LAMINDB_VENV).python


def lamindb_hash_dir(python: Path, folder: Path, tmp: Path) -> list:
    """lamindb_setup's `hash_dir(folder)`, `[size, hash, hash_type, n_files]`, computed by
    lamindb itself in its venv (isolated from the user's lamin settings)."""
    code = (
        "import json, sys; from pathlib import Path; "
        "from lamindb_setup.core.hashing import hash_dir; "
        "print(json.dumps(hash_dir(Path(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [str(python), "-c", code, str(folder)],
        capture_output=True, text=True, env=isolated_env(tmp), cwd=tmp, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_zarr_store_hash_is_lamindbs(storage: Path, tmp_path: Path, lamindb_python: Path) -> None:
    """Registering a zarr store (format 2, format 3, sharded with a shard over lamindb's 50 MiB
    chunk, so that file is hashed by its first and last chunk) gives lamindb's own folder hash,
    size and file count."""
    rng = np.random.default_rng(0)
    x = sp.random(300, 50, density=0.1, format="csr", dtype=np.float32, random_state=rng)
    obs = pd.DataFrame({"t": ["a", "b", "c"] * 100}, index=[f"c{i}" for i in range(300)])
    small = ad.AnnData(X=x, obs=obs)
    big = ad.AnnData(X=rng.random((7000, 2000), dtype=np.float32))  # 56 MB, stored raw
    stores = [
        write_zarr_store(small, tmp_path / "v2.zarr", 2),
        write_zarr_store(small, tmp_path / "v3.zarr", 3),
        write_zarr_store(
            big,
            tmp_path / "sharded.zarr",
            3,
            {"chunks": (500, 2000), "shards": (7000, 2000), "compressors": None},
        ),
    ]
    assert max(p.stat().st_size for p in stores[2].rglob("*")) > loaders.CHUNK_SIZE
    for store in stores:
        size, hash_, hash_type, n_files = lamindb_hash_dir(lamindb_python, store, tmp_path)
        artifact = ln.Artifact(store, key=f"stores/{store.name}").save()
        assert (artifact.hash, artifact.hash_type) == (hash_, hash_type) == (hash_, "md5-d")
        assert (artifact.size, artifact.n_files) == (size, n_files)
        assert (artifact.otype, artifact.suffix) == ("AnnData", ".zarr")


def zarr_cells(n: int, tag: str, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = sp.random(n, 6, density=0.4, format="csr", dtype=np.float32, random_state=rng)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["T", "B", "NK"], n))},
        index=[f"{tag}{i}" for i in range(n)],
    )
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(6)]))


def test_zarr_artifacts_map_like_h5ad_and_record_samples(storage: Path, tmp_path: Path) -> None:
    """`mapped()` of a collection (and a QuerySet) of zarr artifacts reads what `load()` reads;
    a tracked run records the rows it saw, with the stores' obs names."""
    one, two = zarr_cells(30, "a", 1), zarr_cells(20, "b", 2)
    first = ln.Artifact(write_zarr_store(one, tmp_path / "one.zarr", 2), key="z/one.zarr").save()
    second = ln.Artifact(
        write_zarr_store(two, tmp_path / "two.zarr", 3, {"chunks": (16,), "shards": (64,)}),
        key="z/two.zarr",
    ).save()
    collection = ln.Collection([first, second], key="zarr-cells").save()
    loaded = collection.load()
    expected = loaded.X.toarray()
    with collection.mapped(obs_keys="cell_type") as ds:
        assert ds.shape == (50, 6)
        order = np.random.default_rng(3).permutation(50)
        batch = ds[order]
        np.testing.assert_array_equal(batch["X"], expected[order])
        labels = loaded.obs["cell_type"].astype(str).to_numpy()[order]
        assert [ds.encoders["cell_type"][v] for v in labels] == batch["cell_type"].tolist()
    with ln.Artifact.filter(suffix=".zarr").order_by("key").mapped() as ds:
        np.testing.assert_array_equal(ds[list(range(50))]["X"], expected)

    run = ln.track("train-on-zarr.py")
    collection.mapped(obs_filter={"cell_type": "NK"}).close()
    ln.finish()
    found = {a.uid: a for a in ln.lineage.samples(run)}
    for artifact, adata in ((first, one), (second, two)):
        rows = np.flatnonzero(adata.obs["cell_type"] == "NK")
        assert found[artifact.uid].rows.tolist() == rows.tolist()
        assert found[artifact.uid].obs_names == adata.obs_names[rows].tolist()
    nk = two.obs_names[np.flatnonzero(two.obs["cell_type"] == "NK")[0]]
    assert [r.run for r in ln.lineage.used_by(second, obs=[nk])] == [run.uid]


def test_s3_zarr_artifacts_map_cached_and_streamed(s3_storage: S3Bucket, tmp_path: Path) -> None:
    """Zarr artifacts on S3: `mapped()` caches each store as one folder and reads the copies;
    `mapped(stream=True)` reads them in place; both give what anndata reads."""
    one, two = zarr_cells(24, "a", 4), zarr_cells(12, "b", 5)
    arts = [
        ln.Artifact(write_zarr_store(one, tmp_path / "s1.zarr", 3), key="s/one.zarr").save(),
        ln.Artifact(write_zarr_store(two, tmp_path / "s2.zarr", 2), key="s/two.zarr").save(),
    ]
    expected = np.vstack([one.X.toarray(), two.X.toarray()])
    collection = ln.Collection(arts, key="s3-zarr").save()
    with collection.mapped() as cached:
        np.testing.assert_array_equal(cached[list(range(36))]["X"], expected)
        stores = [Path(f.uri) for f in cached._files]
    assert stores == [a.cache() for a in arts]
    assert all(p.is_dir() and p.is_relative_to(ln.settings.cache_dir) for p in stores)
    with collection.mapped(stream=True) as streamed:
        assert [f.uri for f in streamed._files] == [a.storage_path for a in arts]
        np.testing.assert_array_equal(streamed[list(range(35, -1, -1))]["X"], expected[::-1])


# -- doctor ----------------------------------------------------------------------------------------
def test_doctor_keeps_folder_copies_and_removes_orphan_folders(
    storage: Path, tmp_path: Path
) -> None:
    artifact = ln.Artifact(make_folder(tmp_path / "kept", CONTENT), key="kept").save()
    report = ln.doctor(grace=0)
    assert report.orphans == [] and report.missing == [] and report.ok, report.describe()

    orphan = make_folder(
        storage / ".lineage" / "Zz9TskRbe2mh0000.zarr", {"x/0": b"0", ".zgroup": b"{}"}
    )
    report = ln.doctor(fix=True, grace=0)
    assert sorted(Path(o.uri).relative_to(orphan).as_posix() for o in report.orphans) == [
        ".zgroup",
        "x/0",
    ]
    assert not orphan.exists()  # its directories go with its files
    assert files_under(artifact.path) == CONTENT


# -- from_dir --------------------------------------------------------------------------------------
def test_from_dir_makes_one_artifact_per_file(
    storage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = make_folder(tmp_path / "sample_001", CONTENT)
    artifacts = ln.Artifact.from_dir(folder)
    assert "same content as another" in caplog.text
    # copy_of_a.txt has a.txt's bytes: one artifact per content, as lamindb drops duplicates.
    assert sorted(a.key for a in artifacts) == [
        "sample_001/.hidden",
        "sample_001/a.txt",
        "sample_001/sub/b.txt",
        "sample_001/sub/deeper/c.bin",
    ]
    assert all(a.n_files is None for a in artifacts)
    saved = artifacts.save()
    assert saved is artifacts and all(a._saved for a in artifacts)
    assert len(rows()) == 4

    again = ln.Artifact.from_dir(folder, key="other/place")
    # The same content is the stored artifact; an empty file is never looked up (lamindb's
    # rule), so `.hidden` is a new, unsaved artifact under the new key.
    assert sorted(a.uid for a in again if a.size) == sorted(a.uid for a in artifacts if a.size)
    empty = [a for a in again if not a.size]
    assert len(empty) == 1 and empty[0].key.endswith("/.hidden") and not empty[0]._saved
    (tmp_path / "empty_dir").mkdir()
    assert ln.Artifact.from_dir(tmp_path / "empty_dir") == []


def test_from_dir_in_a_registered_root_keeps_the_layout(storage: Path) -> None:
    folder = make_folder(storage / "projects" / "p1", {"x.csv": b"a\n1\n", "y/z.txt": b"z"})
    artifacts = ln.Artifact.from_dir(folder).save()
    assert sorted(a.key for a in artifacts) == ["projects/p1/x.csv", "projects/p1/y/z.txt"]
    assert sorted(a.storage_path for a in artifacts) == sorted(
        str(p.resolve()) for p in (folder / "x.csv", folder / "y" / "z.txt")
    )
    assert everything_under(storage) == []


def test_from_dir_bad_input(storage: Path, tmp_path: Path) -> None:
    with pytest.raises(E.MissingFile, match="no such folder"):
        ln.Artifact.from_dir(tmp_path / "ghost")
    with pytest.raises(E.InvalidArgument, match="is not a folder"):
        ln.Artifact.from_dir(write(tmp_path / "f.txt", b"f"))
    with pytest.raises(E.InvalidType):
        ln.Artifact.from_dir(42)  # type: ignore[arg-type]
    with pytest.raises(E.InvalidArgument, match="outside the folder"):
        folder = make_folder(tmp_path / "linked", {"a.txt": b"a"})
        (folder / "escape.txt").symlink_to(write(tmp_path / "secret.txt", b"s"))
        ln.Artifact.from_dir(folder)
    assert rows().empty


# -- bad folders -----------------------------------------------------------------------------------
def test_bad_folders_are_refused_and_nothing_is_stored(storage: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "only_dirs").mkdir(parents=True)
    with pytest.raises(E.InvalidArgument, match="has no files"):
        ln.Artifact(empty, key="empty")

    outside = make_folder(tmp_path / "outside", {"a.txt": b"a"})
    (outside / "link.txt").symlink_to(write(tmp_path / "elsewhere.txt", b"e"))
    with pytest.raises(E.InvalidArgument, match=r"link\.txt is a symbolic link to .*outside"):
        ln.Artifact(outside, key="outside")

    dangling = make_folder(tmp_path / "dangling", {"a.txt": b"a"})
    (dangling / "gone.txt").symlink_to(tmp_path / "never-there.txt")
    with pytest.raises(E.InvalidArgument, match=r"gone\.txt is a dangling symbolic link"):
        ln.Artifact(dangling, key="dangling")

    dir_link = make_folder(tmp_path / "dirlink", {"sub/a.txt": b"a"})
    (dir_link / "again").symlink_to(dir_link / "sub")
    with pytest.raises(E.InvalidArgument, match=r"again is a symbolic link to a directory"):
        ln.Artifact(dir_link, key="dirlink")

    fifo = make_folder(tmp_path / "fifo", {"a.txt": b"a"})
    os.mkfifo(fifo / "pipe")
    with pytest.raises(E.InvalidArgument, match=r"pipe is not a regular file"):
        ln.Artifact(fifo, key="fifo")  # without the check, hashing would block forever

    with pytest.raises(E.InvalidArgument, match="does not match"):
        ln.Artifact(make_folder(tmp_path / "plain", {"a.txt": b"a"}), key="plain.zarr")
    assert rows().empty
    assert everything_under(storage) == []


def test_link_to_a_file_inside_the_folder_counts_as_that_file(
    storage: Path, tmp_path: Path
) -> None:
    folder = make_folder(tmp_path / "linked", {"a.txt": b"alpha"})
    (folder / "b.txt").symlink_to(folder / "a.txt")
    artifact = ln.Artifact(folder, key="linked").save()
    assert artifact.n_files == 2 and artifact.size == 10
    copy = artifact.path
    assert not (copy / "b.txt").is_symlink()  # the copy holds the bytes
    assert files_under(copy) == {"a.txt": b"alpha", "b.txt": b"alpha"}


def test_folder_changed_before_save_is_refused_clearly(storage: Path, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "f", {"a.txt": b"a"})
    artifact = ln.Artifact(folder, key="f")
    (folder / "out.txt").symlink_to(write(tmp_path / "other.txt", b"o"))
    with pytest.raises(E.DataError, match="outside the folder"):
        artifact.save()
    assert rows().empty
    assert everything_under(storage) == []


# -- loaders ---------------------------------------------------------------------------------------
def test_delete_files_removes_folders_given_with_a_slash(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "copy", {"a": b"a", "b/c": b"c"})
    assert loaders.delete_file(loaders.as_folder(folder)) is True
    assert not folder.exists()
    assert loaders.delete_file(loaders.as_folder(folder)) is False
    make_folder(folder, {"x/y": b"y"})
    loaders.delete_files([loaders.as_folder(folder), loaders.as_folder(tmp_path / "never")])
    assert not folder.exists()


# -- S3 --------------------------------------------------------------------------------------------
PREFIX = "prefix"


@pytest.fixture
def s3_storage(storage: Path, s3_bucket: S3Bucket) -> S3Bucket:
    ln.settings.storage = f"{s3_bucket.uri}/{PREFIX}"
    ln.settings.storage_options = s3_bucket.storage_options
    return s3_bucket


def keys_under(bucket: S3Bucket, prefix: str) -> list[str]:
    listing = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_local_folder_is_uploaded_under_lineage_uid(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    folder = make_folder(tmp_path / "data.zarr", {"x/0": b"0", ".zgroup": b"{}"})
    local_hash = loaders.dir_info(folder).hash
    artifact = ln.Artifact(folder, key="data.zarr").save()
    key = f"{PREFIX}/.lineage/{artifact.uid}.zarr"
    assert artifact.storage_path == f"{bucket.uri}/{key}"
    assert keys_under(bucket, "") == [f"{key}/.zgroup", f"{key}/x/0"]
    # Single-part uploads: the ETag hash of the prefix is the local folder hash.
    assert loaders.dir_info(artifact.storage_path, bucket.storage_options).hash == local_hash

    cached = artifact.cache()
    assert cached == ln.settings.cache_dir / bucket.name / key
    assert files_under(cached) == {"x/0": b"0", ".zgroup": b"{}"}
    artifact.delete(permanent=True)
    assert keys_under(bucket, "") == []


def test_failed_write_removes_the_uploaded_folder(
    s3_storage: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_storage
    artifact = ln.Artifact(make_folder(tmp_path / "f", CONTENT), key="f")
    real = graph.records._take_ids
    seen: list[list[str]] = []

    def fail(tx: object, label: str, n: int) -> list[int]:
        if label != "Artifact":
            return real(tx, label, n)
        seen.append(keys_under(bucket, ""))
        raise RuntimeError("injected failure")

    monkeypatch.setattr(graph.records, "_take_ids", fail)
    with pytest.raises(RuntimeError, match="injected"):
        artifact.save()
    assert len(seen) == 1 and len(seen[0]) == len(CONTENT)
    assert keys_under(bucket, "") == []
    assert rows().empty


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = loaders.cache._download

    def counting(fs: object, remote: loaders.cache._Remote, place: object) -> None:
        seen.append(remote.uri)
        real(fs, remote, place)

    monkeypatch.setattr(loaders.cache, "_download", counting)
    return seen


def test_s3_prefix_is_a_folder_registered_in_place(
    s3_storage: S3Bucket, downloads: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3_storage
    objects = {
        "data/run.zarr/.zgroup": b"{}",
        "data/run.zarr/x/0": b"zero",
        "data/run.zarr/x/1": b"one",
    }
    for key, body in objects.items():
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    etags = [
        bucket.client.head_object(Bucket=bucket.name, Key=key)["ETag"].strip('"') for key in objects
    ]
    expected = lamindb_folder_hash([b64(bytes.fromhex(e)) for e in etags])

    uri = f"{bucket.uri}/data/run.zarr"
    artifact = ln.Artifact(uri + "/", key="runs/run.zarr").save()  # a trailing slash is the same
    assert (artifact.hash, artifact.hash_type, artifact.n_files) == (expected, "md5-d", 3)
    assert artifact.size == sum(len(b) for b in objects.values())
    assert artifact.storage_path == uri and artifact.suffix == ".zarr"

    cached = artifact.cache()
    assert cached == ln.settings.cache_dir / bucket.name / "data" / "run.zarr"
    assert files_under(cached) == {".zgroup": b"{}", "x/0": b"zero", "x/1": b"one"}
    assert sorted(downloads) == sorted(f"{uri}/{k.split('/', 2)[2]}" for k in objects)
    downloads.clear()
    assert artifact.cache() == cached and downloads == []  # fresh: nothing fetched

    # The prefix changes: only the changed file is fetched, the removed one leaves the copy.
    bucket.client.put_object(Bucket=bucket.name, Key="data/run.zarr/x/0", Body=b"ZERO")
    bucket.client.delete_object(Bucket=bucket.name, Key="data/run.zarr/x/1")
    caplog.clear()
    artifact.cache()
    assert downloads == [f"{uri}/x/0"]
    assert files_under(cached) == {".zgroup": b"{}", "x/0": b"ZERO"}
    assert "changed since it was registered" in caplog.text
    assert not any(p.name.endswith(".part") for p in ln.settings.cache_dir.rglob("*"))

    artifact.delete(permanent=True)  # in place: the objects stay
    assert keys_under(bucket, "data/") == ["data/run.zarr/.zgroup", "data/run.zarr/x/0"]


def test_s3_zarr_folder_loads_through_the_cache(s3_storage: S3Bucket, tmp_path: Path) -> None:
    adata = small_adata(4, "s")
    adata.write_zarr(tmp_path / "s3cells.zarr")
    artifact = ln.Artifact(tmp_path / "s3cells.zarr", key="s3cells.zarr").save()
    loaded = ln.Artifact.get(artifact.uid).load()
    np.testing.assert_array_equal(loaded.X, adata.X)


def test_from_dir_over_an_s3_prefix(s3_storage: S3Bucket) -> None:
    bucket = s3_storage
    for key, body in {"in/a.txt": b"a", "in/sub/b.txt": b"b"}.items():
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    artifacts = ln.Artifact.from_dir(f"{bucket.uri}/in").save()
    assert sorted(a.key for a in artifacts) == ["in/a.txt", "in/sub/b.txt"]
    assert sorted(a.storage_path for a in artifacts) == [
        f"{bucket.uri}/in/a.txt",
        f"{bucket.uri}/in/sub/b.txt",
    ]
    with pytest.raises(E.MissingFile, match="no objects under the prefix"):
        ln.Artifact.from_dir(f"{bucket.uri}/nothing-here")
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        ln.Artifact(f"{bucket.uri}/nothing-here")
