"""Schemas and curators: `ln.Schema` as a graph node, validation of DataFrames and AnnData
against it (`Artifact.from_dataframe/from_anndata(schema=)`, `ln.curators`), the annotation
written with the artifact, the schema migration, and bad input (real Neo4j, real files)."""

from __future__ import annotations

import logging
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import lineage as ln
from graph import records as gr
from graph.schema import SCHEMA_VERSION, install_schema
from lineage._schema import schema_hash
from lineage.errors import (
    InvalidArgument,
    InvalidType,
    MissingTarget,
    NotSaved,
    NotSupported,
    ValidationError,
)
from tests.test_versioning import run_threads

INJECTED = "x` }) MATCH (n) DETACH DELETE n //"


def _count(label: str) -> int:
    return int(ln.cypher(f"MATCH (n:{label}) RETURN count(n) AS n")["n"].iloc[0])


def _stored_files(storage: Path) -> list[Path]:
    return sorted(p for p in storage.rglob("*") if p.is_file())


def _staged(storage: Path) -> list[Path]:
    staging = ln.settings.cache_dir / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


@pytest.fixture
def immuno(storage: Path) -> dict[str, ln.Record]:
    """lamindb's mini immuno features and labels, with ULabel types for its Record types."""
    perturbation = ln.ULabel(name="Perturbation", is_type=True).save()
    ln.ULabel(name="DMSO", type=perturbation).save()
    ln.ULabel(name="IFNG", type=perturbation).save()
    ln.ULabel(name="B cell").save()
    ln.ULabel(name="T cell").save()
    return {
        "perturbation": ln.Feature(name="perturbation", dtype=perturbation).save(),
        "cell_type": ln.Feature(name="cell_type_by_model", dtype=ln.ULabel).save(),
        "note": ln.Feature(name="sample_note", dtype=str).save(),
        "hours": ln.Feature(name="treatment_time_h", dtype=int).save(),
    }


@pytest.fixture
def schema(immuno: dict[str, ln.Record]) -> ln.Schema:
    return ln.Schema(
        name="mini_immuno",
        features=[immuno["perturbation"], immuno["cell_type"], immuno["note"], immuno["hours"]],
    ).save()


def _frame(**changes: object) -> pd.DataFrame:
    data: dict[str, object] = {
        "perturbation": pd.Categorical(["DMSO", "IFNG", "DMSO"]),
        "cell_type_by_model": pd.Categorical(["B cell", "T cell", "T cell"]),
        "sample_note": ["was ok", "looks naah", "pretty! 🤩"],
        "treatment_time_h": [24, 24, 6],
    }
    data.update(changes)
    return pd.DataFrame(data, index=["sample1", "sample2", "sample3"])


# -- the registry -------------------------------------------------------------------------------
def test_schema_is_a_node_with_ordered_feature_edges(schema: ln.Schema) -> None:
    assert (schema.itype, schema.n_members, schema.flexible) == ("Feature", 4, False)
    assert (schema.minimal_set, schema.maximal_set, schema.ordered_set) == (True, False, False)
    names = ["perturbation", "cell_type_by_model", "sample_note", "treatment_time_h"]
    assert [f.name for f in schema.members] == names
    edges = ln.cypher(
        "MATCH (s:Schema {uid: $uid})-[e:HAS_FEATURE]->(f:Feature) "
        "RETURN e.position AS position, f.name AS name ORDER BY position",
        uid=schema.uid,
    )
    assert edges["position"].tolist() == [0, 1, 2, 3] and edges["name"].tolist() == names
    assert schema.hash == schema_hash(
        itype="Feature",
        minimal_set=True,
        ordered_set=False,
        maximal_set=False,
        flexible=False,
        coerce=None,
        feature_uids=[f.uid for f in schema.members],
        slot_hashes={},
    )
    assert [s.name for s in ln.Feature.get(name="sample_note").schemas] == ["mini_immuno"]


def test_the_hash_is_lamindbs() -> None:
    """Hashes lamindb 2.12.1 gave for the same rules and feature uids (its `valid_features`
    schema, two feature schemas, an AnnData schema of both)."""
    assert (
        schema_hash(
            itype="Feature", minimal_set=True, ordered_set=False, maximal_set=False,
            flexible=True, coerce=None, feature_uids=[], slot_hashes={},
        )
        == "kMi7B_N88uu-YnbTLDU-DA"
    )  # fmt: skip
    uids = ["p2zK26h2iuU5", "UZLUpwMYtJ6D"]
    plain = schema_hash(
        itype="Feature", minimal_set=True, ordered_set=False, maximal_set=False,
        flexible=False, coerce=None, feature_uids=uids, slot_hashes={},
    )  # fmt: skip
    strict = schema_hash(
        itype="Feature", minimal_set=True, ordered_set=True, maximal_set=True,
        flexible=True, coerce=True, feature_uids=uids, slot_hashes={},
    )  # fmt: skip
    composite = schema_hash(
        itype=None, minimal_set=True, ordered_set=False, maximal_set=False,
        flexible=True, coerce=None, feature_uids=[], slot_hashes={"obs": plain, "var.T": strict},
    )  # fmt: skip
    assert (plain, strict, composite) == (
        "SpJVnigZu0qxtQjmEB2Jng",
        "uSRF34k1kY3asEaV3nbvSg",
        "X8xgdQSlB7T_0ZcM2AT5Bw",
    )


