"""Collection: the lamindb contract (reference/collection-api.txt) against a real Neo4j.

Every test starts from an empty graph (the `storage` fixture) and asserts what is stored with
`ln.cypher`, not only what the Python objects say. Artifacts are small text files with distinct
content, so their hashes (and the collection hash) can be computed here independently.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import lineage as ln
from lineage.errors import DoesNotExist, InvalidArgument

UID_RE = re.compile(r"^[0-9A-Za-z]{20}$")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def md5_b64(data: bytes) -> str:
    """lamindb's hash of small content: md5, url-safe base64, 22 characters."""
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode()[:22]


def collection_hash(member_hashes: list[str]) -> str:
    """lamindb's collection hash: md5 of the sorted member hashes joined by ':'."""
    return md5_b64(":".join(sorted(member_hashes)).encode())


def make_artifact(root: Path, name: str, *, save: bool = True) -> ln.Artifact:
    """An artifact from a small text file whose content is unique to `name`."""
    src = root / "src"
    src.mkdir(exist_ok=True)
    path = src / f"{name}.txt"
    path.write_text(f"the content of {name}\n")
    artifact = ln.Artifact(path, key=f"files/{name}.txt")
    return artifact.save() if save else artifact


def artifacts(root: Path, *names: str) -> list[ln.Artifact]:
    return [make_artifact(root, n) for n in names]


def q(query: str, **params) -> pd.DataFrame:
    return ln.cypher(query, **params)


def n_collections() -> int:
    return int(q("MATCH (c:Collection) RETURN count(c) AS n")["n"][0])


