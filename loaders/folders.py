"""Folders as data: their files, lamindb's folder hash, and copying them into storage.

A folder is every regular file under a local directory or an `s3://` prefix, each named by its
path relative to the folder ("sub/b.txt"). lamindb's folder hash (hash_type "md5-d";
`hash_dir` and `get_stat_dir_cloud` in lamindb_setup) is `hash_from_hashes_list` over the
files' own hashes: lamindb's file hash for local files, the ETag hash for S3 objects. `size`
is the total and `n_files` the count.

A local folder is listed without leaving it: a symbolic link to a file inside the folder counts
as that file (lamindb's `rglob` does the same), but a link out of the folder, a dangling link, a
link to a directory and a FIFO, socket or device raise ValueError, since what would be copied is
not what was hashed. `dir_info` refuses an empty folder (lamindb fails on one too).

>>> from pathlib import Path
>>> Path("folder/sub").mkdir(parents=True)
>>> _ = Path("folder/a.txt").write_bytes(b"a"); _ = Path("folder/sub/b.txt").write_bytes(b"b")
>>> [rel for rel, _ in list_dir("folder")]
['a.txt', 'sub/b.txt']
>>> info = dir_info("folder")
>>> info.size, info.n_files, info.hash_type
(2, 2, 'md5-d')
>>> put_dir("folder", "backup/folder")
'backup/folder/'
>>> dir_info("backup/folder") == info
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec

from loaders.hashing import hash_file, hash_from_hashes_list
from loaders.storage import (
    FileInfo,
    _local_path,
    _remote,
    as_folder,
    delete_files,
    etag_hash,
    is_remote,
    join,
    put_files,
)

__all__ = ["dir_info", "list_dir", "put_dir", "put_dirs", "remote_files"]

FOLDER_HASH_TYPE = "md5-d"
# Hashing is I/O bound: a few threads keep the disk busy without flooding a laptop.
_MAX_WORKERS = 8


def _local_files(root: Path) -> list[tuple[str, Path]]:
    """(relative name, path) of every file under a local folder, sorted by name."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    top = root.resolve()
    out: list[tuple[str, Path]] = []
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:  # a stack, not recursion: deep trees must not hit the recursion limit
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel, path = prefix + entry.name, Path(entry.path)
                if entry.is_symlink():
                    _check_link(path, top, root)
                    out.append((rel, path))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((path, rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    out.append((rel, path))
                else:
                    raise ValueError(
                        f"{path} is not a regular file (a FIFO, socket or device); a folder "
                        "artifact holds regular files only: move it out of the folder"
                    )
    return sorted(out)


def _check_link(path: Path, top: Path, root: Path) -> None:
    """A symbolic link inside a folder may only name a regular file inside that folder."""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling, or a loop (RuntimeError before 3.13)
        raise ValueError(
            f"{path} is a dangling symbolic link; remove it or point it at a file in {root}"
        ) from None
    if not target.is_relative_to(top):
        raise ValueError(
            f"{path} is a symbolic link to {target}, outside the folder {root}; copy that file "
            "into the folder instead"
        )
    if not target.is_file():
        raise ValueError(
            f"{path} is a symbolic link to a directory or special file; a folder artifact holds "
            "regular files only: replace the link with what it names"
        )


def remote_files(
    uri: str, storage_options: dict[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, list[tuple[str, dict[str, Any]]]]:
    """The filesystem and (relative name, fsspec info) of every object under an `s3://` prefix,
    read fresh and sorted by name; empty when nothing is there."""
    fs, path = _remote(uri, storage_options)
    base = path.rstrip("/")
    out = []
    for name, info in fs.find(base, detail=True).items():
        # "dir/" marker objects are no files; an object named like the prefix itself is not
        # under it.
        if info.get("type", "file") != "file" or name.endswith("/"):
            continue
        if name.startswith(base + "/"):
            out.append((name[len(base) + 1 :], info))
    return fs, sorted(out, key=lambda item: item[0])


def list_dir(
    uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> list[tuple[str, str]]:
    """(relative name, path or URI) of every file in a local folder or under an `s3://` prefix,
    sorted by name.

    >>> Path("data/sub").mkdir(parents=True)
    >>> _ = Path("data/a.txt").write_text("a"); _ = Path("data/sub/b.txt").write_text("b")
    >>> list_dir("data")
    [('a.txt', '.../data/a.txt'), ('sub/b.txt', '.../data/sub/b.txt')]
    """
    text = str(uri)
    if is_remote(text):
        _, files = remote_files(text, storage_options)
        return [(rel, join(text, rel)) for rel, _ in files]
    return [(rel, str(path)) for rel, path in _local_files(_local_path(text).absolute())]


def dir_info(
    uri: str | os.PathLike[str], storage_options: dict[str, Any] | None = None
) -> FileInfo:
    """lamindb's size, hash ("md5-d") and file count of a local folder or an `s3://` prefix (from
    the objects' ETags, nothing downloaded).

    >>> Path("data").mkdir()
    >>> _ = Path("data/a.txt").write_text("a"); _ = Path("data/b.txt").write_text("b")
    >>> dir_info("data")
    FileInfo(size=2, hash='...', hash_type='md5-d', n_files=2)
    """
    text = str(uri)
    pairs: list[tuple[str, int]]  # (hash, size) per file
    if is_remote(text):
        _, files = remote_files(text, storage_options)
        if not files:
            raise FileNotFoundError(f"No such folder (no objects under the prefix): {text}")
        pairs = []
        for rel, info in files:
            hash_, _ = etag_hash(info)
            if hash_ is None:
                raise ValueError(f"{join(text, rel)} has no ETag, so the folder cannot be hashed")
            pairs.append((hash_, int(info["size"])))
    else:
        local = _local_files(_local_path(text))
        if not local:
            raise ValueError(
                f"the folder {text} has no files; a folder artifact needs at least one"
            )

        def hash_one(path: Path) -> tuple[str, int]:
            size = path.stat().st_size
            return hash_file(path, file_size=size)[0], size

        workers = max(1, min(_MAX_WORKERS, len(local), os.cpu_count() or 1))
        with ThreadPoolExecutor(workers) as pool:
            pairs = list(pool.map(hash_one, [path for _, path in local]))
    return FileInfo(
        size=sum(size for _, size in pairs),
        hash=hash_from_hashes_list(hash_ for hash_, _ in pairs),
        hash_type=FOLDER_HASH_TYPE,
        n_files=len(pairs),
    )


def put_dirs(
    pairs: Sequence[tuple[str | os.PathLike[str], str]],
    storage_options: dict[str, Any] | None = None,
) -> list[str]:
    """Copy local folders, each to its destination folder (local or s3://), through `put_files`
    (each file renamed into place locally, one concurrent `put` per bucket). Returns the
    destinations as `as_folder` URIs, which `delete_files` removes whole. If anything fails, what
    was copied is removed and the error raised.

    >>> Path("data").mkdir()
    >>> _ = Path("data/a.txt").write_text("a")
    >>> put_dirs([("data", "copies/one"), ("data", "copies/two")])
    ['copies/one/', 'copies/two/']
    >>> Path("copies/two/a.txt").read_text()
    'a'
    """
    file_pairs: list[tuple[str | os.PathLike[str], str]] = []
    for source, dest in pairs:
        files = _local_files(_local_path(source))
        if not files:
            raise FileNotFoundError(f"the folder {source} has no files (any more) to copy")
        file_pairs += [(path, join(dest, rel)) for rel, path in files]
    folders = [as_folder(dest) for _, dest in pairs]
    try:
        put_files(file_pairs, storage_options)
    except BaseException:
        # put_files removed its files; locally the directories it made are left: remove them.
        delete_files([f for f in folders if not is_remote(f)], storage_options)
        raise
    return folders


def put_dir(
    source: str | os.PathLike[str], dest: str, storage_options: dict[str, Any] | None = None
) -> str:
    """Copy one local folder to `dest` (`put_dirs` for one); returns `as_folder(dest)`.

    >>> Path("data").mkdir()
    >>> _ = Path("data/a.txt").write_text("a")
    >>> put_dir("data", "backup/data")
    'backup/data/'
    """
    return put_dirs([(source, dest)], storage_options)[0]