def test_the_same_schema_again_is_the_stored_one(
    schema: ln.Schema, immuno: dict[str, ln.Record]
) -> None:
    features = [immuno[k] for k in ("hours", "note", "cell_type", "perturbation")]
    again = ln.Schema(features=features)  # another order: the same set
    assert again._saved and again.uid == schema.uid and again.name == "mini_immuno"
    renamed = ln.Schema(features=features, name="immuno v2").save()
    assert renamed.uid == schema.uid and ln.Schema.get(schema.uid).name == "immuno v2"
    ordered = ln.Schema(features=features, ordered_set=True).save()  # order matters: another
    assert ordered.uid != schema.uid and _count("Schema") == 2


def test_concurrent_saves_of_one_schema_make_one_node(immuno: dict[str, ln.Record]) -> None:
    drafts = [ln.Schema(features=[immuno["note"], immuno["hours"]]) for _ in range(4)]
    assert not any(d._saved for d in drafts)
    results, errors = run_threads(4, lambda i: drafts[i].save())
    assert errors == []
    assert _count("Schema") == 1 and len({r.uid for r in results}) == 1
    assert _count_edges("HAS_FEATURE") == 2


def _count_edges(edge: str) -> int:
    return int(ln.cypher(f"MATCH ()-[e:{edge}]->() RETURN count(e) AS n")["n"].iloc[0])


def test_composite_schema_has_slot_edges(immuno: dict[str, ln.Record]) -> None:
    obs = ln.Schema(features=[immuno["cell_type"]]).save()
    var = ln.Schema(itype=ln.Feature).save()
    composite = ln.Schema(otype="AnnData", slots={"obs": obs, "var.T": var}, name="sc").save()
    assert composite.slots == {"obs": obs, "var.T": var}
    assert (composite.itype, composite.n_members, composite.flexible) == (None, None, True)
    edges = ln.cypher(
        "MATCH (:Schema {uid: $uid})-[e:HAS_COMPONENT]->(c:Schema) "
        "RETURN e.slot AS slot, c.uid AS uid ORDER BY slot",
        uid=composite.uid,
    )
    assert edges.values.tolist() == [["obs", obs.uid], ["var.T", var.uid]]
    assert [c.name for c in obs.composites] == ["sc"] and list(composite.components) == [obs, var]
    assert ln.Schema(otype="AnnData", slots={"var.T": var, "obs": obs}).save().uid == composite.uid


def test_filter_get_df_trash_and_restore(schema: ln.Schema, immuno: dict[str, ln.Record]) -> None:
    assert ln.Schema.get(name="mini_immuno") == schema
    assert ln.Schema.filter(itype="Feature", n_members__gte=4).one() == schema
    assert ln.Schema.filter(features__name="sample_note").one() == schema
    assert ln.Schema.df()["name"].tolist() == ["mini_immuno"]
    schema.delete()
    assert schema.branch == -1 and ln.Schema.filter(name="mini_immuno").count() == 0
    fresh = ln.Schema(features=list(schema.members))  # lamindb looks outside the trash only
    assert not fresh._saved
    schema.restore()
    assert ln.Schema.filter(name="mini_immuno").one() == schema


def test_what_the_hash_is_made_of_cannot_change(schema: ln.Schema) -> None:
    for field, value in (("maximal_set", True), ("itype", "Feature"), ("coerce", True),
                         ("otype", "AnnData"), ("n_members", 1)):  # fmt: skip
        with pytest.raises(InvalidArgument, match="fixed once a schema exists"):
            setattr(schema, field, value)
    with pytest.raises(InvalidArgument, match="fixed once a schema exists"):
        ln.Schema.filter(name="mini_immuno").update(minimal_set=False)
    schema.description = "obs-level metadata"
    schema.save()
    stored = ln.Schema.get(schema.uid)
    assert stored.description == "obs-level metadata" and stored.minimal_set is True
    assert not hasattr(schema.members, "add")  # members are fixed too


