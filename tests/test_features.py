"""Features: the registry, values on artifacts, collections and runs, queries by feature values,
`df(features=...)`, the schema migration, and bad input (real Neo4j)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import neo4j
import pandas as pd
import pytest

import graph.query as gq
import lineage as ln
from graph.schema import SCHEMA_VERSION, install_schema
from lineage.errors import FieldValidationError, InvalidType, ValidationError
from tests.conftest import make_artifact


def _value_nodes(db: ln.Instance) -> int:
    return db.connection.run("MATCH (v:FeatureValue) RETURN count(v) AS c")[0]["c"]


def _edges(db: ln.Instance) -> int:
    return db.connection.run("MATCH ()-[r]->() RETURN count(r) AS c")[0]["c"]


@pytest.fixture
def annotated(storage: Path) -> list[ln.Artifact]:
    ln.Feature(name="temperature", dtype=float, unit="°C").save()
    ln.Feature(name="n_cells", dtype=int).save()
    ln.Feature(name="cell_type", dtype=ln.ULabel).save()
    ln.Feature(name="organism", dtype="str").save()
    for name in ("T cell", "B cell"):
        ln.ULabel(name=name).save()
    artifacts = [make_artifact(storage, f"a{i}.txt") for i in range(4)]
    values = [
        {"temperature": 18.5, "n_cells": 100, "cell_type": "T cell", "organism": "human"},
        {"temperature": 21.0, "n_cells": 200, "cell_type": "B cell", "organism": "mouse"},
        {"temperature": 25, "n_cells": 300, "cell_type": "T cell", "organism": "human"},
        {"n_cells": 400},
    ]
    for artifact, v in zip(artifacts, values):
        artifact.features.add_values(v)
    return artifacts


# -- the registry -------------------------------------------------------------------------------
def test_feature_dtypes_in_lamindb_spellings(db: ln.Instance) -> None:
    cell_types = ln.ULabel(name="CellType", is_type=True).save()
    given = {
        "a": int, "b": float, "c": "num", "d": str, "e": bool, "f": date, "g": datetime,
        "h": dict, "i": ln.ULabel, "j": cell_types, "k": list[int], "l": "list[cat[ULabel]]",
    }  # fmt: skip
    stored = {n: ln.Feature(name=n, dtype=d).save().dtype for n, d in given.items()}
    assert stored == {
        "a": "int", "b": "float", "c": "num", "d": "str", "e": "bool", "f": "date",
        "g": "datetime", "h": "dict", "i": "cat[ULabel]", "j": "cat[ULabel[CellType]]",
        "k": "list[int]", "l": "list[cat[ULabel]]",
    }  # fmt: skip


@pytest.mark.parametrize("dtype", ["integer", "cat[Artifact]", "list[list[int]]", object, None])
def test_bad_dtypes_are_refused(db: ln.Instance, dtype: object) -> None:
    with pytest.raises(ValidationError, match="dtype"):
        ln.Feature(name="x", dtype=dtype)
    assert ln.Feature.filter().count() == 0


def test_name_is_unique_same_dtype_returns_stored(db: ln.Instance) -> None:
    first = ln.Feature(name="temperature", dtype=float, unit="°C").save()
    again = ln.Feature(name="temperature", dtype="float").save()
    assert again.uid == first.uid and again.unit == "°C"
    with pytest.raises(ValidationError, match="exists with dtype 'float'"):
        ln.Feature(name="temperature", dtype=int).save()
    assert ln.Feature.filter(name="temperature").count() == 1


def test_type_hierarchy_trash_and_restore(db: ln.Instance) -> None:
    assay = ln.Feature(name="AssayFeatures", is_type=True).save()
    depth = ln.Feature(name="read_depth", dtype=int, type=assay).save()
    assert depth.type == assay and [f.name for f in assay.members] == ["read_depth"]
    with pytest.raises(ValidationError, match="is_type=True"):
        ln.Feature(name="x", dtype=int, type=depth)
    depth.delete()
    assert ln.Feature.filter(name="read_depth").count() == 0
    with pytest.raises(ValidationError, match="in the trash"):
        ln.Feature(name="read_depth", dtype=int).save()
    depth.restore()
    assert ln.Feature.get(name="read_depth").dtype == "int"


def test_from_dataframe_infers_one_feature_per_column(db: ln.Instance) -> None:
    frame = pd.DataFrame(
        {
            "cell_type": pd.Categorical(["T cell", "B cell"]),
            "n_genes": [2000, 3000],
            "score": [0.5, 0.7],
            "donor": ["d1", "d2"],
            "ok": [True, False],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    features = ln.Feature.from_dataframe(frame)
    assert [(f.name, f.dtype) for f in features] == [
        ("cell_type", "cat[ULabel]"), ("n_genes", "int"), ("score", "float"),
        ("donor", "str"), ("ok", "bool"), ("when", "datetime"),
    ]  # fmt: skip
    assert not any(f._saved for f in features)
    ln.save(features)
    assert ln.Feature.filter().count() == 6


# -- values -------------------------------------------------------------------------------------
def test_add_get_remove_values(annotated: list[ln.Artifact]) -> None:
    a = annotated[0]
    assert a.features.get_values() == {
        "cell_type": "T cell", "n_cells": 100, "organism": "human", "temperature": 18.5,
    }  # fmt: skip
    # int given to a float feature is stored as a float (one value node for 25 and 25.0)
    assert annotated[2].features.get_values()["temperature"] == 25.0
    assert [u.name for u in a.ulabels] == ["T cell"]  # the label edge is a ulabels edge too
    a.features.remove_values("temperature")
    assert "temperature" not in a.features.get_values()
    a.features.remove_values("cell_type", value="T cell")
    assert "cell_type" not in a.features.get_values()
    a.features.remove_values()
    assert a.features.get_values() == {}
    assert annotated[1].features.get_values()["n_cells"] == 200  # others untouched


def test_values_are_shared_nodes_per_feature_and_value(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    before = _value_nodes(db)
    annotated[3].features.add_values({"organism": "human", "temperature": 18.5})
    assert _value_nodes(db) == before  # both (feature, value) pairs were stored already
    annotated[3].features.add_values({"organism": "human"})  # again: no second edge
    assert annotated[3].features.get_values()["organism"] == "human"


def test_all_scalar_dtypes_round_trip(storage: Path) -> None:
    for name, dtype in [("d", date), ("t", datetime), ("meta", dict), ("flag", bool),
                        ("sizes", list[int])]:  # fmt: skip
        ln.Feature(name=name, dtype=dtype).save()
    a = make_artifact(storage, "x.txt")
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    a.features.add_values(
        {
            "d": date(2024, 5, 1),
            "t": when,
            "meta": {"b": [1, 2], "a": "x"},
            "flag": False,
            "sizes": [3, 1, 2],
        }
    )
    assert a.features.get_values() == {
        "d": date(2024, 5, 1), "flag": False, "meta": {"a": "x", "b": [1, 2]},
        "sizes": [1, 2, 3], "t": when,
    }  # fmt: skip
    assert ln.Artifact.filter(sizes=2).count() == 1  # any element of a list feature
    frame = ln.Artifact.df(features=True)
    assert frame["sizes"].tolist() == [[1, 2, 3]] and frame["meta"].tolist() == [
        {"a": "x", "b": [1, 2]}
    ]
    assert frame["d"].tolist() == [date(2024, 5, 1)] and frame["t"].tolist() == [when]
    assert ln.Artifact.filter(d__gte="2024-01-01", t__lt=datetime(2025, 1, 1)).count() == 1


def test_collections_and_runs_hold_values(annotated: list[ln.Artifact]) -> None:
    collection = ln.Collection(annotated[:2], key="c").save()
    collection.features.add_values({"organism": "human", "cell_type": ["T cell", "B cell"]})
    assert collection.features.get_values() == {
        "cell_type": ["B cell", "T cell"], "organism": "human",
    }  # fmt: skip
    assert ln.Collection.filter(cell_type="B cell").one() == collection
    ln.Feature(name="learning_rate", dtype=float).save()
    run = ln.track("train.py", params={"learning_rate": 0.01, "epochs": 3})
    assert run.params == {"learning_rate": 0.01, "epochs": 3}  # readable as before
    assert run.features.get_values() == {"learning_rate": 0.01}  # the param with a feature
    assert ln.Run.filter(learning_rate__lt=0.1).one() == run
    ln.finish()


def test_collection_ulabels_are_what_its_members_are_labeled_with(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    """The reference's "ULabels sampled in the collection": the members' labels (through
    categorical features and direct links) and the collection's own, each once."""
    a0, _a1, a2, a3 = annotated  # cell_type: T cell, B cell, T cell, none
    collection = ln.Collection([a0, a2, a3], key="sampled").save()
    assert [u.name for u in collection.ulabels] == ["T cell"]  # on two members: once
    assert collection.ulabels.count() == 1 and len(collection.ulabels) == 1
    direct = ln.ULabel(name="healthy").save()
    a3.ulabels.add(direct)  # a direct link on a member
    own = ln.ULabel(name="atlas").save()
    collection.ulabels.add(own)  # add() labels the collection itself, not its members
    assert [u.name for u in a0.ulabels] == ["T cell"]
    assert sorted(u.name for u in collection.ulabels) == ["T cell", "atlas", "healthy"]
    assert collection.ulabels.count() == 3
    assert collection.ulabels.filter(name__startswith="a").one() == own
    assert sorted(collection.ulabels.df()["name"]) == ["T cell", "atlas", "healthy"]
    # B cell labels a1 only, which is not a member; a trashed label is left out.
    assert ln.ULabel.get(name="B cell") not in collection.ulabels.to_list()
    direct.delete()
    assert sorted(u.name for u in collection.ulabels) == ["T cell", "atlas"]
    # One parameterised statement, starting from the collection's uid.
    from graph import query as gq

    query, params = gq.compile_select(collection.ulabels._select)
    assert collection.uid not in query and params["anchor_uid"] == collection.uid
    assert query.startswith("MATCH (a:`Collection` {uid: $anchor_uid})-[:`CONTAINS`*0..1]->")
    plan = _plan(db, collection.ulabels)
    assert "NodeUniqueIndexSeek" in plan and "NodeByLabelScan" not in plan, plan
    # The collection's own labels only, as a filter through the relation (unchanged).
    assert ln.Collection.filter(ulabels__name="atlas").one() == collection
    assert ln.Collection.filter(ulabels__name="T cell").count() == 0


