"""Installs the graph schema: constraints and indexes from `graph.models`, and a version node.

Installing is idempotent and cheap when nothing is missing (two `SHOW` queries and a read of
the version node), so `connect()` runs it every time. What is missing — a fresh database, or a
constraint someone dropped by hand — is created in one write transaction of
`CREATE ... IF NOT EXISTS` statements, which the driver retries on transient errors, so several
processes connecting to a fresh database at once all succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import neo4j
from neomodel import StructuredNode

from graph.connection import Connection
from graph.errors import SchemaError
from graph.models import RECORD_MODELS, TEXT_INDEXED, Column, FeatureValue, IdCounter, SchemaVersion

SCHEMA_NAME = "lineage"

# (version, what it does, extra work beyond the model-derived constraints and indexes).
# A later change that must rewrite data appends a step here; `install_schema` runs the steps
# whose version is above the one recorded in the database, in order.
Migration = tuple[int, str, Callable[[Connection], None] | None]


def _seed_id_counters(conn: Connection) -> None:
    """Start each label's id counter above the ids already stored (databases from v1)."""
    from graph.models import RECORD_LABELS

    for label in RECORD_LABELS:
        conn.run(
            f"MATCH (n:`{label}`) WITH max(n.id) AS top WHERE top IS NOT NULL "
            "MERGE (c:LineageCounter {label: $label}) "
            "SET c.value = CASE WHEN c.value IS NULL OR c.value < top THEN top ELSE c.value END",
            {"label": label},
        )


MIGRATIONS: list[Migration] = [
    (1, "uniqueness of uid and id per record label; indexes on key, hash, is_latest, "
        "created_at, name", None),
    (2, "id counters (:LineageCounter {label}) seeded from stored ids; User.handle unique",
     _seed_id_counters),
    (3, "features: Feature.name unique, ULabel/Feature is_type indexed, FeatureValue "
        "(feature, value) unique", None),
    (4, "schemas: Schema uid and id unique; hash, name, itype, otype, is_type, created_at "
        "indexed", None),
    (5, "text indexes on artifact, collection and transform keys and descriptions and run "
        "names (the explorer's search)", None),
    (6, "openlineage: Run.openlineage_run_id unique; Artifact.storage_path, ol_namespace, "
        "ol_name and Transform.ol_namespace, ol_name indexed; Column (artifact, name) unique",
     None),
]  # fmt: skip
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Annotated: neomodel is untyped, so mypy would join these classes to a bare `type`.
_MODELS: tuple[type[StructuredNode], ...] = (*RECORD_MODELS, SchemaVersion, IdCounter)
# Constraints over several properties, which neomodel cannot declare: (label, properties).
# A feature value is found by its feature and value together (`graph.features`): the
# constraint's index serves `feature = $f AND value > $x` as one seek.
_COMPOSITE_UNIQUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (FeatureValue.__label__, ("feature", "value")),
    # A column is one artifact version's column: `ln.lineage.columns` seeks it by both.
    (Column.__label__, ("artifact", "name")),
)


class SchemaItem(NamedTuple):
    """One constraint or index; constraints and range indexes named the way neomodel names
    them."""

    kind: str  # "constraint" (uniqueness), "index" (range) or "text" (a TEXT index)
    label: str
    prop: str  # one property, or several joined by "," (a composite constraint)

    @property
    def name(self) -> str:
        props = self.prop.replace(",", "_")
        if self.kind == "constraint":
            return f"constraint_unique_{self.label}_{props}"
        if self.kind == "text":
            return f"text_index_{self.label}_{props}"
        return f"index_{self.label}_{props}"

    def statement(self) -> str:
        # Labels and property names come from the models, never from users; backticks anyway.
        target = f"(n:`{self.label}`)"
        props = ", ".join(f"n.`{p}`" for p in self.prop.split(","))
        if self.kind == "constraint":
            return (
                f"CREATE CONSTRAINT `{self.name}` IF NOT EXISTS "
                f"FOR {target} REQUIRE ({props}) IS UNIQUE"
            )
        kind = "TEXT INDEX" if self.kind == "text" else "INDEX"
        return f"CREATE {kind} `{self.name}` IF NOT EXISTS FOR {target} ON ({props})"