def test_permanent_deletes_that_would_break_a_schema_are_refused(
    storage: Path, schema: ln.Schema, immuno: dict[str, ln.Record]
) -> None:
    with pytest.raises(InvalidArgument, match="member of 1 schema"):
        immuno["note"].delete(permanent=True)
    artifact = ln.Artifact.from_dataframe(_frame(), key="a.parquet", schema=schema).save()
    with pytest.raises(InvalidArgument, match="1 artifact"):
        schema.delete(permanent=True)
    composite = ln.Schema(otype="AnnData", slots={"obs": schema}).save()
    artifact.delete(permanent=True)
    with pytest.raises(InvalidArgument, match="composite schema"):
        schema.delete(permanent=True)
    composite.delete(permanent=True)
    schema.delete(permanent=True)
    assert _count("Schema") == 0 and _count_edges("HAS_FEATURE") == 0
    immuno["note"].delete(permanent=True)  # no schema lists it now
    assert ln.Feature.filter(name="sample_note").count() == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, InvalidArgument, "needs features=, slots= or itype="),
        ({"index": "x"}, NotSupported, "index"),
        ({"colour": 1}, InvalidArgument, "unexpected keyword 'colour'"),
        ({"features": "sample_note"}, InvalidType, "list of Feature records"),
        ({"features": ["sample_note"]}, InvalidType, "item 0 is a str"),
        ({"features": [1.5]}, InvalidType, "item 0 is a float"),
        ({"otype": "MuData", "itype": ln.Feature}, ValidationError, "DataFrame and AnnData"),
        ({"itype": "bionty.Gene.ensembl_gene_id"}, ValidationError, "Feature registry only"),
        ({"itype": ln.ULabel}, ValidationError, "Feature registry only"),
        ({"itype": ln.Feature, "minimal_set": "yes"}, InvalidType, "True or False"),
        ({"itype": ln.Feature, "coerce": 1}, InvalidType, "True, False or None"),
        ({"itype": ln.Feature, "name": 3}, ValidationError, "Schema.name takes str"),
        ({"slots": {"obs": None}}, InvalidArgument, "needs otype="),
        ({"slots": ["obs"], "otype": "AnnData"}, InvalidType, "dict of slot"),
        ({"slots": {INJECTED: None}, "otype": "AnnData"}, ValidationError, "is not a slot"),
        ({"slots": {"uns": None}, "otype": "AnnData"}, NotSupported, "'uns' is not validated"),
        ({"slots": {"attrs": None}, "otype": "DataFrame"}, NotSupported, "not by slots"),
        ({"slots": {"obs": "schema"}, "otype": "AnnData"}, InvalidType, "takes a Schema"),
        ({"type": "Panel", "itype": ln.Feature}, InvalidType, "takes a Schema, not str"),
    ],
)
def test_bad_schema_arguments_are_refused_before_anything_is_stored(
    db: ln.Instance, kwargs: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ln.Schema(**kwargs)
    assert _count("Schema") == 0


def test_bad_features_and_components_are_refused(immuno: dict[str, ln.Record]) -> None:
    unsaved = ln.Feature(name="unsaved", dtype=int)
    with pytest.raises(NotSaved):
        ln.Schema(features=[unsaved])
    group = ln.Feature(name="Group", is_type=True).save()
    with pytest.raises(ValidationError, match="is a feature type"):
        ln.Schema(features=[group])
    with pytest.raises(ValidationError, match="more than once"):
        ln.Schema(features=[immuno["note"], immuno["note"]])
    immuno["hours"].delete()
    with pytest.raises(ValidationError, match="in the trash"):
        ln.Schema(features=[immuno["hours"]])
    with pytest.raises(ValidationError, match="not a feature type"):
        ln.Schema(itype=immuno["note"])
    with pytest.raises(NotSaved):
        ln.Schema(otype="AnnData", slots={"obs": ln.Schema(features=[immuno["note"]])})
    panel = ln.Schema(name="Panel", is_type=True).save()
    with pytest.raises(ValidationError, match="schema type"):
        ln.Schema(otype="AnnData", slots={"obs": panel})
    with pytest.raises(ValidationError, match="not a schema type"):
        ln.Schema(features=[immuno["note"]], type=ln.Schema(itype=ln.Feature).save())
    assert _count("Schema") == 2  # the type and the itype schema, nothing else
    grouped = ln.Schema(features=[immuno["note"]], type=panel).save()
    assert grouped.type == panel and list(panel.schemas) == [grouped]


def test_a_v3_database_opens_and_upgrades(db: ln.Instance) -> None:
    conn = db.connection
    for name in ("constraint_unique_Schema_uid", "constraint_unique_Schema_id"):
        conn.run(f"DROP CONSTRAINT {name}")
    for name in ("index_Schema_hash", "index_Schema_itype", "index_Schema_is_type"):
        conn.run(f"DROP INDEX {name}")
    conn.run("MATCH (s:LineageSchema) SET s.version = 3")
    ln.Feature(name="kept", dtype=int).save()  # a v3 database with data in it
    report = install_schema(conn)
    assert report.migrations_run == [4, 5, 6] and report.version == SCHEMA_VERSION == 6
    assert {"constraint_unique_Schema_uid", "index_Schema_hash"} <= set(report.created)
    version = conn.run("MATCH (s:LineageSchema) RETURN s.version AS v, s.migrations AS m")[0]
    assert version["v"] == 6 and version["m"][3].startswith("4: schemas")
    schema = ln.Schema(features=[ln.Feature.get(name="kept")]).save()
    with pytest.raises(ln.errors.QueryError):
        conn.run("CREATE (:Schema {uid: $uid})", {"uid": schema.uid})


# -- validating and annotating --------------------------------------------------------------------
def test_from_dataframe_validates_and_annotates_in_the_nodes_transaction(
    storage: Path, schema: ln.Schema
) -> None:
    artifact = ln.Artifact.from_dataframe(_frame(), key="examples/dataset1.parquet", schema=schema)
    assert not artifact._saved and _count("Artifact") == 0
    artifact.save()
    assert artifact.schema == schema and list(schema.validated_artifacts) == [artifact]
    assert artifact.features.get_values() == {
        "cell_type_by_model": ["B cell", "T cell"],
        "perturbation": ["DMSO", "IFNG"],
    }
    edges = ln.cypher(
        "MATCH (a:Artifact)-[e:LABELED_WITH]->(u:ULabel) MATCH (f:Feature {uid: e.feature}) "
        "RETURN f.name AS feature, u.name AS label ORDER BY feature, label"
    )
    assert edges.values.tolist() == [
        ["cell_type_by_model", "B cell"],
        ["cell_type_by_model", "T cell"],
        ["perturbation", "DMSO"],
        ["perturbation", "IFNG"],
    ]
    assert ln.Artifact.filter(perturbation="IFNG", cell_type_by_model="B cell").one() == artifact
    # "T cell" is a value of one feature here; a label under two features is listed once
    ln.Feature(name="cell_type_by_expert", dtype=ln.ULabel).save()
    artifact.features.add_values({"cell_type_by_expert": "T cell"})
    assert sorted(u.name for u in artifact.ulabels) == ["B cell", "DMSO", "IFNG", "T cell"]
    assert artifact.ulabels.count() == 4 and _count_edges("LABELED_WITH") == 5
    assert ln.Artifact.filter(schema=schema).one() == artifact
    assert artifact.load()["treatment_time_h"].tolist() == [24, 24, 6]


def test_a_failed_write_leaves_neither_node_nor_file(storage: Path, schema: ln.Schema) -> None:
    artifact = ln.Artifact.from_dataframe(_frame(), key="a.parquet", schema=schema)
    ln.ULabel.get(name="IFNG").delete(permanent=True)  # a label gone since validation
    with pytest.raises(MissingTarget, match="ULabel"):
        artifact.save()
    assert _count("Artifact") == 0 and _count_edges("VALIDATED_BY") == 0
    assert [p for p in _stored_files(storage) if ".lineage" in p.parts] == []


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (_frame(perturbation=pd.Categorical(["DMSO", "IFNJ", "DMSO"])),
         ["1 term not validated in feature 'perturbation': 'IFNJ'",
          "add_new_from('perturbation')",
          "a valid label for type 'Perturbation' has to be one of ['DMSO', 'IFNG']"]),
        (_frame().drop(columns=["sample_note", "treatment_time_h"]),
         ["column 'sample_note' not in dataframe",
          "column 'treatment_time_h' not in dataframe"]),
        (_frame(treatment_time_h=[24.5, 24.0, 6.0]),
         ["expected series 'treatment_time_h' to have type int, got float64", "coerce=True"]),
        (_frame(perturbation=["DMSO", "IFNG", "DMSO"]),
         ["expected series 'perturbation' to have type category, got object"]),
        (_frame(sample_note=[1, 2, 3]), ["expected series 'sample_note' to have type str"]),
        (_frame(cell_type_by_model=pd.Categorical(["B cell", "NK", INJECTED])),
         ["2 terms not validated in feature 'cell_type_by_model': 'NK', 'x` })"]),
    ],
)  # fmt: skip
def test_invalid_data_is_a_validation_error_with_nothing_stored(
    storage: Path, schema: ln.Schema, frame: pd.DataFrame, expected: list[str]
) -> None:
    before = _count("ULabel"), _count("Feature")
    with pytest.raises(ValidationError) as info:
        ln.Artifact.from_dataframe(frame, key="bad.parquet", schema=schema)
    for text in expected:
        assert text in str(info.value)
    assert _count("Artifact") == 0 and _count("FeatureValue") == 0
    assert (_count("ULabel"), _count("Feature")) == before
    assert _stored_files(storage) == [] and _staged(storage) == []