def test_label_counts_across_a_collections_members(annotated: list[ln.Artifact]) -> None:
    a0, _a1, a2, a3 = annotated  # cell_type: T cell, B cell, T cell, none
    ln.Feature(name="disease", dtype=ln.ULabel).save()
    ln.ULabel(name="healthy").save()
    a2.features.add_values({"disease": "healthy"})
    a3.ulabels.add(ln.ULabel.get(name="B cell"))  # a direct link
    collection = ln.Collection([a0, a2, a3], key="counted").save()
    counts = collection.label_counts()
    assert list(counts.columns) == ["label", "uid", "artifacts"]
    assert list(zip(counts["label"], counts["artifacts"])) == [
        ("T cell", 2), ("B cell", 1), ("healthy", 1),
    ]  # fmt: skip
    assert counts["uid"].tolist()[0] == ln.ULabel.get(name="T cell").uid
    by_feature = collection.label_counts(ln.Feature.get(name="cell_type"))
    assert list(zip(by_feature["label"], by_feature["artifacts"])) == [("T cell", 2)]
    assert collection.label_counts("disease")["label"].tolist() == ["healthy"]
    with pytest.raises(ValidationError, match="no feature named 'nope'"):
        collection.label_counts("nope")
    with pytest.raises(ValidationError, match="'temperature' has dtype float"):
        collection.label_counts("temperature")
    with pytest.raises(InvalidType):
        collection.label_counts(3)  # type: ignore[arg-type]
    empty = ln.Collection([_a1], key="unlabeled-but-b").save()
    assert empty.label_counts("disease").empty


