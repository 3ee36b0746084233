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
    """A random base62 string of `n_char` characters, each uniform over the alphabet.

    From one read of random bytes, not one per character (`secrets.choice` reads the system's
    random source each time: 12 µs for a 20-character uid, 1.5 µs this way): a byte below 248
    (4 x 62) picks `byte % 62`, the others are skipped."""
    chars: list[str] = []
    while len(chars) < n_char:
        chars += [_ALPHABET[b % 62] for b in secrets.token_bytes(n_char + 4) if b < 248]
    return "".join(chars[:n_char])


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