def test_coerce_converts_losslessly_and_stores_the_converted_data(
    storage: Path, immuno: dict[str, ln.Record]
) -> None:
    schema = ln.Schema(features=[immuno["perturbation"], immuno["hours"]], coerce=True).save()
    frame = pd.DataFrame({"perturbation": ["DMSO", "IFNG"], "treatment_time_h": ["24", 6.0]})
    artifact = ln.Artifact.from_dataframe(frame, key="coerced.parquet", schema=schema).save()
    loaded = artifact.load()
    assert isinstance(loaded["perturbation"].dtype, pd.CategoricalDtype)
    assert (
        loaded["treatment_time_h"].tolist() == [24, 6]
        and loaded["treatment_time_h"].dtype == "int64"
    )
    assert frame["treatment_time_h"].tolist() == ["24", 6.0]  # the caller's frame is left alone
    with pytest.raises(ValidationError, match="Could not losslessly coerce into int"):
        ln.Artifact.from_dataframe(
            frame.assign(treatment_time_h=[1.5, 2]), key="lossy.parquet", schema=schema
        )
    assert _count("Artifact") == 1


def test_maximal_and_ordered_sets(storage: Path, immuno: dict[str, ln.Record]) -> None:
    strict = ln.Schema(
        features=[immuno["note"], immuno["hours"]], maximal_set=True, ordered_set=True
    ).save()
    good = pd.DataFrame({"sample_note": ["a"], "treatment_time_h": [1]})
    ln.curators.DataFrameCurator(good, strict).validate()
    with pytest.raises(ValidationError, match="column 'extra' not in the schema"):
        ln.curators.DataFrameCurator(good.assign(extra=[1]), strict).validate()
    with pytest.raises(ValidationError, match="column 'treatment_time_h' out-of-order"):
        ln.curators.DataFrameCurator(good[["treatment_time_h", "sample_note"]], strict).validate()
    loose = ln.Schema(features=[immuno["note"], immuno["hours"]], minimal_set=False).save()
    ln.curators.DataFrameCurator(good[["sample_note"]].assign(extra=[1]), loose).validate()


