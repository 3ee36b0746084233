"""Records, runs and deletion as lamindb has them, checked in the real graph.

Each behaviour here was found by running lamindb's own tests against lineage's API: a
collection's members are inputs of the run that made it, a transform is not deleted out from
under its runs, a storage root in use is kept, a lookup by id, uid or hash sees the trash, a
transform has its uid when made, an unknown field is refused when set, and lamindb's
`QuerySet.update()` and `Artifact.get(path=...)`. docs/architecture.md, "Records, runs and
deletion", says where lineage chose otherwise and why.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

import lineage as ln
from graph import Connection
from lineage._run import _script_transform
from lineage.errors import (
    DoesNotExist,
    InvalidArgument,
    InvalidType,
    MissingTarget,
    ValidationError,
)
from tests.conftest import make_artifact


def inputs_of(run: ln.Run, label: str = "Artifact") -> list[str]:
    """uids of the records a run USED, from the graph."""
    df = ln.cypher(
        f"MATCH (:Run {{uid: $uid}})-[:USED]->(d:{label}) RETURN d.uid AS uid ORDER BY uid",
        uid=run.uid,
    )
    return df["uid"].tolist()


def used_edges(run: ln.Run, uid: str) -> int:
    df = ln.cypher(
        "MATCH (:Run {uid: $run})-[e:USED]->({uid: $uid}) RETURN count(e) AS n",
        run=run.uid,
        uid=uid,
    )
    return int(df["n"][0])


def count(label: str) -> int:
    return int(ln.cypher(f"MATCH (n:{label}) RETURN count(n) AS n")["n"][0])


def new_run(key: str = "pipeline.py") -> ln.Run:
    return ln.Run(ln.Transform(key=key).save()).save()


# --------------------------------------------------------------------------------------------
# A collection's members are inputs of the run that made it (lamindb: Collection.__init__
# calls track_run_inputs(artifacts, run=run), and the version it revises too)
# --------------------------------------------------------------------------------------------
def test_collection_with_run_records_its_members_as_inputs(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    run = new_run()
    collection = ln.Collection([a1, a2], key="pair", run=run).save()
    assert collection.run == run
    assert inputs_of(run) == sorted([a1.uid, a2.uid])
    assert sorted(a.uid for a in run.input_artifacts) == sorted([a1.uid, a2.uid])


def test_collection_inside_track_records_its_members_as_inputs(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    run = ln.track("combine")
    collection = ln.Collection([a1, a2], key="pair").save()
    ln.finish()
    assert collection.run == run
    assert inputs_of(run) == sorted([a1.uid, a2.uid])


def test_collection_without_a_run_records_no_inputs(storage: Path) -> None:
    a1 = make_artifact(storage, "m/a1.txt")
    ln.Collection([a1], key="alone").save()
    assert int(ln.cypher("MATCH ()-[e:USED]->() RETURN count(e) AS n")["n"][0]) == 0


def test_member_made_by_the_same_run_is_not_its_input(storage: Path) -> None:
    before = make_artifact(storage, "m/before.txt")
    run = ln.track("combine")
    made = make_artifact(storage, "m/made.txt")  # an output of `run`
    ln.Collection([before, made], key="mixed").save()
    ln.finish()
    assert made.run == run
    assert inputs_of(run) == [before.uid]


def test_an_input_recorded_before_is_not_doubled(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    run = ln.track("combine")
    ln.Artifact.get(a1.uid, is_run_input=True)  # read first
    ln.Collection([a1, a2], key="pair").save()
    ln.finish()
    assert used_edges(run, a1.uid) == 1 and used_edges(run, a2.uid) == 1


def test_new_version_records_the_version_it_revises_as_input(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    v1 = ln.Collection([a1], key="growing").save()
    run = ln.track("grow")
    v2 = v1.append(a2).save()
    ln.finish()
    assert v2.run == run
    assert inputs_of(run) == sorted([a1.uid, a2.uid])
    assert inputs_of(run, "Collection") == [v1.uid]


def test_inputs_are_written_with_the_collection_or_not_at_all(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    run = new_run()
    collection = ln.Collection([a1, a2], key="pair", run=run)
    # A member removed after the collection was made: its CONTAINS edge fails, in the same
    # transaction as the USED edges, so nothing of the collection is written.
    ln.cypher("MATCH (a:Artifact {uid: $uid}) DETACH DELETE a", uid=a2.uid)
    with pytest.raises(MissingTarget):
        collection.save()
    assert count("Collection") == 0
    assert inputs_of(run) == []


def test_batched_collections_record_their_members_as_inputs(storage: Path) -> None:
    members = [make_artifact(storage, f"m/a{i}.txt") for i in range(4)]
    run = new_run()
    other = new_run("other.py")
    first = ln.Collection(members[:2], key="first", run=run)
    second = ln.Collection(members[2:], key="second", run=other)
    ln.save([first, second])
    assert inputs_of(run) == sorted(a.uid for a in members[:2])
    assert inputs_of(other) == sorted(a.uid for a in members[2:])


def test_batched_collections_write_their_inputs_in_the_batch_transaction(storage: Path) -> None:
    members = [make_artifact(storage, f"m/a{i}.txt") for i in range(3)]
    run = new_run()
    batch = [
        ln.Collection(members[:2], key="first", run=run),
        ln.Collection(members[2:], key="second", run=run),
    ]
    ln.cypher("MATCH (a:Artifact {uid: $uid}) DETACH DELETE a", uid=members[2].uid)
    with pytest.raises(MissingTarget):
        ln.save(batch)
    assert count("Collection") == 0
    assert inputs_of(run) == []


def test_collection_found_by_content_still_records_the_inputs(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "m/a1.txt"), make_artifact(storage, "m/a2.txt")
    stored = ln.Collection([a1, a2], key="pair").save()
    run = ln.track("again")
    again = ln.Collection([a1, a2], key="pair")  # the stored collection, nothing to write
    assert again.uid == stored.uid
    assert inputs_of(run) == []  # a constructor writes nothing: saving records the inputs
    again.save()
    ln.finish()
    assert inputs_of(run) == sorted([a1.uid, a2.uid])
    assert again.run is None  # the stored collection keeps its own run (none)


# --------------------------------------------------------------------------------------------
# Deleting a transform: its runs go with it, never while they made data
# (lamindb: Run.transform CASCADE, Artifact.run / Collection.run PROTECT)
# --------------------------------------------------------------------------------------------
def test_deleting_a_transform_deletes_its_runs(storage: Path) -> None:
    transform = ln.Transform(key="cleanup.py").save()
    read = make_artifact(storage, "in/read.txt")
    runs = [ln.Run(transform).save() for _ in range(2)]
    runs[0].input_artifacts.add(read)
    transform.delete(permanent=True)
    assert count("Transform") == 0
    assert count("Run") == 0  # no run is left without its transform, which Run() forbids
    assert ln.Artifact.get(read.uid) == read  # what the runs read stays


def test_deleting_a_transform_whose_runs_made_data_is_refused(storage: Path) -> None:
    transform = ln.Transform(key="maker.py").save()
    idle = ln.Run(transform).save()
    busy = ln.Run(transform).save()
    made = make_artifact(storage, "out/made.txt", run=busy)
    with pytest.raises(InvalidArgument, match=r"1 run\(s\) that made artifacts or collections"):
        transform.delete(permanent=True)
    assert ln.Transform.get(transform.uid).branch == 1
    assert {r.uid for r in transform.runs} == {idle.uid, busy.uid}
    assert made.run == busy
    # Trashing is allowed (nothing is lost); deleting it from the trash is refused the same way.
    transform.delete()
    assert ln.Transform.get(transform.uid).branch == -1
    with pytest.raises(InvalidArgument, match=r"maker\.py"):
        transform.delete()
    assert ln.Run.get(busy.uid).transform == transform


def test_deleting_a_transform_whose_runs_made_a_collection_is_refused(storage: Path) -> None:
    transform = ln.Transform(key="collect.py").save()
    run = ln.Run(transform).save()
    ln.Collection([make_artifact(storage, "c/a.txt")], key="c", run=run).save()
    with pytest.raises(InvalidArgument, match=r"1 run\(s\)"):
        transform.delete(permanent=True)
    assert count("Run") == 1


def test_deleting_a_run_that_made_data_is_refused(storage: Path) -> None:
    run = new_run()
    made = make_artifact(storage, "out/made.txt", run=run)
    with pytest.raises(InvalidArgument, match=r"made 1 artifact\(s\)"):
        run.delete(permanent=True)
    assert ln.Artifact.get(made.uid).run == run
    made.delete(permanent=True)
    run.delete(permanent=True)  # nothing depends on it now
    assert count("Run") == 0


# --------------------------------------------------------------------------------------------
# A storage root in use is neither trashed nor deleted (lamindb: Storage.delete asserts no
# artifacts); the process's cached Storage records follow deletes
# --------------------------------------------------------------------------------------------
def test_storage_in_use_is_neither_trashed_nor_deleted(storage: Path, tmp_path: Path) -> None:
    artifact = make_artifact(storage, "s/a.txt")
    used = artifact.storage
    for permanent in (None, True):
        with pytest.raises(InvalidArgument, match=r"is used by 1 artifact\(s\)"):
            used.delete(permanent=permanent)
    assert ln.Storage.get(used.uid).branch == 1
    assert ln.Artifact.get(artifact.uid).storage == used
    # Later saves still work, and deleting the artifact removes its file.
    other = make_artifact(storage, "s/b.txt")
    assert other.storage == used
    path = artifact.path
    artifact.delete(permanent=True)
    assert not path.exists()


def test_storage_used_by_trashed_artifacts_is_kept(storage: Path) -> None:
    artifact = make_artifact(storage, "s/a.txt")
    artifact.delete()  # in the trash: its file is still there
    with pytest.raises(InvalidArgument, match="trashed ones included"):
        artifact.storage.delete(permanent=True)


def test_unused_storage_can_be_deleted_and_later_saves_make_it_again(storage: Path) -> None:
    first = make_artifact(storage, "s/a.txt")
    old = first.storage
    first.delete(permanent=True)
    old.delete(permanent=True)  # unused now
    assert count("Storage") == 0
    # The process had the record cached: the next save must not point at the deleted node.
    again = make_artifact(storage, "s/b.txt")
    assert again.storage.root == old.root and again.storage.uid != old.uid
    assert again.path.read_text() == "content of s/b.txt\n"


def test_trashed_unused_storage_is_restored_when_used_again(storage: Path) -> None:
    first = make_artifact(storage, "s/a.txt")
    old = first.storage
    first.delete(permanent=True)
    old.delete()  # unused: to the trash
    assert ln.Storage.filter(root=old.root).count() == 0
    again = make_artifact(storage, "s/b.txt")
    assert again.storage == old
    assert ln.Storage.get(old.uid).branch == 1


def test_storage_deleted_by_another_process_is_made_again(storage: Path, tmp_path: Path) -> None:
    # This process caches the Storage record of each root; another process may delete it once
    # unused (here: the node removed behind the cache's back). Saves, single and in a batch,
    # look the storage up again instead of failing from then on.
    first = make_artifact(storage, "s/a.txt")
    first.delete(permanent=True)
    ln.cypher("MATCH (s:Storage) DETACH DELETE s")
    second = make_artifact(storage, "s/b.txt")
    assert second.storage is not None and second.path.exists()
    ln.cypher("MATCH (a:Artifact) DETACH DELETE a")
    ln.cypher("MATCH (s:Storage) DETACH DELETE s")
    src = tmp_path / "batch"
    src.mkdir()
    batch = []
    for i in range(3):
        (src / f"f{i}.txt").write_text(f"batch {i}\n")
        batch.append(ln.Artifact(src / f"f{i}.txt", key=f"batch/f{i}.txt"))
    ln.save(batch)
    assert {a.storage.root for a in batch} == {str(storage)}
    assert count("Storage") == 1


def test_new_version_after_storage_was_deleted_by_another_process(
    storage: Path, tmp_path: Path
) -> None:
    v1 = make_artifact(storage, "s/v.txt")
    elsewhere = tmp_path / "elsewhere"
    ln.settings.storage = elsewhere
    scratch = make_artifact(storage, "s/scratch.txt")  # caches the new root's record
    scratch.delete(permanent=True)
    ln.cypher("MATCH (s:Storage {root: $root}) DETACH DELETE s", root=str(elsewhere))
    source = tmp_path / "v2.txt"
    source.write_text("version 2\n")
    v2 = ln.Artifact(source, revises=v1).save()
    assert v2.storage.root == str(elsewhere) and v2.path.read_text() == "version 2\n"


def test_storage_delete_checks_its_artifacts_in_its_own_transaction(storage: Path, neo4j) -> None:
    # A concurrent save holds the storage node (creating an edge locks both nodes) and commits
    # an artifact stored in it while the delete waits: the delete must count after it got the
    # lock, so it sees that artifact and refuses, rather than deleting the storage under it.
    first = make_artifact(storage, "s/a.txt")
    used = first.storage
    first.delete(permanent=True)
    errors = _delete_while_a_write_is_open(
        neo4j,
        "MATCH (s:Storage {uid: $uid}) "
        "CREATE (:Artifact {uid: 'concurrentwriter0000', id: 999, branch: 1})-[:STORED_IN]->(s)",
        used.uid,
        used,
    )
    assert len(errors) == 1 and isinstance(errors[0], InvalidArgument), errors
    assert ln.Storage.get(used.uid).root == used.root


# --------------------------------------------------------------------------------------------
# filter()/get() by id, uid or hash see the trash (lamindb's process_expressions)
# --------------------------------------------------------------------------------------------
def test_filter_by_id_uid_or_hash_finds_trashed_records(storage: Path) -> None:
    artifact = make_artifact(storage, "t/a.txt")
    artifact.delete()
    assert ln.Artifact.filter(key="t/a.txt").count() == 0
    for lookup in (
        {"id": artifact.id},
        {"uid": artifact.uid},
        {"hash": artifact.hash},
        {"id__in": [artifact.id]},
        {"uid__in": [artifact.uid]},
        {"hash__in": [artifact.hash]},
    ):
        assert ln.Artifact.filter(**lookup).one() == artifact, lookup
    assert ln.Artifact.get(uid=artifact.uid) == artifact
    # Only those keywords: a uid prefix or a Q object keep the main branch, as in lamindb.
    assert ln.Artifact.filter(uid__startswith=artifact.uid[:10]).count() == 0
    assert ln.Artifact.filter(ln.Q(uid=artifact.uid)).count() == 0


def test_cleanup_by_id_deletes_a_trashed_record(storage: Path) -> None:
    transform = ln.Transform(key="gone.py").save()
    transform.delete()
    ln.Transform.filter(id=transform.id).delete(permanent=True)
    assert count("Transform") == 0


def test_other_filter_calls_keep_the_main_branch(storage: Path) -> None:
    trashed = make_artifact(storage, "t/a.txt")
    trashed.delete()
    # lamindb adds its branch condition per filter() call: one by key hides the trash, before
    # or after one by uid.
    assert ln.Artifact.filter(key="t/a.txt").filter(uid=trashed.uid).count() == 0
    assert ln.Artifact.filter(uid=trashed.uid).filter(key="t/a.txt").count() == 0
    assert ln.Artifact.filter(uid=trashed.uid).filter(suffix=".txt", branch=-1).count() == 1
    assert ln.Artifact.filter(uid=trashed.uid, key="t/a.txt").count() == 1


def test_tracking_a_script_does_not_reuse_its_trashed_transform(
    storage: Path, tmp_path: Path
) -> None:
    # ln.track() looks the script's transform up by key and source hash: a lookup by hash sees
    # the trash now, so the lookup itself must keep to the main branch.
    script = tmp_path / "analysis.py"
    script.write_text("print('hello')\n")
    first = _script_transform(script)
    first.delete()
    again = _script_transform(script)
    assert again.uid != first.uid and again.branch == 1


# --------------------------------------------------------------------------------------------
# A transform has its uid when it is made (lamindb's process_revises)
# --------------------------------------------------------------------------------------------
def test_unsaved_transform_has_its_uid(storage: Path) -> None:
    transform = ln.Transform(key="x")
    assert transform.uid is not None and len(transform.uid) == 16
    assert transform.uid.endswith("0000") and transform.stem_uid == transform.uid[:12]
    assert ln.Transform(key="x").uid != transform.uid
    uid = transform.uid
    transform.save()
    assert transform.uid == uid and ln.Transform.get(uid) == transform
    # A new version's counter is taken when it is saved, as for artifacts and collections.
    v2 = ln.Transform(key="x", revises=transform)
    v2.save()
    assert v2.uid == transform.stem_uid + "0001" and v2.is_latest
    run = ln.track("tracked.py")
    assert len(run.transform.uid) == 16 and run.transform.uid.endswith("0000")
    ln.finish()


# --------------------------------------------------------------------------------------------
# Setting an unknown field is refused, as the constructor refuses it
# --------------------------------------------------------------------------------------------
def test_unknown_field_is_refused_when_set(storage: Path) -> None:
    run = new_run()
    artifact = make_artifact(storage, "r/report.html")
    with pytest.raises(InvalidArgument, match=r"Run\(\) got unexpected keyword 'report'"):
        ln.Run(run.transform, report=artifact)
    with pytest.raises(InvalidArgument, match=r"Run has no field 'report' to set; valid: .*name"):
        run.report = artifact
    assert "report" not in vars(run)
    records = [
        run,
        artifact,
        run.transform,
        ln.ULabel(name="u"),
        ln.Project(name="p"),
        ln.Reference(name="r"),
        ln.Space(name="s"),
        ln.User(handle="h"),
        artifact.storage,
        ln.Collection([artifact], key="c"),
    ]
    for record in records:
        with pytest.raises(InvalidArgument, match="has no field 'bogus' to set"):
            record.bogus = 1


def test_fields_relations_and_private_attributes_still_set(storage: Path) -> None:
    run = new_run()
    run.name = "renamed"
    run.params = {"alpha": 1}  # a property's setter
    run._note = "kept in Python"
    run.save()
    stored = ln.Run.get(run.uid)
    assert (stored.name, stored.params) == ("renamed", {"alpha": 1})
    artifact = make_artifact(storage, "r/a.txt")
    artifact.space = ln.Space(name="team").save()
    artifact.save()
    assert ln.Artifact.get(artifact.uid).space.name == "team"
    collection = ln.Collection([artifact], key="c").save()
    with pytest.raises(InvalidArgument, match="many-relation"):
        collection.artifacts = [artifact]
    with pytest.raises(AttributeError):
        artifact.path = "/elsewhere"  # a read-only property stays read-only


# --------------------------------------------------------------------------------------------
# QuerySet.update(**fields): one transaction, checked like a save (Django's and lamindb's)
# --------------------------------------------------------------------------------------------
def test_update_sets_fields_of_the_matching_records(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "u/a1.txt"), make_artifact(storage, "u/a2.txt")
    other = make_artifact(storage, "other/b.txt")
    updated = ln.Artifact.filter(key__startswith="u/").update(description="batch one")
    assert updated == 2
    for artifact in (a1, a2):
        stored = ln.Artifact.get(artifact.uid)
        assert stored.description == "batch one"
        assert stored.updated_at > artifact.updated_at and stored.created_at == artifact.created_at
    assert ln.Artifact.get(other.uid).description is None
    assert ln.Artifact.filter(key="none").update(description="x") == 0


def test_update_refuses_fields_lineage_maintains(storage: Path) -> None:
    artifact = make_artifact(storage, "u/a.txt")
    qs = ln.Artifact.filter(uid=artifact.uid)
    for field, value in (
        ("uid", "x" * 20),
        ("id", 7),
        ("hash", "h"),
        ("created_at", datetime(2020, 1, 1)),
        ("updated_at", datetime(2020, 1, 1)),
        ("branch", -1),
        ("branch_id", -1),
        ("is_latest", False),
        ("storage_path", "/tmp/x"),
        ("size", 1),
    ):
        with pytest.raises(InvalidArgument, match="set by lineage, not by hand"):
            qs.update(**{field: value})
    assert ln.Artifact.get(artifact.uid) == artifact and ln.Artifact.get(artifact.uid).size > 1


def test_update_checks_names_and_values_as_a_save_would(storage: Path) -> None:
    artifact = make_artifact(storage, "u/a.txt")
    qs = ln.Artifact.filter(uid=artifact.uid)
    with pytest.raises(InvalidArgument, match="has no field 'colour' to set"):
        qs.update(colour="red")
    with pytest.raises(ValidationError, match="description takes str"):
        qs.update(description=5)
    with pytest.raises(InvalidArgument):
        qs.update(key="../escape.txt")
    with pytest.raises(InvalidType):
        qs.update(run=artifact)
    with pytest.raises(InvalidArgument, match="many-relation"):
        qs.update(ulabels=[])
    with pytest.raises(InvalidArgument, match="needs fields"):
        qs.update()
    with pytest.raises(InvalidArgument, match="sliced"):
        ln.Artifact.filter(key__startswith="u/")[:1].update(description="x")
    assert ln.Artifact.get(artifact.uid).description is None


def test_update_relations_aliases_and_json_fields(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "u/a1.txt"), make_artifact(storage, "u/a2.txt")
    space = ln.Space(name="team").save()
    assert ln.Artifact.filter(key__startswith="u/").update(space=space) == 2
    assert [a.uid for a in space_members(space)] == sorted([a1.uid, a2.uid])
    assert ln.Artifact.filter(uid=a1.uid).update(space=None) == 1
    assert [a.uid for a in space_members(space)] == [a2.uid]
    collection = ln.Collection([a1], key="old").save()
    assert ln.Collection.filter(uid=collection.uid).update(name="new") == 1  # name: the key
    assert ln.Collection.get(collection.uid).key == "new"
    assert collection.artifacts.update(description="member") == 1  # a relation's records
    assert [ln.Artifact.get(a.uid).description for a in (a1, a2)] == ["member", None]
    run = new_run()
    assert ln.Run.filter(uid=run.uid).update(params={"lr": 0.1}) == 1
    assert ln.Run.get(run.uid).params == {"lr": 0.1}


def space_members(space: ln.Space) -> list[ln.Artifact]:
    return ln.Artifact.filter(space=space).order_by("uid").to_list()


def test_update_is_one_transaction(storage: Path) -> None:
    a1, a2 = make_artifact(storage, "u/a1.txt"), make_artifact(storage, "u/a2.txt")
    space = ln.Space(name="team").save()
    ln.cypher("MATCH (s:Space {uid: $uid}) DETACH DELETE s", uid=space.uid)  # gone meanwhile
    with pytest.raises(MissingTarget):
        ln.Artifact.filter(key__startswith="u/").update(description="half", space=space)
    assert [ln.Artifact.get(a.uid).description for a in (a1, a2)] == [None, None]


# --------------------------------------------------------------------------------------------
# Artifact.get(path=...) (lamindb's artifacts_from_path)
# --------------------------------------------------------------------------------------------
def test_get_by_path_finds_a_copied_artifact(storage: Path) -> None:
    artifact = make_artifact(storage, "p/a.txt")
    make_artifact(storage, "p/b.txt")
    assert artifact.path.parent.name == ".lineage"
    assert ln.Artifact.get(path=artifact.path) == artifact
    assert ln.Artifact.get(path=str(artifact.path)) == artifact
    assert ln.Artifact.filter(suffix=".txt").get(path=artifact.path) == artifact
    artifact.delete()  # as a lookup by uid, lamindb's finds a trashed copy too
    assert ln.Artifact.get(path=artifact.path) == artifact


def test_get_by_path_finds_an_artifact_registered_in_place(storage: Path, tmp_path: Path) -> None:
    root = tmp_path / "registered"
    (root / "sub").mkdir(parents=True)
    ln.Storage(root=str(root.resolve())).save()
    file = root / "sub" / "data.csv"
    file.write_text("a,b\n1,2\n")
    artifact = ln.Artifact(file, key="sub/data.csv").save()
    assert artifact.storage_path == str(file.resolve())
    assert ln.Artifact.get(path=file) == artifact
    assert ln.Artifact.get(path=root / "sub" / ".." / "sub" / "data.csv") == artifact


def test_get_by_path_errors(storage: Path) -> None:
    artifact = make_artifact(storage, "p/a.txt")
    missing = artifact.path.with_name("nothere.txt")
    with pytest.raises(DoesNotExist, match=r"nothere\.txt"):
        ln.Artifact.get(path=missing)
    lookalike = artifact.path.with_name("A" * 20 + ".txt")
    with pytest.raises(DoesNotExist, match="A" * 20):
        ln.Artifact.get(path=lookalike)
    with pytest.raises(InvalidArgument, match="artifacts"):
        ln.Collection.get(path=artifact.path)
    with pytest.raises(InvalidType):
        ln.Artifact.get(path=5)
    with pytest.raises(InvalidArgument, match="not both"):
        ln.Artifact.get(artifact.uid, path=artifact.path)
    with pytest.raises(InvalidArgument, match="s3://"):
        ln.Artifact.get(path="gs://bucket/x.txt")


def test_artifact_delete_checks_its_collections_in_its_own_transaction(
    storage: Path, neo4j
) -> None:
    # A concurrent save of a collection holds the artifact node (creating its CONTAINS edge
    # locks it) while the permanent delete waits: the delete must count the collections after
    # it got the lock and refuse, rather than deleting a member from under a saved collection.
    artifact = make_artifact(storage, "m/a.txt")
    errors = _delete_while_a_write_is_open(
        neo4j,
        "MATCH (a:Artifact {uid: $uid}) "
        "CREATE (:Collection {uid: 'concurrentcollect0000', id: 999, branch: 1, key: 'held'})"
        "-[:CONTAINS {position: 0}]->(a)",
        artifact.uid,
        artifact,
    )
    assert len(errors) == 1 and isinstance(errors[0], InvalidArgument), errors
    assert "is a member of collection(s) 'held'" in str(errors[0])
    assert ln.Artifact.get(artifact.uid).path.exists()
    members = ln.cypher(
        "MATCH (:Collection {key: 'held'})-[:CONTAINS]->(a:Artifact) RETURN a.uid AS uid"
    )
    assert list(members["uid"]) == [artifact.uid]


def _delete_while_a_write_is_open(neo4j, write: str, uid: str, record) -> list[BaseException]:
    """Run `write` (with `$uid`) in an open transaction, start `record.delete(permanent=True)`
    in a thread, check that it waits for the write's lock, commit; return what it raised."""
    conn = Connection.open(neo4j.settings)
    errors: list[BaseException] = []
    try:
        with conn.driver.session(database=neo4j.settings.database) as session:
            tx = session.begin_transaction()
            tx.run(write, uid=uid).consume()

            def delete() -> None:
                try:
                    record.delete(permanent=True)
                except BaseException as exc:  # returned to the test
                    errors.append(exc)

            deleter = threading.Thread(target=delete)
            deleter.start()
            time.sleep(1.0)  # the delete is now waiting for the node's lock
            assert deleter.is_alive()
            tx.commit()
            deleter.join(timeout=30)
    finally:
        conn.close()
    return errors
