"""The Artifact registry against a real Neo4j and real files (docs/architecture.md, "Registries").

Every test asserts what is actually stored: the node and its edges (through `ln.cypher`) and the
bytes under the storage root.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import graph.records
import lineage as ln

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def md5_b64(data: bytes) -> str:
    """lamindb's md5 hash, computed here independently of the library."""
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode().rstrip("=")[:22]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def managed_files(root: Path) -> list[Path]:
    """Every file under `<root>/.lineage` (temporary names included: none may be left)."""
    folder = root / ".lineage"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def artifact_rows() -> pd.DataFrame:
    return ln.cypher(
        "MATCH (a:Artifact) RETURN a.uid AS uid, a.hash AS hash, a.branch AS branch, "
        "a.is_latest AS is_latest, a.key AS key, a.storage_path AS storage_path ORDER BY a.uid"
    )


def node(uid: str) -> dict:
    rows = ln.cypher("MATCH (a:Artifact {uid: $uid}) RETURN a", uid=uid)
    assert len(rows) == 1, f"expected one Artifact node {uid}, found {len(rows)}"
    return rows.iloc[0]["a"]


def latest_flags(stem: str) -> dict[str, bool]:
    rows = ln.cypher(
        "MATCH (a:Artifact) WHERE a.uid STARTS WITH $stem RETURN a.uid AS uid, a.is_latest AS l",
        stem=stem,
    )
    return dict(zip(rows["uid"], rows["l"]))


def small_df(n: int = 3, offset: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        {"gene": [f"g{i + offset}" for i in range(n)], "count": np.arange(n) + offset}
    )


def small_adata(n_obs: int = 4, seed: int = 0):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    x = sp.random(n_obs, 3, density=0.5, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["B", "T"], size=n_obs))},
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(index=["geneA", "geneB", "geneC"])
    return ad.AnnData(X=x, obs=obs, var=var)


# --------------------------------------------------------------------------------------------
# creating artifacts
# --------------------------------------------------------------------------------------------


def test_artifact_from_local_file(storage: Path, tmp_path: Path) -> None:
    content = b"gene,count\nA,1\nB,2\n"
    src = write(tmp_path / "data" / "counts.csv", content)

    artifact = ln.Artifact(src, key="raw/counts.csv", description="raw counts")
    assert artifact.save() is artifact

    uid = artifact.uid
    assert isinstance(uid, str) and len(uid) == 20
    assert artifact.stem_uid == uid[:16] and len(artifact.stem_uid) == 16
    assert uid.endswith("0000")
    assert artifact.key == "raw/counts.csv"
    assert artifact.description == "raw counts"
    assert artifact.suffix == ".csv"
    assert artifact.size == len(content)
    assert artifact.hash == md5_b64(content)
    assert artifact.hash_type == "md5"
    assert artifact.otype is None
    assert artifact.n_observations is None
    assert isinstance(artifact.created_at, datetime)
    assert isinstance(artifact.updated_at, datetime)
    assert artifact.is_latest is True
    assert artifact.version is None
    assert artifact.branch == 1
    assert isinstance(artifact.id, int)

    creator = artifact.created_by
    assert isinstance(creator, ln.User)
    assert creator.handle == ln.settings.user

    # The copy: <root>/.lineage/<uid><suffix>, same bytes; the source is left alone.
    expected = storage.resolve() / ".lineage" / f"{uid}.csv"
    assert isinstance(artifact.path, Path)
    assert artifact.path == expected
    assert expected.read_bytes() == content
    assert src.read_bytes() == content
    assert managed_files(storage) == [expected]

    # What the graph holds.
    stored = node(uid)
    assert stored["key"] == "raw/counts.csv"
    assert stored["description"] == "raw counts"
    assert stored["hash"] == md5_b64(content)
    assert stored["hash_type"] == "md5"
    assert stored["size"] == len(content)
    assert stored["suffix"] == ".csv"
    assert stored["storage_path"] == str(expected)
    assert stored["is_latest"] is True
    assert stored["branch"] == 1
    assert stored["id"] == artifact.id
    assert stored["created_at"] is not None and stored["updated_at"] is not None
    assert "otype" not in stored or stored["otype"] is None

    roots = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:STORED_IN]->(s:Storage) RETURN s.root AS root", uid=uid
    )
    assert [Path(r) for r in roots["root"]] == [storage.resolve()]
    users = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:CREATED_BY]->(u:User) RETURN u.handle AS handle", uid=uid
    )
    assert list(users["handle"]) == [ln.settings.user]


