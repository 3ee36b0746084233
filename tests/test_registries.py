"""The small registries (ULabel, Project, Reference, Space, User, Storage), many-relations,
creators (`CREATED_BY`) and `ln.save()` for non-artifact records, against the real graph."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest

import lineage as ln
from lineage.errors import InvalidArgument, ValidationError


def make_artifact(storage: Path, key: str, content: str | None = None) -> ln.Artifact:
    src = storage.parent / "src"
    src.mkdir(exist_ok=True)
    path = src / key.replace("/", "__")
    path.write_text(content if content is not None else f"content of {key}\n")
    return ln.Artifact(path, key=key).save()


def node(label: str, uid: str) -> dict:
    df = ln.cypher(f"MATCH (n:{label} {{uid: $uid}}) RETURN n", uid=uid)
    assert len(df) == 1, f"{label} {uid}: {len(df)} nodes"
    return df["n"].iloc[0]


def edge_targets(uid: str, edge: str) -> list[str]:
    df = ln.cypher(
        f"MATCH (n {{uid: $uid}})-[:{edge}]->(m) RETURN m.uid AS uid ORDER BY m.id", uid=uid
    )
    return df["uid"].tolist()


def creator_handles(uid: str) -> list[str]:
    df = ln.cypher(
        "MATCH (n {uid: $uid})-[:CREATED_BY]->(u:User) RETURN u.handle AS handle", uid=uid
    )
    return df["handle"].tolist()


# --------------------------------------------------------------------------------------------
# create, fields, uids
# --------------------------------------------------------------------------------------------
def test_create_each_registry(storage: Path, tmp_path: Path) -> None:
    label = ln.ULabel(name="tissue", description="a tissue label").save()
    assert len(label.uid) == 8 and isinstance(label.id, int)
    assert (label.name, label.description, label.branch) == ("tissue", "a tissue label", 1)
    assert isinstance(label.created_at, dt.datetime) and label.created_at.tzinfo is not None
    stored = node("ULabel", label.uid)
    assert (stored["name"], stored["description"], stored["id"], stored["branch"]) == (
        "tissue", "a tissue label", label.id, 1,
    )  # fmt: skip

    project = ln.Project(name="atlas", description="cell atlas").save()
    assert len(project.uid) == 12
    assert node("Project", project.uid)["name"] == "atlas"

    ref = ln.Reference(name="Smith 2024", url="https://example.org/p", doi="10.1000/xyz").save()
    assert len(ref.uid) == 12
    got = node("Reference", ref.uid)
    assert (got["name"], got["url"], got["doi"]) == (
        "Smith 2024",
        "https://example.org/p",
        "10.1000/xyz",
    )

    space = ln.Space(name="team-a", description="team A").save()
    assert len(space.uid) == 12 and node("Space", space.uid)["name"] == "team-a"

    user = ln.User(handle="bob-handle", name="Bob").save()
    assert len(user.uid) == 8
    got = node("User", user.uid)
    assert (got["handle"], got["name"]) == ("bob-handle", "Bob")
    assert ln.User.get(handle="bob-handle").uid == user.uid

    root = str((tmp_path / "another-root").resolve())
    st = ln.Storage(root=root, description="extra").save()
    assert len(st.uid) == 12 and node("Storage", st.uid)["root"] == root
    assert ln.Storage.get(root=root).uid == st.uid

    # ids count per registry, from 1
    second = ln.ULabel(name="second").save()
    assert second.id == label.id + 1
    # get round-trips every field
    fetched = ln.ULabel.get(label.uid)
    assert (fetched.name, fetched.description, fetched.id) == (
        label.name,
        label.description,
        label.id,
    )
    assert fetched == label and hash(fetched) == hash(label)


def test_unsaved_record_has_no_uid_and_no_node(storage: Path) -> None:
    label = ln.ULabel(name="draft")
    assert label.uid is None and label.id is None
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [0]
    with pytest.raises(InvalidArgument):
        label.artifacts  # relations are known once saved


def test_update_changes_the_graph(storage: Path) -> None:
    label = ln.ULabel(name="old name").save()
    uid, created = label.uid, label.created_at
    label.name = "new name"
    label.description = "now described"
    assert label.save() is label
    assert label.uid == uid and label.created_at == created
    stored = node("ULabel", uid)
    assert (stored["name"], stored["description"]) == ("new name", "now described")
    assert stored["updated_at"] > stored["created_at"]
    assert ln.ULabel.filter(name="old name").count() == 0
    assert ln.ULabel.get(name="new name").uid == uid
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [1]
    # a record fetched from the graph updates too
    fetched = ln.ULabel.get(uid)
    fetched.name = "third name"
    fetched.save()
    assert node("ULabel", uid)["name"] == "third name"
    label.refresh_from_db()
    assert label.name == "third name"
    # clearing a field
    fetched.description = None
    fetched.save()
    assert node("ULabel", uid).get("description") is None

    project = ln.Project(name="p").save()
    project.name = "renamed"
    project.save()
    assert node("Project", project.uid)["name"] == "renamed"


def test_delete_and_restore(storage: Path) -> None:
    label = ln.ULabel(name="temp").save()
    keep = ln.ULabel(name="keep").save()
    label.delete()
    assert label.branch == -1
    assert node("ULabel", label.uid)["branch"] == -1
    assert [r.name for r in ln.ULabel.filter()] == ["keep"]
    assert ln.ULabel.get(label.uid).branch == -1
    label.restore()
    assert label.branch == 1 and node("ULabel", label.uid)["branch"] == 1
    assert sorted(r.name for r in ln.ULabel.filter()) == ["keep", "temp"]

    # trash twice: gone for good, with its edges
    label.delete()
    label.delete()
    assert ln.cypher("MATCH (u:ULabel {uid: $uid}) RETURN count(u) AS n", uid=label.uid)[
        "n"
    ].tolist() == [0]
    # permanent at once
    keep.delete(permanent=True)
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [0]
    # the creator stays
    assert ln.User.filter(handle=ln.settings.user).count() == 1

    project = ln.Project(name="p").save()
    project.delete()
    assert ln.Project.filter().count() == 0 and ln.Project.filter(branch=-1).count() == 1
    project.restore()
    assert ln.Project.filter().count() == 1


def test_unknown_keyword_and_wrong_types(storage: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        ln.ULabel(name="x", colour="red")
    assert "colour" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        ln.Project(name="x", budget=3)
    assert "budget" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        ln.Reference(name="x", journal="Nature")
    assert "journal" in str(info.value)

    with pytest.raises(ValidationError) as info:
        ln.ULabel(name=3)
    assert "name" in str(info.value)
    with pytest.raises(ValidationError):
        ln.Reference(name="r", doi=10.1)
    with pytest.raises(ValidationError):
        ln.Space(name=["a"])
    label = ln.ULabel(name="ok").save()
    with pytest.raises(ValidationError):
        label.name = 3
    # lineage-managed fields are read-only
    with pytest.raises(InvalidArgument):
        label.uid = "abcdefgh"
    with pytest.raises(InvalidArgument):
        ln.ULabel(name="x", uid="abcdefgh")
    assert node("ULabel", label.uid)["name"] == "ok"
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [1]


# --------------------------------------------------------------------------------------------
# many-relations
# --------------------------------------------------------------------------------------------
def test_ulabels_add_remove_set(storage: Path) -> None:
    artifact = make_artifact(storage, "data/a.txt")
    l1, l2, l3 = (ln.ULabel(name=n).save() for n in ["l1", "l2", "l3"])

    artifact.ulabels.add(l1, l2)
    assert edge_targets(artifact.uid, "LABELED_WITH") == [l1.uid, l2.uid]
    assert sorted(r.name for r in artifact.ulabels) == ["l1", "l2"]
    assert artifact.ulabels.count() == 2
    artifact.ulabels.add(l1)  # already there: no second edge
    assert edge_targets(artifact.uid, "LABELED_WITH") == [l1.uid, l2.uid]

    artifact.ulabels.remove(l1)
    assert edge_targets(artifact.uid, "LABELED_WITH") == [l2.uid]
    assert [r.name for r in artifact.ulabels] == ["l2"]
    assert ln.ULabel.filter().count() == 3  # the label itself stays

    artifact.ulabels.add([l1, l3])  # a list works too
    assert edge_targets(artifact.uid, "LABELED_WITH") == [l1.uid, l2.uid, l3.uid]
    artifact.ulabels.set([l2])
    assert edge_targets(artifact.uid, "LABELED_WITH") == [l2.uid]
    assert [r.name for r in artifact.ulabels] == ["l2"]
    artifact.ulabels.set([])
    assert edge_targets(artifact.uid, "LABELED_WITH") == []
    artifact.ulabels.set([l2])

    # the reverse side
    assert [a.uid for a in l2.artifacts] == [artifact.uid]
    assert l1.artifacts.count() == 0
    other = make_artifact(storage, "data/b.txt")
    other.ulabels.add(l2)
    assert sorted(a.key for a in l2.artifacts) == ["data/a.txt", "data/b.txt"]
    # a fetched record sees the same relations
    assert [r.name for r in ln.Artifact.get(artifact.uid).ulabels] == ["l2"]
    # the relation queryset filters further
    assert [r.name for r in artifact.ulabels.filter(name__startswith="l")] == ["l2"]


def test_ulabels_add_rejects_unsaved_and_wrong_types(storage: Path) -> None:
    artifact = make_artifact(storage, "data/a.txt")
    saved = ln.ULabel(name="saved").save()
    with pytest.raises(ValueError):
        artifact.ulabels.add(ln.ULabel(name="unsaved"))
    with pytest.raises(ValueError):
        artifact.ulabels.add(saved, ln.ULabel(name="unsaved"))  # nothing added, not even `saved`
    assert edge_targets(artifact.uid, "LABELED_WITH") == []
    with pytest.raises(TypeError):
        artifact.ulabels.add(ln.Project(name="p").save())
    with pytest.raises(TypeError):
        artifact.ulabels.add("saved")
    assert edge_targets(artifact.uid, "LABELED_WITH") == []
    assert edge_targets(artifact.uid, "IN_PROJECT") == []
    assert ln.ULabel.filter().count() == 1  # the unsaved label was not saved on the way


def test_projects_and_references(storage: Path) -> None:
    artifact = make_artifact(storage, "data/a.txt")
    project = ln.Project(name="atlas").save()
    ref = ln.Reference(name="paper", doi="10.1/x").save()
    artifact.projects.add(project)
    artifact.references.add(ref)
    assert edge_targets(artifact.uid, "IN_PROJECT") == [project.uid]
    assert edge_targets(artifact.uid, "CITES") == [ref.uid]
    assert [p.name for p in artifact.projects] == ["atlas"]
    assert [r.doi for r in artifact.references] == ["10.1/x"]
    assert [a.uid for a in project.artifacts] == [artifact.uid]
    assert [a.uid for a in ref.artifacts] == [artifact.uid]
    # the edge types do not leak into each other
    assert edge_targets(artifact.uid, "LABELED_WITH") == []
    with pytest.raises(TypeError):
        artifact.projects.add(ref)
    # collections take annotations too
    collection = ln.Collection([artifact], key="coll").save()
    collection.projects.add(project)
    assert edge_targets(collection.uid, "IN_PROJECT") == [project.uid]
    assert [c.uid for c in project.collections] == [collection.uid]
    assert [a.uid for a in ln.Artifact.filter(projects=project)] == [artifact.uid]


# --------------------------------------------------------------------------------------------
# users and creators
# --------------------------------------------------------------------------------------------
def test_user_is_created_on_first_save(storage: Path) -> None:
    handle = ln.settings.user
    assert ln.User.filter().count() == 0
    label = ln.ULabel(name="first").save()
    users = ln.User.filter().to_list()
    assert [u.handle for u in users] == [handle]
    assert len(users[0].uid) == 8
    assert creator_handles(label.uid) == [handle]
    assert label.created_by.handle == handle
    assert ln.ULabel.get(label.uid).created_by.uid == users[0].uid
    ln.ULabel(name="second").save()
    ln.Project(name="p").save()
    assert ln.User.filter().count() == 1
    assert ln.cypher("MATCH (u:User) RETURN count(u) AS n")["n"].tolist() == [1]


def test_lineage_user_env_overrides_creator(storage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = ln.ULabel(name="before").save()
    handle = f"alice-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("LINEAGE_USER", handle)
    assert ln.settings.user == handle
    label = ln.ULabel(name="by-alice").save()
    artifact = make_artifact(storage, "alice.txt")
    assert creator_handles(label.uid) == [handle]
    assert creator_handles(artifact.uid) == [handle]
    assert ln.ULabel.get(label.uid).created_by.handle == handle
    assert creator_handles(before.uid) != [handle]
    assert ln.User.get(handle=handle).name == handle
    assert [u.handle for u in ln.User.filter(handle=handle)] == [handle]
    assert [r.name for r in ln.ULabel.filter(created_by__handle=handle)] == ["by-alice"]


def test_one_user_node_per_handle_under_concurrent_saves(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = f"conc-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LINEAGE_USER", handle)
    n_threads = 4
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []
    saved: list[str] = []

    def work(i: int) -> None:
        try:
            label = ln.ULabel(name=f"t{i}")
            barrier.wait(timeout=30)
            label.save()
            saved.append(label.uid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(saved) == n_threads
    users = ln.cypher("MATCH (u:User {handle: $h}) RETURN u.uid AS uid, u.id AS id", h=handle)
    assert len(users) == 1
    assert users["id"].iloc[0] is not None
    df = ln.cypher(
        "MATCH (l:ULabel)-[:CREATED_BY]->(u:User) RETURN l.uid AS label, u.handle AS handle"
    )
    assert sorted(df["label"]) == sorted(saved)
    assert set(df["handle"]) == {handle}


# --------------------------------------------------------------------------------------------
# ln.save and CREATED_BY everywhere
# --------------------------------------------------------------------------------------------
def test_save_many_non_artifact_records(storage: Path) -> None:
    l1, l2, l3 = (ln.ULabel(name=n) for n in ["s1", "s2", "s3"])
    out = ln.save([l1, l2, l3])
    assert [r.name for r in out] == ["s1", "s2", "s3"]
    assert all(r._saved and r.uid is not None and len(r.uid) == 8 for r in (l1, l2, l3))
    assert sorted(ln.cypher("MATCH (u:ULabel) RETURN u.name AS n")["n"]) == ["s1", "s2", "s3"]
    assert len({l1.id, l2.id, l3.id}) == 3
    # mixed registries, and already-saved records are updated
    l1.name = "s1-renamed"
    project = ln.Project(name="proj")
    ln.save([l1, project])
    assert node("ULabel", l1.uid)["name"] == "s1-renamed"
    assert node("Project", project.uid)["name"] == "proj"
    assert ln.cypher("MATCH (u:ULabel) RETURN count(u) AS n")["n"].tolist() == [3]
    with pytest.raises(TypeError):
        ln.save(ln.ULabel(name="single"))
    with pytest.raises(TypeError):
        ln.save([ln.ULabel(name="ok"), "not a record"])


def test_every_saved_record_has_exactly_one_creator(storage: Path, tmp_path: Path) -> None:
    records = [
        ln.ULabel(name="l").save(),
        ln.Project(name="p").save(),
        ln.Reference(name="r").save(),
        ln.Space(name="s").save(),
        ln.Storage(root=str((tmp_path / "root2").resolve())).save(),
    ]
    transform = ln.Transform(key="t", kind="function").save()
    run = ln.Run(transform).save()
    artifact = make_artifact(storage, "c.txt")
    collection = ln.Collection([artifact], key="c").save()
    records += [transform, run, artifact, collection]
    records += ln.save([ln.ULabel(name="b1"), ln.ULabel(name="b2")])
    bulk_file = storage.parent / "bulk.txt"
    bulk_file.write_text("bulk")
    records += ln.save([ln.Artifact(bulk_file, key="bulk.txt")])
    # updates and relation changes add no creators
    records[0].name = "l2"
    records[0].save()
    artifact.ulabels.add(records[0])
    track_run = ln.track("creator-check")
    records.append(track_run)
    records.append(make_artifact(storage, "in-run.txt"))
    ln.finish()

    for record in records:
        assert creator_handles(record.uid) == [ln.settings.user], (
            type(record).__name__,
            record.uid,
        )
    counts = ln.cypher(
        "MATCH (n) WHERE n.uid IN $uids "
        "RETURN n.uid AS uid, COUNT { (n)-[:CREATED_BY]->() } AS creators",
        uids=[r.uid for r in records],
    )
    assert len(counts) == len(records)
    assert set(counts["creators"]) == {1}


def test_storage_registered_by_an_artifact_save_has_a_creator(storage: Path) -> None:
    # docs/schema.md: (any)-[:CREATED_BY]->(:User); lamindb's Storage has created_by like every record.
    make_artifact(storage, "registers-storage.txt")
    df = ln.cypher(
        "MATCH (s:Storage {root: $root}) RETURN COUNT { (s)-[:CREATED_BY]->(:User) } AS creators",
        root=str(storage.resolve()),
    )
    assert df["creators"].tolist() == [1]