def n_artifacts() -> int:
    return int(q("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0])


def members_in_graph(uid: str) -> list[tuple[int, str]]:
    """(position, artifact uid) of a collection's CONTAINS edges, by position."""
    df = q(
        "MATCH (:Collection {uid: $u})-[r:CONTAINS]->(a:Artifact) "
        "RETURN r.position AS position, a.uid AS uid ORDER BY position",
        u=uid,
    )
    return [(int(p), u) for p, u in zip(df["position"], df["uid"])]


def node(uid: str) -> dict:
    df = q("MATCH (c:Collection {uid: $u}) RETURN properties(c) AS p", u=uid)
    assert len(df) == 1, f"expected one Collection node {uid}, found {len(df)}"
    return df["p"][0]


# --------------------------------------------------------------------------------------------
# constructor
# --------------------------------------------------------------------------------------------
def test_name_and_key_are_synonyms(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "a1", "a2")
    by_name = ln.Collection([a1, a2], name="x")
    by_key = ln.Collection([a1, a2], key="x")
    both = ln.Collection([a1, a2], key="x", name="x")
    for c in (by_name, by_key, both):
        assert c.key == "x"
        assert c.name == "x"
    with pytest.raises(InvalidArgument) as err:
        ln.Collection([a1, a2], name="x", key="y")
    assert "'x'" in str(err.value) and "'y'" in str(err.value)
    # constructing writes nothing
    assert n_collections() == 0
    saved = by_name.save()
    assert node(saved.uid)["key"] == "x"


def test_fields_after_save(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "f1", "f2")
    c = ln.Collection(
        [a1, a2],
        key="atlas/batch1/counts",
        description="two files",
        reference="GSE12345",
        reference_type="geo",
        version="1.0",
    )
    assert c.uid is not None and c.id is None  # uid chosen at construction, id on save
    c.save()

    assert UID_RE.match(c.uid), c.uid
    assert c.uid.endswith("0000")
    assert c.stem_uid == c.uid[:16] and len(c.stem_uid) == 16
    assert c.key == "atlas/batch1/counts"
    assert c.name == "counts"
    assert c.description == "two files"
    assert c.reference == "GSE12345"
    assert c.reference_type == "geo"
    assert c.version == "1.0"
    assert c.is_latest is True
    assert c.branch == 1
    assert isinstance(c.id, int)

    # member hashes are lamindb's md5, the collection hash is computed independently here
    assert a1.hash == md5_b64(b"the content of f1\n")
    assert a2.hash == md5_b64(b"the content of f2\n")
    assert c.hash == collection_hash([a1.hash, a2.hash])
    assert len(c.hash) == 22

    assert isinstance(c.created_at, datetime) and c.created_at.tzinfo is not None
    assert isinstance(c.updated_at, datetime)
    assert c.updated_at >= c.created_at

    stored = node(c.uid)
    for field in ("key", "description", "reference", "reference_type", "version", "hash", "id"):
        assert stored[field] == getattr(c, field), field
    assert stored["is_latest"] is True
    assert stored["branch"] == 1


def test_hash_does_not_depend_on_order(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3 = artifacts(tmp_path, "h1", "h2", "h3")
    c = ln.Collection([a3, a1, a2], key="h")
    assert c.hash == collection_hash([a1.hash, a2.hash, a3.hash])


def test_save_writes_node_and_all_edges(storage: Path, tmp_path: Path) -> None:
    a1, a2, meta = artifacts(tmp_path, "e1", "e2", "meta")
    transform = ln.Transform(key="make_collection.py", kind="script").save()
    run = ln.Run(transform).save()
    c = ln.Collection([a1, a2], key="edges", meta=meta, run=run)
    assert n_collections() == 0
    c.save()

    assert members_in_graph(c.uid) == [(0, a1.uid), (1, a2.uid)]
    df = q("MATCH (:Collection {uid: $u})-[:HAS_META]->(m:Artifact) RETURN m.uid AS uid", u=c.uid)
    assert df["uid"].tolist() == [meta.uid]
    df = q("MATCH (:Collection {uid: $u})-[:GENERATED_BY]->(r:Run) RETURN r.uid AS uid", u=c.uid)
    assert df["uid"].tolist() == [run.uid]
    df = q("MATCH (:Collection {uid: $u})-[:CREATED_BY]->(u:User) RETURN u.handle AS h", u=c.uid)
    assert df["h"].tolist() == [ln.settings.user]
    # the meta artifact is not a member
    df = q(
        "MATCH (:Collection {uid: $u})-[:CONTAINS]->(m:Artifact {uid: $m}) RETURN m",
        u=c.uid,
        m=meta.uid,
    )
    assert df.empty

    # the same through the API, also on a freshly fetched record
    for rec in (c, ln.Collection.get(c.uid)):
        assert rec.run.uid == run.uid
        assert rec.transform.uid == transform.uid
        assert rec.created_by.handle == ln.settings.user
        assert rec.meta_artifact.uid == meta.uid
        assert rec.data_artifact.uid == a1.uid
        assert [a.uid for a in rec.ordered_artifacts] == [a1.uid, a2.uid]
        assert rec.artifacts.count() == 2


def test_save_is_all_or_nothing(storage: Path, tmp_path: Path) -> None:
    """A member that vanished from the graph before save: nothing of the collection is written."""
    a1, a2 = artifacts(tmp_path, "g1", "g2")
    c = ln.Collection([a1, a2], key="gone")
    q("MATCH (a:Artifact {uid: $u}) DETACH DELETE a", u=a2.uid)
    with pytest.raises(ValueError, match=a2.uid):
        c.save()
    assert n_collections() == 0
    assert int(q("MATCH ()-[r:CONTAINS]->() RETURN count(r) AS n")["n"][0]) == 0


def test_single_artifact_with_meta(storage: Path, tmp_path: Path) -> None:
    data, meta = artifacts(tmp_path, "images", "image_metadata")
    c = ln.Collection(data, name="rxrx", meta=meta).save()
    assert c.key == "rxrx"
    assert c.meta_artifact.uid == meta.uid
    assert c.data_artifact.uid == data.uid
    assert [a.uid for a in c.ordered_artifacts] == [data.uid]
    assert c.artifacts.count() == 1
    assert c.hash == collection_hash([data.hash])  # the meta artifact is not hashed in
    assert meta.meta_of_collection.uid == c.uid
    assert members_in_graph(c.uid) == [(0, data.uid)]
    assert int(q("MATCH (:Collection)-[r:HAS_META]->() RETURN count(r) AS n")["n"][0]) == 1


def test_description_reference_run_revises_keywords(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "k1", "k2")
    transform = ln.Transform(key="kw", kind="pipeline").save()
    run = ln.Run(transform).save()
    first = ln.Collection(
        [a1], key="kw/c", description="d1", reference="https://x.org/1", reference_type="url"
    ).save()
    second = ln.Collection([a1, a2], revises=first, run=run, description="d2").save()
    assert second.key == "kw/c"  # taken from revises
    assert second.description == "d2"
    assert second.stem_uid == first.stem_uid
    assert second.uid == first.stem_uid + "0001"
    assert second.run.uid == run.uid
    assert second.transform.key == "kw"
    assert first.reference == "https://x.org/1" and first.reference_type == "url"
    assert first.run is None


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------
def test_ordered_artifacts_follow_the_given_order(storage: Path, tmp_path: Path) -> None:
    arts = artifacts(tmp_path, "o0", "o1", "o2", "o3", "o4")  # ids increase in this order
    assert [a.id for a in arts] == sorted(a.id for a in arts)
    order = [arts[3], arts[0], arts[4], arts[1], arts[2]]
    c = ln.Collection(order, key="ordered").save()
    expected = [a.uid for a in order]

    assert [a.uid for a in c.ordered_artifacts] == expected
    assert members_in_graph(c.uid) == list(enumerate(expected))
    assert c.data_artifact.uid == arts[3].uid
    assert isinstance(c.artifacts, ln.QuerySet)
    assert isinstance(c.ordered_artifacts, ln.QuerySet)
    assert c.artifacts.count() == 5
    assert {a.uid for a in c.artifacts} == set(expected)
    fetched = ln.Collection.get(c.uid)
    assert [a.uid for a in fetched.ordered_artifacts] == expected
    assert fetched.data_artifact.uid == arts[3].uid


def test_name_is_last_part_of_key(storage: Path, tmp_path: Path) -> None:
    (a,) = artifacts(tmp_path, "n1")
    c = ln.Collection([a], key="a/b/c").save()
    assert c.name == "c"
    assert c.key == "a/b/c"
    assert ln.Collection.get(c.uid).name == "c"


def test_ulabels_projects_references(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "r1", "r2")
    c = ln.Collection([a1, a2], key="annotated").save()
    label = ln.ULabel(name="tissue").save()
    project = ln.Project(name="atlas").save()
    reference = ln.Reference(name="Smith 2024", doi="10.1000/xyz").save()
    assert c.ulabels.count() == 0

    c.ulabels.add(label)
    c.projects.add(project)
    c.references.add(reference)

    assert [x.uid for x in c.ulabels] == [label.uid]
    assert [x.uid for x in c.projects] == [project.uid]
    assert [x.uid for x in c.references] == [reference.uid]
    for rel, target in (("LABELED_WITH", label), ("IN_PROJECT", project), ("CITES", reference)):
        df = q(f"MATCH (:Collection {{uid: $u}})-[:{rel}]->(t) RETURN t.uid AS uid", u=c.uid)
        assert df["uid"].tolist() == [target.uid], rel
    # the other side sees it
    assert [x.uid for x in label.collections] == [c.uid]
    # adding twice does not duplicate the edge
    c.ulabels.add(label)
    assert int(q("MATCH (:Collection)-[r:LABELED_WITH]->() RETURN count(r) AS n")["n"][0]) == 1


def test_input_of_runs_via_get_inside_track(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "i1", "i2")
    c = ln.Collection([a1, a2], key="inputs").save()
    assert c.input_of_runs.count() == 0
    run = ln.track("x")
    try:
        plain = ln.Collection.get(c.uid)  # not an input without is_run_input
        assert plain.uid == c.uid
        assert c.input_of_runs.count() == 0
        got = ln.Collection.get(c.uid, is_run_input=True)
        assert got.uid == c.uid
    finally:
        ln.finish()
    assert [r.uid for r in c.input_of_runs] == [run.uid]
    df = q("MATCH (r:Run)-[:USED]->(:Collection {uid: $u}) RETURN r.uid AS uid", u=c.uid)
    assert df["uid"].tolist() == [run.uid]
    assert [x.uid for x in run.input_collections] == [c.uid]
    assert run.transform.key == "x"


def test_collection_saved_in_track_is_generated_by_run_not_its_input(
    storage: Path, tmp_path: Path
) -> None:
    a1, a2 = artifacts(tmp_path, "t1", "t2")
    run = ln.track("x")
    try:
        c = ln.Collection([a1, a2], key="made-here").save()
        assert c.run.uid == run.uid
        assert c.transform.key == "x"
        # reading one's own output is not an input of the same run (lamindb; mark_input's doc)
        ln.Collection.get(c.uid, is_run_input=True)
    finally:
        ln.finish()
    df = q("MATCH (:Collection {uid: $u})-[:GENERATED_BY]->(r:Run) RETURN r.uid AS uid", u=c.uid)
    assert df["uid"].tolist() == [run.uid]
    df = q("MATCH (r:Run)-[:USED]->(:Collection {uid: $u}) RETURN r.uid AS uid", u=c.uid)
    assert df["uid"].tolist() == [], "a run must not be recorded as using its own output"


# --------------------------------------------------------------------------------------------
# append, delete, restore
# --------------------------------------------------------------------------------------------
def test_append_makes_an_unsaved_new_version(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3 = artifacts(tmp_path, "p1", "p2", "p3")
    base = ln.Collection([a2, a1], key="fam", description="base").save()
    v2 = base.append(a3)
    assert isinstance(v2, ln.Collection)
    assert v2.id is None  # not saved
    assert n_collections() == 1
    assert v2.key == "fam"
    assert base.is_latest is True

    v2.save()
    assert v2.uid == base.stem_uid + "0001"
    assert v2.stem_uid == base.stem_uid
    assert [a.uid for a in v2.ordered_artifacts] == [a2.uid, a1.uid, a3.uid]
    assert members_in_graph(v2.uid) == [(0, a2.uid), (1, a1.uid), (2, a3.uid)]
    assert v2.hash == collection_hash([a1.hash, a2.hash, a3.hash])
    # the old version is unchanged and no longer latest, in memory and in the graph
    assert members_in_graph(base.uid) == [(0, a2.uid), (1, a1.uid)]
    assert base.is_latest is False
    assert v2.is_latest is True
    assert node(base.uid)["is_latest"] is False
    assert node(v2.uid)["is_latest"] is True
    df = q("MATCH (n:Collection)-[:REVISES]->(o:Collection) RETURN n.uid AS new, o.uid AS old")
    assert list(zip(df["new"], df["old"])) == [(v2.uid, base.uid)]
    assert v2.revises.uid == base.uid
    assert [c.uid for c in v2.versions] == [base.uid, v2.uid]
    assert [c.uid for c in base.versions] == [base.uid, v2.uid]


def test_append_errors(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "ae1", "ae2")
    base = ln.Collection([a1], key="fam").save()
    with pytest.raises(TypeError, match="str"):
        base.append("not an artifact")
    unsaved = make_artifact(tmp_path, "ae3", save=False)
    with pytest.raises(ValueError, match="not saved"):
        base.append(unsaved)
    with pytest.raises(ValueError):
        base.append(a1)  # already a member: the same artifact twice
    draft = ln.Collection([a2], key="draft")
    with pytest.raises(ValueError, match="not saved"):
        draft.append(a1)
    assert n_collections() == 1


def test_delete_trash_and_restore(storage: Path, tmp_path: Path) -> None:
    a1, a2, a3 = artifacts(tmp_path, "d1", "d2", "d3")
    base = ln.Collection([a1, a2], key="trash-me").save()
    v2 = base.append(a3).save()

    v2.delete()
    assert v2.branch == -1
    stored = node(v2.uid)
    assert stored["branch"] == -1 and stored["is_latest"] is False
    assert node(base.uid)["is_latest"] is True  # previous version promoted
    assert [c.uid for c in ln.Collection.filter()] == [base.uid]
    assert ln.Collection.filter(key="trash-me").count() == 1
    trashed = ln.Collection.get(v2.uid)  # get by uid sees every branch
    assert trashed.branch == -1
    assert ln.Collection.get(key="trash-me").uid == base.uid
    assert ln.Collection.get(base.uid).is_latest is True
    assert n_artifacts() == 3

    v2.restore()
    assert v2.branch == 1 and v2.is_latest is True
    assert node(v2.uid)["branch"] == 1
    assert node(v2.uid)["is_latest"] is True
    assert node(base.uid)["is_latest"] is False
    assert {c.uid for c in ln.Collection.filter()} == {base.uid, v2.uid}


def test_second_delete_and_permanent_delete_keep_member_artifacts(
    storage: Path, tmp_path: Path
) -> None:
    a1, a2, a3 = artifacts(tmp_path, "pd1", "pd2", "pd3")
    base = ln.Collection([a1, a2], key="perm").save()
    v2 = base.append(a3).save()
    label = ln.ULabel(name="lbl").save()
    v2.ulabels.add(label)
    v2_uid = v2.uid

    v2.delete()
    v2.delete()  # second delete: gone for good
    assert q("MATCH (c:Collection {uid: $u}) RETURN c", u=v2_uid).empty
    with pytest.raises(DoesNotExist):
        ln.Collection.get(v2_uid)
    # its edges went with it; the base's stay
    assert int(q("MATCH ()-[r:CONTAINS]->() RETURN count(r) AS n")["n"][0]) == 2
    assert int(q("MATCH ()-[r:REVISES]->() RETURN count(r) AS n")["n"][0]) == 0
    assert int(q("MATCH ()-[r:LABELED_WITH]->() RETURN count(r) AS n")["n"][0]) == 0
    assert node(base.uid)["is_latest"] is True
    # member artifacts, their files and the label remain
    assert n_artifacts() == 3
    assert all(Path(a.storage_path).exists() for a in (a1, a2, a3))
    assert ln.ULabel.filter(name="lbl").count() == 1

    base.delete(permanent=True)  # skips the trash
    assert n_collections() == 0
    assert int(q("MATCH ()-[r:CONTAINS]->() RETURN count(r) AS n")["n"][0]) == 0
    assert n_artifacts() == 3
    assert {a.uid for a in ln.Artifact.filter()} == {a1.uid, a2.uid, a3.uid}


def test_describe_prints_key_and_artifacts(storage: Path, tmp_path: Path, capsys) -> None:
    a1, a2 = artifacts(tmp_path, "ds1", "ds2")
    c = ln.Collection([a2, a1], key="described").save()
    capsys.readouterr()
    c.describe()
    out = capsys.readouterr().out
    assert "described" in out
    assert "Artifacts" in out
    assert a1.uid in out and a2.uid in out
    assert "files/ds1.txt" in out and "files/ds2.txt" in out
    assert out.index(a2.uid) < out.index(a1.uid)  # listed in collection order


# --------------------------------------------------------------------------------------------
# dedup
# --------------------------------------------------------------------------------------------
def test_same_artifacts_return_the_existing_collection(
    storage: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a1, a2, a3 = artifacts(tmp_path, "s1", "s2", "s3")
    first = ln.Collection([a1, a2], key="first").save()
    with caplog.at_level(logging.WARNING, logger="lineage"):
        again = ln.Collection([a2, a1], key="second")
    assert again.uid == first.uid
    assert again.key == "first"
    assert again.id == first.id
    warnings = [r for r in caplog.records if r.name == "lineage" and r.levelno == logging.WARNING]
    assert warnings and first.uid in warnings[0].getMessage()
    again.save()
    assert n_collections() == 1

    # revises= another family: a new version of that family, not the existing collection
    other = ln.Collection([a3], key="other").save()
    new = ln.Collection([a1, a2], revises=other).save()
    assert new.uid == other.stem_uid + "0001"
    assert new.uid != first.uid
    assert new.key == "other"
    assert n_collections() == 3
    assert node(first.uid)["is_latest"] is True  # the first family is untouched


def test_trashed_collection_is_not_reused(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "tr1", "tr2")
    first = ln.Collection([a1, a2], key="t").save()
    first.delete()
    again = ln.Collection([a1, a2], key="t").save()
    assert again.uid != first.uid
    assert n_collections() == 2


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_invalid_members_raise(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "x1", "x2")
    with pytest.raises(TypeError) as err:
        ln.Collection([a1, a2, "x3.txt"], key="bad")
    assert "2" in str(err.value) and "str" in str(err.value)
    with pytest.raises(TypeError, match="int"):
        ln.Collection([a1, 7], key="bad")
    with pytest.raises(ValueError, match="empty"):
        ln.Collection([], key="bad")
    unsaved = make_artifact(tmp_path, "x4", save=False)
    with pytest.raises(ValueError, match="not saved"):
        ln.Collection([a1, unsaved], key="bad")
    with pytest.raises(ValueError):
        ln.Collection([a1, a2, a1], key="bad")
    assert n_collections() == 0


def test_invalid_arguments_raise(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "y1", "y2")
    with pytest.raises(TypeError, match="meta"):
        ln.Collection([a1], key="bad", meta="meta.csv")
    with pytest.raises(ValueError, match="not saved"):
        ln.Collection([a1], key="bad", meta=make_artifact(tmp_path, "y3", save=False))
    with pytest.raises(TypeError, match="revises"):
        ln.Collection([a1], key="bad", revises=a2)
    with pytest.raises(InvalidArgument, match="colour"):
        ln.Collection([a1], key="bad", colour="red")
    with pytest.raises(InvalidArgument):
        ln.Collection([a1, a2])
    with pytest.raises(InvalidArgument):
        ln.Collection([a1, a2], key=None, name=None)
    assert n_collections() == 0


def test_version_tag_clash_writes_nothing(storage: Path, tmp_path: Path) -> None:
    a1, a2 = artifacts(tmp_path, "vt1", "vt2")
    base = ln.Collection([a1], key="tagged", version="1").save()
    # Refused when made, as lamindb does (it was refused at save() before).
    with pytest.raises(ln.errors.VersionTagExists, match="'1'"):
        ln.Collection([a1, a2], revises=base, version="1")
    assert n_collections() == 1
    assert node(base.uid)["is_latest"] is True
    assert int(q("MATCH ()-[r:REVISES]->() RETURN count(r) AS n")["n"][0]) == 0
    assert members_in_graph(base.uid) == [(0, a1.uid)]
    # another tag is fine
    ok = ln.Collection([a1, a2], revises=base, version="2").save()
    assert ok.uid == base.stem_uid + "0001"


# --------------------------------------------------------------------------------------------
# class methods
# --------------------------------------------------------------------------------------------
@pytest.fixture
def three(storage: Path, tmp_path: Path) -> dict[str, ln.Collection]:
    a1, a2, a3, a4 = artifacts(tmp_path, "q1", "q2", "q3", "q4")
    pbmc = ln.Collection([a1, a2], key="scrna/pbmc", description="blood").save()
    pbmc_v2 = pbmc.append(a3).save()
    extra = ln.Collection([a4], key="scrna/pbmc-extra").save()
    other = ln.Collection([a1, a4], key="My Data-set").save()
    return {"pbmc": pbmc, "pbmc_v2": pbmc_v2, "extra": extra, "other": other, "a1": a1, "a3": a3}


def test_df(three: dict) -> None:
    df = ln.Collection.df()
    assert df.index.name == "id"
    assert {"uid", "key", "hash", "description", "version", "is_latest"} <= set(df.columns)
    assert "updated_at" not in df.columns
    assert len(df) == 4
    for c in (three["pbmc"], three["pbmc_v2"], three["extra"], three["other"]):
        assert df.loc[c.id, "uid"] == c.uid
        assert df.loc[c.id, "key"] == c.key
        assert df.loc[c.id, "hash"] == c.hash
    withuser = ln.Collection.df(include="created_by__handle")
    assert "created_by__handle" in withuser.columns
    assert set(withuser["created_by__handle"]) == {ln.settings.user}
    assert len(ln.Collection.df(limit=2)) == 2


def test_filter(three: dict) -> None:
    by_name = ln.Collection.filter(name__startswith="scrna/pbmc")
    assert {c.uid for c in by_name} == {three["pbmc"].uid, three["pbmc_v2"].uid, three["extra"].uid}
    assert ln.Collection.filter(name="My Data-set").one().uid == three["other"].uid
    contains_a1 = ln.Collection.filter(artifacts__key="files/q1.txt")
    assert {c.uid for c in contains_a1} == {
        three["pbmc"].uid,
        three["pbmc_v2"].uid,
        three["other"].uid,
    }
    contains_a3 = ln.Collection.filter(artifacts__key="files/q3.txt")
    assert [c.uid for c in contains_a3] == [three["pbmc_v2"].uid]
    assert ln.Collection.filter(is_latest=True).count() == 3


def test_get(three: dict) -> None:
    pbmc, v2 = three["pbmc"], three["pbmc_v2"]
    assert ln.Collection.get(pbmc.uid).uid == pbmc.uid  # the exact version
    assert ln.Collection.get(pbmc.uid[:10]).uid == v2.uid  # a stem prefix: the latest
    assert ln.Collection.get(pbmc.stem_uid).uid == v2.uid
    assert ln.Collection.get(key="scrna/pbmc").uid == v2.uid
    assert ln.Collection.get(pbmc.id).uid == pbmc.uid
    assert ln.Collection.get(v2.id).uid == v2.uid
    got = ln.Collection.get(key="My Data-set")
    assert got.uid == three["other"].uid and got.hash == three["other"].hash
    with pytest.raises(DoesNotExist):
        ln.Collection.get(key="nope")
    with pytest.raises(DoesNotExist):
        ln.Collection.get("0" * 20)


def test_lookup(three: dict) -> None:
    lookup = ln.Collection.lookup()
    assert lookup.my_data_set.uid == three["other"].uid
    assert lookup.scrna_pbmc_extra.uid == three["extra"].uid
    as_dict = lookup.dict()
    assert as_dict["My Data-set"].uid == three["other"].uid
    assert as_dict["scrna/pbmc-extra"].uid == three["extra"].uid
    uids = ln.Collection.lookup(return_field="uid")
    assert uids.my_data_set == three["other"].uid


def test_search(three: dict) -> None:
    exact = ln.Collection([three["a3"]], key="pbmc").save()
    result = ln.Collection.search("pbmc")
    assert result.first().uid == exact.uid  # the exact match first
    assert {c.uid for c in result} == {
        exact.uid,
        three["pbmc"].uid,
        three["pbmc_v2"].uid,
        three["extra"].uid,
    }
    df = result.df()
    assert "score" in df.columns
    assert df["uid"].iloc[0] == exact.uid
    assert list(df["score"]) == sorted(df["score"], reverse=True)
    assert df["score"].iloc[0] > df["score"].iloc[1:].max()
    hits = ln.Collection.search("data-set")
    assert [c.uid for c in hits] == [three["other"].uid]
    assert len(ln.Collection.search("no such thing")) == 0


def test_using_another_instance(three: dict, neo4j) -> None:
    s = neo4j.settings
    ln.settings.add_instance("other", s.uri, user=s.user, password=s.password, database=s.database)
    there = ln.Collection.using("other")
    assert {c.uid for c in there} == {c.uid for c in ln.Collection.filter()}
    got = there.filter(key="My Data-set").one()
    assert got.uid == three["other"].uid
    assert [a.uid for a in got.ordered_artifacts] == [
        a.uid for a in three["other"].ordered_artifacts
    ]
    assert there.search("My Data-set").first().uid == three["other"].uid  # the reference's example
    with pytest.raises(InvalidArgument, match="no-such-instance"):
        ln.Collection.using("no-such-instance")


def test_ln_save_writes_new_collections_in_one_batch(
    storage: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = artifacts(tmp_path, *(f"bulk{i}" for i in range(6)))
    meta = make_artifact(tmp_path, "bulk-meta")
    run = ln.Run(ln.Transform(key="bulk.py").save()).save()
    drafts = [
        ln.Collection(members[0:2], key="bulk/a", meta=meta, run=run),
        ln.Collection(list(reversed(members[2:4])), key="bulk/b", description="b"),
        ln.Collection(members[4:6], key="bulk/c"),
    ]
    twin = ln.Collection(members[0:2], key="bulk/a-again")  # the same content as the first
    batches: list[int] = []
    create_many = ln._collection.gr.create_many  # type: ignore[attr-defined]

    def counting(conn, label, records, **kwargs):  # noqa: ANN001, ANN202
        batches.append(len(records))
        return create_many(conn, label, records, **kwargs)

    monkeypatch.setattr(ln._collection.gr, "create_many", counting)  # type: ignore[attr-defined]
    ln.save([*drafts, twin])
    assert batches == [3]  # one write for the three, none for the twin
    assert twin.uid == drafts[0].uid and n_collections() == 3
    assert members_in_graph(drafts[1].uid) == [(0, members[3].uid), (1, members[2].uid)]
    stored = ln.Collection.get(key="bulk/a")
    assert stored.meta_artifact == meta and stored.run == run and stored.is_latest
    assert ln.Collection.get(key="bulk/b").description == "b"


def test_ln_save_refuses_a_collection_of_unsaved_artifacts(storage: Path, tmp_path: Path) -> None:
    saved = make_artifact(tmp_path, "kept")
    draft = ln.Collection([saved], key="bulk/unsaved")
    draft._members.append(make_artifact(tmp_path, "not-saved", save=False))  # after the check
    with pytest.raises(ln.errors.NotSaved):
        ln.save([draft])
    assert n_collections() == 0
