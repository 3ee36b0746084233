"""Files in a storage root: local paths (or file:// URIs) and s3:// URIs, through fsspec.

>>> dest = join("storage", ".lineage", "x.csv")
>>> dest
'storage/.lineage/x.csv'
>>> put_file("counts.csv", dest)
>>> file_info(dest).size, exists(dest)
(23, True)
>>> is_under(dest, "storage"), suffix_of("s3://b/t.csv.gz")
(True, '.csv.gz')
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import fsspec

from loaders.hashing import hash_file, hash_from_etag

__all__ = [
    "ENDPOINT_ENV",
    "FileInfo",
    "as_folder",
    "delete_file",
    "exists",
    "file_info",
    "filesystem",
    "is_remote",
    "is_under",
    "join",
    "put_file",
    "put_files",
    "restore_file",
    "suffix_of",
    "swap_in",
]

ENDPOINT_ENV = "LINEAGE_S3_ENDPOINT_URL"

# Two or more letters before "://", so a Windows drive ("C:\\x", "C://x") is never a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
_COMPRESSION = {".gz", ".bz2", ".zip"}


@dataclass(frozen=True)
class FileInfo:
    """Size and lamindb-style hash of one file, or of a folder (`n_files` set, `size` the total,
    `hash_type` "md5-d"); hash is None where the store gives none."""

    size: int
    hash: str | None
    hash_type: str | None
    n_files: int | None = None


def _scheme(uri: str) -> str:
    match = _SCHEME.match(str(uri))
    return match.group(1).lower() if match else ""


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """Whether the URI has a scheme other than file://.

    >>> is_remote("s3://bucket/x.csv"), is_remote("/tmp/x.csv"), is_remote("file:///tmp/x")
    (True, False, False)
    """
    return _scheme(str(uri)) not in ("", "file")


def _local_path(uri: str | os.PathLike[str]) -> Path:
    text = str(uri)
    if _scheme(text) == "file":
        text = url2pathname(urlsplit(text).path)
    return Path(text).expanduser()


def _with_endpoint(storage_options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(storage_options or {})
    endpoint = os.environ.get(ENDPOINT_ENV)
    named = "endpoint_url" in options or "endpoint_url" in options.get("client_kwargs", {})
    if endpoint and not named:
        options["endpoint_url"] = endpoint
    return options


def filesystem(
    uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for a URI and the path within it.

    For s3, `storage_options` go to s3fs; `LINEAGE_S3_ENDPOINT_URL` supplies the endpoint (MinIO,
    moto) when they name none. fsspec shares instances, so listings may be cached: call
    `fs.invalidate_cache(path)` before trusting `fs.info`/`fs.exists` after writes made elsewhere.

    >>> fs, path = filesystem("s3://bucket/dir/x.csv")
    >>> fs.protocol[0], path
    ('s3', 'bucket/dir/x.csv')
    >>> fs, path = filesystem("counts.csv")
    >>> fs.protocol[0], path, fs.size(path)
    ('file', '/.../counts.csv', 23)
    """
    text = str(uri)
    if not is_remote(text):
        return fsspec.filesystem("file"), str(_local_path(text).absolute())
    if _scheme(text) in ("s3", "s3a"):
        options = _with_endpoint(storage_options)
    else:
        options = dict(storage_options or {})
    fs, path = fsspec.core.url_to_fs(text, **options)
    return fs, path


def _remote(
    uri: str, storage_options: dict[str, Any] | None
) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, path = filesystem(uri, storage_options)
    # Another client (boto3, a second process) may have written since fs listed this prefix.
    fs.invalidate_cache(path)
    return fs, path


