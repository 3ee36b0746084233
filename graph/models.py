"""The node and relationship models of the graph (DESIGN.md §3), declared with neomodel.

These classes are the single source of truth for what a record label may hold: the schema
installer derives constraints and indexes from them (`graph.schema`), and the query layer checks
user-supplied field names against `fields_of()` before a name reaches Cypher.

Every record has `uid` and `id`; neomodel reserves the attribute `.id` for the element id, so the
integer id is declared as `record_id` and stored under the property name `id`.
"""

from __future__ import annotations

from neomodel import (
    BooleanProperty,
    DateTimeNeo4jFormatProperty,
    IntegerProperty,
    RelationshipTo,
    StringProperty,
    StructuredNode,
    StructuredRel,
)


class ContainsRel(StructuredRel):
    """`(:Collection)-[:CONTAINS {position}]->(:Artifact)`: `position` 0..n-1 is the order."""

    position = IntegerProperty(required=True)


class Record(StructuredNode):
    """Properties every record label shares."""

    __abstract_node__ = True

    uid = StringProperty(unique_index=True, required=True)
    record_id = IntegerProperty(unique_index=True, db_property="id")
    created_at = DateTimeNeo4jFormatProperty(index=True)
    updated_at = DateTimeNeo4jFormatProperty()
    branch = IntegerProperty(default=1)  # 1 main, 0 archive, -1 trash

    created_by = RelationshipTo("User", "CREATED_BY")
    space = RelationshipTo("Space", "IN_SPACE")


class Versioned(Record):
    """Records with a version family: `(new)-[:REVISES]->(old)`, one `is_latest` per branch."""

    __abstract_node__ = True

    key = StringProperty(index=True)
    description = StringProperty()
    hash = StringProperty(index=True)
    is_latest = BooleanProperty(index=True, default=True)
    version = StringProperty()


class DataRecord(Versioned):
    """Artifacts and collections: made by a run, annotated with labels, projects, references."""

    __abstract_node__ = True

    run = RelationshipTo("Run", "GENERATED_BY")
    ulabels = RelationshipTo("ULabel", "LABELED_WITH")
    projects = RelationshipTo("Project", "IN_PROJECT")
    references = RelationshipTo("Reference", "CITES")


class Named(Record):
    __abstract_node__ = True

    name = StringProperty(index=True)


class Artifact(DataRecord):
    suffix = StringProperty()
    size = IntegerProperty()
    hash_type = StringProperty()
    otype = StringProperty()
    n_observations = IntegerProperty()
    storage_path = StringProperty()

    revises = RelationshipTo("Artifact", "REVISES")
    storage = RelationshipTo("Storage", "STORED_IN")


class Collection(DataRecord):
    reference = StringProperty()
    reference_type = StringProperty()

    artifacts = RelationshipTo("Artifact", "CONTAINS", model=ContainsRel)
    meta_artifact = RelationshipTo("Artifact", "HAS_META")
    revises = RelationshipTo("Collection", "REVISES")


class Transform(Versioned):
    kind = StringProperty(choices={k: k for k in ("pipeline", "notebook", "script", "function")})
    source_code = StringProperty()

    revises = RelationshipTo("Transform", "REVISES")


class Run(Record):
    name = StringProperty()
    started_at = DateTimeNeo4jFormatProperty()
    finished_at = DateTimeNeo4jFormatProperty()
    params = StringProperty()  # JSON text: Neo4j properties cannot hold nested maps
    status = StringProperty()

    transform = RelationshipTo("Transform", "EXECUTES")
    initiated_by = RelationshipTo("Run", "INITIATED_BY")
    input_artifacts = RelationshipTo("Artifact", "USED")
    input_collections = RelationshipTo("Collection", "USED")


class User(Named):
    pass


class Space(Named):
    pass


class ULabel(Named):
    pass


class Project(Named):
    pass


class Reference(Named):
    url = StringProperty()
    doi = StringProperty()


class Storage(Record):
    root = StringProperty(unique_index=True, required=True)


class SchemaVersion(StructuredNode):
    """The one node recording which schema migrations ran on this database."""

    __label__ = "LineageSchema"

    name = StringProperty(unique_index=True, required=True)
    version = IntegerProperty(required=True)


RECORD_MODELS: tuple[type[Record], ...] = (
    Artifact,
    Collection,
    Transform,
    Run,
    User,
    Space,
    ULabel,
    Project,
    Reference,
    Storage,
)
RECORD_LABELS: tuple[str, ...] = tuple(m.__label__ for m in RECORD_MODELS)


def model_for(label: str) -> type[Record]:
    """The model of a record label; `KeyError` naming the known labels if there is none."""
    for model in RECORD_MODELS:
        if model.__label__ == label:
            return model
    raise KeyError(f"unknown record label {label!r}; known labels: {', '.join(RECORD_LABELS)}")


def fields_of(label: str) -> dict[str, str]:
    """Property names stored on nodes of `label`, mapped to neomodel's property type name."""
    model = model_for(label)
    return {
        prop.get_db_property_name(name): type(prop).__name__
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
    }


def relations_of(label: str) -> dict[str, tuple[str, str]]:
    """Outgoing relations declared for `label`: attribute name -> (edge type, target label)."""
    model = model_for(label)
    out = {}
    for name, rel in model.defined_properties(aliases=False, rels=True, properties=False).items():
        target = rel._raw_class if isinstance(rel._raw_class, str) else rel._raw_class.__name__
        out[name] = (rel.definition["relation_type"], target)
    return out