def test_a_flexible_schema_validates_the_features_of_its_type(storage: Path) -> None:
    samples = ln.Feature(name="SampleFeatures", is_type=True).save()
    ln.Feature(name="tissue", dtype=ln.ULabel, type=samples).save()
    ln.Feature(name="depth", dtype=int).save()  # a feature, but not of that type
    ln.ULabel(name="lung").save()
    schema = ln.Schema(itype=samples).save()
    assert (schema.itype, schema.flexible) == (f"Feature[{samples.uid}]", True)
    frame = pd.DataFrame({"tissue": pd.Categorical(["lung"]), "depth": ["not an int"], "x": [1]})
    artifact = ln.Artifact.from_dataframe(frame, key="flex.parquet", schema=schema).save()
    assert artifact.features.get_values() == {"tissue": "lung"}
    with pytest.raises(ValidationError, match="'liver'"):
        ln.Artifact.from_dataframe(
            frame.assign(tissue=pd.Categorical(["liver"])), key="f2.parquet", schema=schema
        )


def test_content_already_stored_is_annotated_once(storage: Path, schema: ln.Schema) -> None:
    plain = ln.Artifact.from_dataframe(_frame(), key="plain.parquet").save()
    again = ln.Artifact.from_dataframe(_frame(), key="plain.parquet", schema=schema)
    assert again._saved and again.uid == plain.uid
    again.save()
    ln.Artifact.from_dataframe(_frame(), key="plain.parquet", schema=schema).save()
    assert ln.Artifact.get(plain.uid).schema == schema
    assert _count_edges("LABELED_WITH") == 4  # merged: annotating twice adds nothing


def test_content_stored_meanwhile_gets_the_annotation(storage: Path, schema: ln.Schema) -> None:
    annotated = ln.Artifact.from_dataframe(_frame(), key="race.parquet", schema=schema)
    other = ln.Artifact.from_dataframe(_frame(), key="race.parquet").save()  # saved first
    annotated.save()
    assert annotated.uid == other.uid and _count("Artifact") == 1
    assert ln.Artifact.get(other.uid).schema == schema and _count_edges("LABELED_WITH") == 4


def test_twins_in_one_bulk_save_are_all_annotated(storage: Path, schema: ln.Schema) -> None:
    first = ln.Artifact.from_dataframe(_frame(), key="twin.parquet", schema=schema)
    second = ln.Artifact.from_dataframe(_frame(), key="twin.parquet", schema=schema)
    ln.save([first, second])
    assert first.uid == second.uid and _count("Artifact") == 1
    assert ln.Artifact.get(first.uid).schema == schema and _count_edges("LABELED_WITH") == 4


def test_a_new_version_is_annotated_in_its_transaction(storage: Path, schema: ln.Schema) -> None:
    v1 = ln.Artifact.from_dataframe(_frame(), key="v.parquet").save()
    v2 = ln.Artifact.from_dataframe(
        _frame(treatment_time_h=[1, 2, 3]), key="v.parquet", schema=schema
    ).save()
    assert v2.uid[:16] == v1.uid[:16] and v2.schema == schema and v1.schema is None
    assert ln.Artifact.filter(perturbation="DMSO").one() == v2


