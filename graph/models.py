"""The node and relationship models of the graph (docs/schema.md), declared with neomodel.

These classes are the single source of truth for what a record label may hold: the schema
installer derives constraints and indexes from them (`graph.schema`), and the query layer checks
user-supplied field names against `fields_of()` before a name reaches Cypher.

Every record has `uid` and `id`; neomodel reserves the attribute `.id` for the element id, so the
integer id is declared as `record_id` and stored under the property name `id`.
"""

from __future__ import annotations

from functools import cache
from typing import ClassVar, NamedTuple

from neomodel import (
    BooleanProperty,
    DateTimeNeo4jFormatProperty,
    IntegerProperty,
    RelationshipFrom,
    RelationshipTo,
    StringProperty,
    StructuredNode,
    StructuredRel,
    ZeroOrOne,
)


class PositionRel(StructuredRel):
    """An ordered membership: `(:Collection)-[:CONTAINS {position}]->(:Artifact)`,
    `(:Schema)-[:HAS_FEATURE {position}]->(:Feature)`; `position` 0..n-1 is the order."""

    position = IntegerProperty(required=True)


class LabelRel(StructuredRel):
    """`(record)-[:LABELED_WITH {feature}]->(:ULabel)`: `feature` is the uid of the feature whose
    categorical value the label is (graph/features.py); a plain label edge has none."""

    feature = StringProperty()


class SlotRel(StructuredRel):
    """`(:Schema)-[:HAS_COMPONENT {slot}]->(:Schema)`: the part of the data a component schema
    validates (`obs`, `var`, `var.T` of an AnnData)."""

    slot = StringProperty(required=True)


class RecordNode(StructuredNode):
    """Properties every record label shares."""

    __abstract_node__ = True

    uid = StringProperty(unique_index=True, required=True)
    record_id = IntegerProperty(unique_index=True, db_property="id")
    created_at = DateTimeNeo4jFormatProperty(index=True)
    updated_at = DateTimeNeo4jFormatProperty()
    branch = IntegerProperty(default=1)  # 1 main, 0 archive, -1 trash

    created_by = RelationshipTo("User", "CREATED_BY", cardinality=ZeroOrOne)
    space = RelationshipTo("Space", "IN_SPACE", cardinality=ZeroOrOne)

    # Field names users may write that are stored under another name (lamindb spellings).
    __aliases__: ClassVar[dict[str, str]] = {"branch_id": "branch"}
    # Length of the random part of a uid (lamindb's lengths); versioned records add 4 characters.
    __uid_length__: int = 12


class VersionedNode(RecordNode):
    """Records with a version family: `(new)-[:REVISES]->(old)`, one `is_latest` per branch."""

    __abstract_node__ = True

    key = StringProperty(index=True)
    description = StringProperty()
    hash = StringProperty(index=True)
    is_latest = BooleanProperty(index=True, default=True)
    version = StringProperty()

    __uid_length__ = 16


class DataRecordNode(VersionedNode):
    """Artifacts and collections: made by a run, annotated with labels, projects, references."""

    __abstract_node__ = True

    run = RelationshipTo("Run", "GENERATED_BY", cardinality=ZeroOrOne)
    ulabels = RelationshipTo("ULabel", "LABELED_WITH", model=LabelRel)
    projects = RelationshipTo("Project", "IN_PROJECT")
    references = RelationshipTo("Reference", "CITES")
    input_of_runs = RelationshipFrom("Run", "USED")


class NamedNode(RecordNode):
    __abstract_node__ = True

    name = StringProperty(index=True)


class Artifact(DataRecordNode):
    suffix = StringProperty()
    size = IntegerProperty()
    hash_type = StringProperty()
    otype = StringProperty()
    n_observations = IntegerProperty()
    n_files = IntegerProperty()  # a folder's file count; None for a file (lamindb's)
    # Indexed: an OpenLineage dataset whose location is an artifact's path is that artifact.
    storage_path = StringProperty(index=True)
    # An OpenLineage dataset (docs/schema.md, OpenLineage): its identity, and its facets as JSON
    # text (facet name -> facet; `facet_times`: name -> the event time each came from).
    ol_namespace = StringProperty(index=True)
    ol_name = StringProperty(index=True)
    facets = StringProperty()
    facet_times = StringProperty()

    revises = RelationshipTo("Artifact", "REVISES", cardinality=ZeroOrOne)
    storage = RelationshipTo("Storage", "STORED_IN", cardinality=ZeroOrOne)
    # The schema the artifact was validated against (lamindb's `Artifact.schema`).
    schema = RelationshipTo("Schema", "VALIDATED_BY", cardinality=ZeroOrOne)
    collections = RelationshipFrom("Collection", "CONTAINS", model=PositionRel)
    meta_of_collection = RelationshipFrom("Collection", "HAS_META", cardinality=ZeroOrOne)


