"""The model declarations that schema install (and later field validation) derive from."""

from __future__ import annotations

import pytest

from graph.models import RECORD_LABELS, fields_of, model_for, relations_of


def test_every_design_label_is_a_model() -> None:
    assert set(RECORD_LABELS) == {
        "Artifact", "Collection", "Transform", "Run", "User", "Space", "ULabel", "Project",
        "Reference", "Storage", "Feature", "Schema",
    }  # fmt: skip


def test_fields_are_the_stored_property_names() -> None:
    artifact = fields_of("Artifact")
    for name in (
        "uid",
        "id",
        "created_at",
        "updated_at",
        "branch",
        "key",
        "description",
        "suffix",
        "size",
        "hash",
        "hash_type",
        "otype",
        "n_observations",
        "storage_path",
        "version",
        "is_latest",
    ):
        assert name in artifact, name
    assert "record_id" not in artifact  # the Python-side alias never reaches Cypher
    assert set(fields_of("Run")) >= {"name", "started_at", "finished_at", "params", "status"}


def test_relations_follow_the_design_edges() -> None:
    collection = relations_of("Collection")
    assert collection["artifacts"] == ("CONTAINS", "Artifact", "out", True)
    assert collection["meta_artifact"] == ("HAS_META", "Artifact", "out", False)
    assert collection["revises"] == ("REVISES", "Collection", "out", False)
    assert collection["run"] == ("GENERATED_BY", "Run", "out", False)
    assert collection["created_by"] == ("CREATED_BY", "User", "out", False)
    assert collection["input_of_runs"] == ("USED", "Run", "in", True)
    assert relations_of("Run")["transform"] == ("EXECUTES", "Transform", "out", False)
    assert relations_of("Run")["output_artifacts"] == ("GENERATED_BY", "Artifact", "in", True)
    assert relations_of("Artifact")["storage"] == ("STORED_IN", "Storage", "out", False)
    assert relations_of("Artifact")["collections"] == ("CONTAINS", "Collection", "in", True)
    assert relations_of("Transform")["runs"] == ("EXECUTES", "Run", "in", True)


def test_unknown_label_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown record label 'Artefact'.*Artifact"):
        model_for("Artefact")