def test_track_refuses_a_param_of_the_wrong_dtype_before_the_run(storage: Path) -> None:
    ln.Feature(name="learning_rate", dtype=float).save()
    with pytest.raises(ValidationError, match="'learning_rate' has dtype float"):
        ln.track("train.py", params={"learning_rate": "fast"})
    assert ln.Run.filter().count() == 0


def test_track_writes_the_run_and_its_param_values_in_one_transaction(
    storage: Path, db: ln.Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A label a param names is deleted by another process after the params were checked: the
    write of the run fails as a whole, so there is neither a run nor any of its values."""
    from graph import features as gf

    ln.Feature(name="learning_rate", dtype=float).save()
    ln.Feature(name="optimizer", dtype=ln.ULabel).save()
    adam = ln.ULabel(name="adam").save()
    find_labels = gf.find_labels

    def found_then_deleted(*args: object, **kwargs: object) -> dict[str, list[str]]:
        found = find_labels(*args, **kwargs)  # type: ignore[arg-type]
        ln.ULabel.get(adam.uid).delete(permanent=True)  # meanwhile, elsewhere
        return found

    monkeypatch.setattr(gf, "find_labels", found_then_deleted)
    with pytest.raises(ln.errors.MissingTarget, match="ULabel"):
        ln.track("train.py", params={"learning_rate": 0.01, "optimizer": "adam"})
    assert ln.Run.filter().count() == 0 and ln.context.run is None
    assert _value_nodes(db) == 0  # the learning rate's value was not written either
    monkeypatch.undo()
    ln.ULabel(name="adam").save()
    run = ln.track("train.py", params={"learning_rate": 0.01, "optimizer": "adam"})
    assert run.features.get_values() == {"learning_rate": 0.01, "optimizer": "adam"}
    assert ln.Run.filter(optimizer="adam").one() == run
    ln.finish()


def test_new_records_written_in_batches_carry_their_values(db: ln.Instance) -> None:
    """`graph.records.create_many` writes a record's `annotation` in the batch's transaction,
    under the new node's uid; a bad one fails the batch whole."""
    from graph import features as gf
    from graph import records as gr

    rate = ln.Feature(name="learning_rate", dtype=float).save()
    conn = db.connection
    records = [
        gr.NewRecord(
            {"uid": f"batchrun{i:012d}"}, annotation=gf.Annotation("-", [(rate.uid, r)], [])
        )
        for i, r in enumerate((0.1, 0.2))
    ]
    records.append(gr.NewRecord({"uid": "batchrun000000000002"}))
    gr.create_many(conn, "Run", records)
    assert [r.features.get_values() for r in ln.Run.filter().order_by("uid")] == [
        {"learning_rate": 0.1}, {"learning_rate": 0.2}, {},
    ]  # fmt: skip
    bad = gf.Annotation("-", [], [("feature-uid", "no-such-label")])
    with pytest.raises(ln.errors.MissingTarget):
        gr.create_many(conn, "Run", [gr.NewRecord({"uid": "batchrun000000000003"}, annotation=bad)])
    assert ln.Run.filter().count() == 3


def test_describe_shows_values(annotated: list[ln.Artifact], capsys: pytest.CaptureFixture) -> None:
    annotated[0].describe()
    out = capsys.readouterr().out
    assert "Features" in out and "temperature: 18.5" in out and "cell_type: 'T cell'" in out


def test_bulk_add_values(annotated: list[ln.Artifact], storage: Path) -> None:
    more = [make_artifact(storage, f"bulk{i}.txt") for i in range(5)]
    ln.Artifact.features.add_values_many(
        more, [{"n_cells": i, "cell_type": "B cell"} for i in range(5)]
    )
    assert ln.Artifact.filter(n_cells__lt=5, cell_type="B cell").count() == 5
    ln.Artifact.features.add_values_many(more, {"organism": "fish"})
    assert ln.Artifact.filter(organism="fish").count() == 5
    with pytest.raises(ValidationError, match="'n_cells' has dtype int"):
        ln.Artifact.features.add_values_many(more, [{"n_cells": 1}] * 4 + [{"n_cells": "x"}])
    assert ln.Artifact.filter(n_cells=1).count() == 1  # the earlier value only


def test_deleting_a_feature_for_good_deletes_its_values_and_value_edges(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    conn = db.connection

    def held(feature: ln.Feature) -> tuple[int, int, int]:
        """The feature's value nodes, HAS_VALUE edges to them, and categorical value edges."""
        row = conn.run(
            "RETURN COUNT { MATCH (v:FeatureValue {feature: $f}) } AS nodes, "
            "COUNT { MATCH ()-[:HAS_VALUE]->(:FeatureValue {feature: $f}) } AS values, "
            "COUNT { MATCH ()-[r:LABELED_WITH {feature: $f}]->() } AS labels",
            {"f": feature.uid},
        )[0]
        return row["nodes"], row["values"], row["labels"]

    temperature = ln.Feature.get(name="temperature")
    cell_type = ln.Feature.get(name="cell_type")
    n_cells = ln.Feature.get(name="n_cells")
    a0 = annotated[0]
    t_cell = ln.ULabel.get(name="T cell")
    a0.ulabels.add(ln.ULabel.get(name="B cell"))  # a plain label (no feature) stays
    assert held(temperature) == (3, 3, 0) and held(cell_type) == (0, 0, 3)
    temperature.delete()  # the trash keeps the values: the feature can be restored
    assert held(temperature) == (3, 3, 0)
    temperature.delete(permanent=True)
    assert held(temperature) == (0, 0, 0)
    assert a0.features.get_values() == {"cell_type": "T cell", "n_cells": 100, "organism": "human"}
    cell_type.delete(permanent=True)
    assert held(cell_type) == (0, 0, 0)
    assert ln.ULabel.get(name="T cell") == t_cell  # the labels themselves stay
    assert [u.name for u in a0.ulabels] == ["B cell"]
    assert held(n_cells) == (4, 4, 0)  # other features' values are untouched
    assert ln.Artifact.filter(n_cells__gte=200).count() == 3
    # A new feature of the old name starts with no values.
    ln.Feature(name="temperature", dtype=float).save()
    assert ln.Artifact.filter(temperature__isnull=False).count() == 0


# -- queries ------------------------------------------------------------------------------------
def test_filter_by_feature_values(annotated: list[ln.Artifact]) -> None:
    def keys(qs: ln.QuerySet) -> list[str]:
        return sorted(a.key for a in qs)

    assert keys(ln.Artifact.filter(temperature__gt=20)) == ["a1.txt", "a2.txt"]
    assert keys(ln.Artifact.filter(temperature__gt=20, cell_type="T cell")) == ["a2.txt"]
    assert keys(ln.Artifact.filter(temperature__gt=20, temperature__lt=22)) == ["a1.txt"]
    assert keys(ln.Artifact.filter(cell_type__in=["B cell", "x"])) == ["a1.txt"]
    assert keys(ln.Artifact.filter(temperature__isnull=True)) == ["a3.txt"]
    assert keys(ln.Artifact.filter(cell_type=None)) == ["a3.txt"]
    assert keys(ln.Artifact.filter(organism__startswith="hu", key__endswith="2.txt")) == ["a2.txt"]
    q = ln.Q(temperature__lt=20) | ln.Q(n_cells__gte=400)
    assert keys(ln.Artifact.filter(q)) == ["a0.txt", "a3.txt"]
    assert keys(ln.Artifact.filter(n_cells__gt=0).exclude(cell_type="T cell")) == [
        "a1.txt", "a3.txt",
    ]  # fmt: skip
    t_cell = ln.ULabel.get(name="T cell")
    assert keys(ln.Artifact.filter(cell_type=t_cell)) == ["a0.txt", "a2.txt"]
    assert ln.Artifact.filter(temperature__gt=20).order_by("-key").first().key == "a2.txt"


def test_feature_filter_is_one_statement_seeking_the_value_index(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    from graph import query as gq

    qs = ln.Artifact.filter(temperature__gt=20, cell_type="T cell", suffix=".txt")
    query, params = gq.compile_select(qs._select)
    assert "20" not in query and "T cell" not in query and "temperature" not in query
    result = db.connection.driver.execute_query("EXPLAIN " + query + " RETURN n", params)
    plan = repr(result.summary.plan)
    # The values are sought in the (feature, value) index, never scanned.
    assert "NodeUniqueIndexSeek" in plan, plan
    assert "NodeIndexScan" not in plan and "NodeByLabelScan" not in plan, plan


def _plan(db: ln.Instance, qs: ln.QuerySet) -> str:
    from graph import query as gq

    query, params = gq.compile_select(qs._select)
    return repr(
        db.connection.driver.execute_query("EXPLAIN " + query + " RETURN n", params).summary.plan
    )


def test_chained_filters_also_start_from_the_value_index(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    """`filter(field).filter(feature)` nests the second call's conditions in the Q tree; they
    are still top-level conjuncts and must seed the MATCH (else: a scan of every record)."""
    qs = ln.Artifact.filter(suffix=".txt").filter(temperature__gt=20, cell_type="T cell")
    assert [a.key for a in qs] == ["a2.txt"]
    plan = _plan(db, qs)
    assert "NodeUniqueIndexSeek" in plan and "NodeIndexScan" not in plan, plan
    assert "NodeByLabelScan" not in plan, plan


def test_a_label_and_a_value_condition_join_two_index_seeks(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    """A categorical equality beside a value condition: both seek their index and the records
    are joined, so a wide value range is never expanded record by record to its labels."""
    qs = ln.Artifact.filter(suffix=".txt").filter(temperature__gt=20, cell_type="T cell")
    assert [a.key for a in qs] == ["a2.txt"]
    plan = _plan(db, qs)
    assert "NodeHashJoin" in plan and "NodeIndexSeek" in plan, plan
    assert "NodeUniqueIndexSeek" in plan and "NodeIndexScan" not in plan, plan
    by_record = ln.Artifact.filter(
        temperature__gte=18.5, cell_type__in=[ln.ULabel.get(name="T cell")]
    )
    assert sorted(a.key for a in by_record) == ["a0.txt", "a2.txt"]
    assert "NodeHashJoin" in _plan(db, by_record)
    assert ln.Artifact.filter(cell_type__in=[], temperature__gt=0).count() == 0


def test_feature_conditions_under_or_and_not_expand_from_each_record(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    """Under OR/NOT a feature condition must not seek the value index once per record (an
    EXISTS subquery planned that way took 22 s at 10k artifacts): no index seek at all."""
    qs = ln.Artifact.filter(ln.Q(temperature__gt=20) | ln.Q(cell_type="B cell"))
    assert sorted(a.key for a in qs) == ["a1.txt", "a2.txt"]
    assert "IndexSeek" not in _plan(db, qs)
    qs = ln.Artifact.filter().exclude(temperature__gt=20)
    assert sorted(a.key for a in qs) == ["a0.txt", "a3.txt"]
    assert "IndexSeek" not in _plan(db, qs)


def test_df_with_features(annotated: list[ln.Artifact]) -> None:
    frame = ln.Artifact.filter(key__startswith="a").order_by("key").df(features=True)
    assert list(frame.columns[-4:]) == ["cell_type", "n_cells", "organism", "temperature"]
    assert frame["temperature"].tolist()[:3] == [18.5, 21.0, 25.0]
    assert frame["cell_type"].tolist() == ["T cell", "B cell", "T cell", None]
    some = ln.Artifact.df(features=["n_cells"])
    assert some["n_cells"].tolist() == [100, 200, 300, 400] and "temperature" not in some
    with pytest.raises(FieldValidationError, match="no feature named 'nope'"):
        ln.Artifact.df(features=["nope"])


def test_df_cells_are_what_get_values_gives_across_batches(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`df(features=True)` reads values by column (record position, feature, value), a batch of
    records per result row: each cell is what `get_values()` gives that record, whatever the
    shape (several values of a one-value feature, several labels, list and dict dtypes, a
    datetime, a value node shared by two records; a feature deleted for good leaves no column)."""
    monkeypatch.setattr(gq, "_BATCH", 2)  # 7 records: positions across 4 batches
    for name, dtype in [("temperature", float), ("cell_type", ln.ULabel), ("sizes", list[int]),
                        ("meta", dict), ("when", datetime), ("gone", int)]:  # fmt: skip
        ln.Feature(name=name, dtype=dtype).save()
    for name in ("T cell", "B cell"):
        ln.ULabel(name=name).save()
    artifacts = [make_artifact(storage, f"b{i}.txt") for i in range(7)]
    when = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    artifacts[0].features.add_values({"temperature": 1.5, "cell_type": "T cell", "gone": 3})
    artifacts[1].features.add_values({"temperature": 2.5})
    artifacts[1].features.add_values({"temperature": 0.5})  # a second value
    artifacts[2].features.add_values({"cell_type": ["B cell", "T cell"], "sizes": [3, 1]})
    artifacts[3].features.add_values({"meta": {"b": [1], "a": None}, "when": when})
    artifacts[5].features.add_values({"sizes": [7], "temperature": 9.0})
    artifacts[6].features.add_values({"temperature": 1.5, "cell_type": "B cell"})
    gone = ln.Feature.get(name="gone")
    gone.delete(permanent=True)

    frame = ln.Artifact.filter(key__startswith="b").order_by("key").df(features=True)
    assert frame.index.tolist() == [a.id for a in artifacts]
    assert frame["temperature"].tolist() == [1.5, [0.5, 2.5], None, None, None, 9.0, 1.5]
    assert frame["cell_type"].tolist() == ["T cell", None, ["B cell", "T cell"], None, None,
                                           None, "B cell"]  # fmt: skip
    assert frame["sizes"].tolist() == [None, None, [1, 3], None, None, [7], None]
    assert frame.loc[artifacts[3].id, "meta"] == {"a": None, "b": [1]}
    assert frame.loc[artifacts[3].id, "when"] == when
    # A feature deleted for good took its values with it: no column, by name or by uid.
    assert "gone" not in frame.columns and gone.uid not in frame.columns
    features = ["cell_type", "meta", "sizes", "temperature", "when"]
    assert sorted(frame.columns[-5:]) == sorted(features)
    for artifact in artifacts:
        values = artifact.features.get_values()
        for name in features:
            cell = frame.loc[artifact.id, name]
            if name in values:
                assert cell == values[name], (name, cell)
            else:  # None, or pandas' NaT/NaN where it made a datetime or float column
                assert cell is None or pd.isna(cell), (name, cell)


def test_df_is_one_statement_and_knows_features_without_records(
    annotated: list[ln.Artifact], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    run = neo4j.Session.run

    def counting(self: neo4j.Session, query: str, *args: object, **kwargs: object) -> object:
        sent.append(query)
        return run(self, query, *args, **kwargs)

    qs = ln.Artifact.filter(key__startswith="a")
    monkeypatch.setattr(neo4j.Session, "run", counting)
    frame = qs.df(features=True, include=["created_by__handle"])
    assert len(sent) == 1 and len(frame) == 4 and frame["n_cells"].tolist()[-1] == 400
    none = ln.Artifact.filter(key="nothing")
    sent.clear()
    empty = none.df(features=["temperature", "n_cells"])
    assert len(sent) == 1 and len(empty) == 0
    assert list(empty.columns[-2:]) == ["temperature", "n_cells"]
    with pytest.raises(FieldValidationError, match="no feature named 'nope'"):
        none.df(features=["nope"])  # an unknown name is refused with no record to show


# -- bad input ----------------------------------------------------------------------------------
def test_wrong_dtype_names_feature_value_dtype_and_writes_nothing(
    annotated: list[ln.Artifact], db: ln.Instance
) -> None:
    a = annotated[3]
    before = (_value_nodes(db), _edges(db))
    with pytest.raises(ValidationError) as exc:
        a.features.add_values({"n_cells": 5, "temperature": "warm"})
    assert "'temperature'" in str(exc.value) and "'warm'" in str(exc.value)
    assert "float" in str(exc.value)
    for bad in ({"n_cells": 1.5}, {"n_cells": True}, {"organism": 3}, {"temperature": [1.0]}):
        with pytest.raises(ValidationError):
            a.features.add_values(bad)
    assert (_value_nodes(db), _edges(db)) == before
    assert a.features.get_values() == {"n_cells": 400}


def test_unknown_feature_and_unknown_labels(annotated: list[ln.Artifact], db: ln.Instance) -> None:
    a = annotated[3]
    before = (_value_nodes(db), _edges(db))
    with pytest.raises(ValidationError, match="no feature named 'nope'"):
        a.features.add_values({"nope": 1, "n_cells": 2})
    with pytest.raises(ValidationError, match=r"could not be validated.*'NK cell', 'X cell'"):
        a.features.add_values({"cell_type": ["NK cell", "T cell", "X cell"], "n_cells": 2})
    assert (_value_nodes(db), _edges(db)) == before
    ln.ULabel(name="NK cell").save()
    a.features.add_values({"cell_type": "NK cell"})
    assert a.features.get_values()["cell_type"] == "NK cell"
    with pytest.raises(
        FieldValidationError, match=r"no field or relation 'nope'.*nor a feature named 'nope'"
    ):
        ln.Artifact.filter(nope=1)
    with pytest.raises(FieldValidationError, match="needs a number"):
        ln.Artifact.filter(temperature__gt="warm")
    with pytest.raises(FieldValidationError, match="lookup 'gt' does not apply"):
        ln.Artifact.filter(cell_type__gt="a")


def test_typed_labels_only_accept_their_type(storage: Path) -> None:
    cell_types = ln.ULabel(name="CellType", is_type=True).save()
    ln.ULabel(name="T cell", type=cell_types).save()
    ln.ULabel(name="liver").save()
    ln.Feature(name="cell_type", dtype=cell_types).save()
    a = make_artifact(storage, "x.txt")
    with pytest.raises(ValidationError, match="'liver'"):
        a.features.add_values({"cell_type": "liver"})
    a.features.add_values({"cell_type": "T cell"})
    assert a.features.get_values() == {"cell_type": "T cell"}


def test_injected_names_are_data(storage: Path, db: ln.Instance) -> None:
    evil = "x`}) DETACH DELETE n //"
    ln.Feature(name=evil, dtype=str).save()
    a = make_artifact(storage, "x.txt")
    a.features.add_values({evil: "y') DETACH DELETE n //"})
    assert a.features.get_values() == {evil: "y') DETACH DELETE n //"}
    assert ln.Artifact.filter(**{evil: "y') DETACH DELETE n //"}).one() == a
    assert ln.Artifact.filter().count() == 1 and ln.Feature.filter().count() == 1
    with pytest.raises(FieldValidationError):
        ln.Artifact.filter(**{"y`}) DETACH DELETE n //": 1}).count()
    assert ln.Artifact.df(features=True)[evil].tolist() == ["y') DETACH DELETE n //"]


def test_unsaved_records_and_bad_keys(storage: Path) -> None:
    ln.Feature(name="n", dtype=int).save()
    path = storage.parent / "unsaved.txt"
    path.write_text("never saved\n")
    with pytest.raises(ln.errors.NotSaved):
        ln.Artifact(path, key="unsaved.txt").features.add_values({"n": 1})
    a = make_artifact(storage, "c.txt")
    with pytest.raises(InvalidType):
        a.features.add_values({1: 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidType):
        a.features.add_values(["n", 1])  # type: ignore[arg-type]


# -- schema -------------------------------------------------------------------------------------
def test_a_v2_database_upgrades_to_features(db: ln.Instance) -> None:
    conn = db.connection
    for name in ("constraint_unique_Feature_name", "constraint_unique_FeatureValue_feature_value"):
        conn.run(f"DROP CONSTRAINT {name}")
    conn.run("DROP INDEX index_ULabel_is_type")
    conn.run("MATCH (s:LineageSchema) SET s.version = 2")
    report = install_schema(conn)
    assert report.migrations_run == [3, 4, 5, 6] and report.version == SCHEMA_VERSION == 6
    assert "constraint_unique_FeatureValue_feature_value" in report.created
    ln.Feature(name="t", dtype=float).save()
    conn.run("CREATE (:FeatureValue {feature: 'f', value: 1.0})")
    with pytest.raises(ln.errors.QueryError):
        conn.run("CREATE (:FeatureValue {feature: 'f', value: 1.0})")


def test_concurrent_writers_share_one_value_node(storage: Path, db: ln.Instance) -> None:
    """Eight threads add the same new values to eight artifacts at once: the (feature, value)
    constraint makes each value one node, every artifact holds it."""
    from tests.test_versioning import run_threads

    ln.Feature(name="temperature", dtype=float).save()
    ln.Feature(name="organism", dtype=str).save()
    artifacts = [make_artifact(storage, f"c{i}.txt") for i in range(8)]
    _, errors = run_threads(
        8, lambda i: artifacts[i].features.add_values({"temperature": 37.0, "organism": "human"})
    )
    assert errors == []
    assert _value_nodes(db) == 2
    assert ln.Artifact.filter(temperature=37.0, organism="human").count() == 8