def test_artifact_from_dataframe(storage: Path) -> None:
    df = small_df(3)
    artifact = ln.Artifact(df, key="tables/metrics.parquet").save()
    assert artifact.suffix == ".parquet"
    assert artifact.otype == "DataFrame"
    assert artifact.n_observations == 3
    assert artifact.path == storage.resolve() / ".lineage" / f"{artifact.uid}.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(artifact.path), df)
    assert artifact.hash == md5_b64(artifact.path.read_bytes())
    assert artifact.size == artifact.path.stat().st_size
    stored = node(artifact.uid)
    assert (stored["otype"], stored["n_observations"]) == ("DataFrame", 3)

    df5 = small_df(5, offset=10)
    other = ln.Artifact.from_dataframe(df5, key="tables/five.parquet", description="five").save()
    assert other.uid != artifact.uid
    assert (other.otype, other.n_observations, other.suffix) == ("DataFrame", 5, ".parquet")
    assert other.key == "tables/five.parquet" and other.description == "five"
    pd.testing.assert_frame_equal(pd.read_parquet(other.path), df5)

    # The staged parquet files in the cache are gone once the copies are stored.
    staging = ln.settings.cache_dir / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []

    with pytest.raises(TypeError, match="list"):
        ln.Artifact.from_dataframe([1, 2, 3])


def test_artifact_from_anndata(storage: Path) -> None:
    import anndata as ad

    adata = small_adata(4)
    artifact = ln.Artifact(adata, key="scrna/sample1.h5ad").save()
    assert artifact.suffix == ".h5ad"
    assert artifact.otype == "AnnData"
    assert artifact.n_observations == 4
    assert artifact.path.name == f"{artifact.uid}.h5ad"
    back = ad.read_h5ad(artifact.path)
    assert back.n_obs == 4 and list(back.obs_names) == list(adata.obs_names)
    assert isinstance(back.obs["cell_type"].dtype, pd.CategoricalDtype)
    assert (back.X != adata.X).nnz == 0
    stored = node(artifact.uid)
    assert (stored["otype"], stored["n_observations"]) == ("AnnData", 4)

    other = ln.Artifact.from_anndata(small_adata(6, seed=1), key="scrna/sample2.h5ad").save()
    assert (other.otype, other.n_observations, other.suffix) == ("AnnData", 6, ".h5ad")

    with pytest.raises(TypeError, match="DataFrame"):
        ln.Artifact.from_anndata(small_df())


def test_artifact_from_parquet_and_h5ad_files(storage: Path, tmp_path: Path) -> None:
    """Files on disk get otype and n_observations from their metadata, as objects do."""
    pq_path = tmp_path / "t.parquet"
    small_df(7).to_parquet(pq_path)
    h5_path = tmp_path / "a.h5ad"
    small_adata(5).write_h5ad(h5_path)
    pq = ln.Artifact(pq_path, key="t.parquet").save()
    h5 = ln.Artifact(h5_path, key="a.h5ad").save()
    assert (pq.otype, pq.n_observations, pq.suffix) == ("DataFrame", 7, ".parquet")
    assert (h5.otype, h5.n_observations, h5.suffix) == ("AnnData", 5, ".h5ad")
    assert pq.hash == md5_b64(pq_path.read_bytes())


