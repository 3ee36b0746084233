"""Sync files into a local cache: local paths are used where they are, `s3://` objects are
downloaded to `<cache_dir>/<bucket>/<key>` (lamindb's layout) when the cached copy is outdated.

Freshness. Each downloaded copy gets a sidecar, `.<name>.sync.json` beside it, recording the
remote object it was made from (size, ETag hash, last-modified) and the cached file's own stat
(size, mtime_ns, ctime_ns, inode) right after the download. A cached copy is fresh when

- the remote's size, hash and mtime equal the sidecar's (so the remote did not change), and
- the cached file's stat equals the sidecar's (so nobody touched the copy).

That costs one HEAD request and one `stat` per file: nothing is read. When the stat differs
(the copy was edited, copied, touched, or written by another process meanwhile), the copy is
verified by its content hash and kept only if it matches; the ctime is part of the stat because
no user call can set it, so even an in-place edit that restores the mtime is caught. Without a
sidecar (a cache written by lamindb or an older version), lamindb's rule applies — same size and a
local mtime no older than the remote's — plus the content hash where one can be checked.

Writes go to a hidden temporary name in the same directory and are renamed into place
(`os.replace`), so threads or processes caching the same file never expose a partial file under
the final name.

Sharing. Many processes (and hosts, on a shared filesystem) may use one cache directory. Each
cached object (a file, or a folder cached as one) has a lock file beside it
(`loaders._cachelocks.EntryLock`): its freshness is checked, and it is downloaded or evicted,
only under that lock, so two processes that miss the same object download it once: the second
waits for the first, then finds the copy fresh. Each process records the objects it uses
(`<cache>/.readers/`): every object `sync`/`sync_dir` returns stays held until `release()` or
the process ends. With `max_bytes`, least recently used objects are evicted until the cache fits,
but never one a live process holds or one being downloaded (`evict`; `entries` lists them).

>>> sync(["counts.csv"], "cache")  # a local file is used where it is
[PosixPath('counts.csv')]
>>> cache_path("s3://bucket/dir/x.h5ad", "cache")  # where an s3:// object would be cached
PosixPath('cache/bucket/dir/x.h5ad')
>>> usage("cache")  # what is cached, how much of it is in use
CacheUsage(entries=0, bytes=0, held_entries=0, held_bytes=0)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loaders._cachelocks import READERS_DIR, EntryLock, held_entries, readers_of
from loaders.folders import remote_files
from loaders.hashing import CHUNK_SIZE, hash_file, hash_from_hashes_list, hash_string, to_b64_str
from loaders.storage import _local_path, etag_hash, is_remote, remote_file_info

__all__ = [
    "CacheEntry",
    "CacheUsage",
    "cache_path",
    "clear",
    "entries",
    "evict",
    "parse_size",
    "release",
    "sync",
    "sync_dir",
    "usage",
]

logger = logging.getLogger("loaders")

SIDECAR_VERSION = 1
# Enough parallel downloads to hide S3 latency for many small files without flooding a laptop.
_MAX_WORKERS = 8


@dataclass(frozen=True)
class _Remote:
    """What the store says about one object right now."""

    uri: str
    path: str  # within its filesystem
    size: int
    hash: str | None
    hash_type: str | None
    mtime: float | None  # seconds since the epoch


def cache_path(uri: str, cache_dir: str | os.PathLike[str]) -> Path:
    """Where `uri` is cached: `<cache_dir>/<bucket>/<key>`, as lamindb lays it out.

    >>> cache_path("s3://bucket/dir/x.h5ad", "/tmp/cache").as_posix()
    '/tmp/cache/bucket/dir/x.h5ad'
    """
    parts = urlsplit(str(uri))
    segments = parts.path.lstrip("/").split("/")
    # A key is any string on S3: "..", "." or empty segments would leave the cache or make two
    # keys ("a//b", "a/b") share one local path.
    if not parts.netloc or any(s in ("", ".", "..") for s in segments):
        raise ValueError(
            f"cannot cache {uri!r}: expected s3://<bucket>/<key> without '..', '.' or '//'"
        )
    return Path(cache_dir).expanduser().joinpath(parts.netloc, *segments)


@dataclass(frozen=True)
class _Place:
    """Where one remote object is cached: the copy, its sidecar, and the directory its
    download is written in before the rename (on the copy's filesystem)."""

    path: Path
    sidecar: Path
    tmp_dir: Path

    @classmethod
    def beside(cls, path: Path) -> _Place:
        """A single file's place: the sidecar and the download beside the copy."""
        return cls(path, path.with_name(f".{path.name}.sync.json"), path.parent)


def _stat_of(path: Path) -> dict[str, int]:
    st = path.stat()
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
    }


