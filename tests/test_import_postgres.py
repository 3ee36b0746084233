"""`ln.import_lamindb` / `lineage import lamindb postgresql://...` against a lamindb instance on a
real PostgreSQL server (`tests/postgres.py`), made by lamindb 2.x itself (`lamin init --db`, in
its own venv) and filled with the world the SQLite test imports (`tests/lamindb_world.py`),
checked record by record with the same checks (`tests/lamindb_import.py`). It is read through
the driver this environment has (psycopg from the `postgres` extra, or psycopg2), as a role that
may only SELECT and must give its password. Then: Postgres's own types and collation, the
read-only session, clear errors with the password scrubbed, and the CLI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
from benchmarks._lamindb_env import ensure_lamindb, missing_packages, run_worker
from lineage import _lamindb
from lineage.cli import main
from tests.graph_digest import snapshot
from tests.lamindb_import import LAMINDB_VENV, check_import, cypher_rows, make_world
from tests.postgres import (
    GUARDED,
    GUARDED_PASSWORD,
    PostgresMissing,
    PostgresServer,
    postgres_server,  # noqa: F401  (the session's server, a fixture)
    server_binaries,
)

# A family of 37 versions made by lamindb: its counters run 0000-0009, 000A-000Z, 000a, where
# byte order and an en-US collation disagree (000a before 000A there).
MANY_VERSIONS = """
import json
import lamindb as ln
import lamindb_setup

lamindb_setup.settings.instance._is_on_hub = False
ln.settings.verbosity = "error"
t = ln.Transform(key="many.py", kind="script", source_code="print(0)").save()
uids = [t.uid]
for i in range(1, 37):
    t = ln.Transform(key="many.py", kind="script", source_code=f"print({i})", revises=t).save()
    uids.append(t.uid)
print(json.dumps({"uids": uids}))
"""


class PostgresWorld:
    def __init__(self, server: PostgresServer, world: dict[str, Any], versions: list[str]):
        self.server = server
        self.world = world
        self.versions = versions  # the uids of the 37-version family, oldest first
        # The reader: only SELECT on lamindb's tables, and a password (percent-encoded here).
        self.url = server.url("lamindb", GUARDED, GUARDED_PASSWORD)
        self.superuser_url = server.url("lamindb")


@pytest.fixture(scope="module")
def pg_world(
    postgres_server: PostgresServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> PostgresWorld:
    """lamindb's instance on Postgres, with the world and the 37-version family."""
    db = postgres_server.create_database("lamindb")
    root = tmp_path_factory.mktemp("lamindb-pg")
    _, world = make_world(root, db=db)
    lenv = ensure_lamindb(LAMINDB_VENV)
    versions = run_worker(lenv, root, ["-c", MANY_VERSIONS], timeout=600)["uids"]
    postgres_server.execute(
        "lamindb",
        f"GRANT CONNECT ON DATABASE lamindb TO {GUARDED}",
        f"GRANT USAGE ON SCHEMA public TO {GUARDED}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {GUARDED}",
    )
    return PostgresWorld(postgres_server, world, versions)


def _secrets(password: str = GUARDED_PASSWORD) -> tuple[str, ...]:
    """The password as written in a URL and as it is."""
    return (password, password.replace("/", "%2F").replace("@", "%40"))


def test_import_from_postgres_matches_lamindb_record_by_record(
    storage: Path, pg_world: PostgresWorld
) -> None:
    assert _lamindb._pg_driver is not None, "the test extra installs psycopg"
    report = ln.import_lamindb(pg_world.url)
    assert not any(s in report.source for s in _secrets()) and ":***@" in report.source
    check_import(report, pg_world.world)
    # Importing again (as the superuser, in other batches) changes nothing.
    before = snapshot()
    again = ln.import_lamindb(pg_world.superuser_url, batch_size=7)
    assert snapshot() == before
    assert again.created == 0 and again.records["Artifact"]["read"] == 15


def test_versions_follow_lamindb_counters_not_the_collation(
    storage: Path, pg_world: PostgresWorld
) -> None:
    # The database sorts text as en-US does; lamindb's counters sort 0-9, A-Z, a-z.
    uids = pg_world.versions
    assert [u[-4:] for u in uids[9:12]] == ["0009", "000A", "000B"] and uids[-1][-4:] == "000a"
    ln.import_lamindb(pg_world.url)
    edges = cypher_rows(
        "MATCH (t:Transform)-[:REVISES]->(p:Transform) WHERE t.uid STARTS WITH $stem "
        "RETURN t.uid AS uid, p.uid AS previous ORDER BY uid",
        stem=uids[0][:12],
    )
    assert {e["uid"]: e["previous"] for e in edges} == dict(zip(uids[1:], uids[:-1]))
    newest = ln.Transform.get(key="many.py")
    assert newest.uid == uids[-1] and newest.is_latest
    assert [t.uid for t in newest.versions] == uids


