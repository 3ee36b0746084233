"""Every name of lamindb's Collection reference exists, and the Django model methods it lists
do on the graph what they do in Django."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pytest

import lineage as ln

# Every field, property, class method and method of ../shared/reference/collection-api.txt.
REFERENCE_NAMES = """
adelete append arefresh_from_db artifacts asave cache clean clean_fields created_at created_by
data_artifact date_error_message delete describe description df filter get get_constraints
get_deferred_fields hash input_of_runs is_latest key load lookup mapped meta_artifact name
ordered_artifacts prepare_database_save projects reference reference_type references
refresh_from_db restore run save save_base search serializable_value space stem_uid transform
uid ulabels unique_error_message updated_at using validate_constraints validate_unique version
versions view_lineage
""".split()


@pytest.fixture
def collection(storage: Path) -> ln.Collection:
    a = ln.Artifact(pd.DataFrame({"x": [1]}), key="a.parquet").save()
    return ln.Collection([a], key="c", description="first").save()


def test_every_reference_name_is_there(collection: ln.Collection) -> None:
    missing = [name for name in REFERENCE_NAMES if not hasattr(collection, name)]
    assert missing == []
    for name in ("df", "filter", "get", "lookup", "search", "using"):
        assert callable(getattr(ln.Collection, name)), name


def test_clean_fields_names_the_bad_field(collection: ln.Collection) -> None:
    collection.clean_fields()  # a saved record is valid
    collection._values["description"] = 42  # as if set past the type check
    with pytest.raises(ln.errors.ValidationError, match="description"):
        collection.clean_fields()
    collection.clean_fields(exclude=["description"])


def test_validate_unique_checks_the_graph(collection: ln.Collection) -> None:
    collection.validate_unique()  # itself is no clash
    twin = ln.ULabel(name="x")
    twin._values["uid"] = ln.ULabel(name="y").save().uid
    with pytest.raises(ln.errors.ValidationError, match="ULabel with this uid already exists"):
        twin.validate_unique()
    with pytest.raises(ln.errors.ValidationError):
        twin.validate_constraints()
    assert (ln.Collection, ["uid"]) in ln.Collection.get_constraints()


def test_values_and_relations(collection: ln.Collection) -> None:
    assert collection.serializable_value("key") == "c"
    assert collection.serializable_value("created_by") == collection.created_by.uid
    assert collection.prepare_database_save(None) == collection.uid
    assert collection.get_deferred_fields() == set()
    with pytest.raises(ValueError, match="not saved"):
        ln.ULabel(name="z").prepare_database_save(None)


def test_refresh_from_db_reads_the_graph(collection: ln.Collection) -> None:
    other = ln.Collection.get(collection.uid)
    other.description = "changed"
    other.save()
    collection.reference = "local edit"
    collection.refresh_from_db(fields=["description"])
    assert collection.description == "changed" and collection.reference == "local edit"
    collection.refresh_from_db()
    assert collection.reference is None
    with pytest.raises(ln.errors.ValidationError, match="nope"):
        collection.refresh_from_db(fields=["nope"])


def test_save_base_and_async_variants(storage: Path) -> None:
    label = ln.ULabel(name="async")
    asyncio.run(label.asave())
    assert ln.ULabel.get(name="async").uid == label.uid
    with pytest.raises(ln.errors.ValidationError, match="force_insert"):
        label.save_base(force_insert=True)
    with pytest.raises(ln.errors.ValidationError, match="force_update"):
        ln.ULabel(name="new").save_base(force_update=True)
    label.name = "async-renamed"
    label.save_base(update_fields=["name"])
    ln.cypher("MATCH (l:ULabel {uid: $u}) SET l.description = 'from cypher'", u=label.uid)
    asyncio.run(label.arefresh_from_db())
    assert label.description == "from cypher" and label.name == "async-renamed"
    asyncio.run(label.adelete())
    assert ln.ULabel.filter(name="async-renamed").count() == 0
    assert ln.ULabel.get(label.uid).branch == -1