class Collection(DataRecordNode):
    reference = StringProperty()
    reference_type = StringProperty()

    artifacts = RelationshipTo("Artifact", "CONTAINS", model=PositionRel)
    meta_artifact = RelationshipTo("Artifact", "HAS_META", cardinality=ZeroOrOne)
    revises = RelationshipTo("Collection", "REVISES", cardinality=ZeroOrOne)

    __aliases__: ClassVar[dict[str, str]] = {**RecordNode.__aliases__, "name": "key"}


# What a transform is (lamindb's kinds); `Transform(kind=...)` is checked against these.
TRANSFORM_KINDS = ("pipeline", "notebook", "script", "function")


class Transform(VersionedNode):
    kind = StringProperty(choices={k: k for k in TRANSFORM_KINDS})
    source_code = StringProperty()
    # An OpenLineage job: its identity and facets, as on Artifact.
    ol_namespace = StringProperty(index=True)
    ol_name = StringProperty(index=True)
    facets = StringProperty()
    facet_times = StringProperty()

    revises = RelationshipTo("Transform", "REVISES", cardinality=ZeroOrOne)
    runs = RelationshipFrom("Run", "EXECUTES")

    __uid_length__ = 12  # lamindb: 12 + 4 for transforms, 16 + 4 for artifacts and collections


# String fields the explorer's search (`graph.explore.search`) looks into with `CONTAINS`: each
# has a TEXT index (trigrams), which answers `CONTAINS` without reading every node of the label.
TEXT_INDEXED: dict[str, tuple[str, ...]] = {
    "Artifact": ("key", "description"),
    "Collection": ("key", "description"),
    "Transform": ("key", "description"),
    "Run": ("name",),
}


class Run(RecordNode):
    name = StringProperty()
    started_at = DateTimeNeo4jFormatProperty()
    finished_at = DateTimeNeo4jFormatProperty()
    params = StringProperty()  # JSON text: Neo4j properties cannot hold nested maps
    status = StringProperty()  # lamindb's: started, completed, errored, aborted
    # The run's OpenLineage runId (a UUID): set for runs ingested from, or emitted as, events.
    openlineage_run_id = StringProperty(unique_index=True)
    facets = StringProperty()  # OpenLineage run facets, as on Artifact
    facet_times = StringProperty()

    transform = RelationshipTo("Transform", "EXECUTES", cardinality=ZeroOrOne)
    initiated_by = RelationshipTo("Run", "INITIATED_BY", cardinality=ZeroOrOne)
    input_artifacts = RelationshipTo("Artifact", "USED")
    input_collections = RelationshipTo("Collection", "USED")
    output_artifacts = RelationshipFrom("Artifact", "GENERATED_BY")
    output_collections = RelationshipFrom("Collection", "GENERATED_BY")

    __uid_length__ = 20  # runs are not versioned; lamindb's run uids have 20 characters


class User(NamedNode):
    handle = StringProperty(unique_index=True)

    __uid_length__ = 8


class Space(NamedNode):
    description = StringProperty()


class _Annotation(NamedNode):
    """Labels, projects and references: attached to artifacts and collections."""

    __abstract_node__ = True

    description = StringProperty()

    artifacts = RelationshipFrom("Artifact", "LABELED_WITH", model=LabelRel)
    collections = RelationshipFrom("Collection", "LABELED_WITH", model=LabelRel)


class ULabel(_Annotation):
    # lamindb's type hierarchy: a label with `is_type=True` groups labels (`type`), which a
    # feature of dtype `cat[ULabel[<type name>]]` accepts exclusively.
    is_type = BooleanProperty(index=True, default=False)

    type = RelationshipTo("ULabel", "OF_TYPE", cardinality=ZeroOrOne)
    members = RelationshipFrom("ULabel", "OF_TYPE")

    __uid_length__ = 8


