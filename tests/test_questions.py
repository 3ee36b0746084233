"""The questions after provenance: `ln.lineage.diff` (and `record.diff()`), `ln.lineage.impact`
and `ln.lineage.stale`, their CLI commands, and their bad inputs, against the session's Neo4j and
real files. Every graph here is built through the public API, except the 10,000-member
collections, whose artifacts are written in bulk (`graph.records.create_many`) to save time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import lineage as ln
from graph import records as gr
from graph.lineage import DEPTH_LIMIT
from graph.questions import IMPACT
from lineage._instance import current
from lineage._lineage import downstream
from lineage._questions import Change, Member, Move, _moves
from lineage.cli import main
from tests.conftest import make_artifact


def _graph_state() -> tuple[int, int, Any]:
    """Nodes, edges and the latest write time: what "nothing was written" compares."""
    row = ln.cypher(
        "MATCH (n) OPTIONAL MATCH (n)-[e]->() "
        "RETURN count(DISTINCT n) AS nodes, count(e) AS edges, max(n.updated_at) AS updated"
    ).iloc[0]
    return int(row["nodes"]), int(row["edges"]), row["updated"]


# -- the longest kept order (moves) ---------------------------------------------------------------
def test_moves_are_the_fewest_that_explain_the_new_order() -> None:
    old = list("abcdefgh")
    assert _moves(old, old) == []
    assert _moves(old, [*old, "x"]) == []  # appended
    assert _moves(old, ["x", *old]) == []  # inserted: every position shifts, nothing moved
    assert _moves(old, old[2:]) == []  # removed
    assert _moves(old, list("acdefghb")) == [(1, 7)]  # b to the end
    assert _moves(old, list("habcdefg")) == [(7, 0)]  # h to the front
    assert len(_moves(old, list("badcfehg"))) == 4  # four swapped pairs: one of each moved
    assert len(_moves(old, old[::-1])) == 7  # reversed: all but one
    assert _moves([], []) == []


def test_moves_of_ten_thousand_take_milliseconds() -> None:
    old = [f"u{i}" for i in range(10_000)]
    new = old[10:] + [f"v{i}" for i in range(10)]
    new.insert(5000, new.pop(100))
    t0 = time.perf_counter()
    moves = _moves(old, new)
    assert time.perf_counter() - t0 < 1.0  # O(n log n); a quadratic walk would take minutes
    assert moves == [(110, 5000)]


# -- diff: collections ----------------------------------------------------------------------------
def test_collection_diff_lists_added_removed_moved_meta_and_fields(storage: Path) -> None:
    a, b, c, d, e = (make_artifact(storage, f"set/{n}.txt") for n in "abcde")
    meta1 = make_artifact(storage, "set/meta1.txt")
    meta2 = make_artifact(storage, "set/meta2.txt")
    v1 = ln.Collection([a, b, c, d], key="set", meta=meta1, description="first").save()
    v2 = ln.Collection([c, d, b, e], key="set", meta=meta2, description="second", revises=v1)
    v2 = v2.save()

    change = ln.lineage.diff(v1, v2)
    assert isinstance(change, ln.lineage.CollectionDiff) and change
    assert (change.registry, change.old, change.new, change.key) == (
        "Collection",
        v1.uid,
        v2.uid,
        "set",
    )
    assert change.added == [Member(e.uid, "set/e.txt", 3)]
    assert change.removed == [Member(a.uid, "set/a.txt", 0)]
    assert change.moved == [Move(b.uid, "set/b.txt", 1, 2)]  # c, d kept their order; b moved
    assert change.size == Change(4, 4)
    assert change.meta_artifact == Change(meta1.uid, meta2.uid)
    assert change.fields["description"] == Change("first", "second")
    assert "hash" in change.fields
    assert not {"uid", "id", "created_at", "updated_at", "is_latest"} & set(change.fields)

    text = repr(change)
    assert text.startswith(f"CollectionDiff(Collection 'set': {v1.uid} -> {v2.uid})")
    assert "1 added, 1 removed, 1 moved" in text and "+ [3] 'set/e.txt'" in text
    assert f"meta artifact: {meta1.uid} -> {meta2.uid}" in text

    out = change.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["moved"] == [
        {"uid": b.uid, "key": "set/b.txt", "old_position": 1, "new_position": 2}
    ]
    assert out["meta_artifact"] == {"old": meta1.uid, "new": meta2.uid}
    assert out["changed"] is True

    # record.diff(): against the version before it, the same answer.
    assert v2.diff().to_dict() == out
    # The other way round: what was added is removed.
    back = ln.lineage.diff(v2, v1)
    assert [m.uid for m in back.removed] == [e.uid] and [m.uid for m in back.added] == [a.uid]


def test_collection_diff_of_identical_members_is_empty(storage: Path) -> None:
    a = make_artifact(storage, "same/a.txt")
    first = ln.Collection([a], key="same").save()
    same = ln.lineage.diff(first, first)
    assert not same and same.fields == {} and same.meta_artifact is None
    assert repr(same).endswith(": no changes)")
    assert same.to_dict()["changed"] is False


def _bulk_artifacts(prefix: str, n: int) -> list[Any]:
    """n saved artifacts written in one bulk call: the diff, not the set-up, is under test."""
    rows = [
        gr.NewRecord({"uid": f"B{i:015d}0000", "key": f"{prefix}/{i}.txt", "hash": f"{prefix}-{i}",
                      "suffix": ".txt", "size": 1})
        for i in range(n)
    ]  # fmt: skip
    gr.create_many(current().connection, "Artifact", rows)
    return ln.Artifact.filter(key__startswith=f"{prefix}/").order_by("uid").to_list()


def test_collection_diff_of_ten_thousand_members(storage: Path) -> None:
    members = _bulk_artifacts("bigset", 10_010)
    old = members[:10_000]
    new = old[10:] + members[10_000:]  # 10 dropped at the front, 10 appended
    new.insert(5000, new.pop(100))  # one moved
    v1 = ln.Collection(old, key="big").save()
    v2 = ln.Collection(new, key="big", revises=v1).save()

    t0 = time.perf_counter()
    change = v2.diff()
    took = time.perf_counter() - t0
    assert [m.uid for m in change.removed] == [a.uid for a in old[:10]]
    assert [m.position for m in change.removed] == list(range(10))
    assert [m.uid for m in change.added] == [a.uid for a in members[10_000:]]
    assert [m.position for m in change.added] == list(range(9990, 10_000))
    moved = old[110]
    assert change.moved == [Move(moved.uid, moved.key, 110, 5000)]
    assert change.size == Change(10_000, 10_000)
    assert took < 5.0, f"diff of two 10,000-member versions took {took:.1f} s"


# -- diff: artifacts ------------------------------------------------------------------------------
def test_artifact_diff_of_dataframes_reads_columns_dtypes_and_rows(storage: Path) -> None:
    v1 = ln.Artifact.from_dataframe(
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 1.5]}), key="tables/t.parquet"
    ).save()
    v2 = ln.Artifact.from_dataframe(
        pd.DataFrame({"a": [1.0, 2.0, 3.0], "c": [1.0, 2.0, 3.0], "d": pd.Categorical(["u"] * 3)}),
        key="tables/t.parquet",
        revises=v1,
    ).save()
    change = v2.diff()
    assert isinstance(change, ln.lineage.ArtifactDiff)
    assert change.fields["n_observations"] == Change(2, 3)
    assert change.fields["hash"] == Change(v1.hash, v2.hash)
    assert change.fields["size"] == Change(v1.size, v2.size)
    assert "suffix" not in change.fields and "otype" not in change.fields  # both parquet tables
    content = change.content
    assert isinstance(content, ln.lineage.TableDiff)
    assert content.rows == Change(2, 3)
    assert content.columns.added == {"d": "category"}
    assert content.columns.removed == {"b": "string"}
    assert content.columns.changed == {"a": Change("int64", "float64")}  # c: float64 both
    out = change.to_dict()
    assert out["content"]["columns"]["changed"] == {"a": {"old": "int64", "new": "float64"}}
    assert "rows: 2 -> 3" in repr(change) and "~ a: 'int64' -> 'float64'" in repr(change)


def _adata(obs_names: list[str], var_names: list[str], **obs: Any) -> ad.AnnData:
    frame = pd.DataFrame(obs or {"cell_type": ["T"] * len(obs_names)}, index=obs_names)
    return ad.AnnData(
        X=np.ones((len(obs_names), len(var_names)), dtype=np.float32),
        obs=frame,
        var=pd.DataFrame(index=var_names),
    )


def test_artifact_diff_of_anndata_reads_shape_names_columns_layers_obsm(storage: Path) -> None:
    first = _adata(["c1", "c2", "c3"], ["g1", "g2"])
    first.layers["raw"] = first.X.copy()
    second = _adata(
        ["c1", "c3", "c4", "c5"], ["g1", "g2", "g3"],
        cell_type=["T", "B", "T", "B"], n_genes=[1, 2, 3, 4],
    )  # fmt: skip
    second.layers["counts"] = second.X.copy()
    second.obsm["X_pca"] = np.zeros((4, 2))
    second.var["highly_variable"] = [True, False, True]
    v1 = ln.Artifact.from_anndata(first, key="scrna/a.h5ad").save()
    v2 = ln.Artifact.from_anndata(second, key="scrna/a.h5ad", revises=v1).save()

    change = ln.lineage.diff(v1, v2)
    content = change.content
    assert isinstance(content, ln.lineage.AnnDataDiff)
    assert content.shape == Change([3, 2], [4, 3])
    assert (content.obs_names.added, content.obs_names.removed) == (["c4", "c5"], ["c2"])
    assert (content.var_names.added, content.var_names.removed) == (["g3"], [])
    assert content.obs.added == {"n_genes": "int64"} and content.obs.removed == {}
    assert content.var.added == {"highly_variable": "bool"}
    assert (content.layers.added, content.layers.removed) == (["counts"], ["raw"])
    assert (content.obsm.added, content.obsm.removed) == (["X_pca"], [])
    assert change.fields["n_observations"] == Change(3, 4)
    assert json.loads(json.dumps(change.to_dict()))["content"]["shape"] == {
        "old": [3, 2], "new": [4, 3],
    }  # fmt: skip


def test_artifact_diff_never_reads_a_matrix_or_column_data(storage: Path) -> None:
    """The stored files' matrices and column pages are made unreadable: loading them fails, the
    diff (metadata and indexes only) still answers."""
    v1 = ln.Artifact.from_anndata(_adata(["c1", "c2"], ["g1"]), key="m/a.h5ad").save()
    v2 = ln.Artifact.from_anndata(_adata(["c1", "c9"], ["g1"]), key="m/a.h5ad", revises=v1).save()
    for artifact in (v1, v2):
        with h5py.File(artifact.storage_path, "r+") as f:
            del f["X"]
            f["X"] = h5py.ExternalLink("no-such-file.h5", "/X")  # any read of X fails
        with pytest.raises(Exception), h5py.File(artifact.storage_path, "r") as f:  # noqa: B017
            f["X"][()]
    assert v2.diff().content.obs_names.added == ["c9"]

    t1 = ln.Artifact.from_dataframe(pd.DataFrame({"a": range(1000)}), key="m/t.parquet").save()
    t2 = ln.Artifact.from_dataframe(
        pd.DataFrame({"a": range(1000), "b": range(1000)}), key="m/t.parquet", revises=t1
    ).save()
    for artifact in (t1, t2):
        path = Path(artifact.storage_path)
        column = pq.read_metadata(path).row_group(0).column(0)
        start = min(o for o in (column.dictionary_page_offset, column.data_page_offset) if o)
        data = bytearray(path.read_bytes())
        data[start : start + column.total_compressed_size] = b"\xff" * column.total_compressed_size
        path.write_bytes(bytes(data))
        with pytest.raises(Exception):  # noqa: B017
            pd.read_parquet(path)
    assert t2.diff().content.columns.added == {"b": "int64"}


def test_artifact_diff_reads_the_metadata_of_files_on_s3(storage: Path, s3_bucket: Any) -> None:
    ln.settings.storage = f"{s3_bucket.uri}/questions"
    ln.settings.storage_options = s3_bucket.storage_options
    t1 = ln.Artifact.from_dataframe(pd.DataFrame({"a": [1, 2]}), key="s3/t.parquet").save()
    t2 = ln.Artifact.from_dataframe(
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), key="s3/t.parquet", revises=t1
    ).save()
    assert t2.storage_path.startswith("s3://")
    assert t2.diff().content.columns.added == {"b": "string"}
    a1 = ln.Artifact.from_anndata(_adata(["c1", "c2"], ["g1"]), key="s3/a.h5ad").save()
    a2 = ln.Artifact.from_anndata(_adata(["c1", "c3"], ["g1"]), key="s3/a.h5ad", revises=a1)
    content = a2.save().diff().content
    assert (content.obs_names.added, content.obs_names.removed) == (["c3"], ["c2"])


def test_artifact_diff_of_other_formats_compares_the_records(storage: Path) -> None:
    v1 = make_artifact(storage, "notes.txt", "one\n")
    path = storage.parent / "src" / "notes2.txt"
    path.write_text("one\ntwo\n")
    v2 = ln.Artifact(path, revises=v1).save()
    change = v2.diff()
    assert change.content is None
    assert set(change.fields) == {"hash", "size"}
    same = ln.lineage.diff(v1, v1)
    assert not same and same.content is None


def test_artifact_diff_of_a_missing_file_says_so_unless_content_false(storage: Path) -> None:
    v1 = ln.Artifact.from_dataframe(pd.DataFrame({"a": [1]}), key="gone/t.parquet").save()
    v2 = ln.Artifact.from_dataframe(pd.DataFrame({"a": [2]}), key="gone/t.parquet", revises=v1)
    v2 = v2.save()
    os.remove(v1.storage_path)
    with pytest.raises(ln.errors.MissingFile, match=r"content=False"):
        v2.diff()
    change = v2.diff(content=False)
    assert change.content is None and "hash" in change.fields
    Path(v1.storage_path).write_text("not parquet")
    with pytest.raises(ln.errors.DataError, match="not a readable Parquet file"):
        ln.lineage.diff(v1, v2)


# -- diff: runs and transforms --------------------------------------------------------------------
def test_run_diff_lists_transform_params_inputs_outputs_status_and_times(storage: Path) -> None:
    raw = make_artifact(storage, "raw.txt", "raw v1\n")
    ref = make_artifact(storage, "ref.txt")
    first = ln.track("fit", params={"lr": 0.1, "epochs": 3})
    ln.Artifact.get(raw.uid, is_run_input=True)
    ln.Artifact.get(ref.uid, is_run_input=True)
    make_artifact(storage, "model.txt", "model 1\n")
    make_artifact(storage, "log-1.txt")
    ln.finish()

    new_raw = ln.Artifact(_rewrite(storage, "raw.txt", "raw v2\n"), revises=raw).save()
    fit_v2 = ln.Transform(key="fit", revises=first.transform, source_code="print(2)").save()
    second = ln.track(fit_v2, params={"lr": 0.01, "epochs": 3, "seed": 1})
    ln.Artifact.get(new_raw.uid, is_run_input=True)
    ln.Artifact.get(ref.uid, is_run_input=True)
    make_artifact(storage, "model.txt", "model 2\n")  # the same key: not added or removed
    make_artifact(storage, "metrics.txt")

    change = second.diff()  # the previous run of the transform family: `first`
    assert isinstance(change, ln.lineage.RunDiff)
    assert (change.old, change.new) == (first.uid, second.uid)
    assert change.transform.old.uid == first.transform.uid
    assert change.transform.new.uid == fit_v2.uid
    assert change.params.added == {"seed": 1} and change.params.removed == {}
    assert change.params.changed == {"lr": Change(0.1, 0.01)}
    assert [r.uid for r in change.inputs.added] == [new_raw.uid]
    assert [r.uid for r in change.inputs.removed] == [raw.uid]
    assert [r.key for r in change.outputs.added] == ["metrics.txt"]
    assert [r.key for r in change.outputs.removed] == ["log-1.txt"]
    assert change.fields["status"] == Change("completed", "started")  # second still running
    assert change.fields["finished_at"].new is None
    assert change.fields["started_at"].old < change.fields["started_at"].new
    assert "params" not in change.fields
    out = json.loads(json.dumps(change.to_dict()))
    assert out["fields"]["started_at"]["old"] == first.started_at.isoformat()
    assert out["transform"]["new"]["uid"] == fit_v2.uid
    ln.finish()

    with pytest.raises(ln.errors.DoesNotExist, match="no earlier run"):
        first.diff()


def _rewrite(storage: Path, name: str, text: str) -> Path:
    path = storage.parent / "src" / f"new-{name}"
    path.write_text(text)
    return path


def test_transform_diff_and_previous_skips_trashed_versions(storage: Path) -> None:
    t1 = ln.Transform(key="clean.py", kind="script", source_code="print(1)").save()
    t2 = ln.Transform(key="clean.py", revises=t1, source_code="print(2)", version="2").save()
    t3 = ln.Transform(key="clean.py", revises=t2, source_code="print(3)", version="3").save()
    change = t3.diff()
    assert (change.old, change.new) == (t2.uid, t3.uid)
    assert change.fields["source_code"] == Change("print(2)", "print(3)")
    assert change.fields["version"] == Change("2", "3")
    t2.delete()  # to the trash: the version before t3 is now t1
    assert t3.diff().old == t1.uid
    with pytest.raises(ln.errors.DoesNotExist, match="first version of its family"):
        t1.diff()


# -- diff: bad input ------------------------------------------------------------------------------
def test_diff_refuses_bad_input_and_writes_nothing(storage: Path) -> None:
    a = make_artifact(storage, "bad/a.txt")
    b = ln.Artifact(_rewrite(storage, "a.txt", "other\n"), revises=a).save()
    collection = ln.Collection([a], key="bad").save()
    x, y = ln.ULabel(name="x").save(), ln.ULabel(name="y").save()
    unsaved = ln.Artifact(_rewrite(storage, "u.txt", "unsaved\n"), key="bad/u.txt")
    before = _graph_state()
    with pytest.raises(ln.errors.InvalidType, match="two records of one registry"):
        ln.lineage.diff(a, collection)
    with pytest.raises(ln.errors.InvalidArgument, match="not str"):
        ln.lineage.diff(a.uid, b.uid)
    with pytest.raises(ln.errors.InvalidArgument, match="not ULabel"):
        ln.lineage.diff(x, y)
    with pytest.raises(ln.errors.NotSaved):
        ln.lineage.diff(a, unsaved)
    with pytest.raises(ln.errors.NotSaved):
        unsaved.diff()
    assert _graph_state() == before

    b.delete()  # to the trash
    before = _graph_state()
    with pytest.raises(ln.errors.InvalidArgument, match="in the trash"):
        ln.lineage.diff(a, b)
    with pytest.raises(ln.errors.InvalidArgument, match="in the trash"):
        b.diff()
    assert _graph_state() == before
    ln.Artifact.get(b.uid).delete(permanent=True)  # gone; the handle `b` still looks saved
    with pytest.raises(ln.errors.DoesNotExist, match=f"Artifact {b.uid} no longer exists"):
        ln.lineage.diff(a, b)


# -- impact ---------------------------------------------------------------------------------------
class World:
    pass


@pytest.fixture
def world(storage: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    """raw ──▶ prep (alice) ──▶ clean ──▶ train (bob) ──▶ model ──▶ report (carol) ──▶ report
    bundle = Collection([clean]) (alice); raw_2 revises raw; junk: a trashed output of train."""
    w = World()
    monkeypatch.setenv("LINEAGE_USER", "alice")
    w.raw = make_artifact(storage, "raw.txt")
    w.prep = ln.track("prep.py")
    ln.Artifact.get(w.raw.uid, is_run_input=True)
    w.clean = make_artifact(storage, "clean.txt")
    ln.finish()
    w.bundle = ln.Collection([w.clean], key="bundle").save()
    monkeypatch.setenv("LINEAGE_USER", "bob")
    w.train = ln.track("train.py")
    ln.Artifact.get(w.clean.uid, is_run_input=True)
    w.model = make_artifact(storage, "model.txt")
    w.junk = make_artifact(storage, "junk.txt")
    ln.finish()
    w.junk.delete()
    monkeypatch.setenv("LINEAGE_USER", "carol")
    w.report_run = ln.track("report.py")
    ln.Artifact.get(w.model.uid, is_run_input=True)
    w.report = make_artifact(storage, "report.txt")
    ln.finish()
    w.raw_2 = ln.Artifact(_rewrite(storage, "raw.txt", "raw 2\n"), revises=w.raw).save()
    return w


def test_impact_groups_by_run_depth_with_transforms_and_people(world: World) -> None:
    w = world
    hit = ln.lineage.impact(w.raw)
    assert isinstance(hit, ln.lineage.Impact)
    rows = {(r.depth, r.label, r.uid) for r in hit}
    assert rows == {
        (0, "Artifact", w.raw_2.uid),  # a later version (REVISES), as downstream() has it
        (1, "Run", w.prep.uid), (1, "Artifact", w.clean.uid), (1, "Collection", w.bundle.uid),
        (2, "Run", w.train.uid), (2, "Artifact", w.model.uid),
        (3, "Run", w.report_run.uid), (3, "Artifact", w.report.uid),
    }  # fmt: skip
    assert w.junk not in hit  # trashed
    by_uid = {r.uid: r for r in hit}
    assert by_uid[w.model.uid].transform == "train.py"
    assert by_uid[w.model.uid].run == w.train.uid
    assert by_uid[w.model.uid].created_by == "bob"
    assert by_uid[w.prep.uid].transform == "prep.py" and by_uid[w.prep.uid].run == w.prep.uid
    assert by_uid[w.bundle.uid].transform is None  # made outside a run
    assert hit.transforms == ["prep.py", "report.py", "train.py"]
    assert hit.users == ["alice", "bob", "carol"]
    assert list(hit.by_depth) == [0, 1, 2, 3]
    assert [r.depth for r in hit] == sorted(r.depth for r in hit)
    assert hit.df().shape == (8, 9)
    out = hit.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["sources"] == [{"label": "Artifact", "uid": w.raw.uid, "key": "raw.txt",
                               "version": None}]  # fmt: skip
    assert "people to tell: alice, bob, carol" in repr(hit)

    assert {r.uid for r in ln.lineage.impact(w.raw, depth=1)} == {
        w.raw_2.uid, w.prep.uid, w.clean.uid, w.bundle.uid,
    }  # fmt: skip
    assert {r.uid for r in ln.lineage.impact(w.raw, depth=0)} == {w.raw_2.uid}


def test_impact_of_several_records_takes_the_nearest_depth(world: World) -> None:
    w = world
    hit = ln.lineage.impact([w.raw, w.model, w.raw])  # duplicates count once
    assert [s.uid for s in hit.sources] == [w.raw.uid, w.model.uid]
    depth = {r.uid: r.depth for r in hit}
    assert w.model.uid not in depth  # a source is not its own impact
    assert depth[w.report.uid] == 1  # one run from model, three from raw
    assert depth[w.clean.uid] == 1


def test_impact_of_a_run_and_of_a_transform(world: World) -> None:
    w = world
    from_run = {(r.depth, r.uid) for r in ln.lineage.impact(w.train)}
    assert from_run == {(0, w.model.uid), (1, w.report_run.uid), (1, w.report.uid)}
    transform = w.train.transform
    from_transform = {(r.depth, r.uid) for r in ln.lineage.impact(transform)}
    assert (1, w.train.uid) in from_transform and (1, w.model.uid) in from_transform
    assert (2, w.report.uid) in from_transform


def test_impact_agrees_with_downstream_at_every_depth(world: World) -> None:
    """The same conventions as ln.lineage.downstream: the same records at every depth."""
    w = world
    records = [w.raw, w.clean, w.bundle, w.model, w.prep, w.train, w.train.transform, w.raw_2]
    for record in records:
        for depth in (0, 1, 2, None):
            down = downstream(record, depth=depth)
            expected = {(label, uid) for label, uids in down.uids.items() for uid in uids
                        if label != "Transform"}  # fmt: skip
            hit = ln.lineage.impact(record, depth=depth)
            assert {(r.label, r.uid) for r in hit} == expected, (record, depth)
            made_by = set(down.uids["Transform"]) | {record.uid}  # a transform: its runs
            assert {r.transform_uid for r in hit if r.label == "Run"} <= made_by


def test_impact_query_takes_null_as_every_depth() -> None:
    assert f"coalesce($depth, {DEPTH_LIMIT})" in IMPACT


def test_impact_refuses_bad_input_and_writes_nothing(world: World, storage: Path) -> None:
    w = world
    before = _graph_state()
    with pytest.raises(ln.errors.InvalidArgument, match="at least one record"):
        ln.lineage.impact([])
    with pytest.raises(ln.errors.InvalidArgument, match="not str"):
        ln.lineage.impact(w.raw.uid)
    with pytest.raises(ln.errors.InvalidArgument, match="not int"):
        ln.lineage.impact([w.raw, 3])
    with pytest.raises(ln.errors.InvalidArgument, match="depth"):
        ln.lineage.impact(w.raw, depth=-1)
    with pytest.raises(ln.errors.InvalidArgument, match="depth"):
        ln.lineage.impact(w.raw, depth="2")
    with pytest.raises(ln.errors.InvalidArgument, match="in the trash"):
        ln.lineage.impact([w.raw, w.junk])
    unsaved = ln.Artifact(_rewrite(storage, "x.txt", "unsaved\n"), key="x.txt")
    with pytest.raises(ln.errors.NotSaved):
        ln.lineage.impact(unsaved)
    assert _graph_state() == before


# -- stale ----------------------------------------------------------------------------------------
def test_a_used_edge_stays_on_the_version_the_run_read(storage: Path) -> None:
    """Versions used are pinned: new versions of an input, or trashing it, never move a run's
    USED edge; reading the new version adds an edge to that version."""
    v1 = make_artifact(storage, "pinned.txt", "v1\n")
    c1 = ln.Collection([v1], key="pinned-set").save()
    run = ln.track("reader")
    ln.Artifact.get(key="pinned.txt", is_run_input=True)  # by key: the latest, v1 now
    ln.Collection.get(key="pinned-set", is_run_input=True)
    ln.finish()
    v2 = ln.Artifact(_rewrite(storage, "pinned.txt", "v2\n"), revises=v1).save()
    c2 = c1.append(v2).save()
    v3 = ln.Artifact(_rewrite(storage, "pinned.txt", "v3\n"), revises=v2).save()
    v1.delete()  # to the trash

    def used() -> set[str]:
        frame = ln.cypher("MATCH (:Run {uid: $run})-[:USED]->(x) RETURN x.uid AS uid", run=run.uid)
        return set(frame["uid"])

    assert used() == {v1.uid, c1.uid}
    assert ln.Artifact.get(key="pinned.txt").uid == v3.uid  # the family moved on
    later = ln.track("reader")
    ln.Artifact.get(key="pinned.txt", is_run_input=True)
    ln.finish()
    assert used() == {v1.uid, c1.uid}
    assert set(ln.cypher("MATCH (:Run {uid: $r})-[:USED]->(x) RETURN x.uid AS uid",
                         r=later.uid)["uid"]) == {v3.uid}  # fmt: skip
    assert c2.uid != c1.uid


def test_stale_lists_records_built_on_a_superseded_or_trashed_input(storage: Path) -> None:
    raw = make_artifact(storage, "in/raw.txt", "raw 1\n")
    ref = make_artifact(storage, "in/ref.txt")
    lib_1 = make_artifact(storage, "in/lib.txt", "lib 1\n")
    lib = ln.Artifact(_rewrite(storage, "lib.txt", "lib 2\n"), revises=lib_1).save()

    run1 = ln.track("build")
    ln.Artifact.get(raw.uid, is_run_input=True)
    ln.Artifact.get(ref.uid, is_run_input=True)
    out = make_artifact(storage, "out/result.txt", "result 1\n")
    ln.finish()
    run2 = ln.track("build")
    ln.Artifact.get(lib.uid, is_run_input=True)
    fresh = make_artifact(storage, "out/fresh.txt")
    old_version = make_artifact(storage, "out/report.txt", "report 1\n")
    ln.finish()
    assert not ln.lineage.stale()  # every input is the latest of its family

    raw_2 = ln.Artifact(_rewrite(storage, "raw.txt", "raw 2\n"), revises=raw).save()
    ref.delete()  # to the trash
    lib.delete()  # to the trash: lib_1, the version before, is latest again
    ln.Artifact(_rewrite(storage, "report.txt", "report 2\n"), revises=old_version).save()

    found = ln.lineage.stale()
    assert [r.key for r in found] == ["out/fresh.txt", "out/result.txt"]  # by key
    by_uid = {r.uid: r for r in found}
    result = by_uid[out.uid]
    assert (result.run, result.transform, result.key) == (run1.uid, "build", "out/result.txt")
    assert [(i.uid, i.trashed, i.latest) for i in result.inputs] == sorted(
        [(raw.uid, False, raw_2.uid), (ref.uid, True, None)]
    )
    assert [(i.uid, i.trashed, i.latest) for i in by_uid[fresh.uid].inputs] == [
        (lib.uid, True, lib_1.uid)
    ]
    assert old_version not in found  # superseded itself: not reported
    assert out in found and raw_2 not in found
    assert found.df().shape == (3, 13)
    out_dict = found.to_dict()
    assert json.loads(json.dumps(out_dict)) == out_dict
    assert "latest now " + raw_2.uid in repr(found)
    assert [r.uid for r in ln.lineage.stale(key="out/res")] == [out.uid]
    assert not ln.lineage.stale(key="nothing/")
    assert run2.uid == by_uid[fresh.uid].run


def test_stale_of_collections_and_bad_key(storage: Path) -> None:
    a = make_artifact(storage, "c/a.txt")
    b = make_artifact(storage, "c/b.txt")
    first = ln.Collection([a], key="c/set").save()
    ln.track("summarise")
    ln.Collection.get(first.uid, is_run_input=True)
    summary = ln.Collection([b], key="c/summary").save()
    ln.finish()
    latest = first.append(b).save()
    found = ln.lineage.stale()
    assert [(r.label, r.uid) for r in found] == [("Collection", summary.uid)]
    assert found.records[0].inputs[0].latest == latest.uid
    before = _graph_state()
    with pytest.raises(ln.errors.InvalidType, match="key prefix"):
        ln.lineage.stale(key=3)
    assert _graph_state() == before


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_diff_impact_and_stale(world: World, cli_env: None, capsys) -> None:
    w = world
    assert main(["diff", w.raw.uid, w.raw_2.uid]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ArtifactDiff(Artifact 'raw.txt': {w.raw.uid} -> {w.raw_2.uid})")
    assert main(["diff", w.raw_2.uid, "--json"]) == 0  # alone: against the version before
    out = json.loads(capsys.readouterr().out)
    assert (out["old"], out["new"], out["registry"]) == (w.raw.uid, w.raw_2.uid, "Artifact")
    assert out["fields"]["hash"]["new"] == w.raw_2.hash and out["content"] is None

    assert main(["impact", w.clean.uid, w.raw.uid, "--depth", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["uid"] for r in out["records"]} == {
        w.raw_2.uid, w.prep.uid, w.bundle.uid, w.train.uid, w.model.uid,
    }  # fmt: skip
    assert out["users"] == ["alice", "bob", "carol"] and out["depth"] == 1  # carol: raw_2
    assert main(["impact", w.model.uid]) == 0
    assert "people to tell: carol" in capsys.readouterr().out

    assert main(["stale", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["uid"] for r in out["records"]] == [w.clean.uid]  # prep read raw, now raw_2
    assert out["records"][0]["inputs"][0]["latest"] == w.raw_2.uid
    assert main(["stale", "--key", "model"]) == 0
    assert capsys.readouterr().out.startswith("Stale(0 records")


def test_cli_bad_input_is_a_clear_error(world: World, cli_env: None, capsys) -> None:
    w = world
    before = _graph_state()
    assert main(["diff", w.raw.uid, w.bundle.uid]) == 1
    assert "two records of one registry" in capsys.readouterr().err
    assert main(["diff", "no-such-uid", w.raw.uid]) == 1
    assert "no record with uid 'no-such-uid'" in capsys.readouterr().err
    assert main(["diff", w.raw.uid, "--json"]) == 1
    assert "first version of its family" in capsys.readouterr().err
    assert main(["impact", w.junk.uid]) == 1
    assert "in the trash" in capsys.readouterr().err
    assert main(["impact", "nope"]) == 1
    assert "no record with uid 'nope'" in capsys.readouterr().err
    assert _graph_state() == before
