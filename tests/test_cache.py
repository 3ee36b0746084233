"""Caching artifacts and collections (docs/architecture.md, "Loaders"): local files are used in place, S3 objects
(a moto server over HTTP) are synced into `<cache_dir>/<bucket>/<key>`, and only outdated copies
are fetched again. Downloads are counted with a spy around the real download function.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
import loaders
import loaders.cache
from tests.conftest import make_artifact
from tests.s3 import S3Bucket

PREFIX = "prefix"


@pytest.fixture
def s3_storage(storage: Path, s3_bucket: S3Bucket) -> S3Bucket:
    """The storage fixture's clean graph, with `ln.settings.storage` on the test bucket."""
    ln.settings.storage = f"{s3_bucket.uri}/{PREFIX}"
    ln.settings.storage_options = s3_bucket.storage_options
    return s3_bucket


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URIs downloaded during the test, in order (the real download still runs)."""
    seen: list[str] = []
    real = loaders.cache._download

    def counting(fs: Any, remote: Any, target: Path) -> None:
        seen.append(remote.uri)
        real(fs, remote, target)

    monkeypatch.setattr(loaders.cache, "_download", counting)
    return seen


def s3_artifact(tmp_path: Path, name: str, content: bytes, **kwargs: Any) -> ln.Artifact:
    src = tmp_path / "src" / name
    src.parent.mkdir(exist_ok=True)
    src.write_bytes(content)
    return ln.Artifact(src, key=name, **kwargs).save()


def object_key(artifact: ln.Artifact) -> str:
    return artifact.storage_path.split("/", 3)[3]


def put(bucket: S3Bucket, key: str, body: bytes) -> None:
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)


def stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith((".part", ".tmp")))


# -- local files ---------------------------------------------------------------------------------
def test_local_artifact_caches_to_its_own_path(storage: Path) -> None:
    artifact = make_artifact(storage, "a.txt")
    path = artifact.cache()
    assert path == Path(artifact.storage_path)
    assert path.read_text() == "content of a.txt\n"
    assert not any(ln.settings.cache_dir.rglob("*.txt"))  # nothing copied


def test_local_collection_caches_in_member_order(storage: Path) -> None:
    a, b, c = (make_artifact(storage, f"{n}.txt") for n in "abc")
    collection = ln.Collection([c, a, b], key="three").save()
    assert collection.cache() == [Path(x.storage_path) for x in (c, a, b)]


def test_sync_local_paths_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a\n1\n")
    assert loaders.sync([str(path), f"file://{path}"], tmp_path / "cache") == [path, path]
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        loaders.sync([str(tmp_path / "nope.csv")], tmp_path / "cache")


def test_cache_path_layout_and_escapes() -> None:
    assert loaders.cache_path("s3://b/dir/x.h5ad", "/c") == Path("/c/b/dir/x.h5ad")
    for bad in ("s3://b/../x", "s3://b/a/./x", "s3://b/", "s3:///x"):
        with pytest.raises(ValueError, match="cannot cache"):
            loaders.cache_path(bad, "/c")


# -- S3 ------------------------------------------------------------------------------------------
def test_s3_artifact_is_downloaded_into_bucket_key_layout(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str]
) -> None:
    artifact = s3_artifact(tmp_path, "counts.csv", b"gene,count\nA,1\n")
    path = artifact.cache()
    managed = ln.settings.cache_dir / s3_storage.name / PREFIX / ".lineage"
    assert path == managed / f"{artifact.uid}.csv"
    assert path.read_bytes() == b"gene,count\nA,1\n"
    assert downloads == [artifact.storage_path]
    assert artifact.cache() == path
    assert downloads == [artifact.storage_path]  # fresh: not fetched again
    assert leftovers(ln.settings.cache_dir) == []


def test_collection_cache_fetches_only_outdated(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3_storage
    arts = [s3_artifact(tmp_path, f"{i}.txt", f"file {i}\n".encode()) for i in range(3)]
    collection = ln.Collection(arts, key="three").save()
    paths = collection.cache()
    assert [p.read_text() for p in paths] == ["file 0\n", "file 1\n", "file 2\n"]
    assert sorted(downloads) == sorted(a.storage_path for a in arts)
    before = [stamp(p) for p in paths]

    downloads.clear()
    assert collection.cache() == paths
    assert downloads == []
    assert [stamp(p) for p in paths] == before

    # Same size, new content: the ETag (hash) differs.
    put(bucket, object_key(arts[1]), b"FILE 1\n")
    # Same bytes written again: only the remote mtime is newer.
    time.sleep(1.1)  # S3 LastModified has a resolution of seconds
    put(bucket, object_key(arts[2]), b"file 2\n")
    downloads.clear()
    assert collection.cache() == paths
    assert downloads == [arts[1].storage_path, arts[2].storage_path]
    assert paths[1].read_text() == "FILE 1\n"
    warned = [r.getMessage() for r in caplog.records if "since it was registered" in r.getMessage()]
    assert warned == [
        f"{arts[1].storage_path} changed since it was registered; caching its current bytes"
    ]
    assert stamp(paths[0]) == before[0]

    # Another size.
    put(bucket, object_key(arts[0]), b"a longer file 0\n")
    downloads.clear()
    collection.cache()
    assert downloads == [arts[0].storage_path]
    assert paths[0].read_text() == "a longer file 0\n"


def test_deleted_cached_copy_is_fetched_again(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str]
) -> None:
    artifact = s3_artifact(tmp_path, "x.txt", b"hello\n")
    path = artifact.cache()
    path.unlink()
    assert artifact.cache().read_bytes() == b"hello\n"
    assert len(downloads) == 2


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["touched", "mtime-restored"])
def test_corrupted_cached_copy_is_fetched_again(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str], keep_mtime: bool
) -> None:
    artifact = s3_artifact(tmp_path, "x.txt", b"good content\n")
    path = artifact.cache()
    st = path.stat()
    with open(path, "r+b") as fp:  # in place: same inode, same size
        fp.write(b"BAD!")
    if keep_mtime:
        # Only the ctime (which no user call can set) still tells that the file changed.
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    assert artifact.cache() == path
    assert path.read_bytes() == b"good content\n"
    assert len(downloads) == 2


def test_touched_but_intact_copy_is_verified_not_fetched(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str]
) -> None:
    artifact = s3_artifact(tmp_path, "x.txt", b"intact\n")
    path = artifact.cache()
    os.utime(path)  # a new mtime, same bytes: the hash clears it
    artifact.cache()
    assert len(downloads) == 1
    assert path.read_bytes() == b"intact\n"


def test_copy_without_sidecar_follows_lamindb_rule_plus_hash(
    s3_storage: S3Bucket, tmp_path: Path, downloads: list[str]
) -> None:
    """A cache written by lamindb (no sidecar): kept when size, mtime and hash agree."""
    artifact = s3_artifact(tmp_path, "x.txt", b"from lamindb\n")
    path = artifact.cache()
    sidecar = path.with_name(f".{path.name}.sync.json")
    assert sidecar.exists()
    sidecar.unlink()
    artifact.cache()
    assert len(downloads) == 1
    assert sidecar.exists()  # rewritten, so the next check is a stat

    sidecar.unlink()
    path.write_bytes(b"FROM LAMINDB\n")  # same size, newer mtime, wrong bytes
    artifact.cache()
    assert len(downloads) == 2
    assert path.read_bytes() == b"from lamindb\n"


def test_missing_object_raises_and_leaves_nothing(s3_storage: S3Bucket, tmp_path: Path) -> None:
    artifact = s3_artifact(tmp_path, "x.txt", b"x\n")
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=object_key(artifact))
    with pytest.raises(FileNotFoundError, match=artifact.uid):
        artifact.cache()
    assert not any(p.is_file() for p in ln.settings.cache_dir.rglob("*"))


# -- progress ------------------------------------------------------------------------------------
def test_progress_bar_quiet_without_tty_and_shown_when_asked(
    s3_bucket: S3Bucket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uris = []
    for i in range(3):
        put(s3_bucket, f"d/{i}.bin", bytes(1000 + i))
        uris.append(f"{s3_bucket.uri}/d/{i}.bin")
    options = s3_bucket.storage_options
    loaders.sync(uris, tmp_path / "c1", options)  # stderr is captured: not a TTY
    assert capsys.readouterr().err == ""
    loaders.sync(uris, tmp_path / "c2", options, progress=False)
    assert capsys.readouterr().err == ""
    loaders.sync(uris, tmp_path / "c3", options, progress=True)
    err = capsys.readouterr().err
    assert "caching 3 file(s)" in err and "100%" in err


def test_sync_keeps_input_order_and_duplicates(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    put(s3_bucket, "a.txt", b"a")
    put(s3_bucket, "b.txt", b"b")
    local = tmp_path / "l.txt"
    local.write_text("l")
    a, b = f"{s3_bucket.uri}/a.txt", f"{s3_bucket.uri}/b.txt"
    paths = loaders.sync([b, str(local), a, b], tmp_path / "c", s3_bucket.storage_options)
    assert [p.read_text() for p in paths] == ["b", "l", "a", "b"]
    assert paths[0] == paths[3] == tmp_path / "c" / s3_bucket.name / "b.txt"


# -- concurrency ---------------------------------------------------------------------------------
ROUNDS = 3
SIZE = 3 * 1024**2 + 17


def _cache_rounds(uri: str, cache_dir: str, endpoint: str, barrier: Any, leader: bool) -> None:
    """One party: every round all parties sync the same missing file at once."""
    target = loaders.cache_path(uri, cache_dir)
    for _ in range(ROUNDS):
        barrier.wait()
        loaders.sync([uri], cache_dir, {"endpoint_url": endpoint}, progress=False)
        barrier.wait()
        if leader:  # make the next round download again
            target.unlink()
            target.with_name(f".{target.name}.sync.json").unlink(missing_ok=True)
        barrier.wait()


def test_concurrent_cache_never_shows_a_partial_file(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    body = os.urandom(SIZE)
    put(s3_bucket, "big/x.bin", body)
    uri = f"{s3_bucket.uri}/big/x.bin"
    cache_dir = tmp_path / "cache"
    target = loaders.cache_path(uri, cache_dir)
    ctx = multiprocessing.get_context("spawn")
    n_procs, n_threads = 2, 2
    barrier = ctx.Barrier(n_procs + n_threads, timeout=120)
    procs = [
        ctx.Process(
            target=_cache_rounds,
            args=(uri, str(cache_dir), s3_bucket.endpoint_url, barrier, False),
        )
        for _ in range(n_procs)
    ]
    errors: list[BaseException] = []

    def party(leader: bool) -> None:
        try:
            _cache_rounds(uri, str(cache_dir), s3_bucket.endpoint_url, barrier, leader)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=party, args=(i == 0,)) for i in range(n_threads)]
    seen_sizes: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                with open(target, "rb") as fp:  # whatever the name holds must be complete
                    seen_sizes.append(len(fp.read()))
            except FileNotFoundError:
                pass

    watcher = threading.Thread(target=watch)
    for p in procs:
        p.start()
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    for p in procs:
        p.join(timeout=60)
    done.set()
    watcher.join()
    assert errors == []
    assert [p.exitcode for p in procs] == [0] * n_procs
    assert seen_sizes, "the watcher never saw the file"
    assert set(seen_sizes) == {SIZE}
    assert leftovers(cache_dir) == []
    loaders.sync([uri], cache_dir, s3_bucket.storage_options)
    assert target.read_bytes() == body


# -- run inputs ----------------------------------------------------------------------------------
def test_tracked_run_uses_the_collection_not_its_members(storage: Path) -> None:
    a, b = make_artifact(storage, "a.txt"), make_artifact(storage, "b.txt")
    collection = ln.Collection([a, b], key="pair").save()
    run = ln.track("cache-inputs")
    collection.cache()
    assert [c.uid for c in run.input_collections] == [collection.uid]
    assert run.input_artifacts.count() == 0
    a.cache()
    assert [x.uid for x in run.input_artifacts] == [a.uid]
    collection.cache()  # a second read adds no second edge
    assert run.input_collections.count() == 1
    ln.finish()


def test_is_run_input_flags(storage: Path) -> None:
    a = make_artifact(storage, "a.txt")
    collection = ln.Collection([a], key="one").save()
    collection.cache()  # no run tracked, None: nothing to record, no error
    run = ln.track("flags")
    collection.cache(is_run_input=False)
    a.cache(is_run_input=False)
    assert run.input_collections.count() == 0 and run.input_artifacts.count() == 0
    collection.cache(is_run_input=True)
    assert run.input_collections.count() == 1
    ln.finish()


def test_own_output_is_not_an_input(storage: Path) -> None:
    run = ln.track("makes-and-reads")
    a = make_artifact(storage, "a.txt")
    collection = ln.Collection([a], key="mine").save()
    collection.cache()
    a.cache(is_run_input=True)
    assert run.input_collections.count() == 0 and run.input_artifacts.count() == 0
    ln.finish()


def test_failed_cache_tracks_nothing(s3_storage: S3Bucket, tmp_path: Path) -> None:
    arts = [s3_artifact(tmp_path, f"{i}.txt", f"{i}\n".encode()) for i in range(2)]
    collection = ln.Collection(arts, key="broken").save()
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=object_key(arts[1]))
    run = ln.track("fails")
    with pytest.raises(FileNotFoundError):
        collection.cache()
    with pytest.raises(FileNotFoundError):
        arts[1].cache()
    assert run.input_collections.count() == 0 and run.input_artifacts.count() == 0
    ln.finish()