def _read_sidecar(place: _Place) -> dict[str, Any] | None:
    try:
        data = json.loads(place.sidecar.read_text())
    except (OSError, ValueError):  # missing, or half-written by a crash before our rename
        return None
    return data if isinstance(data, dict) and data.get("version") == SIDECAR_VERSION else None


def _write_sidecar(place: _Place, remote: _Remote) -> None:
    data = {
        "version": SIDECAR_VERSION,
        "uri": remote.uri,
        "remote": {"size": remote.size, "hash": remote.hash, "mtime": remote.mtime},
        "local": _stat_of(place.path),
    }
    target = place.sidecar
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _full_md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(8 * 1024**2), b""):
            md5.update(block)
    return to_b64_str(md5.digest())[:22]


def _content_matches(path: Path, remote: _Remote, expected_hash: str | None) -> bool | None:
    """Whether the cached bytes are the remote's: True/False, or None where no hash can tell.

    A single-part ETag is the md5 of the whole object; a registry hash is lamindb's file hash
    (md5, or sha1 of the first and last 50 MiB). A multipart ETag depends on the unknown part
    size, so it cannot be recomputed here.
    """
    size = path.stat().st_size
    if size != remote.size:
        return False
    if remote.hash is not None and remote.hash_type == "md5":
        return _full_md5(path) == remote.hash
    if expected_hash is not None:
        return hash_file(path, file_size=size)[0] == expected_hash
    return None


def _is_fresh(place: _Place, remote: _Remote, expected_hash: str | None = None) -> bool:
    """Whether the cached copy at `place.path` holds the remote object's current bytes."""
    path = place.path
    if not path.is_file():
        return False
    meta = _read_sidecar(place)
    if meta is not None:
        recorded = meta.get("remote", {})
        if meta.get("uri") != remote.uri or recorded != {
            "size": remote.size,
            "hash": remote.hash,
            "mtime": remote.mtime,
        }:
            return False  # the remote changed (or is another object) since this copy was made
        if meta.get("local") == _stat_of(path):
            return True
        # The copy itself changed since we wrote it: only its content can clear it.
        ok = _content_matches(path, remote, expected_hash)
    else:
        # No sidecar: lamindb's rule (same size, local copy not older), checked by hash if we can.
        st = path.stat()
        if st.st_size != remote.size:
            return False
        if remote.mtime is not None and st.st_mtime < remote.mtime:
            return False
        ok = _content_matches(path, remote, expected_hash)
        if ok is None:
            ok = True  # nothing better than lamindb's rule is available
    if ok:
        _write_sidecar(place, remote)  # next time a stat suffices
    return bool(ok)


def _mtime_of(info: dict[str, Any]) -> float | None:
    value = info.get("LastModified", info.get("mtime", info.get("last_modified")))
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def _stat_remote(uri: str, storage_options: dict[str, Any] | None) -> tuple[Any, _Remote]:
    fs, path, info = remote_file_info(uri, storage_options)
    hash_, hash_type = etag_hash(info)
    return fs, _Remote(uri, path, int(info["size"]), hash_, hash_type, _mtime_of(info))


def _download(fs: Any, remote: _Remote, place: _Place) -> None:
    target = place.path
    target.parent.mkdir(parents=True, exist_ok=True)
    place.tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = place.tmp_dir / f".{target.name}.{secrets.token_hex(6)}.part"
    try:
        fs.get_file(remote.path, str(tmp))
        got = tmp.stat().st_size
        if got != remote.size:
            raise OSError(f"download of {remote.uri} got {got} bytes, expected {remote.size}")
        if remote.mtime is not None:
            # lamindb stamps the copy with the remote's time, so its size+mtime rule holds too.
            os.utime(tmp, (remote.mtime, remote.mtime))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_sidecar(place, remote)