@dataclass
class SchemaReport:
    """What `install_schema` found and did."""

    version: int
    created: list[str] = field(default_factory=list)
    migrations_run: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.migrations_run)


def expected_schema() -> list[SchemaItem]:
    """Every constraint and index the models declare (`unique_index=True` / `index=True`)."""
    items = []
    for model in _MODELS:
        for name, prop in model.defined_properties(aliases=False, rels=False).items():
            db_name = prop.get_db_property_name(name)
            if prop.unique_index:
                items.append(SchemaItem("constraint", model.__label__, db_name))
            elif prop.index:
                items.append(SchemaItem("index", model.__label__, db_name))
    for label, props in _COMPOSITE_UNIQUE:
        items.append(SchemaItem("constraint", label, ",".join(props)))
    for label, names in TEXT_INDEXED.items():
        items += [SchemaItem("text", label, name) for name in names]
    return items


def _present(conn: Connection) -> set[tuple[str, str, str]]:
    # Compared by what they do, not by name: an equivalent constraint created under another
    # name satisfies the model (and `IF NOT EXISTS` would not create a second one anyway).
    constraints = conn.run(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
        "WHERE type IN ['UNIQUENESS', 'NODE_PROPERTY_UNIQUENESS'] "
        "RETURN labelsOrTypes[0] AS label, reduce(s = head(properties), p IN tail(properties) "
        "| s + ',' + p) AS prop"
    )
    indexes = conn.run(
        "SHOW INDEXES YIELD type, entityType, labelsOrTypes, properties, owningConstraint "
        "WHERE type IN ['RANGE', 'TEXT'] AND entityType = 'NODE' AND owningConstraint IS NULL "
        "AND size(properties) = 1 "
        "RETURN type, labelsOrTypes[0] AS label, properties[0] AS prop"
    )
    kinds = {"RANGE": "index", "TEXT": "text"}
    return {("constraint", r["label"], r["prop"]) for r in constraints} | {
        (kinds[r["type"]], r["label"], r["prop"]) for r in indexes
    }


def install_schema(conn: Connection) -> SchemaReport:
    """Create missing constraints and indexes, run pending migrations, record the version.

    A database written by a newer lineage is refused before anything is written to it.
    """
    recorded = conn.run(
        "MATCH (s:LineageSchema {name: $name}) RETURN s.version AS version", {"name": SCHEMA_NAME}
    )
    current = recorded[0]["version"] if recorded else 0
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"this database was written by a newer lineage (schema version {current}; this "
            f"lineage knows up to {SCHEMA_VERSION}): upgrade lineage"
        )
    present = _present(conn)
    missing = [item for item in expected_schema() if tuple(item) not in present]
    if missing:

        def create(tx: neo4j.ManagedTransaction) -> None:
            for item in missing:
                tx.run(item.statement()).consume()

        conn.write(create)

    pending = [m for m in MIGRATIONS if m[0] > current]
    for _, _, step in pending:
        if step is not None:
            step(conn)
    if pending or not recorded:
        conn.run(
            """
            MERGE (s:LineageSchema {name: $name})
            ON CREATE SET s.created_at = datetime()
            SET s.version = $version, s.migrations = $migrations, s.updated_at = datetime()
            """,
            {
                "name": SCHEMA_NAME,
                "version": SCHEMA_VERSION,
                "migrations": [f"{v}: {text}" for v, text, _ in MIGRATIONS],
            },
        )
    return SchemaReport(
        version=SCHEMA_VERSION,
        created=sorted(item.name for item in missing),
        migrations_run=[v for v, _, _ in pending],
    )
