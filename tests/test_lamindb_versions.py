"""Versions by key, `get()` on versioned registries, `replace()`, and when content is looked up,
each as lamindb 2.x does it (docs/architecture.md, "Versions and keys"), against a real Neo4j
and real files.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

import graph.records
import lineage as ln
from lineage.errors import (
    DoesNotExist,
    InvalidArgument,
    InvalidType,
    MissingFile,
    MultipleResultsFound,
    NotSaved,
    NotSupported,
    QueryError,
    VersionTagExists,
)

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def every_file(root: Path) -> list[Path]:
    """Every file under a directory, hidden ones (backups, temporary names) included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def rows(label: str = "Artifact") -> pd.DataFrame:
    return ln.cypher(
        f"MATCH (a:{label}) RETURN a.uid AS uid, a.key AS key, a.hash AS hash, "
        "a.is_latest AS is_latest, a.branch AS branch, a.storage_path AS storage_path "
        "ORDER BY a.uid"
    )


def revises_edges(label: str = "Artifact") -> list[tuple[str, str]]:
    edges = ln.cypher(
        f"MATCH (n:{label})-[:REVISES]->(o:{label}) RETURN n.uid AS new, o.uid AS old ORDER BY new"
    )
    return list(zip(edges["new"], edges["old"]))


def node(uid: str, label: str = "Artifact") -> dict:
    found = ln.cypher(f"MATCH (a:{label} {{uid: $uid}}) RETURN a", uid=uid)
    assert len(found) == 1, f"expected one {label} {uid}, found {len(found)}"
    return found.iloc[0]["a"]


def df(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n))})


def text_artifact(tmp_path: Path, name: str) -> ln.Artifact:
    return ln.Artifact(write(tmp_path / "members" / name, f"member {name}\n"), key=name).save()


# --------------------------------------------------------------------------------------------
# 1. a key names a version family
# --------------------------------------------------------------------------------------------