def test_file_under_storage_root_is_registered_in_place(storage: Path) -> None:
    content = b"already in storage\n"
    src = write(storage / "inbox" / "sample.txt", content)
    artifact = ln.Artifact(src, key="inbox/sample.txt").save()
    assert artifact.storage_path == str(src.resolve())
    assert artifact.path == src.resolve()
    assert artifact.hash == md5_b64(content)
    assert managed_files(storage) == []  # no copy under .lineage
    assert node(artifact.uid)["storage_path"] == str(src.resolve())
    roots = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:STORED_IN]->(s:Storage) RETURN s.root AS root",
        uid=artifact.uid,
    )
    assert [Path(r) for r in roots["root"]] == [storage.resolve()]


def test_file_under_an_earlier_storage_root_is_registered_in_place(
    storage: Path, tmp_path: Path
) -> None:
    """A root stays registered after `ln.settings.storage` moves on: files under it stay put."""
    ln.Artifact(write(tmp_path / "first.txt", b"first"), key="first.txt").save()  # registers root A
    ln.settings.storage = tmp_path / "root-b"
    src = write(storage / "old-data" / "x.txt", b"under root A")
    artifact = ln.Artifact(src, key="x.txt").save()
    assert artifact.storage_path == str(src.resolve())
    assert not (tmp_path / "root-b" / ".lineage").exists()
    roots = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:STORED_IN]->(s:Storage) RETURN s.root AS root",
        uid=artifact.uid,
    )
    assert [Path(r) for r in roots["root"]] == [storage.resolve()]


# --------------------------------------------------------------------------------------------
# same content, versions
# --------------------------------------------------------------------------------------------


