"""Validation of artifact and collection keys, in one place.

A key is metadata: lineage stores every file it copies at `<root>/.lineage/<uid><suffix>`, so a
key never becomes a path on disk. Keys are still checked, because users treat them as paths
(lamindb shows them as storage keys, and exports may write them out), and a key that would be
unsafe or ambiguous as a path is a mistake in every case we know of.

The rules (docs/reliability.md lists them too):

- a `str`, or None for no key; `bytes` and other types are refused;
- not empty, and without leading or trailing whitespace (a copy-paste slip, and `" a.csv"` and
  `"a.csv"` would be different keys that look the same);
- valid Unicode that encodes to UTF-8 (no lone surrogates such as `"\\udcff"`, which is what
  Python makes of undecodable bytes in file names), with no NUL or other control characters;
- at most `MAX_KEY_BYTES` (1024) bytes in UTF-8, S3's limit for object keys;
- relative and POSIX-style: no leading `/`, no Windows drive (`C:`), no URI scheme
  (`s3://...`), no backslashes (a separator on Windows, so `..\\x` would climb there);
- no empty, `.` or `..` segments (`a//b`, `a/./b`, `../x`, `a/`), so a key names one file and
  can never point outside a folder it is joined to;
- no segment `.lineage` or `.lamindb`: those folders hold managed copies (lamindb refuses keys
  containing `.lamindb/` for the same reason).

Any other Unicode is fine: `"données/细胞/α.h5ad"` is a valid key. Keys are stored as given (not
Unicode-normalised), so look them up with the same spelling.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lineage.errors import InvalidArgument

MAX_KEY_BYTES = 1024
RESERVED_SEGMENTS = frozenset({".lineage", ".lamindb"})

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_key(key: Any, what: str = "key") -> str | None:
    """`key` if it is a valid artifact or collection key (or None); else `InvalidArgument`
    naming `what` and the rule it breaks.

    >>> check_key("raw/données.csv")
    'raw/données.csv'
    >>> check_key("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lineage.errors.InvalidArgument: key '../etc/passwd' has a '..' segment; ...
    """
    if key is None:
        return None
    if not isinstance(key, str):
        decodable = isinstance(key, (bytes, bytearray))
        hint = " (decode it first, e.g. key.decode())" if decodable else ""
        raise InvalidArgument(f"{what} must be a str, not {type(key).__name__}{hint}")

    def bad(problem: str) -> InvalidArgument:
        shown = key if len(key) <= 80 else key[:77] + "..."
        return InvalidArgument(f"{what} {shown!r} {problem}")

    if key == "":
        raise bad("is empty; pass key=None for no key")
    if key != key.strip():
        raise bad(f"has leading or trailing whitespace; did you mean {key.strip()!r}?")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise bad(
            f"is not valid Unicode: character {exc.start} is a lone surrogate "
            f"({key[exc.start]!r}, an undecodable byte in a file name?); pass text"
        ) from None
    for i, char in enumerate(key):
        if unicodedata.category(char) == "Cc":
            raise bad(f"contains the control character {char!r} at position {i}")
    if len(encoded) > MAX_KEY_BYTES:
        raise bad(f"is {len(encoded)} bytes long in UTF-8; keys have at most {MAX_KEY_BYTES}")
    if "\\" in key:
        raise bad("contains a backslash; use '/' to separate folders")
    if key.startswith("/"):
        raise bad("is absolute; keys are relative, e.g. 'folder/file.csv'")
    if _SCHEME.match(key):
        raise bad("is a URI; pass the URI as the data and a relative key, or no key")
    if _DRIVE.match(key):
        raise bad("starts with a drive letter; keys are relative, e.g. 'folder/file.csv'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            kind = "an empty" if segment == "" else f"a {segment!r}"
            raise bad(f"has {kind} segment; keys name one file, e.g. 'folder/file.csv'")
        if segment in RESERVED_SEGMENTS:
            raise bad(f"uses the reserved folder {segment!r}, where managed copies live")
    return key