class Feature(NamedNode):
    """A named, typed dimension records are annotated with (`artifact.features.add_values`).

    Scalar values are `(:Artifact|Collection|Run)-[:HAS_VALUE]->(:FeatureValue {feature,
    value})` nodes, one per distinct (feature uid, value) and shared by the records holding it;
    categorical values are `[:LABELED_WITH {feature}]` edges to `ULabel`s (graph/features.py).
    """

    name = StringProperty(unique_index=True, required=True)
    dtype = StringProperty()  # lamindb's spelling: int, float, num, str, cat[ULabel], list[...]
    description = StringProperty()
    unit = StringProperty()
    is_type = BooleanProperty(index=True, default=False)

    type = RelationshipTo("Feature", "OF_TYPE", cardinality=ZeroOrOne)
    members = RelationshipFrom("Feature", "OF_TYPE")
    schemas = RelationshipFrom("Schema", "HAS_FEATURE", model=PositionRel)

    __uid_length__ = 12


class Schema(NamedNode):
    """A data model to validate datasets against (lamindb's `Schema`): an ordered list of
    features (`[:HAS_FEATURE {position}]`), or for a composite schema its component schemas by
    slot (`[:HAS_COMPONENT {slot}]`), plus the rules (`minimal_set`, `maximal_set`, ...).

    `hash` is lamindb's hash of the rules and the members' uids: two schemas with the same
    hash are one (outside the trash), which the write checks under the label's lock. The fields
    that make up the hash never change once saved (lineage/_schema.py).
    """

    description = StringProperty()
    hash = StringProperty(index=True)
    itype = StringProperty(index=True)  # "Feature", or "Feature[<uid of a feature type>]"
    otype = StringProperty(index=True)  # "DataFrame", "AnnData"
    n_members = IntegerProperty()
    minimal_set = BooleanProperty(default=True)
    ordered_set = BooleanProperty(default=False)
    maximal_set = BooleanProperty(default=False)
    coerce = BooleanProperty()
    flexible = BooleanProperty()
    is_type = BooleanProperty(index=True, default=False)

    type = RelationshipTo("Schema", "OF_TYPE", cardinality=ZeroOrOne)
    schemas = RelationshipFrom("Schema", "OF_TYPE")
    features = RelationshipTo("Feature", "HAS_FEATURE", model=PositionRel)
    components = RelationshipTo("Schema", "HAS_COMPONENT", model=SlotRel)
    composites = RelationshipFrom("Schema", "HAS_COMPONENT", model=SlotRel)
    validated_artifacts = RelationshipFrom("Artifact", "VALIDATED_BY")

    __uid_length__ = 16  # lamindb's schema uids have 16 characters


class Project(_Annotation):
    artifacts = RelationshipFrom("Artifact", "IN_PROJECT")
    collections = RelationshipFrom("Collection", "IN_PROJECT")


class Reference(_Annotation):
    url = StringProperty()
    doi = StringProperty()

    artifacts = RelationshipFrom("Artifact", "CITES")
    collections = RelationshipFrom("Collection", "CITES")


class Storage(RecordNode):
    root = StringProperty(unique_index=True, required=True)
    description = StringProperty()

    artifacts = RelationshipFrom("Artifact", "STORED_IN")


class IdCounter(StructuredNode):
    """The next integer `id` of one record label, taken with a write lock inside each write."""

    __label__ = "LineageCounter"

    label = StringProperty(unique_index=True, required=True)
    value = IntegerProperty(required=True)


class FeatureValue(StructuredNode):
    """One distinct scalar value of one feature, shared by every record holding it.

    Not a record (no uid, id or branch): `(feature, value)` is unique (a composite constraint
    `graph.schema` installs), and its index is what `filter(temperature__gt=20)` seeks.
    `feature` is the Feature's uid, so renaming a feature moves no values; `value` is an int,
    float, str, bool, date or datetime (a `dict` value as its JSON text).
    """

    __label__ = "FeatureValue"

    feature = StringProperty(required=True)


