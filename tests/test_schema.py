"""Schema install: constraints and indexes from the models, idempotent, versioned."""

from __future__ import annotations

import threading

import pytest

import lineage as ln
from graph import Connection, QueryError, SchemaError, install_schema
from graph.models import RECORD_LABELS, TEXT_INDEXED
from graph.schema import SCHEMA_VERSION, expected_schema


def _drop_lineage_schema(conn: Connection) -> None:
    for row in conn.run("SHOW CONSTRAINTS YIELD name"):
        conn.run(f"DROP CONSTRAINT `{row['name']}` IF EXISTS")
    for row in conn.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name"):
        conn.run(f"DROP INDEX `{row['name']}` IF EXISTS")
    conn.run("MATCH (s:LineageSchema) DELETE s")


def test_every_record_label_gets_uid_and_id_uniqueness(db: ln.Instance) -> None:
    rows = db.connection.run(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
        "WHERE type = 'UNIQUENESS' RETURN labelsOrTypes[0] AS label, properties[0] AS prop"
    )
    have = {(r["label"], r["prop"]) for r in rows}
    for label in RECORD_LABELS:
        assert (label, "uid") in have and (label, "id") in have, label


def test_indexes_on_key_hash_is_latest_created_at(db: ln.Instance) -> None:
    rows = db.connection.run(
        "SHOW INDEXES YIELD type, labelsOrTypes, properties WHERE type = 'RANGE' "
        "RETURN labelsOrTypes[0] AS label, properties[0] AS prop"
    )
    have = {(r["label"], r["prop"]) for r in rows}
    for label in ("Artifact", "Collection", "Transform"):
        for prop in ("key", "hash", "is_latest", "created_at"):
            assert (label, prop) in have, (label, prop)
    for label in RECORD_LABELS:
        assert (label, "created_at") in have


def test_text_indexes_for_search(db: ln.Instance) -> None:
    rows = db.connection.run(
        "SHOW INDEXES YIELD type, labelsOrTypes, properties WHERE type = 'TEXT' "
        "RETURN labelsOrTypes[0] AS label, properties[0] AS prop"
    )
    have = {(r["label"], r["prop"]) for r in rows}
    assert have == {(label, p) for label, props in TEXT_INDEXED.items() for p in props}
    conn = db.connection
    conn.run("DROP INDEX text_index_Run_name")
    assert install_schema(conn).created == ["text_index_Run_name"]


def test_install_twice_creates_once(db: ln.Instance) -> None:
    conn = db.connection
    _drop_lineage_schema(conn)
    first = install_schema(conn)
    assert set(first.created) == {item.name for item in expected_schema()}
    assert first.migrations_run == [1, 2, 3, 4, 5, 6] and first.version == SCHEMA_VERSION
    second = install_schema(conn)
    assert second.created == [] and second.migrations_run == [] and not second.changed
    nodes = conn.run("MATCH (s:LineageSchema) RETURN s.version AS v, s.migrations AS m")
    assert (
        len(nodes) == 1 and nodes[0]["v"] == SCHEMA_VERSION and len(nodes[0]["m"]) == SCHEMA_VERSION
    )


def test_a_dropped_constraint_comes_back(db: ln.Instance) -> None:
    conn = db.connection
    conn.run("DROP CONSTRAINT constraint_unique_Artifact_uid")
    report = install_schema(conn)
    assert report.created == ["constraint_unique_Artifact_uid"]


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_installers_on_a_fresh_database_all_succeed(
    db: ln.Instance, round_: int
) -> None:
    _drop_lineage_schema(db.connection)
    conns = [Connection.open(db.connection.settings) for _ in range(4)]
    barrier = threading.Barrier(len(conns))
    errors: list[BaseException] = []

    def install(conn: Connection) -> None:
        barrier.wait()
        try:
            install_schema(conn)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=install, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    assert errors == []
    assert install_schema(db.connection).created == []
    assert db.connection.run("MATCH (s:LineageSchema) RETURN count(s) AS n")[0]["n"] == 1


def test_uniqueness_is_enforced(db: ln.Instance) -> None:
    db.connection.run("CREATE (:Artifact {uid: 'aaaaaaaaaaaaaaaa0000', id: 1})")
    with pytest.raises(QueryError, match="ConstraintValidationFailed"):
        db.connection.run("CREATE (:Artifact {uid: 'aaaaaaaaaaaaaaaa0000', id: 2})")
    with pytest.raises(QueryError, match="ConstraintValidationFailed"):
        db.connection.run("CREATE (:Artifact {uid: 'bbbbbbbbbbbbbbbb0000', id: 1})")
    # The same id under another label is fine: ids are unique per label.
    db.connection.run("CREATE (:Collection {uid: 'aaaaaaaaaaaaaaaa0000', id: 1})")


def test_an_equivalent_constraint_under_another_name_counts(db: ln.Instance) -> None:
    conn = db.connection
    conn.run("DROP CONSTRAINT constraint_unique_ULabel_uid")
    conn.run("CREATE CONSTRAINT users_own_name FOR (n:ULabel) REQUIRE n.uid IS UNIQUE")
    assert install_schema(conn).created == []


def test_database_from_a_newer_lineage_is_refused_untouched(db: ln.Instance) -> None:
    conn = db.connection
    conn.run("MATCH (s:LineageSchema) SET s.version = $v", {"v": SCHEMA_VERSION + 1})
    conn.run("DROP CONSTRAINT constraint_unique_Run_uid")
    with pytest.raises(SchemaError, match="newer lineage"):
        install_schema(conn)
    names = {r["name"] for r in conn.run("SHOW CONSTRAINTS YIELD name")}
    assert "constraint_unique_Run_uid" not in names


def test_v1_database_gets_id_counters_above_its_ids(db: ln.Instance) -> None:
    """Migration 2: ids already stored by a v1 database are never handed out again."""
    from graph import records as gr

    conn = db.connection
    conn.run("MATCH (c:LineageCounter) DELETE c")
    conn.run("MATCH (s:LineageSchema) SET s.version = 1")
    conn.run("CREATE (:ULabel {uid: 'oldlabel', id: 41, branch: 1})")
    report = install_schema(conn)
    assert report.migrations_run == [2, 3, 4, 5, 6]
    row = gr.create_record(conn, "ULabel", gr.NewRecord({"uid": "newlabel", "name": "n"}))
    assert row["id"] == 42
