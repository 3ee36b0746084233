"""Sets of row indices of one file, stored compactly: which rows of an `.h5ad` file a run saw.

A row set of a file with `n` rows is stored as whichever of two encodings is smaller, named by
its first byte:

- `BITMAP` (0): the `n` bits of the rows (`numpy.packbits`, row 0 the high bit of byte 1): at
  most `n / 8 + 1` bytes whatever the selection, and a row's bit is one byte at a known offset,
  which a query can read without decoding the rest (`probe`);
- `RANGES` (1): the sorted runs of consecutive rows as (start, stop) int64 pairs,
  zlib-compressed: a few bytes for a whole file or a contiguous block; chosen when the rows form
  at most `n / 128` runs (16 bytes a run before compression: never more than the bitmap).

So a row set never takes more than `n / 8 + 1` bytes, and whole files and contiguous blocks take
tens of bytes. `docs/architecture.md` ("Which samples") has the measurement.

>>> import numpy as np
>>> data = encode_rows(np.array([0, 2, 3, 9]), 10)
>>> decode_rows(data, 10).tolist(), rows_in(data, 10, np.array([2, 4])).tolist()
([0, 2, 3, 9], [True, False])
>>> len(encode_rows(np.arange(1_000_000), 1_000_000)) < 50      # a whole file: one range
True
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["BITMAP", "RANGES", "decode_rows", "encode_rows", "probe", "rows_in"]

BITMAP, RANGES = 0, 1
_LEVEL = 6  # zlib's default


def _ranges(rows: np.ndarray) -> np.ndarray:
    """Sorted unique rows as (start, stop) pairs of consecutive runs."""
    if rows.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate([rows[:1], rows[breaks + 1]])
    stops = np.concatenate([rows[breaks] + 1, rows[-1:] + 1])
    return np.stack([starts, stops], axis=1).astype(np.int64)


def encode_rows(rows: np.ndarray, n: int) -> bytes:
    """The rows (indices in `0..n-1`, any order, repeats allowed) as the smaller encoding."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"row indices must lie in 0..{n - 1}")
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    # Runs of consecutive rows: where a row is in and the one before is not. Ranges are chosen
    # when their 16 bytes a run take no more than the bitmap (then zlib makes them smaller
    # still); counting first keeps a scattered selection from building megabytes of ranges.
    n_runs = int(np.count_nonzero(mask[1:] & ~mask[:-1])) + int(n > 0 and mask[0])
    if 16 * n_runs <= (n + 7) // 8:
        return bytes([RANGES]) + zlib.compress(_ranges(np.flatnonzero(mask)).tobytes(), _LEVEL)
    return bytes([BITMAP]) + np.packbits(mask).tobytes()


def _check(data: bytes, n: int) -> int:
    kind = data[0] if data else -1
    if kind == BITMAP and len(data) != (n + 7) // 8 + 1:
        raise ValueError(f"a row set of {n} rows has {(n + 7) // 8 + 1} bytes, not {len(data)}")
    if kind not in (BITMAP, RANGES):
        raise ValueError("not a row set: the first byte names no encoding")
    return kind


def _decoded_ranges(data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data[1:]), dtype=np.int64).reshape(-1, 2)


def decode_rows(data: bytes, n: int) -> np.ndarray:
    """The sorted row indices (int64) of a row set of a file with `n` rows."""
    if _check(data, n) == BITMAP:
        bits = np.frombuffer(data, dtype=np.uint8, offset=1)
        return np.flatnonzero(np.unpackbits(bits, count=n)).astype(np.int64)
    ranges = _decoded_ranges(data)
    if ranges.size == 0:
        return np.zeros(0, dtype=np.int64)
    if ranges[-1, 1] > n:
        raise ValueError(f"a row set of {n} rows holds row {ranges[-1, 1] - 1}")
    return np.concatenate([np.arange(a, b) for a, b in ranges]).astype(np.int64)


def rows_in(data: bytes, n: int, rows: np.ndarray) -> np.ndarray:
    """For each of `rows` (indices in `0..n-1`), whether the row set holds it."""
    rows = np.asarray(rows, dtype=np.int64)
    if _check(data, n) == BITMAP:
        raw = np.frombuffer(data, dtype=np.uint8)
        offsets, bits = probe(rows)
        return (raw[offsets] & bits) != 0
    ranges = _decoded_ranges(data)
    at = np.searchsorted(ranges[:, 0], rows, side="right") - 1
    return (at >= 0) & (rows < ranges[np.maximum(at, 0), 1]) if ranges.size else rows < 0


def probe(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each row's bit is in a `BITMAP` row set: the byte offset (the encoding byte
    counted) and the bit's mask in that byte."""
    rows = np.asarray(rows, dtype=np.int64)
    return 1 + (rows >> 3), (1 << (7 - (rows & 7))).astype(np.int64)