def test_same_content_returns_existing_record(
    storage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = b"x,y\n1,2\n"
    first = ln.Artifact(write(tmp_path / "a.csv", content), key="first.csv").save()
    with caplog.at_level(logging.WARNING, logger="lineage"):
        again = ln.Artifact(write(tmp_path / "copy" / "b.csv", content), key="second.csv")
    assert again.uid == first.uid
    assert again.id == first.id
    assert again.key == "first.csv"  # the existing record, not the new arguments
    assert again.storage_path == first.storage_path
    warnings = [r for r in caplog.records if r.name == "lineage" and r.levelno == logging.WARNING]
    assert any(first.uid in r.getMessage() for r in warnings), caplog.text
    again.save()
    assert len(artifact_rows()) == 1
    assert len(managed_files(storage)) == 1

    # A DataFrame with the same content, too.
    df = small_df(4)
    d1 = ln.Artifact(df, key="d1.parquet").save()
    d2 = ln.Artifact(df.copy(), key="d2.parquet")
    assert d2.uid == d1.uid
    assert len(artifact_rows()) == 2


def test_same_content_as_new_version_of_another_family(storage: Path, tmp_path: Path) -> None:
    shared = b"shared bytes\n"
    a1 = ln.Artifact(write(tmp_path / "a.txt", shared), key="fam-a.txt").save()
    b1 = ln.Artifact(write(tmp_path / "b.txt", b"family b v1\n"), key="fam-b.txt").save()

    b2 = ln.Artifact(write(tmp_path / "b2.txt", shared), revises=b1).save()
    assert b2.uid != a1.uid
    assert b2.uid == b1.stem_uid + "0001"
    assert b2.hash == a1.hash
    assert b2.key == "fam-b.txt"
    same_hash = ln.cypher("MATCH (a:Artifact {hash: $h}) RETURN a.uid AS uid", h=a1.hash)
    assert sorted(same_hash["uid"]) == sorted([a1.uid, b2.uid])
    assert latest_flags(a1.stem_uid) == {a1.uid: True}
    assert latest_flags(b1.stem_uid) == {b1.uid: False, b2.uid: True}


def test_same_content_in_revised_family_returns_existing(storage: Path, tmp_path: Path) -> None:
    """Bytes that already are a version of the family `revises` names give back that version,
    even when an older record of another family holds the same bytes too."""
    shared = b"shared bytes\n"
    a1 = ln.Artifact(write(tmp_path / "a.txt", shared), key="fam-a.txt").save()
    b1 = ln.Artifact(write(tmp_path / "b.txt", b"family b v1\n"), key="fam-b.txt").save()
    b2 = ln.Artifact(write(tmp_path / "b2.txt", shared), revises=b1).save()

    again = ln.Artifact(write(tmp_path / "b3.txt", shared), revises=b1)
    assert again.uid == b2.uid
    again.save()
    assert sorted(artifact_rows()["uid"]) == sorted([a1.uid, b1.uid, b2.uid])


def test_revises_makes_a_new_version(storage: Path) -> None:
    v1 = ln.Artifact(small_df(3), key="tables/t.parquet", version="1").save()
    v2 = ln.Artifact(small_df(4), revises=v1, version="2")
    assert v2.key == "tables/t.parquet"  # inherited
    v2.save()
    assert v2.uid == v1.stem_uid + "0001"
    assert v2.stem_uid == v1.stem_uid
    assert v2.key == "tables/t.parquet"
    assert (v1.version, v2.version) == ("1", "2")
    assert v2.is_latest is True
    assert v1.is_latest is False  # in memory
    assert latest_flags(v1.stem_uid) == {v1.uid: False, v2.uid: True}  # in the graph
    edges = ln.cypher(
        "MATCH (n:Artifact)-[:REVISES]->(o:Artifact) RETURN n.uid AS new, o.uid AS old"
    )
    assert list(zip(edges["new"], edges["old"])) == [(v2.uid, v1.uid)]
    assert [a.uid for a in v2.versions] == [v1.uid, v2.uid]
    assert [a.uid for a in v1.versions] == [v1.uid, v2.uid]
    assert v2.path.name == f"{v2.uid}.parquet"
    assert v1.path.exists() and v2.path.exists()

    # An explicit key on a new version wins over the inherited one.
    v3 = ln.Artifact(small_df(5), revises=v2, key="tables/t-v3.parquet").save()
    assert v3.uid == v1.stem_uid + "0002" and v3.key == "tables/t-v3.parquet"


def test_version_tag_clash_writes_nothing(storage: Path) -> None:
    v1 = ln.Artifact(small_df(3), key="t.parquet", version="1").save()
    v2 = ln.Artifact(small_df(4), revises=v1, version="1")
    with pytest.raises(ValueError, match="'1'"):
        v2.save()
    assert artifact_rows()["uid"].tolist() == [v1.uid]
    assert managed_files(storage) == [v1.path]
    assert latest_flags(v1.stem_uid) == {v1.uid: True}
    assert ln.cypher("MATCH ()-[r:REVISES]->() RETURN count(r) AS n")["n"][0] == 0


def test_revises_wrong_type(storage: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "x.txt", b"x")
    with pytest.raises(TypeError, match="str"):
        ln.Artifact(src, revises="abcd")
    label = ln.ULabel(name="not an artifact").save()
    with pytest.raises(TypeError, match="ULabel"):
        ln.Artifact(src, revises=label)
    assert artifact_rows().empty


def test_revises_unsaved(storage: Path, tmp_path: Path) -> None:
    v1 = ln.Artifact(write(tmp_path / "v1.txt", b"v1"), key="v.txt")  # never saved
    with pytest.raises(ValueError, match="save"):
        ln.Artifact(write(tmp_path / "v2.txt", b"v2"), revises=v1)
    assert artifact_rows().empty
    assert managed_files(storage) == []


def test_failed_constructor_leaves_no_staged_file(storage: Path) -> None:
    """A DataFrame is written to the cache to be hashed; a constructor that then fails must not
    leave that temporary parquet behind."""
    unsaved = ln.Artifact(small_df(2), key="unsaved.parquet")
    staging = ln.settings.cache_dir / "staging"
    before = set(staging.iterdir())
    with pytest.raises(ValueError):
        ln.Artifact(small_df(3), revises=unsaved)
    assert set(staging.iterdir()) == before


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, type_name", [(42, "int"), ({"a": 1}, "dict"), ([1, 2], "list")])
def test_data_of_wrong_type(storage: Path, data: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"\b{type_name}\b"):
        ln.Artifact(data)


def test_missing_path(storage: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ghost.csv"
    with pytest.raises(FileNotFoundError, match="ghost.csv"):
        ln.Artifact(missing)
    with pytest.raises(FileNotFoundError, match="ghost.csv"):
        ln.Artifact(str(missing))


def test_directory_is_a_folder_artifact(storage: Path, tmp_path: Path) -> None:
    """A directory is one artifact of all its files (tests/test_folders.py has the details)."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    artifact = ln.Artifact(folder, key="a_folder").save()
    assert artifact.n_files == 1 and artifact.hash_type == "md5-d"
    assert (artifact.path / "x.txt").read_text() == "x"


def test_unknown_keyword(storage: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "x.txt", b"x")
    with pytest.raises(ln.errors.InvalidArgument, match="colour"):
        ln.Artifact(src, colour="red")


@pytest.mark.parametrize("key", [5, ["a"], Path("a/b.csv")])
def test_key_of_wrong_type(storage: Path, tmp_path: Path, key: object) -> None:
    src = write(tmp_path / "x.txt", b"x")
    with pytest.raises((TypeError, ValueError), match="key"):
        ln.Artifact(src, key=key)


def test_unsaved_run_is_refused_and_saved_run_is_linked(storage: Path, tmp_path: Path) -> None:
    transform = ln.Transform(key="make-data.py", kind="script").save()
    with pytest.raises(ValueError, match="save"):
        ln.Artifact(write(tmp_path / "x.txt", b"x"), run=ln.Run(transform))
    run = ln.Run(transform).save()
    artifact = ln.Artifact(write(tmp_path / "y.txt", b"y"), run=run).save()
    linked = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:GENERATED_BY]->(r:Run) RETURN r.uid AS uid",
        uid=artifact.uid,
    )
    assert list(linked["uid"]) == [run.uid]
    assert artifact.run.uid == run.uid


# --------------------------------------------------------------------------------------------
# delete and restore
# --------------------------------------------------------------------------------------------


def test_delete_moves_to_trash(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.csv", b"a\n1\n"), key="x.csv").save()
    artifact.delete()
    assert artifact.branch == -1
    assert node(artifact.uid)["branch"] == -1
    assert ln.Artifact.filter().count() == 0
    assert ln.Artifact.filter(key="x.csv").to_list() == []
    fetched = ln.Artifact.get(artifact.uid)
    assert fetched.uid == artifact.uid and fetched.branch == -1
    assert artifact.path.exists()  # the trash keeps the file


def test_same_content_as_a_trashed_artifact_is_a_new_record(storage: Path, tmp_path: Path) -> None:
    trashed = ln.Artifact(write(tmp_path / "x.csv", b"a\n1\n"), key="x.csv").save()
    trashed.delete()
    fresh = ln.Artifact(write(tmp_path / "y.csv", b"a\n1\n"), key="y.csv").save()
    assert fresh.uid != trashed.uid
    assert fresh.branch == 1 and fresh.is_latest is True
    rows = artifact_rows()
    assert dict(zip(rows["uid"], rows["branch"])) == {trashed.uid: -1, fresh.uid: 1}
    assert fresh.path.read_bytes() == b"a\n1\n" and trashed.path.exists()


def test_delete_latest_promotes_previous_and_restore(storage: Path) -> None:
    v1 = ln.Artifact(small_df(3), key="t.parquet").save()
    v2 = ln.Artifact(small_df(4), revises=v1).save()
    v2.delete()
    assert latest_flags(v1.stem_uid) == {v1.uid: True, v2.uid: False}
    assert ln.Artifact.get(v1.uid).is_latest is True
    assert [a.uid for a in ln.Artifact.filter(is_latest=True)] == [v1.uid]

    v2.restore()
    assert v2.branch == 1 and v2.is_latest is True
    assert node(v2.uid)["branch"] == 1
    assert latest_flags(v1.stem_uid) == {v1.uid: False, v2.uid: True}
    assert [a.uid for a in ln.Artifact.filter()] == sorted([v1.uid, v2.uid])


def test_restore_older_version_does_not_take_latest(storage: Path) -> None:
    v1 = ln.Artifact(small_df(3), key="t.parquet").save()
    v2 = ln.Artifact(small_df(4), revises=v1).save()
    v1.delete()
    assert latest_flags(v1.stem_uid) == {v1.uid: False, v2.uid: True}
    v1.restore()
    assert v1.branch == 1
    assert latest_flags(v1.stem_uid) == {v1.uid: False, v2.uid: True}


def test_delete_twice_or_permanent_removes_node_and_file(storage: Path, tmp_path: Path) -> None:
    a = ln.Artifact(write(tmp_path / "a.txt", b"aaa"), key="a.txt").save()
    b = ln.Artifact(write(tmp_path / "b.txt", b"bbb"), key="b.txt").save()
    a_path, b_path = a.path, b.path
    assert a_path.exists() and b_path.exists()

    a.delete()
    assert a_path.exists()
    a.delete()
    assert not a_path.exists()
    b.delete(permanent=True)
    assert not b_path.exists()

    assert artifact_rows().empty
    assert managed_files(storage) == []
    # The nodes at the other end stay.
    assert ln.cypher("MATCH (s:Storage) RETURN count(s) AS n")["n"][0] == 1
    assert ln.cypher("MATCH (u:User) RETURN count(u) AS n")["n"][0] == 1
    with pytest.raises(ln.errors.DoesNotExist):
        ln.Artifact.get(a.uid)


def test_permanent_delete_of_collection_member_is_refused(storage: Path, tmp_path: Path) -> None:
    a1 = ln.Artifact(write(tmp_path / "1.txt", b"one"), key="1.txt").save()
    a2 = ln.Artifact(write(tmp_path / "2.txt", b"two"), key="2.txt").save()
    collection = ln.Collection([a1, a2], key="my-collection").save()

    with pytest.raises(ln.errors.LineageError, match="my-collection"):
        a1.delete(permanent=True)
    assert node(a1.uid)["branch"] == 1
    assert a1.path.exists()

    # Trashed first, then deleted again: still refused.
    a2.delete()
    with pytest.raises(ln.errors.LineageError, match="my-collection"):
        a2.delete()
    assert node(a2.uid)["branch"] == -1
    assert a2.path.exists()
    members = ln.cypher(
        "MATCH (c:Collection {uid: $uid})-[r:CONTAINS]->(a) RETURN a.uid AS uid "
        "ORDER BY r.position",
        uid=collection.uid,
    )
    assert list(members["uid"]) == [a1.uid, a2.uid]


def test_permanent_delete_of_collection_meta_artifact_is_refused(
    storage: Path, tmp_path: Path
) -> None:
    """lamindb protects a collection's meta artifact (on_delete=PROTECT) as it protects members."""
    data = ln.Artifact(write(tmp_path / "data.txt", b"data"), key="data.txt").save()
    meta = ln.Artifact(write(tmp_path / "meta.txt", b"meta"), key="meta.txt").save()
    collection = ln.Collection([data], key="with-meta", meta=meta).save()
    with pytest.raises(ln.errors.LineageError, match="with-meta"):
        meta.delete(permanent=True)
    assert node(meta.uid)["branch"] == 1
    assert meta.path.exists()
    linked = ln.cypher(
        "MATCH (:Collection {uid: $uid})-[:HAS_META]->(a:Artifact) RETURN a.uid AS uid",
        uid=collection.uid,
    )
    assert list(linked["uid"]) == [meta.uid]


def test_permanent_delete_keeps_in_place_file(storage: Path) -> None:
    src = write(storage / "user-data" / "keep.csv", b"k\n1\n")
    artifact = ln.Artifact(src, key="keep.csv").save()
    artifact.delete(permanent=True)
    assert artifact_rows().empty
    assert src.read_bytes() == b"k\n1\n"


def test_permanent_delete_keeps_in_place_file_under_default_home_layout(
    storage: Path, tmp_path: Path
) -> None:
    """The default storage root is `~/.lineage/storage`: a user's own file registered in place
    there has `/.lineage/` in its path, yet it is not a copy lineage made."""
    root = tmp_path / "home" / ".lineage" / "storage"
    ln.settings.storage = root
    src = write(root / "projects" / "keep.csv", b"mine\n")
    artifact = ln.Artifact(src, key="keep.csv").save()
    assert artifact.storage_path == str(src.resolve())
    artifact.delete(permanent=True)
    assert artifact_rows().empty
    assert src.exists(), "permanent delete removed a file lineage did not copy"


# --------------------------------------------------------------------------------------------
# ln.save: bulk
# --------------------------------------------------------------------------------------------


def test_bulk_save_50_artifacts(storage: Path, tmp_path: Path) -> None:
    paths = [write(tmp_path / "bulk" / f"f{i:02d}.txt", f"file {i}\n".encode()) for i in range(50)]
    artifacts = [ln.Artifact(p, key=f"bulk/{p.name}") for p in paths]
    result = ln.save(artifacts)
    assert [id(a) for a in result] == [id(a) for a in artifacts]

    assert len({a.uid for a in artifacts}) == 50
    assert len({a.id for a in artifacts}) == 50
    assert all(isinstance(a.id, int) for a in artifacts)
    for a, p in zip(artifacts, paths):
        assert a.path == storage.resolve() / ".lineage" / f"{a.uid}.txt"
        assert a.path.read_bytes() == p.read_bytes()
        assert a.is_latest is True and a.branch == 1
    assert len(managed_files(storage)) == 50

    rows = ln.cypher(
        "MATCH (a:Artifact) "
        "OPTIONAL MATCH (a)-[s:STORED_IN]->(:Storage) WITH a, count(s) AS stored "
        "OPTIONAL MATCH (a)-[c:CREATED_BY]->(u:User {handle: $handle}) "
        "RETURN a.uid AS uid, a.id AS id, a.key AS key, stored, count(c) AS created_by",
        handle=ln.settings.user,
    )
    assert len(rows) == 50
    assert rows["uid"].is_unique and rows["id"].is_unique
    assert set(rows["stored"]) == {1}
    assert set(rows["created_by"]) == {1}
    assert set(rows["key"]) == {f"bulk/{p.name}" for p in paths}
    assert dict(zip(rows["uid"], rows["id"])) == {a.uid: a.id for a in artifacts}


def test_bulk_save_identical_files_make_one_node(
    storage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = ln.Artifact(write(tmp_path / "a.txt", b"same"), key="a.txt")
    b = ln.Artifact(write(tmp_path / "b.txt", b"same"), key="b.txt")
    c = ln.Artifact(write(tmp_path / "c.txt", b"other"), key="c.txt")
    with caplog.at_level(logging.WARNING, logger="lineage"):
        ln.save([a, b, c])
    assert a.uid == b.uid and a.uid != c.uid
    rows = artifact_rows()
    assert sorted(rows["uid"]) == sorted([a.uid, c.uid])
    assert len(managed_files(storage)) == 2
    assert any(a.uid in r.getMessage() for r in caplog.records if r.name == "lineage")


def test_bulk_save_failure_leaves_no_files_or_nodes(storage: Path, tmp_path: Path) -> None:
    paths = [write(tmp_path / "in" / f"f{i}.txt", f"content {i}".encode()) for i in range(5)]
    artifacts = [ln.Artifact(p, key=p.name) for p in paths]
    paths[3].unlink()  # the 4th copy fails after 3 files were copied
    with pytest.raises(FileNotFoundError):
        ln.save(artifacts)
    assert managed_files(storage) == []
    assert artifact_rows().empty
    assert all(a.id is None and a.storage_path is None for a in artifacts)

    # Put the file back: saving again works.
    write(paths[3], b"content 3")
    ln.save(artifacts)
    assert len(artifact_rows()) == 5
    assert len(managed_files(storage)) == 5


def test_bulk_save_node_write_failure_removes_copies(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifacts = [
        ln.Artifact(write(tmp_path / f"f{i}.txt", f"c{i}".encode()), key=f"f{i}.txt")
        for i in range(3)
    ]

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure in create_many")

    monkeypatch.setattr(graph.records, "create_many", fail)
    with pytest.raises(RuntimeError, match="injected"):
        ln.save(artifacts)
    assert managed_files(storage) == []
    assert artifact_rows().empty


def test_save_refuses_non_lists(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt")
    with pytest.raises(TypeError, match="list"):
        ln.save(artifact)
    with pytest.raises(TypeError):
        ln.save(42)
    with pytest.raises(TypeError, match="str"):
        ln.save([artifact, "not a record"])
    assert artifact_rows().empty
    assert managed_files(storage) == []
    assert ln.save([]) == []


# --------------------------------------------------------------------------------------------
# fields, describe
# --------------------------------------------------------------------------------------------


MANAGED_FIELDS = {
    "hash": "x",
    "hash_type": "md5",
    "uid": "A" * 20,
    "id": 99,
    "is_latest": False,
    "branch": -1,
    "created_at": datetime(2020, 1, 1),
    "updated_at": datetime(2020, 1, 1),
}


def test_managed_fields_cannot_be_set(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt").save()
    before = {field: getattr(artifact, field) for field in MANAGED_FIELDS}
    for field, value in MANAGED_FIELDS.items():
        with pytest.raises(ln.errors.LineageError, match=field):
            setattr(artifact, field, value)
        assert getattr(artifact, field) == before[field], field
    artifact.save()
    stored = node(artifact.uid)
    assert {field: stored[field] for field in MANAGED_FIELDS} == before


def test_storage_path_cannot_be_set(storage: Path, tmp_path: Path) -> None:
    """storage_path is where lineage put the bytes; pointing it elsewhere by hand would make
    the record lie (and make a permanent delete remove another file)."""
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt").save()
    before = artifact.storage_path
    with pytest.raises(ln.errors.LineageError, match="storage_path"):
        artifact.storage_path = str(storage / ".lineage" / "someone-else.txt")
    assert artifact.storage_path == before


def test_update_description_persists_and_bumps_updated_at(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt").save()
    created, updated = artifact.created_at, artifact.updated_at
    time.sleep(0.01)
    artifact.description = "now described"
    assert artifact.save() is artifact
    stored = node(artifact.uid)
    assert stored["description"] == "now described"
    assert stored["updated_at"] > updated
    assert stored["created_at"] == created
    assert artifact.updated_at > updated
    assert artifact.description == "now described"
    assert ln.Artifact.get(artifact.uid).description == "now described"
    assert len(artifact_rows()) == 1  # an update, not a new record

    with pytest.raises(ln.errors.LineageError, match="size"):
        artifact.size = "big"


def test_describe(storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.csv", b"a\n1\n"), key="raw/x.csv").save()
    capsys.readouterr()
    artifact.describe()
    out = capsys.readouterr().out
    assert "raw/x.csv" in out
    assert artifact.uid in out
    assert "Provenance" in out
    assert ln.settings.user in out  # created_by


# --------------------------------------------------------------------------------------------
# atomicity
# --------------------------------------------------------------------------------------------


def test_failed_node_write_removes_copied_file(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"payload"), key="x.txt")
    real = graph.records._take_ids
    copies_seen: list[list[Path]] = []

    def fail(tx: object, label: str, n: int) -> list[int]:
        if label != "Artifact":  # the Storage node is made first, in its own transaction
            return real(tx, label, n)
        # Inside the writing transaction, after the file was copied, before the node exists.
        copies_seen.append(managed_files(storage))
        raise RuntimeError("injected failure in create_record")

    monkeypatch.setattr(graph.records, "_take_ids", fail)
    with pytest.raises(RuntimeError, match="injected"):
        artifact.save()
    assert len(copies_seen) == 1 and len(copies_seen[0]) == 1
    assert managed_files(storage) == []
    assert artifact_rows().empty
    assert artifact.id is None and artifact.storage_path is None

    # A later save works.
    monkeypatch.setattr(graph.records, "_take_ids", real)
    artifact.save()
    assert artifact.path.read_bytes() == b"payload"
    assert artifact_rows()["uid"].tolist() == [artifact.uid]
