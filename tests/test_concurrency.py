"""Concurrent writers against the real Neo4j (docs/reliability.md, "Concurrency"): separate processes, not
threads, racing on the same records.

N worker processes (`multiprocessing` with spawn, so every worker is a fresh interpreter with
its own driver and connection pool, as separate user sessions would be; started once for the
module) run each test's job together. They meet at a `Barrier` before every racing step, so the
races happen on purpose rather than by luck, and report what they got back through a queue. The
parent then checks the graph with Cypher of its own and the storage directories with the file
system. The last test replays the lost race in one process, deterministically.

What "append to the same collection" means under races (as in lamindb): `append(a)` makes a new
version that holds the members of the version the worker *read* plus `a`, and revises that
version. Two workers that read the same version both succeed: each gets its own version (the
version counter is `max + 1` over the family, taken inside the writing transaction with the
family locked), so no append is lost as a version and the family stays one linear sequence of
uids with one `is_latest` — but the newest version holds only its own parent's members plus its
own artifact, not the other worker's. A caller who wants every artifact in the latest version
appends to the latest again.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
import loaders
from graph import ConnectionSettings
from graph.ids import counter_string
from loaders.hashing import hash_string
from tests.conftest import Neo4jUnderTest, make_artifact
from tests.s3 import S3Bucket

N_PROCS = 6  # the machine has 2 cores: more processes only queue up behind each other
TIMEOUT = 120  # seconds any one worker may take; a hang fails the test instead of the run


# -- the worker side ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerEnv:
    """What a worker needs for one job: the test's Neo4j, storage root and cache (picklable)."""

    uri: str
    user: str | None
    password: str | None
    database: str | None
    storage: str
    cache_dir: str
    storage_options: dict[str, Any] | None = None


def _serve(index: int, barrier: Any, jobs: Any, results: Any) -> None:
    """A worker process's main: run jobs until told to stop, report each one's result.

    Each job connects afresh, like a new user session: the graph was wiped since the last job,
    and a connection's cached user and storage records would point at deleted nodes."""
    while True:
        order = jobs.get()
        if order is None:
            return
        job, env, params = order
        try:
            ln.connect(env.uri, user=env.user, password=env.password, database=env.database)
            ln.settings.storage = env.storage
            ln.settings.cache_dir = env.cache_dir
            ln.settings.storage_options = env.storage_options
            results.put((index, "ok", JOBS[job](index, barrier, **params)))
        except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
            barrier.abort()  # the others must not wait for this worker forever
            results.put((index, "error", traceback.format_exc()))
        finally:
            ln.disconnect()


def _append_rounds(index: int, barrier: Any, src: str, key: str, rounds: int) -> list[dict]:
    """Save an own artifact and append it to the latest version of collection `key`, `rounds`
    times, without pausing: the workers' reads and writes interleave freely."""
    out = []
    barrier.wait()
    for r in range(rounds):
        path = Path(src) / f"w{index}-r{r}.txt"
        path.write_text(f"appended by worker {index} in round {r}\n")
        artifact = ln.Artifact(path, key=f"appended/w{index}-r{r}.txt").save()
        parent = ln.Collection.get(key=key, is_latest=True)  # never misses: no retry
        new = parent.append(artifact).save()
        out.append({"artifact": artifact.uid, "parent": parent.uid, "new": new.uid})
    return out


def _read_while_appending(
    index: int, barrier: Any, src: str, key: str, writers: int, rounds: int, reads: int
) -> dict[str, Any]:
    """Workers below `writers` append to collection `key` `rounds` times (as `_append_rounds`);
    the others read `Collection.get(key=key, is_latest=True)` until the writers are done and
    they have read `reads` times, counting the reads that found no latest version or two
    (which Neo4j's read-committed isolation used to allow while a version was committed)."""
    done = Path(src) / "done"
    if index < writers:
        appends = _append_rounds(index, barrier, src, key, rounds)
        (done / f"writer-{index}").write_text("done")
        return {"appends": appends}
    barrier.wait()
    uids, misses, n = set(), [], 0
    while n < reads or len(list(done.iterdir())) < writers:
        try:
            uids.add(ln.Collection.get(key=key, is_latest=True).uid)
        except (ln.errors.DoesNotExist, ln.errors.MultipleResultsFound) as exc:
            misses.append(repr(exc))
        n += 1
    return {"reads": n, "misses": misses, "seen": sorted(uids)}