class Column(StructuredNode):
    """One column of one artifact version, from an OpenLineage schema or column-lineage facet.

    Not a record (no uid, id or branch): `(artifact, name)` is unique (a composite constraint
    `graph.schema` installs), `artifact` is the artifact's uid. `(:Artifact)-[:HAS_COLUMN]->`
    it, and `(:Column)-[:DERIVED_FROM]->(:Column)` says which upstream columns it was made from
    (edge properties `type`, `subtype`, `description`, `masking` of the transformation). Deleted
    with its artifact.
    """

    __label__ = "Column"

    artifact = StringProperty(required=True)
    name = StringProperty(required=True)
    type = StringProperty()
    description = StringProperty()


class SchemaVersion(StructuredNode):
    """The one node recording which schema migrations ran on this database."""

    __label__ = "LineageSchema"

    name = StringProperty(unique_index=True, required=True)
    version = IntegerProperty(required=True)


RECORD_MODELS: tuple[type[RecordNode], ...] = (
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
    Feature,
    Schema,
)
RECORD_LABELS: tuple[str, ...] = tuple(m.__label__ for m in RECORD_MODELS)


@cache
def model_for(label: str) -> type[RecordNode]:
    """The model of a record label; `KeyError` naming the known labels if there is none."""
    for model in RECORD_MODELS:
        if model.__label__ == label:
            return model
    raise KeyError(f"unknown record label {label!r}; known labels: {', '.join(RECORD_LABELS)}")


@cache
def fields_of(label: str) -> dict[str, str]:
    """Property names stored on nodes of `label`, mapped to neomodel's property type name.

    Cached (the models never change at run time): records call this for every attribute, so
    asking neomodel each time cost more than the queries. Callers must not mutate the result.
    """
    model = model_for(label)
    return {
        prop.get_db_property_name(name): type(prop).__name__
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
    }


class Relation(NamedTuple):
    """One relation as users name it: `collection.artifacts`, `artifact.collections`."""

    edge: str  # relationship type
    target: str  # label at the other end
    direction: str  # "out": (this)-[edge]->(target); "in": (this)<-[edge]-(target)
    many: bool  # False where at most one target exists (run, created_by, transform, ...)

    def arrow(self, var: str = "", props: str = "", length: str = "") -> str:
        """The relationship in the relation's direction, as seen from its owner: `-[var:`EDGE`]->`
        or `<-[var:`EDGE`]-`, with a property map (`props`, e.g. `{feature: t.f}`) and a
        variable-length bound (`length`, e.g. `*0..1`) if given. The one place Cypher arrows are
        built from a relation; the names come from the models, never from users."""
        body = f"{var}:`{self.edge}`{length}" + (f" {props}" if props else "")
        if self.direction == "out":
            return f"-[{body}]->"
        return f"<-[{body}]-"

    @property
    def pattern(self) -> str:
        """The Cypher pattern from `(n)` to `(m)`."""
        return f"(n){self.arrow('r')}(m:`{self.target}`)"


@cache
def relations_of(label: str) -> dict[str, Relation]:
    """Relations of `label` in both directions: attribute name -> `Relation`."""
    model = model_for(label)
    out = {}
    for name, rel in model.defined_properties(aliases=False, rels=True, properties=False).items():
        target = rel._raw_class if isinstance(rel._raw_class, str) else rel._raw_class.__name__
        direction = "out" if rel.definition["direction"] == 1 else "in"
        many = rel.manager is not ZeroOrOne
        out[name] = Relation(rel.definition["relation_type"], target, direction, many)
    return out


@cache
def edge_fields_of(label: str, relation: str) -> dict[str, str]:
    """Properties declared on the edge model of `label.relation` (CONTAINS `position`,
    LABELED_WITH `feature`, HAS_COMPONENT `slot`), mapped to neomodel's property type name."""
    rel = model_for(label).defined_properties(aliases=False, rels=True, properties=False)[relation]
    model = rel.definition.get("model")
    if model is None:
        return {}
    return {
        prop.get_db_property_name(name): type(prop).__name__
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
    }


@cache
def aliases_of(label: str) -> dict[str, str]:
    """User spellings of fields stored under another name, e.g. Collection `name` -> `key`."""
    return dict(model_for(label).__aliases__)


@cache
def uid_length(label: str) -> int:
    """Characters in the random part of a uid of `label` (versioned records add 4)."""
    return model_for(label).__uid_length__


@cache
def is_versioned(label: str) -> bool:
    return issubclass(model_for(label), VersionedNode)
