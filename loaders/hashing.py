"""lamindb's content hashes, byte for byte, so the same file gets the same hash in both systems.

>>> hash_string("a")
'DMF1ucDxtqgxw5niaXcmYQ'
>>> hash_from_etag('"0cc175b9c0f1b6a831c399e269772661"')
('DMF1ucDxtqgxw5niaXcmYQ', 'md5')
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable
from typing import BinaryIO

__all__ = [
    "CHUNK_SIZE",
    "HASH_LENGTH",
    "b16_to_b64",
    "hash_file",
    "hash_from_etag",
    "hash_from_hashes_list",
    "hash_set",
    "hash_string",
    "to_b64_str",
]

HASH_LENGTH = 22
CHUNK_SIZE = 50 * 1024**2
# Bounded memory however big the chunk: 50 MiB chunks are hashed in these blocks.
_BLOCK_SIZE = 8 * 1024**2


def to_b64_str(b: bytes) -> str:
    """URL-safe base64 without the '=' padding.

    >>> to_b64_str(b"\\xff\\xfe")
    '__4'
    """
    return base64.urlsafe_b64encode(b).decode().strip("=")


def b16_to_b64(s: str) -> str:
    """A hex digest (as S3 ETags carry it: maybe quoted, any case) as url-safe base64.

    >>> b16_to_b64('"0CC175B9C0F1B6A831C399E269772661"')
    'DMF1ucDxtqgxw5niaXcmYQ'
    """
    return to_b64_str(base64.b16decode(s.strip('"'), casefold=True))


def hash_string(s: str) -> str:
    """md5 of the UTF-8 bytes, as url-safe base64 (22 characters).

    >>> hash_string("abc")
    'kAFQmDzST7DWlj99KOF_cg'
    """
    return to_b64_str(hashlib.md5(s.encode("utf-8")).digest())


def hash_set(hashes: Iterable[str]) -> str:
    """lamindb's collection hash: order and duplicates do not matter.

    >>> hash_set(["b", "a", "a"]) == hash_string("a:b")
    True
    """
    return hash_string(":".join(sorted(set(hashes))))[:HASH_LENGTH]


def hash_from_hashes_list(hashes: Iterable[str]) -> str:
    """lamindb's folder hash (hash_type "md5-d") from its files' hashes: the md5 of the md5
    digests of the sorted hash strings. Duplicates count: two equal files are not one.

    >>> hash_from_hashes_list(["b", "a"]) == hash_from_hashes_list(["a", "b"])
    True
    >>> hash_from_hashes_list(["a"]) == hash_from_hashes_list(["a", "a"])
    False
    """
    digests = b"".join(hashlib.md5(h.encode("utf-8")).digest() for h in sorted(hashes))
    return to_b64_str(hashlib.md5(digests).digest())[:HASH_LENGTH]


def _update(digest: hashlib._Hash, fp: BinaryIO, n_bytes: int) -> None:
    remaining = n_bytes
    while remaining > 0:
        block = fp.read(min(_BLOCK_SIZE, remaining))
        if not block:
            break
        digest.update(block)
        remaining -= len(block)


def hash_file(
    path: str | os.PathLike[str],
    file_size: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[str, str]:
    """(hash, hash_type) of a local file: md5 up to `chunk_size` bytes, else "sha1-fl".

    "sha1-fl" is the sha1 of the sha1s of the first and the last `chunk_size` bytes, so a
    huge file is hashed after reading at most 2 chunks.

    >>> from pathlib import Path
    >>> _ = Path("a.txt").write_bytes(b"a")
    >>> hash_file("a.txt")  # the same as hash_string("a")
    ('DMF1ucDxtqgxw5niaXcmYQ', 'md5')
    >>> _ = Path("abc.txt").write_bytes(b"abc")
    >>> hash_file("abc.txt", chunk_size=2)  # larger than one chunk
    ('vcaitGRl2K2VF27ltMw2hP', 'sha1-fl')
    """
    with open(path, "rb") as fp:
        if file_size is None:
            file_size = os.fstat(fp.fileno()).st_size
        if file_size <= chunk_size:
            md5 = hashlib.md5()
            _update(md5, fp, file_size)
            return to_b64_str(md5.digest())[:HASH_LENGTH], "md5"
        first, last = hashlib.sha1(), hashlib.sha1()
        _update(first, fp, chunk_size)
        # Relative to the real end, as lamindb seeks, not to the file_size we were given.
        fp.seek(-chunk_size, os.SEEK_END)
        _update(last, fp, chunk_size)
        digest = hashlib.sha1(first.digest() + last.digest()).digest()
        return to_b64_str(digest)[:HASH_LENGTH], "sha1-fl"


def hash_from_etag(etag: str) -> tuple[str, str]:
    """(hash, hash_type) from an S3 ETag, lamindb's rule: "md5", or "md5-<parts>" if multipart.

    >>> hash_from_etag('"0cc175b9c0f1b6a831c399e269772661-2"')
    ('DMF1ucDxtqgxw5niaXcmYQ', 'md5-2')
    """
    etag = etag.strip('"')
    if "-" not in etag:
        return b16_to_b64(etag)[:HASH_LENGTH], "md5"
    hex_part, n_parts = etag.split("-", 1)
    return b16_to_b64(hex_part)[:HASH_LENGTH], f"md5-{n_parts}"