def test_new_content_under_a_stored_key_is_a_new_version(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = ln.Artifact(df(1), key="x.parquet").save()
    with caplog.at_level(logging.INFO, logger="lineage"):
        v2 = ln.Artifact(df(2), key="x.parquet")
    assert v2.revises == v1 and v2.uid is None  # a version's uid is taken when it is written
    assert "new version" in caplog.text
    v2.save()
    assert v2.uid == v1.stem_uid + "0001" and v2.key == "x.parquet"
    assert v2.is_latest and v2.revises.is_latest is False
    assert ln.Artifact.get(key="x.parquet") == v2  # was MultipleResultsFound: two families
    assert revises_edges() == [(v2.uid, v1.uid)]
    assert dict(zip(rows()["uid"], rows()["is_latest"])) == {v1.uid: False, v2.uid: True}
    assert v1.path.exists() and v2.path.name == f"{v2.uid}.parquet"
    # the same content again is still the stored record, under any key
    assert ln.Artifact(df(1), key="x.parquet").uid == v1.uid
    assert ln.Artifact(df(2), key="elsewhere.parquet").uid == v2.uid


def test_a_key_names_a_family_per_storage(storage: Path, tmp_path: Path) -> None:
    first = ln.Artifact(df(1), key="t.parquet").save()
    ln.settings.storage = tmp_path / "second-root"
    other = ln.Artifact(df(2), key="t.parquet").save()
    assert other.stem_uid != first.stem_uid and other.uid.endswith("0000")
    assert revises_edges() == []
    # back in the first storage, the key continues the first family
    ln.settings.storage = storage
    v2 = ln.Artifact(df(3), key="t.parquet").save()
    assert v2.uid == first.stem_uid + "0001"


def test_trashed_versions_are_not_continued_by_key(storage: Path) -> None:
    gone = ln.Artifact(df(1), key="gone.parquet").save()
    gone.delete()
    fresh = ln.Artifact(df(2), key="gone.parquet").save()
    assert fresh.stem_uid != gone.stem_uid  # a trashed family is not found by key

    v1 = ln.Artifact(df(3), key="t.parquet").save()
    v2 = ln.Artifact(df(4), key="t.parquet").save()
    v2.delete()  # the trash: v1 is the head again
    v3 = ln.Artifact(df(5), key="t.parquet").save()
    assert v3.uid == v1.stem_uid + "0002"  # the counter counts the trashed version
    assert (v3.uid, v1.uid) in revises_edges()
    assert ln.Artifact.get(key="t.parquet") == v3


def test_a_key_prefers_the_main_branch_head(storage: Path) -> None:
    """is_latest is per branch: the head on the main branch is revised, even when a version on
    another branch (the archive, set by hand here) is newer; without one, that version."""
    v1 = ln.Artifact(df(1), key="t.parquet").save()
    v2 = ln.Artifact(df(2), key="t.parquet").save()
    ln.cypher(
        "MATCH (a:Artifact {uid: $v2}) SET a.branch = 0 WITH a "
        "MATCH (b:Artifact {uid: $v1}) SET b.is_latest = true",
        v1=v1.uid,
        v2=v2.uid,
    )
    v3 = ln.Artifact(df(3), key="t.parquet")
    assert v3.revises == v1
    v3.save()
    assert v3.uid == v1.stem_uid + "0002" and (v3.uid, v1.uid) in revises_edges()
    assert node(v2.uid)["is_latest"] is True  # the archive's head is its own

    other = ln.Artifact(df(4), key="o.parquet").save()
    ln.cypher("MATCH (a:Artifact {uid: $uid}) SET a.branch = 0", uid=other.uid)
    assert ln.Artifact(df(5), key="o.parquet").revises == other


def test_version_tag_of_a_version_found_by_key(storage: Path) -> None:
    v1 = ln.Artifact(df(1), key="t.parquet", version="1").save()
    v2 = ln.Artifact(df(2), key="t.parquet", version="2").save()
    assert (v2.version, v2.stem_uid) == ("2", v1.stem_uid)
    clash = ln.Artifact(df(3), key="t.parquet", version="1")
    with pytest.raises(VersionTagExists, match="'1'"):
        clash.save()
    assert len(rows()) == 2
    assert sorted(p.name for p in (storage / ".lineage").iterdir()) == sorted(
        [v1.path.name, v2.path.name]
    )


def test_explicit_revises_wins_over_the_key(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = ln.Artifact(df(1), key="a.parquet", description="table a").save()
    b = ln.Artifact(df(2), key="b.parquet").save()
    with caplog.at_level(logging.WARNING, logger="lineage"):
        moved = ln.Artifact(df(3), key="b.parquet", revises=a).save()
    assert "renaming artifact from 'a.parquet' to 'b.parquet'" in caplog.text
    assert moved.uid == a.stem_uid + "0001" and moved.key == "b.parquet"
    assert moved.description == "table a"  # a new version keeps the description (lamindb)
    assert node(b.uid)["is_latest"] is True  # the family named b.parquet is untouched


def test_a_key_left_behind_by_its_family_starts_a_new_one(storage: Path) -> None:
    a1 = ln.Artifact(df(1), key="x.parquet").save()
    a2 = ln.Artifact(df(2), key="y.parquet", revises=a1).save()  # the family moved on to y
    fresh = ln.Artifact(df(3), key="x.parquet")  # lamindb refuses this key (no latest under it)
    assert fresh.revises is None
    fresh.save()
    assert fresh.stem_uid != a1.stem_uid and node(a2.uid)["is_latest"] is True
    assert ln.Artifact.get(key="x.parquet") == fresh


def test_ln_save_saves_versions_found_by_key(storage: Path, tmp_path: Path) -> None:
    v1 = ln.Artifact(df(1), key="t.parquet").save()
    fresh = ln.Artifact(df(2), key="new.parquet")
    v2 = ln.Artifact(df(3), key="t.parquet")
    ln.save([fresh, v2])
    assert fresh.uid.endswith("0000") and v2.uid == v1.stem_uid + "0001"
    assert ln.Artifact.get(key="t.parquet") == v2


def test_two_unsaved_artifacts_under_a_new_key_make_one_family(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = ln.Artifact(df(1), key="new.parquet")
    b = ln.Artifact(df(2), key="new.parquet")  # constructed before either is saved
    a.save()
    with caplog.at_level(logging.WARNING, logger="lineage"):
        b.save()  # its write finds the family a started (under the label's lock)
    assert "saved meanwhile" in caplog.text
    assert b.uid == a.stem_uid + "0001" and revises_edges() == [(b.uid, a.uid)]
    assert ln.Artifact.get(key="new.parquet") == b
    assert sorted(p.name for p in (storage / ".lineage").iterdir()) == sorted(
        [f"{a.uid}.parquet", f"{b.uid}.parquet"]  # the copy under b's drawn uid is gone
    )

    # ln.save of both at once: the second waits for the first's family
    c = ln.Artifact(df(3), key="batch.parquet")
    d = ln.Artifact(df(4), key="batch.parquet")
    e = ln.Artifact(df(5), key="other.parquet")
    ln.save([c, d, e])
    assert d.uid == c.stem_uid + "0001" and e.uid.endswith("0000")
    assert ln.Artifact.get(key="batch.parquet") == d


def test_a_family_started_meanwhile_is_joined_in_a_batch(storage: Path) -> None:
    """The batch write itself finds the family another writer started after construction."""
    mine = ln.Artifact(df(1), key="race.parquet")
    bystander = ln.Artifact(df(2), key="calm.parquet")
    theirs = ln.Artifact(df(3), key="race.parquet")
    theirs.save()
    ln.save([mine, bystander])
    assert mine.uid == theirs.stem_uid + "0001" and mine.is_latest
    assert bystander.uid.endswith("0000")
    assert sorted(rows()["key"]) == ["calm.parquet", "race.parquet", "race.parquet"]
    assert len(every_file(storage / ".lineage")) == 3


def test_two_unsaved_versions_of_a_stored_key(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    v1 = ln.Artifact(df(1), key="t.parquet").save()
    a = ln.Artifact(df(2), key="t.parquet")
    b = ln.Artifact(df(3), key="t.parquet")
    assert a.revises == v1 and b.revises == v1
    a.save()
    with caplog.at_level(logging.WARNING, logger="lineage"):
        b.save()
    assert "not the latest version" in caplog.text
    assert (a.uid, b.uid) == (v1.stem_uid + "0001", v1.stem_uid + "0002")
    assert revises_edges() == [(a.uid, v1.uid), (b.uid, a.uid)]  # b revises the head it found
    assert ln.Artifact.get(key="t.parquet") == b


def test_a_collection_key_names_a_family(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3, a4 = (text_artifact(tmp_path, f"a{i}.txt") for i in range(1, 5))
    c1 = ln.Collection([a1], key="scrna", description="all batches", version="1").save()
    c2 = ln.Collection([a1, a2], key="scrna").save()
    assert c2.uid == c1.stem_uid + "0001" and c2.description == "all batches"
    assert ln.Collection.get(key="scrna") == c2
    assert revises_edges("Collection") == [(c2.uid, c1.uid)]
    # the same members under another key: the stored collection, as before
    assert ln.Collection([a2, a1], key="elsewhere").uid == c2.uid
    # the version tag the head has is refused when the collection is made, as in lamindb
    tagged = ln.Collection([a3], key="scrna", version="2").save()
    with pytest.raises(VersionTagExists, match="'2'"):
        ln.Collection([a1, a3], key="scrna", version="2")
    assert tagged.uid == c1.stem_uid + "0002"

    # two unsaved collections under one new key: one family, alone or through ln.save
    x = ln.Collection([a2], key="new")
    y = ln.Collection([a2, a3], key="new")
    x.save()
    y.save()
    assert y.uid == x.stem_uid + "0001"
    p = ln.Collection([a4], key="pair")
    q = ln.Collection([a1, a4], key="pair")
    ln.save([p, q])
    assert q.uid == p.stem_uid + "0001"
    assert [a.key for a in q.ordered_artifacts] == ["a1.txt", "a4.txt"]


# --------------------------------------------------------------------------------------------
# 2. get(**fields) on a versioned registry
# --------------------------------------------------------------------------------------------


def test_get_by_fields_takes_the_latest_version_that_matches(storage: Path) -> None:
    a1 = ln.Artifact(df(1), key="x.parquet").save()
    a2 = ln.Artifact(df(2), key="y.parquet", revises=a1).save()  # the family moved on to y
    b0 = ln.Artifact(df(3), key="w.parquet").save()
    b1 = ln.Artifact(df(4), key="x.parquet", revises=b0).save()  # another family, now x
    # a1 and b1 match, but only b1 is latest (was MultipleResultsFound: two families)
    assert ln.Artifact.get(key="x.parquet") == b1
    assert ln.Artifact.get(key="y.parquet") == a2
    # no latest version matches: the newest match
    ln.Artifact(df(5), key="z.parquet", revises=b1).save()
    assert ln.Artifact.get(key="x.parquet") == b1
    assert ln.Artifact.get(suffix=".parquet", key__startswith="x") == b1
    # is_latest given: a plain get
    with pytest.raises(MultipleResultsFound):
        ln.Artifact.get(key="x.parquet", is_latest=False)
    assert ln.Artifact.get(key="y.parquet", is_latest=True) == a2
    with pytest.raises(DoesNotExist):
        ln.Artifact.get(key="y.parquet", is_latest=False)
    with pytest.raises(DoesNotExist):
        ln.Artifact.get(key="nope.parquet")
    # uid lookups are unchanged: a full uid is that version
    assert ln.Artifact.get(a1.uid) == a1


def test_get_by_fields_refuses_several_latest_versions(storage: Path, tmp_path: Path) -> None:
    one = ln.Artifact(df(1), key="t.parquet").save()
    ln.settings.storage = tmp_path / "second-root"
    two = ln.Artifact(df(2), key="t.parquet").save()
    with pytest.raises(MultipleResultsFound, match="several version families"):
        ln.Artifact.get(key="t.parquet")
    assert ln.Artifact.get(key="t.parquet", storage__root=str(tmp_path / "second-root")) == two
    assert ln.Artifact.filter(key="t.parquet").get(uid=one.uid) == one


# --------------------------------------------------------------------------------------------
# 3. replace()
# --------------------------------------------------------------------------------------------


def test_replace_keeps_the_uid_and_swaps_the_bytes(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "a.csv", "x\n1\n"), key="t.csv").save()
    path, old_hash = artifact.path, artifact.hash
    assert artifact.replace(write(tmp_path / "b.csv", "x\n1\n2\n")) is None
    assert node(artifact.uid)["hash"] == old_hash and path.read_text() == "x\n1\n"  # not yet
    artifact.save()
    assert artifact.uid.endswith("0000") and artifact.path == path
    assert path.read_text() == "x\n1\n2\n"
    stored = node(artifact.uid)
    assert stored["hash"] == artifact.hash != old_hash
    assert (stored["size"], stored["suffix"], stored["key"]) == (6, ".csv", "t.csv")
    assert len(rows()) == 1 and revises_edges() == []
    assert every_file(storage) == [path]  # no backup left behind


def test_replace_with_another_suffix_renames_key_and_file(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "a.csv", "x\n1\n"), key="tables/t.csv").save()
    old_path = artifact.path
    artifact.replace(df(5))
    artifact.save()
    assert (artifact.key, artifact.suffix) == ("tables/t.parquet", ".parquet")
    assert (artifact.otype, artifact.n_observations) == ("DataFrame", 5)
    assert artifact.path.name == f"{artifact.uid}.parquet"
    assert every_file(storage) == [artifact.path] and not old_path.exists()
    assert node(artifact.uid)["storage_path"] == str(artifact.path)
    assert artifact.load().shape == (5, 1)
    assert every_file(ln.settings.cache_dir / "staging") == []
    # a key without a suffix gains the new one (lamindb: PurePosixPath(key).with_suffix)
    marker = ln.Artifact(write(tmp_path / "_SUCCESS", "done"), key="job/_SUCCESS").save()
    marker.replace(write(tmp_path / "ok.txt", "ok"))
    assert marker.save().key == "job/_SUCCESS.txt"


def test_replace_with_stored_content_changes_nothing(storage: Path, tmp_path: Path) -> None:
    a = ln.Artifact(write(tmp_path / "a.txt", "aaa"), key="a.txt").save()
    b = ln.Artifact(write(tmp_path / "b.txt", "bbb"), key="b.txt").save()
    returned = a.replace(write(tmp_path / "copy-of-b.txt", "bbb"))
    assert returned == b  # lamindb returns the artifact that has the content
    a.save()
    assert a.hash != b.hash and a.path.read_text() == "aaa"
    assert a.replace(write(tmp_path / "again.txt", "aaa")) == a  # unchanged content


def test_replace_failed_write_restores_the_old_bytes(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = ln.Artifact(write(tmp_path / "a.csv", "x\n1\n"), key="t.csv").save()
    old = (artifact.hash, artifact.size, artifact.path)
    real = graph.records._delete_edges
    seen: list[bytes] = []

    def fail(*args, **kwargs):  # inside the transaction, after the new bytes are in place
        seen.append(Path(artifact.storage_path).read_bytes())
        raise QueryError("Neo.ClientError.Test: injected")

    monkeypatch.setattr(graph.records, "_delete_edges", fail)
    artifact.replace(write(tmp_path / "b.csv", "x\n9\n"))
    with pytest.raises(QueryError, match="injected"):
        artifact.save()
    assert seen == [b"x\n9\n"]
    assert (artifact.hash, artifact.size, artifact.path) == old  # the object as stored
    assert node(artifact.uid)["hash"] == old[0]
    assert old[2].read_text() == "x\n1\n" and every_file(storage) == [old[2]]

    # a new suffix: the new file goes, the old one stays
    artifact.replace(df(2))
    with pytest.raises(QueryError):
        artifact.save()
    assert seen[-1].startswith(b"PAR1")  # the parquet file was written, then removed
    assert every_file(storage) == [old[2]] and node(artifact.uid)["suffix"] == ".csv"

    monkeypatch.setattr(graph.records, "_delete_edges", real)
    artifact.save()  # the pending replacement is saved once the graph takes it
    assert artifact.suffix == ".parquet" and every_file(storage) == [artifact.path]


def test_replace_an_artifact_registered_in_place(storage: Path, tmp_path: Path) -> None:
    src = write(storage / "inbox" / "sample.txt", "old")
    artifact = ln.Artifact(src, key="inbox/sample.txt").save()
    artifact.replace(write(tmp_path / "new.txt", "new"))
    artifact.save()
    assert artifact.path == src.resolve() and src.read_text() == "new"  # as lamindb: in place
    assert every_file(storage) == [src]
    # another suffix renames the file; a file already there is refused, nothing changed
    write(storage / "inbox" / "sample.csv", "someone else's")
    with pytest.raises(InvalidArgument, match="exists already"):
        artifact.replace(write(tmp_path / "new.csv", "a,b\n"))
    assert src.read_text() == "new" and artifact.suffix == ".txt"
    (storage / "inbox" / "sample.csv").unlink()
    artifact.replace(write(tmp_path / "new.csv", "a,b\n"))
    artifact.save()
    assert artifact.path == (storage / "inbox" / "sample.csv").resolve()
    assert artifact.key == "inbox/sample.csv" and not src.exists()


def test_replace_sets_the_run(storage: Path, tmp_path: Path) -> None:
    run = ln.track("make.py")
    artifact = ln.Artifact(write(tmp_path / "a.txt", "one"), key="a.txt").save()
    ln.finish()
    assert artifact.run == run
    later = ln.track("fix.py")
    artifact.replace(write(tmp_path / "b.txt", "two"))
    artifact.save()
    assert ln.Artifact.get(artifact.uid).run == later
    ln.finish()
    artifact.replace(write(tmp_path / "c.txt", "three"))  # no run: lamindb records none
    artifact.save()
    assert ln.Artifact.get(artifact.uid).run is None


def test_replace_refuses_bad_input(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "a.txt", "aaa"), key="a.txt").save()
    with pytest.raises(NotSaved):
        ln.Artifact(write(tmp_path / "u.txt", "unsaved"), key="u.txt").replace(tmp_path / "a.txt")
    with pytest.raises(MissingFile):
        artifact.replace(tmp_path / "missing.txt")
    with pytest.raises(NotSupported, match="for a folder, save a new version"):
        artifact.replace(tmp_path)
    with pytest.raises(InvalidType):
        artifact.replace(42)
    with pytest.raises(InvalidType, match="run="):
        artifact.replace(tmp_path / "a.txt", run="not a run")
    with pytest.raises(NotSupported, match="format"):
        artifact.replace(df(2), format="csv")
    with pytest.raises(InvalidArgument, match="registered storage"):
        artifact.replace(write(storage / "in-storage.txt", "zzz"))
    assert artifact.save().path.read_text() == "aaa"
    assert node(artifact.uid)["hash"] == artifact.hash
    assert every_file(ln.settings.cache_dir / "staging") == []


# --------------------------------------------------------------------------------------------
# 4-6. when content is looked up
# --------------------------------------------------------------------------------------------


def test_empty_files_are_never_one_artifact(storage: Path, tmp_path: Path) -> None:
    a = ln.Artifact(write(tmp_path / "a" / "_SUCCESS", b""), key="jobA/_SUCCESS").save()
    b = ln.Artifact(write(tmp_path / "b" / "_SUCCESS", b""), key="jobB/_SUCCESS").save()
    assert b.uid != a.uid and b.key == "jobB/_SUCCESS"  # was: b returned a
    assert sorted(rows()["key"]) == ["jobA/_SUCCESS", "jobB/_SUCCESS"]
    assert ln.Artifact.get(key="jobB/_SUCCESS") == b
    # in one ln.save, too (the save-time duplicate check compares key and storage as well)
    c = ln.Artifact(write(tmp_path / "c" / "_SUCCESS", b""), key="jobC/_SUCCESS")
    d = ln.Artifact(write(tmp_path / "d" / "_SUCCESS", b""), key="jobD/_SUCCESS")
    ln.save([c, d])
    assert len({a.uid, b.uid, c.uid, d.uid}) == 4
    # the same empty file under the same key is the stored record (lamindb's unique
    # storage, key and hash)
    again = ln.Artifact(write(tmp_path / "e" / "_SUCCESS", b""), key="jobB/_SUCCESS").save()
    assert again.uid == b.uid and len(rows()) == 4
    assert len(every_file(storage / ".lineage")) == 4


def test_a_file_moved_inside_a_storage_root_is_a_new_record(storage: Path) -> None:
    src = write(storage / "inbox" / "data.csv", "a,b\n1,2\n")
    first = ln.Artifact(src).save()
    assert ln.Artifact(src).save().uid == first.uid  # the same file again: the same record
    moved = storage / "archive" / "data.csv"
    moved.parent.mkdir()
    os.replace(src, moved)
    second = ln.Artifact(moved).save()
    assert second.uid != first.uid  # was: the old record, whose path no longer exists
    assert second.path == moved.resolve() and second.path.exists()
    assert dict(zip(rows()["uid"], rows()["storage_path"])) == {
        first.uid: str(src.resolve()),
        second.uid: str(moved.resolve()),
    }
    # under the same key, the moved file is the family's new version with the new path
    keyed = ln.Artifact(write(storage / "k" / "one.csv", "k\n"), key="k.csv").save()
    os.replace(storage / "k" / "one.csv", storage / "k" / "two.csv")
    v2 = ln.Artifact(storage / "k" / "two.csv", key="k.csv").save()
    assert v2.uid == keyed.stem_uid + "0001" and v2.path.exists()


def test_skip_hash_lookup(storage: Path, tmp_path: Path) -> None:
    content = "same bytes\n"
    first = ln.Artifact(write(tmp_path / "a.txt", content), key="a.txt").save()
    copy = ln.Artifact(write(tmp_path / "b.txt", content), key="b.txt", skip_hash_lookup=True)
    assert copy.uid != first.uid
    copy.save()  # a duplicate hash under another key is stored (lamindb's constraint)
    assert copy.uid != first.uid and copy.hash == first.hash
    assert sorted(rows()["key"]) == ["a.txt", "b.txt"]
    # under the same key and storage, save() gives back the stored record
    same = ln.Artifact(write(tmp_path / "c.txt", content), key="a.txt", skip_hash_lookup=True)
    assert same.save().uid == first.uid and len(rows()) == 2
    # two in one ln.save under different keys: two records
    x = ln.Artifact(write(tmp_path / "x.txt", "twin\n"), key="x.txt", skip_hash_lookup=True)
    y = ln.Artifact(write(tmp_path / "y.txt", "twin\n"), key="y.txt", skip_hash_lookup=True)
    ln.save([x, y])
    assert x.uid != y.uid and len(rows()) == 4
    # False forces the look-up for a file in a storage root (default: none)
    in_root = write(storage / "dropped" / "a.txt", content)
    assert ln.Artifact(in_root, skip_hash_lookup=False).uid == first.uid
    assert ln.Artifact(in_root).uid != first.uid
    with pytest.raises(InvalidType, match="skip_hash_lookup"):
        ln.Artifact(in_root, skip_hash_lookup="yes")


def test_concurrent_saves_under_one_new_key_make_one_family(storage: Path) -> None:
    """Four writers construct artifacts under a key nobody has yet, then save at once: the
    label's lock lets one start the family; the others become its versions."""
    drafts = [ln.Artifact(df(i + 1), key="race.parquet") for i in range(4)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def save(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            drafts[i].save()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stems = {d.stem_uid for d in drafts}
    assert len(stems) == 1
    assert sorted(d.uid[-4:] for d in drafts) == ["0000", "0001", "0002", "0003"]
    assert list(rows()["is_latest"]).count(True) == 1
    assert len(every_file(storage / ".lineage")) == 4
