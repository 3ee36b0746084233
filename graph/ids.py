"""uids the way lamindb makes them: random base62 stems and a base62 version counter.

A versioned record's uid is `stem + counter`: the stem (16 characters for artifacts and
collections, 12 for transforms) names the version family, the 4-character counter counts
versions `0000`, `0001`, ... `0009`, `000A`, ... `000z`, `0010` in lamindb's alphabet order.
"""

from __future__ import annotations

import secrets
import string

# lamindb's alphabet, for random stems and for counting versions: 0-9, A-Z, a-z.
_ALPHABET = string.digits + string.ascii_letters.swapcase()
VERSION_LENGTH = 4
FIRST_VERSION = "0" * VERSION_LENGTH


def base62(n_char: int) -> str:
    """A random base62 string of `n_char` characters."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(n_char))


def counter_value(counter: str) -> int:
    """The integer a version counter like `000A` stands for (10)."""
    value = 0
    for char in counter:
        value = value * 62 + _ALPHABET.index(char)
    return value


def counter_string(value: int, width: int = VERSION_LENGTH) -> str:
    """The version counter for `value`, zero-padded to `width` characters."""
    if value < 0 or value >= 62**width:
        raise ValueError(f"version counter {value} does not fit in {width} base62 characters")
    chars = []
    while value:
        value, rem = divmod(value, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars)).rjust(width, "0")