# -- curators -------------------------------------------------------------------------------------
def test_dataframe_curator_reports_fixes_and_saves(storage: Path, schema: ln.Schema) -> None:
    frame = _frame(
        perturbation=pd.Categorical(["DMSO", "IFNJ", "DMSO"]),
        cell_type_by_model=pd.Categorical(["b cell", "T cell", "T cell"]),
    )
    curator = ln.curators.DataFrameCurator(frame, schema)
    with pytest.raises(ValidationError, match="Please run validate"):
        curator.cat.non_validated  # noqa: B018
    with pytest.raises(ValidationError) as info:
        curator.validate()
    assert str(info.value).splitlines()[:3] == [
        "1 term not validated in feature 'perturbation': 'IFNJ'",
        "    → fix typos, remove non-existent values, or create them via: "
        "curator.cat.add_new_from('perturbation')",
        "    → a valid label for type 'Perturbation' has to be one of ['DMSO', 'IFNG']",
    ]
    assert str(info.value).splitlines()[3:] == [
        "1 term not validated in feature 'cell_type_by_model': 'b cell'",
        '    1 synonym found: "b cell" → "B cell"',
        '    → curate synonyms via: curator.cat.standardize("cell_type_by_model")',
    ]
    assert curator.cat.non_validated == {"perturbation": ["IFNJ"], "cell_type_by_model": ["b cell"]}
    with pytest.raises(ValidationError, match="standardize"):
        curator.cat.add_new_from("cell_type_by_model")
    curator.cat.standardize("cell_type_by_model")
    assert frame["cell_type_by_model"].tolist() == ["B cell", "T cell", "T cell"]  # in place
    curator.cat.add_new_from("perturbation")
    assert ln.ULabel.get(name="IFNJ").type.name == "Perturbation"
    assert curator.cat.non_validated == {}
    artifact = curator.save_artifact(key="examples/dataset1.parquet", description="curated")
    assert artifact.schema == schema and artifact.description == "curated"
    assert artifact.features.get_values()["perturbation"] == ["DMSO", "IFNJ"]
    assert repr(curator).endswith(", validated)")


def test_curating_a_stored_artifact_annotates_it(storage: Path, schema: ln.Schema) -> None:
    artifact = ln.Artifact.from_dataframe(_frame(), key="stored.parquet").save()
    curator = ln.curators.DataFrameCurator(artifact, schema)
    curator.validate()
    assert curator.save_artifact() is artifact and artifact.schema == schema
    assert ln.Artifact.filter(cell_type_by_model="T cell").one() == artifact
    broken = ln.Artifact.from_dataframe(
        _frame(cell_type_by_model=pd.Categorical(["b cell"] * 3)), key="s2.parquet"
    ).save()
    curator = ln.curators.DataFrameCurator(broken, schema)
    with pytest.raises(ValidationError):
        curator.validate()
    with pytest.raises(InvalidArgument, match="cannot change the data of a stored artifact"):
        curator.cat.standardize("cell_type_by_model")
    with pytest.raises(InvalidArgument, match="annotates the artifact it was given"):
        ln.curators.DataFrameCurator(artifact, schema).save_artifact(key="other.parquet")


def _adata(cell_types: list[str]) -> ad.AnnData:
    return ad.AnnData(
        np.ones((3, 2), dtype=np.float32),
        obs=pd.DataFrame(
            {"cell_type_by_model": pd.Categorical(cell_types), "sample_note": ["a", "b", "c"]},
            index=["c1", "c2", "c3"],
        ),
        var=pd.DataFrame(index=["CD8A", "CD4"]),
    )


def test_anndata_curator_validates_slots(storage: Path, immuno: dict[str, ln.Record]) -> None:
    for gene in ("CD8A", "CD4"):
        ln.Feature(name=gene, dtype="num").save()
    obs = ln.Schema(features=[immuno["cell_type"], immuno["note"]]).save()
    var = ln.Schema(itype=ln.Feature, maximal_set=True).save()
    schema = ln.Schema(otype="AnnData", slots={"obs": obs, "var.T": var}, name="sc").save()
    adata = _adata(["B cell", "t cell", "NK"])
    curator = ln.curators.AnnDataCurator(adata, schema)
    with pytest.raises(ValidationError) as info:
        curator.validate()
    assert "2 terms not validated in feature 'cell_type_by_model' in slot 'obs'" in str(info.value)
    assert "curator.slots['obs'].cat.standardize(\"cell_type_by_model\")" in str(info.value)
    assert curator.slots["obs"].cat.non_validated == {"cell_type_by_model": ["t cell", "NK"]}
    curator.slots["obs"].cat.standardize("cell_type_by_model")
    curator.slots["obs"].cat.add_new_from("cell_type_by_model")
    artifact = curator.save_artifact(key="scrna/curated.h5ad")
    assert artifact.schema == schema and artifact.otype == "AnnData"
    assert artifact.features.get_values() == {"cell_type_by_model": ["B cell", "NK", "T cell"]}
    extra_gene = _adata(["B cell"] * 3)
    extra_gene.var_names = ["CD8A", "CD99"]
    with pytest.raises(ValidationError, match=r"slot 'var\.T' does not match") as info:
        ln.Artifact.from_anndata(extra_gene, key="scrna/bad.h5ad", schema=schema)
    assert "column 'CD99' not in the schema" in str(info.value)
    assert _count("Artifact") == 1 and _staged(storage) == []