def _show_progress(progress: bool | None, n_downloads: int) -> bool:
    if progress is not None:
        return progress
    stream = sys.stderr
    return n_downloads > 1 and stream is not None and hasattr(stream, "isatty") and stream.isatty()


def sync(
    uris: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    hashes: Sequence[str | None] | None = None,
    sizes: Sequence[int | None] | None = None,
    progress: bool | None = None,
    max_bytes: int | None = None,
) -> list[Path]:
    """Local paths for `uris`, in their order: local files as they are, remote ones synced into
    `cache_dir` (downloaded only where the cached copy is missing or outdated).

    `hashes`/`sizes` are what a registry recorded for each file: used to verify a cached copy's
    content where the ETag cannot, and to warn when a remote object changed since it was
    registered. `progress`: a tqdm bar over the downloads; None shows it for more than one
    download when stderr is a terminal. Every cached copy returned is held by this process (no
    process evicts it) until `release()` or the process ends; with `max_bytes`, the cache is
    trimmed to that size (`evict`) after a download.

    With an s3:// URI (the endpoint and credentials come from `storage_options` or the
    environment), the object is downloaded once, by one process however many miss it at once,
    and then reused while it is fresh::

        sync(["s3://bucket/a.h5ad", "/data/b.h5ad"], "~/.lineage/cache")
        # [PosixPath('/home/me/.lineage/cache/bucket/a.h5ad'), PosixPath('/data/b.h5ad')]

    Local paths come back as they are, in order:

    >>> sync(["sample.h5ad", "counts.csv"], "cache")
    [PosixPath('sample.h5ad'), PosixPath('counts.csv')]
    """
    texts = [os.fspath(u) for u in uris]
    for name, values in (("hashes", hashes), ("sizes", sizes)):
        if values is not None and len(values) != len(texts):
            raise ValueError(f"sync(): {len(values)} {name} for {len(texts)} files")
    out: list[Path | None] = [None] * len(texts)
    remote_at: dict[str, list[int]] = {}  # one download per URI, however often it is listed
    for i, uri in enumerate(texts):
        if is_remote(uri):
            remote_at.setdefault(uri, []).append(i)
            continue
        path = _local_path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {uri}")
        out[i] = path
    if remote_at:
        cache_root = Path(cache_dir).expanduser()
        targets = {uri: _Place.beside(cache_path(uri, cache_root)) for uri in remote_at}
        expected = {
            uri: hashes[at[0]] if hashes is not None else None for uri, at in remote_at.items()
        }

        def check(uri: str) -> tuple[str, Any, _Remote, bool]:
            first = remote_at[uri][0]
            fs, remote = _stat_remote(uri, storage_options)
            expected_size = sizes[first] if sizes is not None else None
            # A registry hashes files up to CHUNK_SIZE with md5, as a single-part ETag does.
            comparable = remote.hash_type == "md5" and remote.size <= CHUNK_SIZE
            if (expected_size is not None and expected_size != remote.size) or (
                expected[uri] is not None and comparable and expected[uri] != remote.hash
            ):
                logger.warning("%s changed since it was registered; caching its current bytes", uri)
            return uri, fs, remote, _is_fresh(targets[uri], remote, expected[uri])

        readers = readers_of(cache_root)
        held = [_rel(cache_root, targets[uri].path) for uri in remote_at]
        readers.hold(held)  # before any check: an evictor that misses this record waits below
        try:
            workers = min(_MAX_WORKERS, len(remote_at))
            with ThreadPoolExecutor(workers) as pool:
                checked = list(pool.map(check, remote_at))
            stale = [(uri, fs, remote) for uri, fs, remote, fresh in checked if not fresh]
            items = [(uri, fs, remote) for uri, fs, remote, _ in checked]
            show = _show_progress(progress, len(stale))
            total = sum(remote.size for _, _, remote in stale)

            downloaded: list[str] = []

            def settle(item: tuple[str, Any, _Remote], bar: Any) -> None:
                # Under the object's lock: another process may have fetched it (or an evictor
                # removed it) since the check above.
                uri, fs, remote = item
                place = targets[uri]
                with EntryLock(place.path):
                    if not _is_fresh(place, remote, expected[uri]):
                        _download(fs, remote, place)
                        downloaded.append(uri)
                        bar.update(remote.size)
                    _touch(place.sidecar)

            _run_all(items, settle, total, len(stale), show, workers)
        except BaseException:
            readers.release(held)
            raise
        for uri, indices in remote_at.items():
            for i in indices:
                out[i] = targets[uri].path
        if max_bytes is not None and downloaded:  # only a download makes the cache grow
            evict(cache_root, max_bytes)
    return [p for p in out if p is not None]