def _same_content(index: int, barrier: Any, src: str, rounds: int) -> dict[str, list[str]]:
    """Every round, all workers save the same bytes (from their own file) at the same moment;
    then all save the same collection at the same moment; then all bulk-save (`ln.save`) the
    same new bytes at the same moment."""
    own = Path(src) / f"w{index}"
    own.mkdir(parents=True, exist_ok=True)
    artifacts = []
    for r in range(rounds):
        path = own / f"r{r}.txt"
        path.write_text(same_bytes(r))
        barrier.wait()
        artifacts.append(ln.Artifact(path, key=f"same/r{r}.txt").save())
    collections = []
    for r in range(rounds):
        members = [artifacts[r], artifacts[(r + 1) % rounds]]
        barrier.wait()
        collections.append(ln.Collection(members, key=f"same-{r}").save())
    paths = []
    for r in range(rounds):
        path = own / f"bulk{r}.txt"
        path.write_text(same_bytes(r, "bulk"))
        paths.append(path)
    barrier.wait()
    bulk = ln.save([ln.Artifact(p, key=f"bulk/{p.name}") for p in paths])
    return {
        "artifacts": [a.uid for a in artifacts],
        "collections": [c.uid for c in collections],
        "bulk": [a.uid for a in bulk],
    }


def _different_content(index: int, barrier: Any, src: str, n_single: int, n_bulk: int) -> dict:
    """On a fresh graph: save own artifacts one by one and in bulk, then a collection of them."""
    own = Path(src) / f"w{index}"
    own.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_single + n_bulk):
        path = own / f"f{i}.txt"
        path.write_text(f"worker {index} file {i}\n")
        paths.append(path)
    barrier.wait()
    singles = [ln.Artifact(p, key=f"w{index}/{p.name}").save() for p in paths[:n_single]]
    bulk = ln.save([ln.Artifact(p, key=f"w{index}/{p.name}") for p in paths[n_single:]])
    members = singles + list(bulk)
    collection = ln.Collection(members, key=f"worker-{index}").save()
    return {"artifacts": [a.uid for a in members], "collection": collection.uid}


def _cache_rounds(index: int, barrier: Any, uid: str, md5: str, rounds: int) -> int:
    """Every round, all workers `cache()` the same S3 artifact at once (the cached copy was
    removed before the round, so each downloads it); the path they get back must hold the
    whole file."""
    artifact = ln.Artifact.get(uid)
    for _ in range(rounds):
        barrier.wait()
        path = artifact.cache()
        assert hashlib.md5(path.read_bytes()).hexdigest() == md5, "cache() returned a bad copy"
        barrier.wait()
        if index == 0:  # the next round must download again
            path.unlink()
            path.with_name(f".{path.name}.sync.json").unlink(missing_ok=True)
        barrier.wait()
    return rounds


JOBS: dict[str, Callable[..., Any]] = {
    "append": _append_rounds,
    "read_while_appending": _read_while_appending,
    "same_content": _same_content,
    "different_content": _different_content,
    "cache": _cache_rounds,
}


def same_bytes(round_: int, what: str = "file") -> str:
    return f"the same {what} content for every worker, round {round_}\n"


# -- the parent side ------------------------------------------------------------------------------
def worker_env(neo4j: Neo4jUnderTest) -> WorkerEnv:
    s: ConnectionSettings = neo4j.settings
    return WorkerEnv(
        uri=s.uri,
        user=s.user,
        password=s.password,
        database=s.database,
        storage=ln.settings.storage,
        cache_dir=str(ln.settings.cache_dir),
        storage_options=ln.settings.storage_options,
    )