def test_curator_bad_inputs(storage: Path, schema: ln.Schema, immuno: dict[str, ln.Record]) -> None:
    with pytest.raises(InvalidType, match="takes a Schema"):
        ln.curators.DataFrameCurator(_frame(), "mini_immuno")
    with pytest.raises(NotSaved):
        ln.curators.DataFrameCurator(_frame(), ln.Schema(features=[immuno["hours"]]))
    with pytest.raises(InvalidArgument, match="DataFrame-like"):
        ln.curators.DataFrameCurator(_adata(["B cell"] * 3), schema)
    with pytest.raises(InvalidArgument, match="AnnData-like"):
        obs = ln.Schema(features=[immuno["note"]]).save()
        ln.curators.AnnDataCurator(_frame(), ln.Schema(otype="AnnData", slots={"obs": obs}).save())
    with pytest.raises(InvalidArgument, match="Schema otype must be 'AnnData'"):
        ln.curators.AnnDataCurator(_adata(["B cell"] * 3), schema)
    with pytest.raises(InvalidArgument, match="schema type"):
        ln.curators.DataFrameCurator(_frame(), ln.Schema(name="T", is_type=True).save())
    curator = ln.curators.DataFrameCurator(_frame(), schema)
    with pytest.raises(InvalidArgument, match="not a categorical column"):
        curator.cat.standardize(INJECTED)
    with pytest.raises(InvalidArgument, match="takes an AnnData schema"):
        ln.Artifact.from_anndata(_adata(["B cell"] * 3), key="x.h5ad", schema=schema)
    dataframe_schema = ln.Schema([immuno["note"], immuno["hours"]], otype="DataFrame").save()
    with pytest.raises(InvalidArgument, match="is for DataFrame data, not AnnData data"):
        ln.Artifact.from_anndata(_adata(["B cell"] * 3), key="x.h5ad", schema=dataframe_schema)
    assert _count("Artifact") == 0


def test_injected_and_undecodable_names_are_data_not_cypher(
    storage: Path, schema: ln.Schema
) -> None:
    flexible = ln.Schema(itype=ln.Feature, maximal_set=True).save()
    frame = pd.DataFrame({INJECTED: [1], "bad\udcff": [2], 3: [3]})
    with pytest.raises(ValidationError) as info:
        ln.curators.DataFrameCurator(frame, flexible).validate()
    for name in (INJECTED, "bad\udcff", "3"):
        assert f"column '{name}' not in the schema" in str(info.value)
    values = pd.Categorical(["B cell", "\udcff", INJECTED])
    with pytest.raises(ValidationError, match="2 terms not validated"):
        ln.Artifact.from_dataframe(
            _frame(cell_type_by_model=values), key="x.parquet", schema=schema
        )
    curator = ln.curators.DataFrameCurator(_frame(cell_type_by_model=values), schema)
    with pytest.raises(ValidationError):
        curator.validate()
    with pytest.raises(ValidationError, match="not valid Unicode"):
        curator.cat.add_new_from("cell_type_by_model")
    assert _count("Artifact") == 0 and _count("Feature") == 4 and _count("ULabel") == 5


def test_several_labels_of_one_name_are_ambiguous(storage: Path, schema: ln.Schema) -> None:
    ln.ULabel(name="T cell").save()  # a second "T cell"
    with pytest.raises(ValidationError, match="'T cell' in feature 'cell_type_by_model' names 2"):
        ln.Artifact.from_dataframe(_frame(), key="x.parquet", schema=schema)
    assert _count("Artifact") == 0


def test_labels_of_another_type_are_not_valid(storage: Path, schema: ln.Schema) -> None:
    ln.ULabel(name="Other", is_type=True).save()
    ln.ULabel(name="CRISPR", type=ln.ULabel.get(name="Other")).save()
    frame = _frame(perturbation=pd.Categorical(["DMSO", "CRISPR", "IFNG"]))
    with pytest.raises(ValidationError, match="not validated in feature 'perturbation': 'CRISPR'"):
        ln.Artifact.from_dataframe(frame, key="x.parquet", schema=schema)


def test_validation_logs_what_it_standardized(
    storage: Path, schema: ln.Schema, caplog: pytest.LogCaptureFixture
) -> None:
    frame = _frame(cell_type_by_model=pd.Categorical(["t cell"] * 3))
    curator = ln.curators.DataFrameCurator(frame, schema)
    with pytest.raises(ValidationError):
        curator.validate()
    with caplog.at_level(logging.INFO, logger="lineage"):
        curator.cat.standardize("cell_type_by_model")
    assert 'standardized 1 synonym in \'cell_type_by_model\': "t cell" → "T cell"' in caplog.text
    curator.validate()


def test_an_update_merges_label_edges_keyed_by_feature(storage: Path, immuno: dict) -> None:
    """The write behind annotating a stored artifact: one label under two features is two
    edges, and merging again adds none."""
    artifact = ln.Artifact.from_dataframe(_frame(), key="m.parquet").save()
    label = ln.ULabel.get(name="T cell")
    features = [immuno["cell_type"].uid, immuno["perturbation"].uid]
    edge = gr.EdgeSpec("ulabels", [label.uid, label.uid], [{"feature": f} for f in features])
    conn = artifact._inst().connection
    for _ in range(2):
        gr.update_record(conn, "Artifact", artifact.uid, {}, add=[edge])
    assert _count_edges("LABELED_WITH") == 2
    with pytest.raises(ln.errors.FieldValidationError, match="no property 'colour'"):
        gr.update_record(
            conn, "Artifact", artifact.uid, {},
            add=[gr.EdgeSpec("ulabels", [label.uid], [{"colour": "red"}])],
        )  # fmt: skip


