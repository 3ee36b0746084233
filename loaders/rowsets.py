"""Sets of row indices of one file, stored compactly: which rows of an `.h5ad` file a run saw.

A row set of a file with `n` rows is a bitmap of `n` bits (`numpy.packbits`, row 0 the high bit
of byte 0) compressed with zlib. Its size is bounded by `n / 8` bytes whatever the selection
(a run of contiguous rows, or every other row, or a random third), and it compresses to a few
hundred bytes for whole files and contiguous blocks; row ranges are smaller for a few long runs
but grow with the number of runs (a scattered selection of a 1M-row file is megabytes of
ranges). `docs/architecture.md` ("Samples") has the measurement. Whether given rows are in the
set is read from the decompressed bytes directly, without unpacking the bitmap.

>>> import numpy as np
>>> data = encode_rows(np.array([0, 2, 3, 9]), 10)
>>> decode_rows(data, 10).tolist(), rows_in(data, 10, np.array([2, 4])).tolist()
([0, 2, 3, 9], [True, False])
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["decode_rows", "encode_rows", "rows_in"]

_LEVEL = 6  # zlib's default: level 9 saves under 1% on bitmaps and takes 3x as long


def encode_rows(rows: np.ndarray, n: int) -> bytes:
    """The rows (indices in `0..n-1`, any order, repeats allowed) as a compressed bitmap."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"row indices must lie in 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return zlib.compress(np.packbits(mask).tobytes(), _LEVEL)


def _bits(data: bytes, n: int) -> np.ndarray:
    raw = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    if raw.size != (n + 7) // 8:
        raise ValueError(f"a row set of {n} rows has {(n + 7) // 8} bytes, not {raw.size}")
    return raw


def decode_rows(data: bytes, n: int) -> np.ndarray:
    """The sorted row indices (int64) of a row set of a file with `n` rows."""
    return np.flatnonzero(np.unpackbits(_bits(data, n), count=n)).astype(np.int64)


def rows_in(data: bytes, n: int, rows: np.ndarray) -> np.ndarray:
    """For each of `rows` (indices in `0..n-1`), whether the row set holds it."""
    rows = np.asarray(rows, dtype=np.int64)
    raw = _bits(data, n)
    return ((raw[rows >> 3] >> (7 - (rows & 7))) & 1).astype(bool)