class WorkerPool:
    """N worker processes (spawned once per module: starting an interpreter and importing
    lineage costs seconds on a busy 2-core machine) that run one job at a time, all together,
    meeting at a shared barrier."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[Any] = []

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(self.n, timeout=TIMEOUT)
        self.results = ctx.Queue()
        self.jobs = [ctx.Queue() for _ in range(self.n)]
        self.procs = [
            ctx.Process(target=_serve, args=(i, self.barrier, self.jobs[i], self.results))
            for i in range(self.n)
        ]
        for p in self.procs:
            p.start()

    def run(self, job: str, env: WorkerEnv, **params: Any) -> list[Any]:
        """Run `job` in every worker at once; their results in worker order (the test fails
        with a worker's traceback if one failed)."""
        if not self.procs:
            self._start()
        for jobs in self.jobs:
            jobs.put((job, env, params))
        got: dict[int, tuple[str, Any]] = {}
        try:
            while len(got) < self.n:
                index, status, value = self.results.get(timeout=TIMEOUT + 30)
                got[index] = (status, value)
        except queue.Empty:
            self.barrier.abort()
        errors = [f"worker {i}:\n{v}" for i, (s, v) in sorted(got.items()) if s == "error"]
        if errors or len(got) < self.n:
            self.close()  # a broken barrier or a hung worker: the next test starts afresh
        assert not errors, "\n".join(errors)
        assert sorted(got) == list(range(self.n)), f"workers that never reported: {sorted(got)}"
        return [got[i][1] for i in range(self.n)]

    def close(self) -> None:
        for jobs in self.jobs if self.procs else []:
            jobs.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():  # only our own children, by their own handles
                p.kill()
                p.join()
        self.procs = []


@pytest.fixture(scope="module")
def workers(neo4j: Neo4jUnderTest, s3_server: str) -> Iterator[WorkerPool]:
    """The module's worker processes. They inherit the environment as it is when they start,
    so the S3 server's fake credentials must be in place first (`s3_server`)."""
    pool = WorkerPool(N_PROCS)
    try:
        yield pool
    finally:
        pool.close()


def family(label: str, stem: str) -> list[dict[str, Any]]:
    """Every member of a version family, straight from the graph, in uid order."""
    rows = ln.cypher(
        f"MATCH (n:{label}) WHERE n.uid STARTS WITH $stem "
        "RETURN n.uid AS uid, n.id AS id, n.is_latest AS is_latest, n.branch AS branch, "
        "[(n)-[:REVISES]->(p) | p.uid] AS revises, "
        "[(n)-[r:CONTAINS]->(a) | {position: r.position, uid: a.uid}] AS members "
        "ORDER BY n.uid",
        stem=stem,
    )
    return rows.to_dict("records")


def ordered(members: list[dict[str, Any]]) -> list[str]:
    return [m["uid"] for m in sorted(members, key=lambda m: m["position"])]


def count_with_hash(label: str, hash_: str) -> int:
    return int(ln.cypher(f"MATCH (n:{label} {{hash: $h}}) RETURN count(n) AS n", h=hash_)["n"][0])


def managed_files(storage: Path) -> list[str]:
    managed = storage / ".lineage"
    return sorted(p.name for p in managed.iterdir()) if managed.exists() else []


# -- tests -----------------------------------------------------------------------------------------
ROUNDS = 4


def test_concurrent_appends_make_one_linear_family(
    workers: WorkerPool, neo4j: Neo4jUnderTest, storage: Path, tmp_path: Path
) -> None:
    """N processes append to the same collection R times each, racing: every append becomes a
    version (none lost, none doubled), version counters run 0000..N*R without a gap or a
    repeat, exactly one version is latest (the newest), each version revises the version its
    worker read and holds that version's members plus the worker's artifact, in order."""
    seed = make_artifact(storage, "seed.txt")
    first = ln.Collection([seed], key="shared").save()
    src = tmp_path / "src-append"
    src.mkdir()
    results = workers.run("append", worker_env(neo4j), src=str(src), key="shared", rounds=ROUNDS)
    appends = [a for worker in results for a in worker]
    assert len(appends) == N_PROCS * ROUNDS

    versions = family("Collection", first.stem_uid)
    by_uid = {v["uid"]: v for v in versions}
    uids = [v["uid"] for v in versions]
    stem_len = len(first.stem_uid)
    assert len(set(uids)) == len(uids) == 1 + N_PROCS * ROUNDS
    assert [u[stem_len:] for u in uids] == [counter_string(i) for i in range(len(uids))]
    assert {a["new"] for a in appends} == set(uids) - {first.uid}  # every append, only those
    assert len({v["id"] for v in versions}) == len(versions)
    assert {v["branch"] for v in versions} == {1}
    assert [v["uid"] for v in versions if v["is_latest"]] == [uids[-1]]
    assert by_uid[first.uid]["revises"] == []
    assert ordered(by_uid[first.uid]["members"]) == [seed.uid]
    for a in appends:
        new, parent = by_uid[a["new"]], by_uid[a["parent"]]
        assert new["revises"] == [a["parent"]]
        assert ordered(new["members"]) == ordered(parent["members"]) + [a["artifact"]]
        assert sorted(m["position"] for m in new["members"]) == list(range(len(new["members"])))
    # Each worker's own appends are in its program order: a later one has a higher counter.
    for worker in results:
        news = [a["new"] for a in worker]
        assert news == sorted(news)
    # The API agrees with the graph.
    latest = ln.Collection.get(key="shared", is_latest=True)
    assert latest.uid == uids[-1]
    assert [c.uid for c in latest.versions] == uids


def test_latest_version_reads_never_miss_while_versions_are_committed(
    workers: WorkerPool, neo4j: Neo4jUnderTest, storage: Path, tmp_path: Path
) -> None:
    """Two processes append versions to a collection while four read
    `Collection.get(key=..., is_latest=True)` as fast as they can: at least 1,000 reads, and
    every one finds exactly one version, which is one the family really had. (Before
    `graph.query.family_heads`, about one read in 24 found none while a version committed.)"""
    seed = make_artifact(storage, "seed.txt")
    ln.Collection([seed], key="read-me").save()
    src = tmp_path / "src-read"
    (src / "done").mkdir(parents=True)
    writers, reads = 2, 250
    results = workers.run(
        "read_while_appending",
        worker_env(neo4j),
        src=str(src),
        key="read-me",
        writers=writers,
        rounds=12,
        reads=reads,
    )
    readers = results[writers:]
    total = sum(r["reads"] for r in readers)
    misses = [m for r in readers for m in r["misses"]]
    print(f"{total} latest-version reads during {writers * 12} appends, {len(misses)} missed")
    assert total >= (N_PROCS - writers) * reads >= 1000
    assert misses == []
    family_uids = {
        v["uid"] for v in family("Collection", ln.Collection.get(key="read-me").stem_uid)
    }
    assert {u for r in readers for u in r["seen"]} <= family_uids
    assert len(family_uids) == 1 + writers * 12


def test_same_content_at_once_is_stored_once(
    workers: WorkerPool, neo4j: Neo4jUnderTest, storage: Path, tmp_path: Path
) -> None:
    """N processes save artifacts with the same bytes at the same moment (R rounds), then the
    same collections, then bulk-save (`ln.save`) the same bytes: each content is one node, every
    process gets that node's uid back, and the storage holds exactly one copy per content, no
    orphan copy of a loser."""
    src = tmp_path / "src-same"
    results = workers.run("same_content", worker_env(neo4j), src=str(src), rounds=ROUNDS)
    for what in ("artifacts", "collections", "bulk"):
        for r in range(ROUNDS):
            got = {worker[what][r] for worker in results}
            assert len(got) == 1, f"{what} round {r}: processes got different records {got}"
    for r in range(ROUNDS):
        for text in (same_bytes(r), same_bytes(r, "bulk")):
            assert count_with_hash("Artifact", hash_string(text)) == 1, text
    for r in range(ROUNDS):
        collection = ln.Collection.get(results[0]["collections"][r])
        assert count_with_hash("Collection", collection.hash) == 1
    stored = ln.Artifact.filter().to_list()
    assert len(stored) == 2 * ROUNDS
    # One managed copy per stored artifact, named by its uid: no copy of a losing process left.
    assert managed_files(storage) == sorted(Path(a.storage_path).name for a in stored)
    staging = ln.settings.cache_dir / "staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_different_content_at_once_on_a_fresh_graph(
    workers: WorkerPool, neo4j: Neo4jUnderTest, storage: Path, tmp_path: Path
) -> None:
    """N processes start on an empty graph (so they race to create the user, the storage
    node and the id counters too) and save their own artifacts one by one and in bulk, then a
    collection each: everything is there once, ids are unique and contiguous per label."""
    n_single, n_bulk = 3, 5
    src = tmp_path / "src-diff"
    results = workers.run(
        "different_content", worker_env(neo4j), src=str(src), n_single=n_single, n_bulk=n_bulk
    )
    per_worker = n_single + n_bulk
    artifacts = ln.cypher("MATCH (a:Artifact) RETURN a.uid AS uid, a.id AS id")
    assert len(artifacts) == N_PROCS * per_worker
    assert set(artifacts["uid"]) == {u for w in results for u in w["artifacts"]}
    # Ids come from the label's counter, taken under its lock: unique, and none skipped since
    # a rolled-back attempt gives its ids back.
    assert sorted(artifacts["id"]) == list(range(1, N_PROCS * per_worker + 1))
    collections = ln.cypher("MATCH (c:Collection) RETURN c.uid AS uid, c.id AS id")
    assert sorted(collections["id"]) == list(range(1, N_PROCS + 1))
    for worker in results:
        members = family("Collection", worker["collection"][:16])
        assert len(members) == 1
        assert ordered(members[0]["members"]) == worker["artifacts"]
    counts = ln.cypher(
        "MATCH (n) WHERE n:User OR n:Storage OR n:LineageCounter "
        "RETURN labels(n)[0] AS label, count(n) AS n ORDER BY label"
    )
    assert dict(zip(counts["label"], counts["n"])) == {
        "LineageCounter": 4,  # Artifact, Collection, Storage, User
        "Storage": 1,
        "User": 1,
    }
    assert len(managed_files(storage)) == N_PROCS * per_worker


