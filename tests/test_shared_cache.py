"""One download cache shared by many processes (docs/architecture.md, "Loaders"): a lock file
per cached object, so processes that miss the same file download it once; stale locks broken;
least-recently-used eviction under `ln.settings.cache_max_bytes` that never removes what a live
process uses; `lineage cache du|ls|clear|evict`.

Several real processes run against the moto S3 server over HTTP; the server's request log
counts the GETs of each object.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pytest

import lineage as ln
import loaders
from lineage.cli import main
from lineage.errors import InvalidArgument, InvalidType
from loaders import _cachelocks
from loaders._cachelocks import EntryLock
from tests.s3 import S3Bucket

ROOT = Path(__file__).resolve().parent.parent

# A child process: sync one URI into a cache, say how long that took, then either exit or keep
# its hold until its stdin closes. `loaders` logs to stderr, so the test sees it wait.
CHILD = r"""
import json, logging, sys, time
from pathlib import Path
import loaders
from loaders import _cachelocks
uri, cache, endpoint, mode = sys.argv[1:5]
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
if mode == "go-file":  # start together: wait for the test's signal
    while not Path(cache + ".go").exists():
        time.sleep(0.01)
if mode == "fast-heartbeat":
    _cachelocks.HEARTBEAT_S = 0.2
    lock = _cachelocks.EntryLock(Path(uri))
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.readline()
    lock.release()
    sys.exit(0)
print("started", flush=True)
t0 = time.monotonic()
paths = loaders.sync([uri], cache, {"endpoint_url": endpoint}, progress=False)
print(json.dumps({"path": str(paths[0]), "seconds": time.monotonic() - t0}), flush=True)
if mode == "hold":
    sys.stdin.readline()
"""


def child(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT,
    )  # fmt: skip


def read_line(stream: Any) -> str:
    """The next line a child writes (its pipes are line-buffered text)."""
    line = stream.readline()
    assert line, "the child ended without a word"
    return line.strip()


def result_of(proc: subprocess.Popen) -> dict[str, Any]:
    """What a syncing child printed last: the path it got and how long that took."""
    line = read_line(proc.stdout)
    while line == "started":
        line = read_line(proc.stdout)
    return json.loads(line)


def wait_for_line(stream: Any, needle: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError(f"the child ended without saying {needle!r}")
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} within {timeout} s")


@pytest.fixture
def requests(s3_server: str) -> Iterator[list[str]]:
    """Every request line the moto server logs during the test ("GET /bucket/key HTTP/1.1")."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    log = logging.getLogger("werkzeug")
    handler, level = Collect(), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def gets(lines: list[str], bucket: S3Bucket, key: str) -> int:
    return sum(f'"GET /{bucket.name}/{key} ' in line for line in lines)


def put(bucket: S3Bucket, key: str, body: bytes) -> str:
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)
    return f"{bucket.uri}/{key}"


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def write_lock(target: Path, host: str, pid: int, age: float = 0.0) -> Path:
    path = target.with_name(f".{target.name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "theirs", "time": 0}))
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def used_at(entry_path: Path, when: float) -> None:
    """Set when a cached file was last used (its sidecar's mtime)."""
    sidecar = entry_path.with_name(f".{entry_path.name}.sync.json")
    os.utime(sidecar, (when, when))


# -- one download ----------------------------------------------------------------------------------
def test_processes_that_miss_the_same_file_download_it_once(
    s3_bucket: S3Bucket, tmp_path: Path, requests: list[str]
) -> None:
    """While one process downloads (here: this one holds the object's lock), three others that
    miss the same file wait; when the lock goes, one downloads and the rest find it fresh."""
    body = os.urandom(2 * 1024**2 + 5)
    uri = put(s3_bucket, "shared/x.bin", body)
    cache = tmp_path / "cache"
    target = loaders.cache_path(uri, cache)
    lock = EntryLock(target)
    lock.acquire()
    procs = [child(uri, str(cache), s3_bucket.endpoint_url, "once") for _ in range(3)]
    try:
        for proc in procs:
            wait_for_line(proc.stderr, "waiting for process")  # each missed it and waits
        assert gets(requests, s3_bucket, "shared/x.bin") == 0 and not target.exists()
        lock.release()
        results = [result_of(proc) for proc in procs]
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=60)
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert {r["path"] for r in results} == {str(target)}
    assert gets(requests, s3_bucket, "shared/x.bin") == 1
    assert target.read_bytes() == body
    assert not list(cache.rglob("*.lock")) and not list(cache.rglob("*.part"))


