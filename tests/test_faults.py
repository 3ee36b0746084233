"""Faults against a real Neo4j, real files and a real S3 (moto) server (docs/reliability.md).

- Neo4j killed (`kill -9` of its JVM) in the middle of a bulk `ln.save` and of a run of
  collection saves: after a restart every record is whole (node and all its edges) or absent,
  and no file is left in storage for an absent record.
- The saving Python process killed in the middle of a save: its copied-but-uncommitted files are
  orphans, which `lineage doctor` lists and `--fix` removes (only old ones, only under
  `<root>/.lineage/`).
- Storage failing (S3 endpoint down, a local root where `.lineage` cannot be made): no node is
  written and the error names the storage location.
- Neo4j unreachable (closed port, a server stopped after connect, a server that never answers
  the handshake): `ConnectionFailed` naming the URI within seconds, nothing half-done.
- Data survives `lineage server stop` / `start`.

The Neo4j that is killed here is a dedicated server in its own home on its own port, never the
session's. The saving runs in a child process (`_CHILD`), which can be paused right after it
copied files (`FAULT_PAUSE_AFTER`), so a kill lands between copy and commit deterministically.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import boto3
import neo4j as neo4j_driver
import pytest
from moto.server import ThreadedMotoServer

import lineage as ln
from graph import LocalServer
from graph.server.manager import _alive
from tests.conftest import Neo4jUnderTest, free_port

ROOT = Path(__file__).resolve().parent.parent
BATCH = 100  # rows per bulk transaction in the children, so a save spans many transactions

# The saving child. argv: mode, source directory, storage root. Env: NEO4J_URI,
# FAULT_BATCH (bulk batch size), FAULT_PAUSE_AFTER=k (after the k-th copy call returns,
# print PAUSED and sleep: the files are copied, their records not committed).
_CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import graph.records as gr
    gr.BATCH_SIZE = int(os.environ.get("FAULT_BATCH", "2000"))
    import loaders
    import lineage as ln

    pause_after = int(os.environ.get("FAULT_PAUSE_AFTER", "0"))
    copies = 0

    def pausing(real):
        def wrapper(*args, **kwargs):
            global copies
            out = real(*args, **kwargs)
            copies += 1
            if copies == pause_after:
                print("PAUSED", flush=True)
                time.sleep(3600)
            return out
        return wrapper

    loaders.put_files = pausing(loaders.put_files)
    loaders.put_file = pausing(loaders.put_file)

    mode, src, storage = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    ln.connect()
    ln.settings.storage = storage
    ln.settings.cache_dir = Path(storage).parent / "cache"
    run = ln.Run(ln.Transform(key="faults.py", kind="script").save()).save()
    paths = sorted(src.iterdir())
    if mode == "single":
        print("SAVING", flush=True)
        for p in paths:
            ln.Artifact(p, key=p.name, run=run).save()
    else:
        artifacts = [ln.Artifact(p, key=p.name, run=run) for p in paths]
        print("SAVING", flush=True)
        ln.save(artifacts)
        if mode == "collections":
            meta = artifacts[-1]
            print("COLLECTIONS", flush=True)
            for i in range(len(artifacts)):
                n = 20 + (i % 7) * 10
                members = artifacts[i * 5 : i * 5 + n]
                if len(members) < n:
                    break
                ln.Collection(members, key=f"c{i:03d}-n{n}", meta=meta, run=run).save()
    print("DONE", flush=True)
    """
)