def test_lamindbs_builtin_valid_features_schema(storage: Path, schema: ln.Schema) -> None:
    artifact = ln.Artifact.from_dataframe(
        _frame(extra=[1, 2, 3]), key="valid.parquet", schema="valid_features"
    ).save()
    builtin = ln.Schema.get(name="valid_features")
    assert artifact.schema == builtin and builtin.hash == "kMi7B_N88uu-YnbTLDU-DA"
    assert artifact.features.get_values()["perturbation"] == ["DMSO", "IFNG"]
    with pytest.raises(NotSupported, match="bionty"):
        ln.Artifact.from_anndata(
            _adata(["B cell"] * 3), schema="ensembl_gene_ids_and_valid_features_in_obs"
        )
    with pytest.raises(InvalidType, match="takes a Schema as schema, not str"):
        ln.Artifact.from_dataframe(_frame(), key="x.parquet", schema="mini_immuno")


def test_schema_from_dataframe_takes_the_columns_that_are_features(
    storage: Path, immuno: dict[str, ln.Record]
) -> None:
    made = ln.Schema.from_dataframe(_frame(extra=[1, 2, 3]).iloc[:, ::-1], name="from df")
    assert made is not None and not made._saved and made.otype == "DataFrame"
    assert [f.name for f in made.members] == [
        "treatment_time_h", "sample_note", "cell_type_by_model", "perturbation",
    ]  # fmt: skip
    assert ln.Schema.from_dataframe(pd.DataFrame({"unknown": [1], INJECTED: [2]})) is None
    with pytest.raises(InvalidType):
        ln.Schema.from_dataframe({"a": [1]})
    assert _count("Schema") == 0


def test_add_new_from_passes_fields_to_the_new_labels(storage: Path, schema: ln.Schema) -> None:
    frame = _frame(cell_type_by_model=pd.Categorical(["NK", "T cell", "T cell"]))
    curator = ln.curators.DataFrameCurator(frame, schema)
    with pytest.raises(ValidationError):
        curator.validate()
    with pytest.raises(InvalidArgument, match="unexpected keyword 'colour'"):
        curator.cat.add_new_from("cell_type_by_model", colour="red")
    assert ln.ULabel.filter(name="NK").count() == 0
    curator.cat.add_new_from("cell_type_by_model", description="natural killer")
    assert ln.ULabel.get(name="NK").description == "natural killer"
    curator.validate()


def test_describe_shows_schema_members_slots_and_an_artifacts_schema(
    storage: Path, schema: ln.Schema, capsys: pytest.CaptureFixture
) -> None:
    schema.describe()
    out = capsys.readouterr().out
    assert "Features (4)" in out and "perturbation: cat[ULabel[Perturbation]]" in out
    composite = ln.Schema(otype="AnnData", slots={"obs": schema}, name="sc").save()
    composite.describe()
    assert f"obs: 'mini_immuno' ({schema.uid})" in capsys.readouterr().out
    artifact = ln.Artifact.from_dataframe(_frame(), key="d.parquet", schema=schema).save()
    artifact.describe()
    out = capsys.readouterr().out
    assert f"Schema: 'mini_immuno' ({schema.uid})" in out
    assert "perturbation: ['DMSO', 'IFNG']" in out


def test_odd_column_contents_are_reported_not_crashed_on(
    storage: Path, schema: ln.Schema, immuno: dict[str, ln.Record]
) -> None:
    lists = _frame(cell_type_by_model=[["B cell"], ["T cell"], ["T cell", "B cell"]])
    with pytest.raises(ValidationError, match="to have type category, got object"):
        ln.Artifact.from_dataframe(lists, key="x.parquet", schema=schema)
    repeated = pd.concat([_frame(), _frame()[["sample_note"]]], axis=1)
    with pytest.raises(ValidationError, match="columns 'sample_note' appear more than once"):
        ln.Artifact.from_dataframe(repeated, key="y.parquet", schema=schema)
    many = ln.Feature(name="markers", dtype="list[cat[ULabel]]").save()
    listed = ln.Schema(features=[many]).save()
    frame = pd.DataFrame({"markers": [["B cell", "CD8"], None, ["T cell"]]})
    with pytest.raises(ValidationError, match="1 term not validated in feature 'markers': 'CD8'"):
        ln.Artifact.from_dataframe(frame, key="z.parquet", schema=listed)
    frame["markers"] = [["B cell"], None, ["T cell", "B cell"]]
    artifact = ln.Artifact.from_dataframe(frame, key="z.parquet", schema=listed).save()
    assert artifact.features.get_values() == {"markers": ["B cell", "T cell"]}
    assert _count("Artifact") == 1