def test_processes_started_together_download_once(
    s3_bucket: S3Bucket, tmp_path: Path, requests: list[str]
) -> None:
    body = os.urandom(3 * 1024**2)
    uri = put(s3_bucket, "together/x.bin", body)
    cache = tmp_path / "cache"
    procs = [child(uri, str(cache), s3_bucket.endpoint_url, "go-file") for _ in range(4)]
    try:
        Path(f"{cache}.go").touch()
        results = [result_of(proc) for proc in procs]
    finally:
        for proc in procs:
            proc.stdin.close()
            proc.wait(timeout=60)
    assert [p.returncode for p in procs] == [0] * 4
    assert len({r["path"] for r in results}) == 1
    assert Path(results[0]["path"]).read_bytes() == body
    assert gets(requests, s3_bucket, "together/x.bin") == 1


def test_a_folder_synced_at_once_by_several_is_downloaded_once(
    s3_bucket: S3Bucket, tmp_path: Path, requests: list[str]
) -> None:
    """A folder is one cached object under one lock: threads (as processes would) syncing the
    same prefix together fetch each of its files once."""
    keys = [f"folder/store.zarr/{rel}" for rel in (".zgroup", "X/0", "X/1", "obs/c/0")]
    for key in keys:
        put(s3_bucket, key, os.urandom(300_000))
    cache = tmp_path / "cache"
    barrier = threading.Barrier(3)
    results: list[Path] = []

    def sync() -> None:
        barrier.wait()
        results.append(loaders.sync_dir(f"{s3_bucket.uri}/folder/store.zarr", cache,
                                        s3_bucket.storage_options))  # fmt: skip

    threads = [threading.Thread(target=sync) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 3 and len(set(results)) == 1
    assert [gets(requests, s3_bucket, key) for key in keys] == [1, 1, 1, 1]
    [entry] = loaders.entries(cache)
    assert (entry.is_folder, entry.n_files, entry.size, entry.held) == (True, 4, 1_200_000, True)


# -- stale locks -----------------------------------------------------------------------------------
def test_lock_of_a_dead_process_is_broken_at_once(
    s3_bucket: S3Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    uri = put(s3_bucket, "dead/x.bin", b"payload")
    cache = tmp_path / "cache"
    target = loaders.cache_path(uri, cache)
    lock_file = write_lock(target, socket.gethostname(), dead_pid())
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="loaders"):
        assert loaders.sync([uri], cache, s3_bucket.storage_options) == [target]
    assert time.monotonic() - started < _cachelocks.STALE_S / 2  # not waited out
    assert target.read_bytes() == b"payload" and not lock_file.exists()
    assert "broke the stale lock" in caplog.text


def test_lock_of_another_host_is_broken_only_once_untouched_for_a_while(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "bucket" / "x.bin"
    lock_file = write_lock(target, "another-host", 1)  # pid 1 lives here: never trusted
    mine = EntryLock(target, stale_s=5.0)
    assert not mine.acquire(blocking=False)  # touched just now: its owner is alive
    assert mine.path.exists() and EntryLock(target).held_by_other()
    then = time.time() - 6.0
    os.utime(lock_file, (then, then))  # its owner stopped touching it
    assert mine.acquire(blocking=False)
    assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    mine.release()
    assert not lock_file.exists()


def test_a_live_holder_keeps_its_lock_fresh(tmp_path: Path) -> None:
    """The heartbeat touches a held lock, so a holder busy for longer than the stale time is
    not broken; the lock goes when it is released."""
    target = tmp_path / "cache" / "bucket" / "big.bin"
    proc = child(str(target), str(tmp_path / "cache"), "-", "fast-heartbeat")
    try:
        assert read_line(proc.stdout) == "locked"
        lock_file = target.with_name(f".{target.name}.lock")
        first = lock_file.stat().st_mtime
        deadline = time.monotonic() + 30
        while lock_file.stat().st_mtime == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock_file.stat().st_mtime > first  # touched by the holder's heartbeat
        time.sleep(1.0)
        assert not EntryLock(target, stale_s=1.0).acquire(blocking=False)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0 and not lock_file.exists()


# -- eviction --------------------------------------------------------------------------------------
def test_lru_eviction_skips_what_other_processes_use_until_they_end(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    options = s3_bucket.storage_options
    uris = [put(s3_bucket, f"lru/{i}.bin", bytes([i]) * 1000) for i in range(5)]
    paths = [loaders.cache_path(u, cache) for u in uris]
    holder = child(uris[0], str(cache), s3_bucket.endpoint_url, "hold")
    try:
        assert result_of(holder)["path"] == str(paths[0])
        for uri in uris[1:]:
            loaders.release(loaders.sync([uri], cache, options), cache)
        for i, path in enumerate(paths):
            used_at(path, 1_000_000 + i)  # o0 least recently used, o4 most
        downloading = EntryLock(paths[4])
        downloading.acquire()  # as if a process were fetching o4 again
        listed = loaders.entries(cache)
        assert [e.name for e in listed] == [f"{s3_bucket.name}/lru/{i}.bin" for i in range(5)]
        assert [(e.held, e.locked) for e in listed] == [(True, False)] + [(False, False)] * 3 + [
            (False, True)
        ]
        removed = loaders.evict(cache, 2500)
        downloading.release()
        assert [e.path for e in removed] == paths[1:4]  # o0 in use, o4 being downloaded
        assert [p.exists() for p in paths] == [True, False, False, False, True]
        assert loaders.usage(cache) == loaders.CacheUsage(2, 2000, 1, 1000)
    finally:
        holder.send_signal(signal.SIGKILL)  # no clean-up: its readers record stays behind
        holder.wait(timeout=60)
    assert list((cache / ".readers").iterdir())
    removed = loaders.evict(cache, 0)  # the holder is gone (its pid with it): o0 may go
    assert sorted(e.path for e in removed) == [paths[0], paths[4]]
    assert loaders.entries(cache) == [] and not list((cache / ".readers").iterdir())
    assert not (cache / s3_bucket.name).exists()  # emptied directories go too


def test_own_holds_and_folders(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    """What `sync`/`sync_dir` return stays held by this process until released; a folder is one
    object (size and files summed), evicted whole with its sidecars."""
    cache = tmp_path / "cache"
    options = s3_bucket.storage_options
    uri = put(s3_bucket, "own/a.bin", b"a" * 100)
    for rel in ("x/0", "x/1", ".zgroup"):
        put(s3_bucket, f"own/store.zarr/{rel}", b"z" * 10)
    [path] = loaders.sync([uri], cache, options)
    folder = loaders.sync_dir(f"{s3_bucket.uri}/own/store.zarr", cache, options)
    listed = {e.name: e for e in loaders.entries(cache)}
    store = listed[f"{s3_bucket.name}/own/store.zarr"]
    assert (store.is_folder, store.size, store.n_files, store.held) == (True, 30, 3, True)
    assert loaders.clear(cache) == [] and path.exists() and folder.exists()
    loaders.sync([uri], cache, options)  # a second hold on a.bin
    loaders.release([path, folder], cache)
    assert [e.name for e in loaders.clear(cache)] == [store.name]  # a.bin: one hold left
    assert not folder.exists() and not folder.with_name(".store.zarr.sync").exists()
    loaders.release([path], cache)
    assert [e.path for e in loaders.clear(cache)] == [path]
    assert not (cache / ".readers").exists() or not list((cache / ".readers").iterdir())


def test_readers_journal_appends_and_compacts(tmp_path: Path) -> None:
    """A process's journal of what it holds: one line per first hold and per last release, an
    unfinished line (an append in progress) not a hold yet, rewritten when mostly history."""
    readers = _cachelocks.Readers(tmp_path)
    readers.hold(["b/1", "b/2", "b/1"])
    readers.hold(["b/1"])
    assert _cachelocks.held_entries(tmp_path) == {"b/1", "b/2"}
    readers.release(["b/1", "b/1"])
    assert _cachelocks.held_entries(tmp_path) == {"b/1", "b/2"}  # three holds, two released
    readers.release(["b/1", "never/held"])
    assert _cachelocks.held_entries(tmp_path) == {"b/2"}
    for i in range(300):
        readers.hold([f"n/{i}"])
        readers.release([f"n/{i}"])
    assert len(readers.path.read_text().splitlines()) <= 1 + 2 + 64 + 1  # header + bounded
    with open(readers.path, "a") as journal:
        journal.write('+"b/3')  # half an append
    assert _cachelocks.held_entries(tmp_path) == {"b/2"}
    readers.release(["b/2"])
    assert not readers.path.exists()


def test_parse_size_and_bad_limits() -> None:
    assert loaders.parse_size("2kB") == 2000 and loaders.parse_size("2KiB") == 2048
    assert loaders.parse_size(" 3 gb ") == 3 * 10**9 and loaders.parse_size("10B") == 10
    for bad in ("", "lots", "5 XB", "-1", "1iB", -3):
        with pytest.raises(ValueError, match="size"):
            loaders.parse_size(bad)
    with pytest.raises(ValueError, match="max_bytes"):
        loaders.evict("nowhere", -1)


# -- through lineage -------------------------------------------------------------------------------
def s3_text(tmp_path: Path, name: str, size: int) -> ln.Artifact:
    src = tmp_path / "src" / name
    src.parent.mkdir(exist_ok=True)
    src.write_text(name[0] * size)
    return ln.Artifact(src, key=name).save()


def cached_names() -> list[str]:
    return [Path(e.name).name for e in loaders.entries(ln.settings.cache_dir)]


def test_cache_max_bytes_trims_the_cache_but_never_what_this_process_uses(
    storage: Path, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    ln.settings.storage = f"{s3_bucket.uri}/limit"
    ln.settings.storage_options = s3_bucket.storage_options
    texts = [s3_text(tmp_path, f"{c}.txt", 1000) for c in "abc"]
    ln.settings.cache_max_bytes = 2500
    for artifact in texts:  # load() holds its copy only while it reads it
        assert artifact.load() == artifact.key[0] * 1000
    # The third download pushed the cache to 3000 bytes: the least recently used went.
    assert sorted(cached_names()) == sorted(f"{a.uid}.txt" for a in texts[1:])

    # mapped() holds its copies until close(); cache() until the process ends.
    cells = []
    for i in range(2):
        adata = ad.AnnData(X=np.full((3, 2), i, dtype=np.float32))
        cells.append(ln.Artifact.from_anndata(adata, key=f"cells{i}.h5ad").save())
    dataset = ln.Collection(cells, key="cells").save().mapped()
    kept = texts[0].cache()
    ln.settings.cache_max_bytes = 0
    texts[1].load()
    in_use = {Path(e.name).name for e in loaders.entries(ln.settings.cache_dir) if e.held}
    assert in_use == {kept.name} | {f"{c.uid}.h5ad" for c in cells}
    assert dataset[[0, 5]]["X"].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    dataset.close()
    loaders.evict(ln.settings.cache_dir, 0)
    assert cached_names() == [kept.name]


def test_cache_max_bytes_setting(storage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ln.settings.cache_max_bytes is None
    monkeypatch.setenv("LINEAGE_CACHE_MAX_BYTES", "2GiB")
    assert ln.settings.cache_max_bytes == 2 * 1024**3
    ln.settings.cache_max_bytes = "500MB"
    assert ln.settings.cache_max_bytes == 500 * 10**6  # the setting wins over the environment
    ln.settings.cache_max_bytes = None
    assert ln.settings.cache_max_bytes == 2 * 1024**3
    with pytest.raises(InvalidArgument, match="not a size"):
        ln.settings.cache_max_bytes = "plenty"
    with pytest.raises(InvalidArgument, match="0 or more"):
        ln.settings.cache_max_bytes = -1
    with pytest.raises(InvalidType, match="cache_max_bytes"):
        ln.settings.cache_max_bytes = 1.5  # type: ignore[assignment]
    monkeypatch.setenv("LINEAGE_CACHE_MAX_BYTES", "huge")
    with pytest.raises(InvalidArgument, match="LINEAGE_CACHE_MAX_BYTES"):
        _ = ln.settings.cache_max_bytes


# -- CLI -------------------------------------------------------------------------------------------
def test_cli_cache_du_ls_evict_clear(
    s3_bucket: S3Bucket, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cache = tmp_path / "cache"
    options = s3_bucket.storage_options
    paths = []
    for i in range(3):
        [path] = loaders.sync([put(s3_bucket, f"cli/{i}.bin", b"x" * 1000)], cache, options)
        used_at(path, 1_000_000 + i)
        paths.append(path)
    loaders.release(paths[1:], cache)  # 0.bin stays in use by this process
    where = ["--cache-dir", str(cache)]

    assert main(["cache", "du", *where]) == 0
    assert "3 cached objects, 3.0 kB; in use by running processes: 1 (1.0 kB)" in (
        capsys.readouterr().out
    )
    assert main(["cache", "du", *where, "--json"]) == 0
    du = json.loads(capsys.readouterr().out)
    assert (du["entries"], du["bytes"], du["held_entries"], du["max_bytes"]) == (3, 3000, 1, None)
    assert main(["cache", "ls", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == [
        f"{s3_bucket.name}/cli/{i}.bin" for i in range(3)
    ]
    assert "in use" in lines[0] and "in use" not in lines[1]
    assert main(["cache", "ls", *where, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["size"], e["held"]) for e in listed] == [(1000, True), (1000, False), (1000, False)]

    monkeypatch.delenv("LINEAGE_CACHE_MAX_BYTES", raising=False)
    assert main(["cache", "evict", *where]) == 1
    assert "needs a limit" in capsys.readouterr().err
    assert main(["cache", "evict", *where, "--max-bytes", "lots"]) == 1
    assert "--max-bytes" in capsys.readouterr().err
    assert main(["cache", "evict", *where, "--max-bytes", "2kB"]) == 0
    assert "removed 1 cached objects (1.0 kB); 2 left" in capsys.readouterr().out
    assert [p.exists() for p in paths] == [True, False, True]  # 0.bin in use, 1.bin the LRU
    monkeypatch.setenv("LINEAGE_CACHE_MAX_BYTES", "0")
    assert main(["cache", "evict", *where]) == 0
    assert [p.exists() for p in paths] == [True, False, False]
    capsys.readouterr()
    loaders.release(paths[:1], cache)
    assert main(["cache", "clear", *where]) == 0
    assert "removed 1 cached objects (1.0 kB); 0 left" in capsys.readouterr().out
    assert main(["cache", "ls", *where]) == 0
    assert capsys.readouterr().out.strip() == "(nothing cached)"