def test_processes_caching_one_s3_artifact_never_expose_a_partial_file(
    workers: WorkerPool,
    neo4j: Neo4jUnderTest,
    storage: Path,
    s3_bucket: S3Bucket,
    tmp_path: Path,
) -> None:
    """N processes `cache()` the same S3 artifact (registered in place) at the same moment,
    several rounds, each round a fresh download: a watcher reading the cached name all the
    while only ever sees the whole file with the right hash, and no temporary file is left."""
    ln.settings.storage_options = s3_bucket.storage_options
    body = os.urandom(2 * 1024**2 + 13)
    md5 = hashlib.md5(body).hexdigest()
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="data/x.bin", Body=body)
    uri = f"{s3_bucket.uri}/data/x.bin"
    artifact = ln.Artifact(uri, key="data/x.bin").save()
    assert artifact.storage_path == uri  # registered in place
    target = loaders.cache_path(uri, ln.settings.cache_dir)

    seen: list[tuple[int, bool]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                data = target.read_bytes()
                seen.append((len(data), hashlib.md5(data).hexdigest() == md5))
            except FileNotFoundError:
                pass
            # A partial file under the final name would stay there for a whole download (many
            # milliseconds); sampling every millisecond catches it without starving the moto
            # server, whose threads share this process.
            time.sleep(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        workers.run("cache", worker_env(neo4j), uid=artifact.uid, md5=md5, rounds=3)
    finally:
        done.set()
        watcher.join()
    assert seen, "the watcher never saw the cached file"
    assert set(seen) == {(len(body), True)}
    cache_dir = ln.settings.cache_dir
    assert [p.name for p in cache_dir.rglob("*") if p.name.endswith((".part", ".tmp"))] == []
    assert artifact.cache().read_bytes() == body


def test_the_lost_race_replayed_in_one_process(storage: Path, tmp_path: Path) -> None:
    """The interleaving the process tests provoke, made deterministic: two records with the
    same content are both constructed (each finds nothing stored), then both saved. The second
    save finds the first inside its transaction and becomes it — for a single save, a bulk
    `ln.save`, a collection and a new version within a family — leaving no copy behind."""
    src = tmp_path / "src-replay"
    src.mkdir()
    paths = []
    for name in ("a.txt", "b.txt", "c.txt"):
        paths.append(src / name)
        paths[-1].write_text("one content\n")
    first, second = ln.Artifact(paths[0], key="x/a.txt"), ln.Artifact(paths[1], key="x/b.txt")
    first.save()
    assert second.save().uid == first.uid
    assert second.key == "x/a.txt" and second.storage_path == first.storage_path
    (bulk,) = ln.save([ln.Artifact(paths[2], key="x/c.txt")])  # constructor finds it: no race
    assert bulk.uid == first.uid
    other = src / "other.txt"
    other.write_text("other content\n")
    late, early = ln.Artifact(other, key="x/late.txt"), ln.Artifact(other, key="x/early.txt")
    early.save()
    (late_saved,) = ln.save([late])  # the bulk path loses the race
    assert late_saved.uid == early.uid
    assert count_with_hash("Artifact", first.hash) == count_with_hash("Artifact", early.hash) == 1
    assert managed_files(storage) == sorted(Path(a.storage_path).name for a in (first, early))

    c1, c2 = ln.Collection([first, early], key="pair"), ln.Collection([first, early], key="pair")
    c1.save()
    assert c2.save().uid == c1.uid
    assert count_with_hash("Collection", c1.hash) == 1

    # Within a family: two workers make the same new version of `c1` at once.
    third = make_artifact(storage, "third.txt")
    v1 = ln.Collection([first, early, third], key="pair", revises=c1)
    v2 = ln.Collection([first, early, third], key="pair", revises=c1)
    v1.save()
    assert v2.save().uid == v1.uid
    assert [c.uid for c in c1.versions] == [c1.uid, v1.uid]
    assert ln.Collection.get(key="pair", is_latest=True).uid == v1.uid