def test_postgres_values_come_in_lamindb_types(storage: Path, pg_world: PostgresWorld) -> None:
    # What the driver hands over: timestamps as aware datetimes, JSON decoded (a JSON string is
    # a plain str), booleans as bools; the import reads each as SQLite's text would be read.
    src = _lamindb._Source(pg_world.url)
    try:
        values = list(
            src.rows(
                "SELECT f.name AS name, v.value AS value FROM lamindb_jsonvalue v "
                "JOIN lamindb_feature f ON f.id = v.feature_id ORDER BY v.id"
            )
        )
        run = next(src.rows("SELECT params, started_at FROM lamindb_run WHERE params IS NOT NULL"))
        artifact = next(src.rows("SELECT is_latest FROM lamindb_artifact"))
    finally:
        src.close()
    donor = next(v["value"] for v in values if v["name"] == "donor")
    assert donor == "D1" and src.json(donor) == "D1"  # json.loads("D1") would fail
    assert isinstance(src.json(run["params"]), dict)
    assert run["started_at"].tzinfo is not None and isinstance(artifact["is_latest"], bool)
    got = ln.import_lamindb(pg_world.url)
    clean = next(a for a in pg_world.world["Artifact"] if a["key"] == "clean/data.csv")
    assert ln.Artifact.get(clean["uid"]).features.get_values()["donor"] == "D1"
    assert "Artifact feature values: not valid for the dtype" not in str(got.skipped)


def test_the_import_never_writes_to_postgres(storage: Path, pg_world: PostgresWorld) -> None:
    # Even as the superuser: the session is read-only, as the SQLite file is opened read-only.
    src = _lamindb._Source(pg_world.superuser_url)
    try:
        cur = src.db.cursor()
        with pytest.raises(Exception, match="read-only transaction"):
            cur.execute("CREATE TABLE lineage_was_here (x int)")
    finally:
        src.close()
    again = _lamindb._Source(pg_world.superuser_url)
    try:
        assert "lineage_was_here" not in again.tables
    finally:
        again.close()


def test_the_import_reads_one_snapshot(storage: Path, pg_world: PostgresWorld) -> None:
    # lamindb writing while the import runs: the import goes on seeing the instance as it was.
    query = "SELECT description FROM lamindb_ulabel WHERE name = 'plain label'"
    src = _lamindb._Source(pg_world.url)
    try:
        before = next(src.rows(query))
        pg_world.server.execute(
            "lamindb",
            "UPDATE lamindb_ulabel SET description = 'changed meanwhile' "
            "WHERE name = 'plain label'",
        )
        assert next(src.rows(query)) == before == {"description": "no type"}
    finally:
        src.close()
        pg_world.server.execute(
            "lamindb",
            "UPDATE lamindb_ulabel SET description = 'no type' WHERE name = 'plain label'",
        )


def test_bad_postgres_sources_are_clear_errors(
    storage: Path,
    pg_world: PostgresWorld,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    wrong = postgres_server.url("lamindb", GUARDED, "wr0ng/p@ss")
    with pytest.raises(ln.errors.DataError) as caught:
        ln.import_lamindb(wrong)
    message = str(caught.value)
    assert "password authentication failed" in message and "check the host, port" in message
    assert ":***@" in message and not any(s in message for s in _secrets("wr0ng/p@ss"))

    closed = f"postgresql://{GUARDED}:{_secrets()[1]}@127.0.0.1:1/lamindb"
    with pytest.raises(ln.errors.DataError, match="cannot connect to the lamindb database") as c:
        ln.import_lamindb(closed)
    assert not any(s in str(c.value) for s in _secrets())

    with pytest.raises(ln.errors.DataError, match="not a lamindb database"):
        ln.import_lamindb(postgres_server.url("postgres"))
    assert snapshot()["nodes"] == []


def test_without_a_driver_the_error_says_what_to_install(
    storage: Path, pg_world: PostgresWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_lamindb, "_pg_driver", None)  # an environment with neither driver
    with pytest.raises(ln.errors.NotSupported, match=r"lineagegraph\[postgres\]") as caught:
        ln.import_lamindb(pg_world.url)
    assert not any(s in str(caught.value) for s in _secrets())


def test_the_cli_imports_from_postgres(
    storage: Path, cli_env: dict[str, str], pg_world: PostgresWorld, capsys: Any
) -> None:
    assert main(["import", "lamindb", pg_world.url]) == 0
    out = capsys.readouterr().out
    assert "Artifact" in out and "15 read" in out
    assert "lamindb's default space 'all'" in out
    assert ":***@" in out and not any(s in out for s in _secrets())
    assert ln.Artifact.filter(key="tables/xy.parquet").count() == 1
    wrong = pg_world.server.url("lamindb", GUARDED, "nope-nope")
    assert main(["import", "lamindb", wrong]) == 1
    err = capsys.readouterr().err
    assert "password authentication failed" in err and "nope-nope" not in err


def test_a_missing_server_fails_and_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "initdb").write_text("")  # pg_ctl and postgres are missing
    with pytest.raises(PostgresMissing, match="apt-get install postgresql"):
        server_binaries([tmp_path])


def test_the_lamindb_venv_has_lamindbs_postgres_driver() -> None:
    assert missing_packages(ensure_lamindb(LAMINDB_VENV).python) == []
    asked = {"json": "json-from-pip", "no_such_module_here": "a-requirement"}
    assert missing_packages(Path(sys.executable), asked) == ["a-requirement"]