def sync_dir(
    uri: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    expected_hash: str | None = None,
    progress: bool | None = None,
    max_bytes: int | None = None,
) -> Path:
    """A local folder with the files of `uri`: a local folder as it is; an `s3://` prefix synced
    into `<cache_dir>/<bucket>/<key>/`, each file fetched only when missing or outdated (the
    freshness rule and atomic renames of `sync`) and cached files no longer under the prefix
    removed, so the copy holds exactly the folder's files. Their sidecars live beside the copy,
    in `.<name>.sync/`. `expected_hash`: the folder hash a registry recorded, to warn when the
    prefix changed since. The folder is one cached object: synced under one lock, held by this
    process until `release()` or its end, evicted whole; `max_bytes` as for `sync`.

    For a prefix (the endpoint and credentials come from `storage_options` or the
    environment)::

        sync_dir("s3://bucket/data.zarr", "~/.lineage/cache")
        # PosixPath('/home/me/.lineage/cache/bucket/data.zarr')

    >>> Path("data").mkdir()
    >>> sync_dir("data", "cache")
    PosixPath('data')
    """
    text = os.fspath(uri)
    if not is_remote(text):
        local = _local_path(text)
        if not local.is_dir():
            raise FileNotFoundError(f"No such folder: {text}")
        return local
    base = text.rstrip("/")
    fs, files = remote_files(base, storage_options)
    if not files:
        raise FileNotFoundError(f"No such folder (no objects under the prefix): {text}")
    cache_root = Path(cache_dir).expanduser()
    root = cache_path(base, cache_root)
    sidecars = _folder_sidecars(root)
    places: dict[str, _Place] = {}
    remotes: list[_Remote] = []
    for rel, info in files:
        file_uri = f"{base}/{rel}"
        hash_, hash_type = etag_hash(info)
        remotes.append(_Remote(file_uri, info["name"], int(info["size"]), hash_, hash_type,
                               _mtime_of(info)))  # fmt: skip
        # One flat directory of sidecars named by the file's hash: names built from the
        # relative path could collide ("a" + ".json" and a directory "a.json").
        places[file_uri] = _Place(
            cache_path(file_uri, cache_root), sidecars / f"{hash_string(rel)}.json", sidecars
        )
    hashes = [r.hash for r in remotes]
    if (
        expected_hash is not None
        and None not in hashes
        and hash_from_hashes_list(h for h in hashes if h is not None) != expected_hash
    ):
        logger.warning("%s changed since it was registered; caching its current files", text)
    readers = readers_of(cache_root)
    held = [_rel(cache_root, root)]
    readers.hold(held)
    try:
        with EntryLock(root):
            workers = min(_MAX_WORKERS, len(remotes))
            with ThreadPoolExecutor(workers) as pool:
                fresh = list(pool.map(lambda r: _is_fresh(places[r.uri], r), remotes))
            stale = [(r.uri, fs, r) for r, ok in zip(remotes, fresh) if not ok]
            if stale:

                def fetch(item: tuple[str, Any, _Remote], bar: Any) -> None:
                    _download(item[1], item[2], places[item[0]])
                    bar.update(item[2].size)

                total = sum(r.size for _, _, r in stale)
                show = _show_progress(progress, len(stale))
                _run_all(stale, fetch, total, len(stale), show, workers)
            _prune(root, {p.path for p in places.values()})
            _prune(sidecars, {p.sidecar for p in places.values()})
            _touch(sidecars)
    except BaseException:
        readers.release(held)
        raise
    if max_bytes is not None and stale:  # only a download makes the cache grow
        evict(cache_root, max_bytes)
    return root


def _prune(top: Path, keep: set[Path]) -> None:
    """Remove the files under `top` not in `keep`, then the directories left empty (writes in
    flight, `.part` downloads and `.tmp` sidecars, are left to the process renaming them)."""
    for dirpath, dirnames, names in os.walk(top, topdown=False):
        here = Path(dirpath)
        for name in names:
            path = here / name
            if path not in keep and not name.endswith((".part", ".tmp")):
                path.unlink(missing_ok=True)
        for name in dirnames:
            with contextlib.suppress(OSError):  # not empty: it holds kept files
                (here / name).rmdir()