def file_info(
    uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> FileInfo:
    """Size and hash of a file. Local files are hashed by streaming them; on S3 the hash comes
    from the ETag without downloading (lamindb's rule: "md5", or "md5-<parts>" if multipart).

    >>> from pathlib import Path
    >>> _ = Path("a.txt").write_bytes(b"a")
    >>> file_info("a.txt")
    FileInfo(size=1, hash='DMF1ucDxtqgxw5niaXcmYQ', hash_type='md5', n_files=None)
    """
    text = str(uri)
    hash_: str | None  # local files always get one; a remote object without an ETag does not
    hash_type: str | None
    if not is_remote(text):
        path = _local_path(text)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise FileNotFoundError(f"No such file: {text}") from None
        if path.is_dir():
            raise IsADirectoryError(f"{text} is a directory, not a file")
        hash_, hash_type = hash_file(path, file_size=size)
        return FileInfo(size=size, hash=hash_, hash_type=hash_type)
    _, _, info = remote_file_info(text, storage_options)
    hash_, hash_type = etag_hash(info)
    return FileInfo(size=int(info["size"]), hash=hash_, hash_type=hash_type)


def remote_file_info(
    uri: str, storage_options: dict[str, Any] | None
) -> tuple[fsspec.AbstractFileSystem, str, dict[str, Any]]:
    """(filesystem, path, fsspec info) of a remote file, read fresh; a clear error when the URI
    is missing or names a directory."""
    fs, path = _remote(uri, storage_options)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"No such file: {uri}") from None
    if info.get("type") == "directory":
        raise IsADirectoryError(f"{uri} is a directory, not a file")
    return fs, path, info


def etag_hash(info: dict[str, Any]) -> tuple[str | None, str | None]:
    """lamindb's (hash, hash_type) from an object's ETag in fsspec info; (None, None) without."""
    etag = info.get("ETag") or info.get("etag")
    return hash_from_etag(etag) if etag else (None, None)


