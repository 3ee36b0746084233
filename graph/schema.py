"""Installs the graph schema: constraints and indexes from `graph.models`, and a version node.

Installing is idempotent and cheap when nothing is missing (two `SHOW` queries and one `MERGE`),
so `connect()` runs it every time. neomodel creates what is missing from the model declarations;
a constraint someone dropped by hand comes back on the next connect.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable

import neomodel

from graph.connection import Connection
from graph.errors import SchemaError
from graph.models import RECORD_MODELS, SchemaVersion

SCHEMA_NAME = "lineage"

# (version, what it does, extra work beyond the model-derived constraints and indexes).
# A later change that must rewrite data appends a step here; `install_schema` runs the steps
# whose version is above the one recorded in the database, in order.
Migration = tuple[int, str, Callable[[Connection], None] | None]
MIGRATIONS: list[Migration] = [
    (1, "uniqueness of uid and id per record label; indexes on key, hash, is_latest, "
        "created_at, name", None),
]  # fmt: skip
SCHEMA_VERSION = MIGRATIONS[-1][0]

_MODELS = (*RECORD_MODELS, SchemaVersion)


@dataclass
class SchemaReport:
    """What `install_schema` found and did."""

    version: int
    created: list[str] = field(default_factory=list)
    migrations_run: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.migrations_run)


def expected_constraints() -> dict[str, type]:
    """Constraint name -> model, as neomodel names them."""
    return {
        f"constraint_unique_{model.__label__}_{prop.get_db_property_name(name)}": model
        for model in _MODELS
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
        if prop.unique_index and not prop.index
    }


def expected_indexes() -> dict[str, type]:
    """Range index name -> model, as neomodel names them."""
    return {
        f"index_{model.__label__}_{prop.get_db_property_name(name)}": model
        for model in _MODELS
        for name, prop in model.defined_properties(aliases=False, rels=False).items()
        if prop.index
    }


def install_schema(conn: Connection) -> SchemaReport:
    """Create missing constraints and indexes, run pending migrations, record the version."""
    present = {r["name"] for r in conn.run("SHOW CONSTRAINTS YIELD name")}
    present |= {r["name"] for r in conn.run("SHOW INDEXES YIELD name")}
    wanted = {**expected_constraints(), **expected_indexes()}
    missing = {name: model for name, model in wanted.items() if name not in present}

    if missing:
        bind_neomodel(conn)
        # neomodel prints "already exists" errors it tolerates (a concurrent installer won the
        # race); they are expected here, so its output goes to a buffer, not the user's terminal.
        sink = io.StringIO()
        for model in dict.fromkeys(missing.values()):
            neomodel.db.install_labels(model, quiet=True, stdout=sink)

    recorded = conn.run(
        "MATCH (s:LineageSchema {name: $name}) RETURN s.version AS version", {"name": SCHEMA_NAME}
    )
    current = recorded[0]["version"] if recorded else 0
    if current > SCHEMA_VERSION:
        raise SchemaError(
            f"this database was written by a newer lineage (schema version {current}; this "
            f"lineage knows up to {SCHEMA_VERSION}): upgrade lineage"
        )
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
        created=sorted(missing),
        migrations_run=[v for v, _, _ in pending],
    )


def bind_neomodel(conn: Connection) -> None:
    """Point neomodel's process-wide database handle at this connection's driver and database."""
    neomodel.get_config().database_name = conn.settings.database
    neomodel.db.set_connection(driver=conn.driver)