def _run_all(
    items: Sequence[tuple[str, Any, _Remote]],
    job: Any,
    total: int,
    n_downloads: int,
    show: bool,
    workers: int,
) -> None:
    """`job(item, bar)` for every item in a thread pool, with a tqdm bar over `total` bytes;
    every item is finished before the first error is raised."""
    from tqdm.auto import tqdm

    with tqdm(
        total=total, unit="B", unit_scale=True, desc=f"caching {n_downloads} file(s)",
        disable=not show, file=sys.stderr,
    ) as bar, ThreadPoolExecutor(max(1, min(workers, len(items)))) as pool:  # fmt: skip
        futures = [pool.submit(job, item, bar) for item in items]
        errors: list[BaseException] = []
        for future in futures:
            try:
                future.result()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


# -- holds, sizes and eviction -------------------------------------------------------------------


def _rel(root: Path, path: Path) -> str:
    """A cached object's name in the readers records: its path under the cache root."""
    return path.relative_to(root).as_posix()


def _folder_sidecars(root: Path) -> Path:
    """Where a cached folder's sidecars live: `.<name>.sync/` beside it."""
    return root.with_name(f".{root.name}.sync")


def _touch(path: Path) -> None:
    """Mark a cached object used now (its sidecar's mtime is its last use)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def release(paths: Sequence[str | os.PathLike[str]], cache_dir: str | os.PathLike[str]) -> None:
    """Give up this process's hold on cached copies that `sync`/`sync_dir` returned (paths
    outside `cache_dir`, local files used in place, are ignored); an object no process holds may
    be evicted.

    >>> release(sync(["counts.csv"], "cache"), "cache")  # a local file: nothing was held
    """
    root = Path(cache_dir).expanduser()
    rels = []
    for path in map(Path, paths):
        with contextlib.suppress(ValueError):  # not under the cache: not held
            rels.append(_rel(root.absolute(), path.absolute()))
    if rels:
        readers_of(root).release(rels)


@dataclass(frozen=True)
class CacheEntry:
    """One cached object: a file, or a folder cached as one (`n_files` files). `last_used`: when
    a process last synced it (seconds since the epoch); `held`: a live process uses it;
    `locked`: a process is downloading, checking or evicting it right now."""

    path: Path
    name: str  # its path under the cache root ("<bucket>/<key>")
    is_folder: bool
    size: int
    n_files: int
    last_used: float
    held: bool
    locked: bool


@dataclass(frozen=True)
class CacheUsage:
    """What a cache holds: how many objects and bytes, and how many of them live processes
    hold (those are never evicted)."""

    entries: int
    bytes: int
    held_entries: int
    held_bytes: int


def _folder_size(root: Path) -> tuple[int, int]:
    size = n = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                size += (Path(dirpath) / name).stat().st_size
                n += 1
    return size, n


def _found(root: Path) -> Iterator[tuple[Path, Path, bool]]:
    """(object, sidecar, is_folder) of every object `sync`/`sync_dir` cached under `root`:
    files with a `.<name>.sync.json` beside them, folders with a `.<name>.sync/` directory.
    Anything else (staged files, copies another tool made) is not the cache's to count or
    evict."""
    pending = [root]
    while pending:
        here = pending.pop()
        try:
            names = set(os.listdir(here))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in sorted(names):
            path = here / name
            if here == root and name == READERS_DIR:
                continue
            if name.startswith(".") and name.endswith(".sync.json"):
                data = here / name[1 : -len(".sync.json")]
                if data.name in names and data.is_file():
                    yield data, path, False
            elif name.startswith(".") and name.endswith(".sync") and path.is_dir():
                folder = here / name[1 : -len(".sync")]
                if folder.name in names and folder.is_dir():
                    yield folder, path, True
                else:
                    pending.append(path)  # a key's directory that only looks like sidecars
            elif path.is_dir() and f".{name}.sync" not in names:
                pending.append(path)  # a directory (".lineage/" too), not a cached folder


def entries(cache_dir: str | os.PathLike[str]) -> list[CacheEntry]:
    """Every cached object under `cache_dir`, least recently used first.

    >>> entries("cache")
    []
    """
    root = Path(cache_dir).expanduser()
    held = held_entries(root)
    out = []
    for path, sidecar, is_folder in _found(root):
        try:
            last_used = sidecar.stat().st_mtime
        except FileNotFoundError:  # evicted meanwhile
            continue
        size, n = _folder_size(path) if is_folder else (path.stat().st_size, 1)
        name = _rel(root, path)
        locked = EntryLock(path).held_by_other()
        out.append(CacheEntry(path, name, is_folder, size, n, last_used, name in held, locked))
    return sorted(out, key=lambda e: (e.last_used, e.name))


def usage(cache_dir: str | os.PathLike[str]) -> CacheUsage:
    """How many objects and bytes `cache_dir` holds, and how many of them are in use.

    >>> usage("cache").bytes
    0
    """
    found = entries(cache_dir)
    held = [e for e in found if e.held]
    return CacheUsage(len(found), sum(e.size for e in found), len(held), sum(e.size for e in held))


def _remove(entry: CacheEntry) -> None:
    if entry.is_folder:
        shutil.rmtree(_folder_sidecars(entry.path), ignore_errors=True)
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        entry.path.with_name(f".{entry.path.name}.sync.json").unlink(missing_ok=True)
        entry.path.unlink(missing_ok=True)


def _remove_empty_parents(path: Path, root: Path) -> None:
    """The directories above `path` left empty, up to `root` (bucket and key prefixes)."""
    parent = path.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()
        except OSError:  # not empty, or gone
            break
        parent = parent.parent


def evict(cache_dir: str | os.PathLike[str], max_bytes: int) -> list[CacheEntry]:
    """Remove least recently used objects from `cache_dir` until it holds at most `max_bytes`;
    returns what was removed. Never an object a live process holds (`sync` returned it and it
    was not released) or one being downloaded: if those alone exceed `max_bytes`, the cache
    stays over it (a warning says by how much).

    Each object is removed under its lock, after checking the readers records again, so a
    process that starts using it meanwhile either keeps it or downloads it anew.

    >>> evict("cache", max_bytes=0)
    []
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be 0 or more, not {max_bytes}")
    root = Path(cache_dir).expanduser()
    found = entries(root)
    total = sum(e.size for e in found)
    removed: list[CacheEntry] = []
    for entry in found:  # least recently used first
        if total <= max_bytes:
            break
        if entry.held or entry.locked:
            continue
        lock = EntryLock(entry.path)
        if not lock.acquire(blocking=False):
            continue  # being downloaded or checked right now: in use
        try:
            if entry.name in held_entries(root) or not entry.path.exists():
                continue  # taken into use (or removed) since it was listed
            _remove(entry)
        finally:
            lock.release()
        _remove_empty_parents(entry.path, root)
        removed.append(entry)
        total -= entry.size
    if total > max_bytes:
        logger.warning(
            "the cache %s holds %d bytes, over its limit of %d: the rest is in use by running "
            "processes (or being downloaded)",
            root, total, max_bytes,
        )  # fmt: skip
    return removed


def clear(cache_dir: str | os.PathLike[str]) -> list[CacheEntry]:
    """Remove every cached object no live process holds (`evict` to 0 bytes).

    >>> clear("cache")
    []
    """
    return evict(cache_dir, 0)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from a size: an int, or a number with an optional unit, `K`/`M`/`G`/`T`/`P` powers
    of 1000 (`KB`, `GB` too) or of 1024 (`KiB`, `GiB`).

    >>> parse_size("50GB"), parse_size("1.5 GiB"), parse_size("512"), parse_size(7)
    (50000000000, 1610612736, 512, 7)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"a size must be 0 or more, not {text}")
        return text
    match = _SIZE.match(str(text))
    if match is None or (match.group(3) and not match.group(2)):
        raise ValueError(f"not a size: {text!r}; use bytes or a unit, e.g. 500MB, 50GB, 2GiB")
    number, unit, binary = float(match.group(1)), match.group(2).upper(), bool(match.group(3))
    power = "KMGTP".index(unit) + 1 if unit else 0
    return int(number * (1024 if binary else 1000) ** power)