# -- helpers ----------------------------------------------------------------------------------
def _sources(directory: Path, n: int, tag: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (directory / f"f{i:05d}.txt").write_text(f"file {i} {tag}\n")
    return directory


def _env(target: str | Neo4jUnderTest, **extra: str) -> dict[str, str]:
    """A child's environment: the Neo4j to use (a URI, or the session's with its password),
    this checkout on the path (not an installed copy), and the fault knobs."""
    if isinstance(target, str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
        env["NEO4J_URI"] = target
    else:
        env = target.child_env()
    env.update(PYTHONPATH=str(ROOT), FAULT_BATCH=str(BATCH), **extra)
    return env


def _spawn(
    mode: str, src: Path, storage: Path, target: str | Neo4jUnderTest, **extra: str
) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode, str(src), str(storage)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=_env(target, **extra),
    )  # fmt: skip


def _wait_line(proc: subprocess.Popen, marker: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if marker in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
    raise AssertionError(f"child did not print {marker} within {timeout}s")


def _count(driver: neo4j_driver.Driver, label: str) -> int:
    records, _, _ = driver.execute_query(f"MATCH (n:`{label}`) RETURN count(n) AS n")
    return records[0]["n"]


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.02)


def _managed_files(storage: Path) -> set[str]:
    managed = storage / ".lineage"
    return {str(p) for p in managed.rglob("*") if p.is_file()} if managed.exists() else set()


def _check_whole_or_absent(uri: str, storage: Path, kept_ok: bool = False) -> dict[str, int]:
    """Every artifact and collection has all its edges; storage holds exactly their files.

    `kept_ok`: files beyond the artifacts' are allowed (copies kept because their commit was
    unknown when Neo4j died: doctor's job), files missing never are.
    """
    with neo4j_driver.GraphDatabase.driver(uri) as driver:
        rows, _, _ = driver.execute_query(
            "MATCH (a:Artifact) RETURN a.uid AS uid, a.storage_path AS path, "
            "COUNT { (a)-[:STORED_IN]->(:Storage) } AS stored, "
            "COUNT { (a)-[:CREATED_BY]->(:User) } AS creator, "
            "COUNT { (a)-[:GENERATED_BY]->(:Run) } AS run"
        )
        bad = [r.data() for r in rows if (r["stored"], r["creator"], r["run"]) != (1, 1, 1)]
        assert bad == [], bad
        paths = {r["path"] for r in rows}
        assert len(paths) == len(rows)
        colls, _, _ = driver.execute_query(
            "MATCH (c:Collection) OPTIONAL MATCH (c)-[r:CONTAINS]->(:Artifact) "
            "WITH c, collect(r.position) AS positions "
            "RETURN c.key AS key, positions, c.is_latest AS latest, "
            "COUNT { (c)-[:HAS_META]->(:Artifact) } AS meta, "
            "COUNT { (c)-[:CREATED_BY]->(:User) } AS creator, "
            "COUNT { (c)-[:GENERATED_BY]->(:Run) } AS run"
        )
        for c in colls:
            n = int(c["key"].split("-n")[1])
            assert sorted(c["positions"]) == list(range(n)), c["key"]
            assert (c["meta"], c["creator"], c["run"], c["latest"]) == (1, 1, 1, True), c.data()
    files = _managed_files(storage)
    assert paths <= files, f"artifacts whose file is missing: {sorted(paths - files)[:5]}"
    if not kept_ok:
        assert files == paths, f"orphan files in storage: {sorted(files - paths)[:5]}"
    return {"artifacts": len(rows), "collections": len(colls), "kept": len(files - paths)}


def _doctor(target: str | Neo4jUnderTest, *args: str) -> subprocess.CompletedProcess:
    """`lineage doctor ARGS` as a subprocess against `target`."""
    return subprocess.run(
        [sys.executable, "-m", "lineage", "doctor", *args],
        capture_output=True, text=True, cwd=ROOT, env=_env(target), timeout=120,
    )  # fmt: skip


# -- a Neo4j of our own, to kill ----------------------------------------------------------------
@pytest.fixture(scope="module")
def own_server(
    tmp_path_factory: pytest.TempPathFactory, neo4j_install_dir: Path
) -> Iterator[LocalServer]:
    """A dedicated local server (own home, own port) that tests may kill and restart."""
    home = tmp_path_factory.mktemp("fault-server")
    server = LocalServer(home=home, install_dir=neo4j_install_dir)
    server.start(port=free_port())
    try:
        yield server
    finally:
        server.stop(timeout=20)


@pytest.fixture
def crash_db(own_server: LocalServer) -> Iterator[str]:
    """The dedicated server, running and empty; yields its URI."""
    status = own_server.start()  # a previous test may have left it killed
    with neo4j_driver.GraphDatabase.driver(status.uri) as driver:
        driver.execute_query("MATCH (n) DETACH DELETE n")
    yield status.uri
    ln.disconnect()


def _kill_neo4j_midway(
    server: LocalServer, proc: subprocess.Popen, label: str, at_least: int, total: int
) -> int:
    """Poll `label`'s node count; kill -9 the JVM once it reaches `at_least` (< `total`)."""
    uri = server.status().uri
    with neo4j_driver.GraphDatabase.driver(uri) as driver:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            seen = _count(driver, label)
            if seen >= at_least:
                break
            if proc.poll() is not None:
                raise AssertionError(f"child exited early: {proc.stderr.read()[-3000:]}")
            time.sleep(0.01)
        else:
            raise AssertionError(f"{label} count stayed below {at_least}")
        _kill(server.status().pid)
    assert seen < total, f"the save had finished ({seen} {label}) before the kill"
    return seen


def _restart_and_check(server: LocalServer, uri: str, storage: Path) -> dict[str, int]:
    """Restart the killed server; every record whole or absent, no file missing; then doctor
    removes any copy kept for a commit that turned out not to happen, and nothing else."""
    server.start()
    found = _check_whole_or_absent(uri, storage, kept_ok=True)
    ln.connect(uri)  # in this process: a `lineage doctor` child would import lineage again
    report = ln.doctor(fix=True, grace=0)
    assert len(report.removed) == found["kept"] and report.ok, report.describe()
    after = _check_whole_or_absent(uri, storage)
    assert {**after, "kept": found["kept"]} == found
    print(f"fault outcome: {found}")  # for docs/reliability.md (pytest -s)
    return found


@pytest.mark.parametrize("kill_at", [1, 5])  # batches of BATCH committed before the kill
def test_neo4j_killed_mid_bulk_save(
    own_server: LocalServer, crash_db: str, tmp_path: Path, kill_at: int
) -> None:
    total = 10 * BATCH
    src = _sources(tmp_path / "src", total, tag=f"bulk{kill_at}")
    storage = tmp_path / "storage"
    proc = _spawn("bulk", src, storage, crash_db)
    try:
        _wait_line(proc, "SAVING")
        _kill_neo4j_midway(own_server, proc, "Artifact", kill_at * BATCH, total)
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        waited = time.monotonic() - started
    finally:
        proc.kill()
    # The save failed (the Python process lived) with a clear error, within seconds.
    assert proc.returncode != 0
    assert ("ConnectionFailed" in err or "CommitUnknown" in err) and crash_db in err, err[-2000:]
    assert waited < 20, f"the save took {waited:.1f}s to give up"
    print(f"fault error: {err.strip().splitlines()[-1][:200]}")

    found = _restart_and_check(own_server, crash_db, storage)
    assert found["artifacts"] % BATCH == 0 and 0 < found["artifacts"] < total
    assert found["kept"] in (0, BATCH)  # only the batch in flight, if its commit was unknown


def test_neo4j_killed_mid_collection_saves(
    own_server: LocalServer, crash_db: str, tmp_path: Path
) -> None:
    src = _sources(tmp_path / "src", 400, tag="collections")
    storage = tmp_path / "storage"
    total = 0  # the collections the child would save: as in _CHILD
    while total * 5 + 20 + (total % 7) * 10 <= 400:
        total += 1
    proc = _spawn("collections", src, storage, crash_db)
    try:
        _wait_line(proc, "COLLECTIONS")
        _kill_neo4j_midway(own_server, proc, "Collection", 10, total)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "ConnectionFailed" in err or "CommitUnknown" in err, err[-2000:]
    print(f"fault error: {err.strip().splitlines()[-1][:200]}")

    found = _restart_and_check(own_server, crash_db, storage)
    assert found["artifacts"] == 400 and 10 <= found["collections"] < total
    assert found["kept"] == 0


# -- the saving process killed: orphans and `lineage doctor` ------------------------------------
def _paused_child(
    mode: str, n: int, pause_after: int, neo4j: Neo4jUnderTest, storage: Path
) -> subprocess.Popen:
    """A child saving into `storage`, paused after its `pause_after`-th copy call."""
    src = _sources(storage.parent / "src", n, tag=f"{mode}{pause_after}")
    proc = _spawn(mode, src, storage, neo4j, FAULT_PAUSE_AFTER=str(pause_after))
    _wait_line(proc, "PAUSED")
    return proc


@pytest.mark.parametrize("mode, n, pause_after", [("bulk", 3 * BATCH + 7, 3), ("single", 5, 4)])
def test_python_killed_mid_save_leaves_orphans_that_doctor_removes(
    storage: Path, neo4j: Neo4jUnderTest, mode: str, n: int, pause_after: int
) -> None:
    proc = _paused_child(mode, n, pause_after, neo4j, storage)
    _kill(proc.pid)  # files copied, their transaction never committed
    proc.communicate()
    referenced = {a.storage_path for a in ln.Artifact.filter()}
    orphans = _managed_files(storage) - referenced
    committed = (pause_after - 1) * (BATCH if mode == "bulk" else 1)
    assert len(referenced) == committed
    assert len(orphans) == (BATCH if mode == "bulk" else 1)

    # A user's file registered in place under the root, and a stray file outside .lineage/.
    in_place = storage / "user" / "mine.txt"
    in_place.parent.mkdir()
    in_place.write_text("user data\n")
    ln.Artifact(in_place, key="user/mine.txt").save()
    (storage / "notes.txt").write_text("not lineage's\n")

    young = _doctor(neo4j, "--fix")  # default grace: the orphans are too young
    assert young.returncode == 0, young.stdout + young.stderr
    assert young.stdout.count("recent (left alone") == len(orphans)
    assert _managed_files(storage) - referenced == orphans

    listed = ln.doctor(grace=0)
    assert {o.uri for o in listed.orphans} == orphans and not listed.removed
    assert not listed.ok and listed.issues == [] and listed.missing == []

    fixed = _doctor(neo4j, "--fix", "--grace", "0")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fixed.stdout.count("removed: ") == len(orphans)
    assert _managed_files(storage) == referenced
    assert in_place.exists() and (storage / "notes.txt").exists()
    for artifact in ln.Artifact.filter():
        assert artifact.path.exists()
    assert ln.doctor(grace=0).ok


def test_doctor_without_fix_exits_3_and_changes_nothing(
    storage: Path, neo4j: Neo4jUnderTest
) -> None:
    proc = _paused_child("single", 2, 1, neo4j, storage)
    _kill(proc.pid)
    proc.communicate()
    before = _managed_files(storage)
    assert len(before) == 1
    os.utime(next(iter(before)), (time.time() - 3600, time.time() - 3600))  # an old orphan
    out = _doctor(neo4j)
    assert out.returncode == 3, out.stdout + out.stderr
    assert f"orphan: {next(iter(before))}" in out.stdout and "lineage doctor --fix" in out.stdout
    assert _managed_files(storage) == before


def test_doctor_finds_graph_inconsistencies(storage: Path) -> None:
    src = storage.parent / "src"
    src.mkdir()
    artifacts = []
    for i in range(3):
        (src / f"{i}.txt").write_text(f"{i}\n")
        artifacts.append(ln.Artifact(src / f"{i}.txt", key=f"{i}.txt").save())
    v2 = ln.Artifact(_write(src / "v2.txt", "v2\n"), revises=artifacts[0]).save()
    coll = ln.Collection(artifacts, key="c").save()
    # A root registered from another machine sharing the database: not checked, not a problem.
    ln.Storage(root="/nonexistent/other-machine/storage").save()
    healthy = ln.doctor()
    assert healthy.ok and healthy.elsewhere == ["/nonexistent/other-machine/storage"]
    assert "not on this machine" in healthy.describe()
    with pytest.raises(ValueError, match="grace"):
        ln.doctor(grace=-1)

    # Break the graph the ways doctor knows of, with plain Cypher.
    ln.cypher("MATCH (a:Artifact {uid: $uid}) SET a.is_latest = true", uid=artifacts[0].uid)
    ln.cypher(
        "MATCH (:Collection {uid: $uid})-[r:CONTAINS]->(a:Artifact {uid: $a}) SET r.position = 7",
        uid=coll.uid, a=artifacts[1].uid,
    )  # fmt: skip
    ln.cypher("MATCH (a:Artifact {uid: $uid})-[r:STORED_IN]->() DELETE r", uid=artifacts[2].uid)
    Path(artifacts[1].storage_path).unlink()

    report = ln.doctor()
    kinds = {(i.kind, i.uid) for i in report.issues}
    assert ("is_latest", v2.uid[:16]) in kinds
    assert ("positions", coll.uid) in kinds
    assert ("no storage", artifacts[2].uid) in kinds
    assert [m.uid for m in report.missing] == [artifacts[1].storage_path]
    assert not report.ok and "graph issue" in report.describe()
    assert ln.doctor(fix=True).issues == report.issues  # --fix never changes the graph


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_doctor_never_follows_a_symlinked_managed_dir(storage: Path, tmp_path: Path) -> None:
    user_dir = tmp_path / "precious"
    user_dir.mkdir()
    (user_dir / "data.csv").write_text("a\n1\n")
    ln.Artifact(_write(tmp_path / "x.txt", "x\n"), key="x.txt").save()
    managed = storage / ".lineage"
    for p in managed.iterdir():
        p.unlink()
    managed.rmdir()
    managed.symlink_to(user_dir)
    report = ln.doctor(fix=True, grace=0)
    assert report.skipped and "symbolic link" in report.skipped[0]
    assert (user_dir / "data.csv").exists() and not report.removed


# -- storage failing -------------------------------------------------------------------------------
@pytest.fixture
def dead_s3(s3_server: str) -> Iterator[tuple[str, str]]:
    """A bucket on a moto server of our own; the server is stopped before the test body."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()  # s3_server (the session's) set the fake credentials in the environment
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    bucket = f"lineage-fault-{os.getpid()}-{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    server.stop()
    yield endpoint, bucket


def test_s3_endpoint_down_writes_no_node(storage: Path, dead_s3: tuple[str, str]) -> None:
    endpoint, bucket = dead_s3
    src = storage.parent / "src"
    src.mkdir()
    one = ln.Artifact(_write(src / "one.txt", "one\n"), key="one.txt")
    two = [ln.Artifact(_write(src / f"{i}.txt", f"{i}\n"), key=f"{i}.txt") for i in range(2)]
    ln.settings.storage = f"s3://{bucket}/root"
    ln.settings.storage_options = {"endpoint_url": endpoint}
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        one.save()
    assert f"{bucket}/root/.lineage/" in str(info.value), info.value
    assert time.monotonic() - started < 30

    # Bulk: fewer client retries, or the cleanup of each file waits out its own retries.
    ln.settings.storage_options = {
        "endpoint_url": endpoint,
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1},
    }  # fmt: skip
    with pytest.raises(Exception) as info:
        ln.save(two)
    assert f"{bucket}/root/.lineage/" in str(info.value), info.value
    assert ln.Artifact.filter().count() == 0
    assert not one._saved and not any(a._saved for a in two)
    assert one.storage_path is None and all(a.storage_path is None for a in two)


def test_unwritable_local_storage_writes_no_node(storage: Path) -> None:
    # Tests run as root, which ignores permission bits; a regular file where lineage needs its
    # `.lineage` directory fails for root too (ENOTDIR / EEXIST), like a read-only disk would.
    src = storage.parent / "src"
    src.mkdir()
    (storage / ".lineage").write_text("in the way\n")
    one = ln.Artifact(_write(src / "one.txt", "one\n"), key="one.txt")
    many = [ln.Artifact(_write(src / f"{i}.txt", f"{i}\n"), key=f"{i}.txt") for i in range(3)]
    with pytest.raises(OSError) as info:
        one.save()
    assert str(storage / ".lineage") in str(info.value)
    with pytest.raises(OSError) as info:
        ln.save(many)
    assert str(storage / ".lineage") in str(info.value)
    assert ln.Artifact.filter().count() == 0
    assert (storage / ".lineage").read_text() == "in the way\n"
    (storage / ".lineage").unlink()
    assert one.save()._saved and all(a._saved for a in ln.save(many))  # works once fixed


# -- Neo4j unreachable at call time -------------------------------------------------------------
def test_closed_port_fails_fast_naming_the_uri() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ln.errors.ConnectionFailed, match=uri):
        ln.connect(uri)
    assert time.monotonic() - started < 5


def test_server_that_never_answers_fails_within_the_timeout() -> None:
    with socket.socket() as sock:  # accepts TCP, never speaks Bolt (hung or wrong service)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        uri = f"bolt://127.0.0.1:{sock.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(ln.errors.ConnectionFailed, match=uri):
            ln.connect(uri)
        assert time.monotonic() - started < 15


def test_server_stopped_after_connect(
    own_server: LocalServer, crash_db: str, tmp_path: Path
) -> None:
    ln.connect(crash_db)
    saved = (ln.settings._storage, ln.settings._cache_dir)
    storage = tmp_path / "storage"
    ln.settings.storage = storage
    ln.settings.cache_dir = tmp_path / "cache"
    src = _sources(tmp_path / "src", 4)
    run = ln.Run(ln.Transform(key="stopped.py", kind="script").save()).save()
    single = ln.Artifact(src / "f00000.txt", key="a.txt", run=run)
    bulk = [ln.Artifact(src / f"f0000{i}.txt", key=f"{i}.txt", run=run) for i in (1, 2, 3)]
    ln.Artifact(_write(tmp_path / "first.txt", "first\n"), key="first.txt", run=run).save()
    try:
        own_server.stop()
        for save in (single.save, lambda: ln.save(bulk), lambda: ln.Artifact.filter().count()):
            started = time.monotonic()
            with pytest.raises(ln.errors.ConnectionFailed, match=crash_db):
                save()
            # Bounded: the driver retries a write for _WRITE_RETRY_TIME (10 s), then gives up.
            assert time.monotonic() - started < 20
        assert len(_managed_files(storage)) == 1, "no copy left for the failed saves"
    finally:
        ln.disconnect()
        ln.settings._storage, ln.settings._cache_dir = saved
        own_server.start()
    assert _check_whole_or_absent(crash_db, storage) == {
        "artifacts": 1, "collections": 0, "kept": 0
    }  # fmt: skip


# -- data survives `lineage server stop` / `start` -------------------------------------------------
def test_data_survives_cli_stop_and_start(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(LINEAGE_HOME=str(home), PYTHONPATH=str(ROOT))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lineage", *args],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
        )  # fmt: skip

    port = free_port()
    src = _sources(tmp_path / "src", 30, tag="cli")
    storage = tmp_path / "storage"
    save = textwrap.dedent(
        f"""
        import lineage as ln
        from pathlib import Path
        ln.settings.storage = {str(storage)!r}
        run = ln.Run(ln.Transform(key="cli.py", kind="script").save()).save()
        paths = sorted(Path({str(src)!r}).iterdir())
        arts = ln.save([ln.Artifact(p, key=p.name, run=run) for p in paths])
        ln.Collection(arts[:25], key="c-n25", meta=arts[-1], run=run).save()
        """
    )
    try:
        assert cli("server", "start", "--port", str(port)).returncode == 0
        uri = f"bolt://127.0.0.1:{port}"
        made = subprocess.run(
            [sys.executable, "-c", save], capture_output=True, text=True, env=env, cwd=ROOT
        )
        assert made.returncode == 0, made.stderr
        before = _check_whole_or_absent(uri, storage)
        assert cli("server", "stop").stdout.strip() == "stopped"
        assert cli("server", "status").returncode == 3
        started = cli("server", "start")
        assert started.returncode == 0 and uri in started.stdout
        assert _check_whole_or_absent(uri, storage) == before
        assert before == {"artifacts": 30, "collections": 1, "kept": 0}
        doctor = cli("doctor")
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    finally:
        cli("server", "stop")
