"""`ln.import_lamindb` / `lineage import lamindb` against an instance lamindb 2.x made itself
(`tests/lamindb_world.py`, run in lamindb's own venv, `benchmarks/_lamindb_env.py`), checked
record by record against what lamindb says about it: uids, hashes, keys, versions, paths,
creators, every `view_lineage` edge, `ordered_artifacts`, run inputs, annotations and feature
values. Then: importing twice changes nothing, and an importer killed with SIGKILL midway
completes when run again, with the graph a fresh import makes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
from lineage import _lamindb
from lineage.cli import main
from tests.conftest import Neo4jUnderTest
from tests.graph_digest import snapshot
from tests.lamindb_import import check_import, cypher_rows, make_world

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lamindb_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A fresh lamindb instance with every kind of record, and lamindb's account of it."""
    return make_world(tmp_path_factory.mktemp("lamindb"))


def test_import_matches_lamindb_record_by_record(
    storage: Path, lamindb_world: tuple[Path, dict[str, Any]]
) -> None:
    instance, world = lamindb_world
    check_import(ln.import_lamindb(instance), world)


def test_importing_twice_changes_nothing(
    storage: Path, lamindb_world: tuple[Path, dict[str, Any]]
) -> None:
    instance, _ = lamindb_world
    first = ln.import_lamindb(instance, batch_size=3)
    before = snapshot()
    second = ln.import_lamindb(instance, batch_size=7)
    assert snapshot() == before
    assert first.created > 0 and second.created == 0
    assert second.records["Artifact"]["read"] == first.records["Artifact"]["read"]


def test_the_cli_prints_the_report(
    storage: Path, cli_env: dict[str, str], lamindb_world: tuple[Path, dict[str, Any]], capsys: Any
) -> None:
    instance, _ = lamindb_world
    assert main(["import", "lamindb", str(instance)]) == 0
    out = capsys.readouterr().out
    assert "Artifact" in out and "15 read" in out
    assert "lamindb's default space 'all'" in out
    assert main(["import", "lamindb", str(instance / "nowhere")]) == 1
    assert "no lamindb database at" in capsys.readouterr().err


def test_bad_sources_are_refused(storage: Path, tmp_path: Path) -> None:
    with pytest.raises(ln.errors.MissingFile, match="no lamindb database"):
        ln.import_lamindb(tmp_path / "missing")
    not_lamindb = tmp_path / "other.db"
    sqlite3.connect(not_lamindb).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ln.errors.DataError, match="not a lamindb database"):
        ln.import_lamindb(not_lamindb)
    with pytest.raises(ln.errors.InvalidArgument, match="neither"):
        ln.import_lamindb("ftp://example.org/lamin.db")
    url = "postgresql://user:secret@127.0.0.1:1/lamindb"
    expected = ln.errors.NotSupported if _lamindb._pg_driver is None else ln.errors.DataError
    with pytest.raises(expected) as caught:
        ln.import_lamindb(url)
    assert "secret" not in str(caught.value)
    with pytest.raises(ln.errors.InvalidArgument, match="batch_size"):
        ln.import_lamindb(tmp_path, batch_size=0)
    assert snapshot()["nodes"] == []


def _inflate(instance: Path, target: Path, n: int) -> Path:
    """A copy of the instance's database with `n` more artifacts (copies of one row with new
    uids and hashes), so an import takes long enough to be killed midway."""
    db = target / ".lamindb" / "lamin.db"
    db.parent.mkdir(parents=True)
    src = sqlite3.connect(instance / ".lamindb" / "lamin.db")
    src.backup(dst := sqlite3.connect(db))
    src.close()
    cur = dst.execute("SELECT * FROM lamindb_artifact ORDER BY id LIMIT 1")
    names = [d[0] for d in cur.description]
    row = dict(zip(names, cur.fetchone()))
    rows = []
    for i in range(n):
        extra = dict(
            row, id=None, uid=f"inflated{i:08d}0000", hash=f"h{i:021d}", key=f"bulk/{i}.txt"
        )
        rows.append(tuple(extra[c] for c in names))
    marks = ", ".join("?" * len(names))
    dst.executemany(f"INSERT INTO lamindb_artifact VALUES ({marks})", rows)
    dst.commit()
    dst.close()
    return target


def test_a_killed_import_completes_when_run_again(
    storage: Path,
    neo4j: Neo4jUnderTest,
    lamindb_world: tuple[Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    instance, _ = lamindb_world
    big = _inflate(instance, tmp_path / "big", 6000)
    env = dict(neo4j.child_env(), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "lineage", "import", "lamindb", str(big), "--batch-size", "100"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            n = cypher_rows("MATCH (a:Artifact) RETURN count(a) AS n")[0]["n"]
            if n >= 500 or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the import ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = cypher_rows(
        "MATCH (a:Artifact) RETURN count(a) AS n, "
        "count { MATCH (a)-[:STORED_IN]->() } AS stored, count { MATCH (a)-[:CREATED_BY]->() } AS by"
    )
    n = cypher_rows("MATCH (a:Artifact) RETURN count(a) AS n")[0]["n"]
    assert 500 <= n < 6015, n
    assert n % 100 == 0, f"{n} artifacts: not a whole number of batches"
    incomplete = cypher_rows(
        "MATCH (a:Artifact) WHERE NOT (a)-[:STORED_IN]->() OR NOT (a)-[:CREATED_BY]->() "
        "RETURN count(a) AS n"
    )
    assert incomplete == [{"n": 0}], partial
    again = ln.import_lamindb(big)
    assert again.records["Artifact"]["created"] == 6015 - n
    resumed = snapshot()
    ln.cypher("MATCH (n) DETACH DELETE n")
    ln.disconnect()
    s = neo4j.settings
    ln.connect(s.uri, user=s.user, password=s.password, database=s.database)
    ln.import_lamindb(big)
    assert snapshot() == resumed  # the same graph as an import never interrupted