def put_file(
    local_path: str | os.PathLike[str],
    dest_uri: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Copy a local file to `dest_uri` (the destination file, local or s3://).

    Locally the bytes go to a temporary name beside the destination, which is then renamed, so the
    final name only ever holds a complete file.

    >>> from pathlib import Path
    >>> put_file("counts.csv", "backup/counts.csv")  # parent directories are made
    >>> Path("backup/counts.csv").read_text() == Path("counts.csv").read_text()
    True
    """
    if is_remote(str(local_path)):
        raise ValueError(f"put_file copies a local file; got the remote URI {local_path}")
    source = _local_path(local_path)
    if not source.is_file():
        raise FileNotFoundError(f"No such file to copy: {local_path}")
    dest = str(dest_uri)
    if is_remote(dest):
        fs, path = filesystem(dest, storage_options)
        fs.put_file(str(source), path)
        fs.invalidate_cache(path)
        return
    target = _local_path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_local(source, target)


def _copy_local(source: str | os.PathLike[str], target: Path) -> None:
    """Copy to a hidden name beside `target`, then rename: the final name only ever holds a
    complete file (os.replace is an atomic rename on one filesystem)."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        # No fsync: the rename already keeps a crashed process from leaving a partial file
        # under the final name, and an fsync per file made registering 10k small files 5x
        # slower. Power loss can still lose the last copies, as with lamindb's plain copy.
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def swap_in(
    local_path: str | os.PathLike[str],
    dest_uri: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
) -> str | None:
    """Put a local file at `dest_uri` (local or s3://), keeping the bytes that were there at a
    backup beside it: returns the backup's URI, or None if nothing was there. Then either
    `restore_file(backup, dest_uri)` (the old bytes back) or `delete_file(backup)`.

    The destination always holds a whole file, old or new: locally the backup is a hard link
    (a copy where the filesystem has none) and the new bytes are renamed into place.

    >>> backup = swap_in("sample.h5ad", "current.h5ad")   # nothing there yet
    >>> backup is None
    True
    >>> backup = swap_in("counts.csv", "current.h5ad")
    >>> restore_file(backup, "current.h5ad")               # the .h5ad bytes are back
    >>> file_info("current.h5ad").hash == file_info("sample.h5ad").hash, exists(backup)
    (True, False)
    """
    dest = str(dest_uri)
    backup = None
    if exists(dest, storage_options):
        slash = dest.rfind("/")
        backup = f"{dest[: slash + 1]}.{dest[slash + 1 :]}.{secrets.token_hex(6)}.old"
        if is_remote(dest):
            fs, path = filesystem(dest, storage_options)
            fs.copy(path, filesystem(backup, storage_options)[1])
        else:
            try:
                os.link(dest, backup)
            except OSError:  # no hard links on this filesystem
                shutil.copy2(dest, backup)
    try:
        put_file(local_path, dest, storage_options)
    except BaseException:
        if backup is not None:  # the destination still holds the old bytes
            delete_file(backup, storage_options)
        raise
    return backup


def restore_file(
    backup_uri: str, dest_uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> None:
    """Put the bytes `swap_in` kept at `backup_uri` back at `dest_uri`; the backup goes."""
    dest = str(dest_uri)
    if not is_remote(dest):
        os.replace(_local_path(backup_uri), _local_path(dest))
        return
    fs, path = filesystem(dest, storage_options)
    backup_path = filesystem(backup_uri, storage_options)[1]
    fs.copy(backup_path, path)
    fs.rm_file(backup_path)
    fs.invalidate_cache()


def put_files(
    pairs: Sequence[tuple[str | os.PathLike[str], str]],
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Copy many local files, each to its destination (local or s3://); returns the
    destinations. If any copy fails, the ones already made are removed and the error raised.

    The bulk form of `put_file`: local parent directories are made once, not per file, and
    uploads to one bucket go in one concurrent `put` (s3fs batches them).

    >>> put_files([("counts.csv", "backup/1.csv"), ("sample.h5ad", "backup/2.h5ad")])
    ['backup/1.csv', 'backup/2.h5ad']
    """
    written: list[str] = []
    remote: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    try:
        made: set[Path] = set()
        for source, dest in pairs:
            if is_remote(dest):
                fs, path = filesystem(dest, storage_options)
                remote.setdefault((_scheme(dest), _bucket_key(dest)[1]), []).append(
                    (str(_local_path(source)), path, dest)
                )
                continue
            target = _local_path(dest)
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.add(target.parent)
            _copy_local(source, target)
            written.append(dest)
        for items in remote.values():
            fs, _ = filesystem(items[0][2], storage_options)
            try:
                fs.put([src for src, _, _ in items], [path for _, path, _ in items])
            finally:
                # A failed batch may have written some: count them all, the cleanup below
                # removes what exists.
                written.extend(dest for _, _, dest in items)
                fs.invalidate_cache()
    except BaseException:
        for dest in written:
            delete_file(dest, storage_options)
        raise
    return written


def delete_file(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> bool:
    """Remove a file, or a folder with everything under it when `uri` ends in "/"
    (`as_folder`); False (not an error) if it was not there.

    >>> put_file("counts.csv", "copy.csv")
    >>> delete_file("copy.csv"), delete_file("copy.csv")
    (True, False)
    """
    text = str(uri)
    if text.endswith("/"):
        return _delete_folder(text, storage_options)
    if not is_remote(text):
        try:
            _local_path(text).unlink()
        except FileNotFoundError:
            return False
        return True
    fs, path = _remote(text, storage_options)
    # S3 answers a DELETE of a missing key with success, so ask first.
    if not fs.isfile(path):
        return False
    fs.rm_file(path)
    fs.invalidate_cache(path)
    return True


def as_folder(uri: str | os.PathLike[str]) -> str:
    """A folder's URI as `delete_file`/`delete_files` take it: with one trailing slash, which
    says "the folder and everything under it".

    >>> as_folder("s3://b/.lineage/abc.zarr"), as_folder("/d/x/")
    ('s3://b/.lineage/abc.zarr/', '/d/x/')
    """
    return str(uri).rstrip("/") + "/"


def _delete_folder(uri: str, storage_options: dict[str, Any] | None) -> bool:
    if not is_remote(uri):
        folder = _local_path(uri)
        if not folder.is_dir() or folder.is_symlink():
            return False
        shutil.rmtree(folder)
        return True
    fs, path = _remote(uri, storage_options)
    keys = fs.find(path.rstrip("/"))
    if not keys:
        return False
    fs.rm(keys)
    fs.invalidate_cache(path.rstrip("/"))
    return True


def delete_files(uris: list[str], storage_options: dict[str, Any] | None = None) -> None:
    """Remove many files (and folders given as `as_folder` URIs), missing ones ignored: local
    files one by one, S3 objects in bulk (one DeleteObjects request per 1000 keys), so cleaning
    up after a failed batch against an unreachable endpoint waits out the client's retries once,
    not once per file.

    >>> put_files([("counts.csv", "a.csv"), ("counts.csv", "b.csv")])
    ['a.csv', 'b.csv']
    >>> delete_files(["a.csv", "b.csv", "never-there.csv"])
    >>> exists("a.csv"), exists("b.csv")
    (False, False)
    """
    remote: list[str] = []
    for uri in map(str, uris):
        if uri.endswith("/") and not is_remote(uri):
            _delete_folder(uri, storage_options)
        elif uri.endswith("/"):  # a folder: its objects join the bulk delete
            fs, path = _remote(uri, storage_options)
            scheme = _scheme(uri)
            remote += [f"{scheme}://{key}" for key in fs.find(path.rstrip("/"))]
        elif is_remote(uri):
            remote.append(uri)
        else:
            _local_path(uri).unlink(missing_ok=True)
    by_bucket: dict[str, list[str]] = {}
    for uri in remote:  # s3fs deletes in bulk within one bucket only
        by_bucket.setdefault(uri.split("/")[2], []).append(uri)
    for uris_in_bucket in by_bucket.values():
        fs, _ = filesystem(uris_in_bucket[0], storage_options)
        paths = [filesystem(uri, storage_options)[1] for uri in uris_in_bucket]
        fs.rm(paths)
        for path in paths:
            fs.invalidate_cache(path)


def exists(uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> bool:
    """Whether a file (or directory / prefix) exists.

    >>> exists("counts.csv"), exists("missing.csv")
    (True, False)
    """
    text = str(uri)
    if not is_remote(text):
        return _local_path(text).exists()
    fs, path = _remote(text, storage_options)
    return bool(fs.exists(path))


def _bucket_key(uri: str) -> tuple[str, str, str]:
    parts = urlsplit(uri)
    return _scheme(uri), parts.netloc, parts.path.lstrip("/")


def is_under(uri: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether `uri` lies inside the storage `root` (the root itself counts).

    >>> is_under("s3://b/pre/x.csv", "s3://b/pre"), is_under("s3://b/prefix2/x", "s3://b/pre")
    (True, False)
    >>> is_under("/data/root/../other/x", "/data/root")
    False
    """
    uri_text, root_text = str(uri), str(root)
    if is_remote(uri_text) != is_remote(root_text):
        return False
    if not is_remote(uri_text):
        # resolve(): "..", symlinks and relative paths must not fool the check.
        return _local_path(uri_text).resolve().is_relative_to(_local_path(root_text).resolve())
    scheme, bucket, key = _bucket_key(uri_text)
    root_scheme, root_bucket, root_key = _bucket_key(root_text)
    if (scheme, bucket) != (root_scheme, root_bucket):
        return False
    if not root_key.strip("/"):
        return True
    # Trailing slashes on both, so "pre" does not contain "prefix2/x" but does contain "pre".
    prefix = root_key.rstrip("/") + "/"
    return (key.rstrip("/") + "/").startswith(prefix)


def join(root: str | os.PathLike[str], *parts: str) -> str:
    """A storage root plus relative parts, as a local path or a URI.

    >>> join("s3://bucket/root/", ".lineage", "abc.csv")
    's3://bucket/root/.lineage/abc.csv'
    >>> join("/data", "sub", "x.csv")
    '/data/sub/x.csv'
    """
    root_text = str(root)
    for part in parts:
        # Path("/r").joinpath("/abs") silently drops the root: refuse instead.
        if str(part).startswith("/") or Path(part).is_absolute():
            raise ValueError(f"join() takes relative parts; got the absolute {part!r}")
    if is_remote(root_text):
        tail = "/".join(str(p).strip("/") for p in parts if str(p).strip("/"))
        return f"{root_text.rstrip('/')}/{tail}" if tail else root_text
    if _scheme(root_text) == "file":
        root_text = str(_local_path(root_text))
    return str(Path(root_text, *parts))


def suffix_of(uri: str | os.PathLike[str]) -> str:
    """lamindb-style suffix: the last one, with a compression suffix joining the one before;
    digits-only suffixes ("run.2024") are none, as in lamindb.

    >>> suffix_of("s3://b/x.parquet"), suffix_of("/d/t.csv.gz"), suffix_of("/d/v1.2")
    ('.parquet', '.csv.gz', '')
    """
    text = str(uri).rstrip("/")
    name = PurePosixPath(urlsplit(text).path if is_remote(text) else text.replace("\\", "/")).name
    suffixes = PurePosixPath(name).suffixes
    if not suffixes or suffixes[-1][1:].isdigit():
        return ""
    last = suffixes[-1]
    if last.lower() in _COMPRESSION and len(suffixes) > 1 and not suffixes[-2][1:].isdigit():
        return suffixes[-2] + last
    return last
