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
the final name; the last rename wins and both copies are complete.

>>> sync(["counts.csv"], "cache")  # a local file is used where it is
[PosixPath('counts.csv')]
>>> cache_path("s3://bucket/dir/x.h5ad", "cache")  # where an s3:// object would be cached
PosixPath('cache/bucket/dir/x.h5ad')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loaders.folders import remote_files
from loaders.hashing import CHUNK_SIZE, hash_file, hash_from_hashes_list, hash_string, to_b64_str
from loaders.storage import _local_path, etag_hash, is_remote, remote_file_info

__all__ = ["cache_path", "sync", "sync_dir"]

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
) -> list[Path]:
    """Local paths for `uris`, in their order: local files as they are, remote ones synced into
    `cache_dir` (downloaded only where the cached copy is missing or outdated).

    `hashes`/`sizes` are what a registry recorded for each file: used to verify a cached copy's
    content where the ETag cannot, and to warn when a remote object changed since it was
    registered. `progress`: a tqdm bar over the downloads; None shows it for more than one
    download when stderr is a terminal.

    With an s3:// URI (the endpoint and credentials come from `storage_options` or the
    environment), the object is downloaded once and then reused while it is fresh::

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

        def check(uri: str) -> tuple[str, Any, _Remote, bool]:
            first = remote_at[uri][0]
            expected = hashes[first] if hashes is not None else None
            fs, remote = _stat_remote(uri, storage_options)
            expected_size = sizes[first] if sizes is not None else None
            # A registry hashes files up to CHUNK_SIZE with md5, as a single-part ETag does.
            comparable = remote.hash_type == "md5" and remote.size <= CHUNK_SIZE
            if (expected_size is not None and expected_size != remote.size) or (
                expected is not None and comparable and expected != remote.hash
            ):
                logger.warning("%s changed since it was registered; caching its current bytes", uri)
            return uri, fs, remote, _is_fresh(targets[uri], remote, expected)

        workers = min(_MAX_WORKERS, len(remote_at))
        with ThreadPoolExecutor(workers) as pool:
            checked = list(pool.map(check, remote_at))
        stale = [(uri, fs, remote) for uri, fs, remote, fresh in checked if not fresh]
        if stale:
            _fetch(stale, targets, _show_progress(progress, len(stale)), workers)
        for uri, indices in remote_at.items():
            for i in indices:
                out[i] = targets[uri].path
    return [p for p in out if p is not None]


def sync_dir(
    uri: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    expected_hash: str | None = None,
    progress: bool | None = None,
) -> Path:
    """A local folder with the files of `uri`: a local folder as it is; an `s3://` prefix synced
    into `<cache_dir>/<bucket>/<key>/`, each file fetched only when missing or outdated (the
    freshness rule and atomic renames of `sync`) and cached files no longer under the prefix
    removed, so the copy holds exactly the folder's files. Their sidecars live beside the copy,
    in `.<name>.sync/`. `expected_hash`: the folder hash a registry recorded, to warn when the
    prefix changed since.

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
    root = cache_path(base, cache_dir)
    sidecars = root.with_name(f".{root.name}.sync")
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
            cache_path(file_uri, cache_dir), sidecars / f"{hash_string(rel)}.json", sidecars
        )
    hashes = [r.hash for r in remotes]
    if (
        expected_hash is not None
        and None not in hashes
        and hash_from_hashes_list(h for h in hashes if h is not None) != expected_hash
    ):
        logger.warning("%s changed since it was registered; caching its current files", text)
    workers = min(_MAX_WORKERS, len(remotes))
    with ThreadPoolExecutor(workers) as pool:
        fresh = list(pool.map(lambda r: _is_fresh(places[r.uri], r), remotes))
    stale = [(r.uri, fs, r) for r, ok in zip(remotes, fresh) if not ok]
    if stale:
        _fetch(stale, places, _show_progress(progress, len(stale)), workers)
    _prune(root, {p.path for p in places.values()})
    _prune(sidecars, {p.sidecar for p in places.values()})
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


def _fetch(
    stale: list[tuple[str, Any, _Remote]], targets: dict[str, _Place], show: bool, workers: int
) -> None:
    from tqdm.auto import tqdm

    total = sum(remote.size for _, _, remote in stale)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc=f"caching {len(stale)} file(s)",
        disable=not show, file=sys.stderr,
    ) as bar, ThreadPoolExecutor(min(workers, len(stale))) as pool:  # fmt: skip
        futures = [pool.submit(_download, fs, remote, targets[uri]) for uri, fs, remote in stale]
        errors: list[BaseException] = []
        for future, (_, _, remote) in zip(futures, stale):
            try:
                future.result()
                bar.update(remote.size)
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
