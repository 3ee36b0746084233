"""Samplers that keep a DataLoader's reads contiguous: random blocks instead of random rows.

A fully random order makes every row of a batch a separate read. `BlockShuffleSampler` shuffles
contiguous blocks of rows instead, then shuffles the rows within a window of a few blocks in
memory: a batch comes from a handful of runs of neighbouring rows (a few large reads), yet batches
still mix rows from several random places. `BalancedBlockSampler` does the same with blocks cut
from each class's rows, drawn so that every class gets its share of the epoch (lamindb's
`get_label_weights` + `WeightedRandomSampler` balances too, but row by row, so every row is a
read of its own). torch is not needed to import or use either.

>>> sampler = BlockShuffleSampler(10, block_size=2, window=1, seed=1)
>>> sorted(sampler) == list(range(10)), len(sampler)
(True, 10)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BalancedBlockSampler", "BlockShuffleSampler"]


class BlockShuffleSampler:
    """Indices in shuffled contiguous blocks, shuffled within windows of blocks.

    Each epoch splits `range(n)` into blocks of `block_size` rows, puts the blocks in random order
    (`shuffle_blocks`), and shuffles the indices within each run of `window` consecutive blocks
    (window=0 keeps each block in order). Randomness comes from `seed` and the epoch
    (`set_epoch`), so every rank of a distributed job draws the same block order.

    With `num_replicas` > 1 it shards like torch's `DistributedSampler`: each rank gets an equal
    share of whole blocks, every index once per epoch across ranks (the first indices repeated
    to even the shares out, or the tail dropped with `drop_last`).

    Use it as a DataLoader's `sampler` (with `shuffle` left off). A window of `window *
    block_size` rows is shuffled together: with the defaults (4 blocks of 64) and
    `batch_size=256`, each batch is 4 random runs of 64 neighbouring rows, 4 reads per file
    array; larger blocks read faster, smaller ones mix more.

    >>> a = BlockShuffleSampler(8, block_size=2, num_replicas=2, rank=0)
    >>> b = BlockShuffleSampler(8, block_size=2, num_replicas=2, rank=1)
    >>> sorted(list(a) + list(b)) == list(range(8))
    True
    >>> a.set_epoch(1); len(a)
    4

    As a DataLoader's sampler, a batch here is two shuffled runs of 2 neighbouring rows:

    >>> from torch.utils.data import DataLoader
    >>> sampler = BlockShuffleSampler(8, block_size=2, window=2, seed=0)
    >>> [batch.tolist() for batch in DataLoader(range(8), batch_size=4, sampler=sampler)]
    [[0, 4, 1, 5], [7, 2, 6, 3]]

    For `MappedCollection`'s whole batches (its fast path), wrap it in torch's `BatchSampler` and
    give the DataLoader `batch_size=None`: each item it fetches is then `ds[indices]`, a batch
    (see `loaders.mapped`). Call `set_epoch` on this sampler, not on the wrapper. The wrapper
    costs ~6 us per 256 indices, ~3% of reading the batch, so this sampler has no batch option.

    >>> from torch.utils.data import BatchSampler
    >>> list(BatchSampler(sampler, batch_size=4, drop_last=False))
    [[0, 4, 1, 5], [7, 2, 6, 3]]
    """

    def __init__(
        self,
        dataset_or_len: Sized | int,
        block_size: int = 64,
        seed: int = 0,
        shuffle_blocks: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        window: int = 4,
    ):
        n = dataset_or_len if isinstance(dataset_or_len, (int, np.integer)) else len(dataset_or_len)
        if n < 0:
            raise ValueError(f"the dataset length must be >= 0, got {n}")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if window < 0:
            raise ValueError(f"window must be >= 0 blocks, got {window}")
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas - 1}], got {rank}")
        self.n = int(n)
        self.block_size = int(block_size)
        self.seed = int(seed)
        self.shuffle_blocks = shuffle_blocks
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = drop_last
        self.window = int(window)
        self.epoch = 0
        # DistributedSampler's arithmetic, so lengths agree with it.
        if drop_last and self.n % self.num_replicas:
            self.num_samples = math.ceil((self.n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(self.n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration draw epoch `epoch`'s order.

        >>> s = BlockShuffleSampler(100, block_size=4)
        >>> first = list(s); s.set_epoch(1); first != list(s)
        True
        """
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an array."""
        rng = np.random.default_rng([self.seed, self.epoch])
        n_blocks = -(-self.n // self.block_size)
        order = rng.permutation(n_blocks) if self.shuffle_blocks else np.arange(n_blocks)
        stream = (order[:, None] * self.block_size + np.arange(self.block_size)).reshape(-1)
        stream = stream[stream < self.n]  # the last block may be short
        if self.total_size > len(stream):
            # Pad with the stream's own start, repeated as often as needed (DistributedSampler).
            reps = -(-self.total_size // max(len(stream), 1))
            stream = np.tile(stream, reps)[: self.total_size] if len(stream) else stream
        else:
            stream = stream[: self.total_size]
        # Contiguous shares keep whole blocks on one rank.
        mine = stream[self.rank * self.num_samples : (self.rank + 1) * self.num_samples]
        if self.window and len(mine):
            local = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
            mine = _shuffle_windows(mine, self.window * self.block_size, local)
        return mine

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (
            f"BlockShuffleSampler(n={self.n}, block_size={self.block_size}, window={self.window}, "
            f"seed={self.seed}, epoch={self.epoch}, rank={self.rank}/{self.num_replicas})"
        )


def _shuffle_windows(stream: np.ndarray, span: int, rng: np.random.Generator) -> np.ndarray:
    """`stream` with its indices shuffled within each run of `span` consecutive positions: each
    whole window is a row of a 2-D view, shuffled in place along the row (O(n); sorting random
    keys took seconds for millions of rows), the short last window on its own."""
    out = stream.copy()
    full = len(out) // span * span
    if full:
        rng.permuted(out[:full].reshape(-1, span), axis=1, out=out[:full].reshape(-1, span))
    if full < len(out):
        out[full:] = rng.permutation(out[full:])
    return out


def _key(label: Any) -> Any:
    """A label as a dict key: every missing value (NaN, None) is one key."""
    return (
        _MISSING_KEY if label is None or (isinstance(label, float) and np.isnan(label)) else label
    )


_MISSING_KEY = ("missing label",)


def _largest_remainder(total: int, shares: np.ndarray, first: int) -> np.ndarray:
    """`total` split into integers proportional to `shares` (which sum to 1), each within 1 of
    its exact share; ties for the leftover units go to the classes from `first` on, so ranks
    that pass different `first`s hand their extra rows to different classes."""
    exact = total * shares
    counts = np.floor(exact).astype(np.int64)
    left = total - int(counts.sum())
    if left:
        n = len(shares)
        rotation = (np.arange(n) - first) % n
        # Largest fraction first; among equal fractions, the rotation decides.
        order = np.lexsort((rotation, -(exact - counts)))
        eligible = order[shares[order] > 0]
        counts[eligible[:left]] += 1
    return counts


class BalancedBlockSampler:
    """Class-balanced (or weighted) epochs, read in contiguous blocks.

    `labels` holds one label per row (e.g. `ds.get_merged_labels("cell_type")`; a missing
    label, NaN or None, is a class of its own). Each epoch has `num_samples` rows (default: as
    many as there are rows), and each class gets its share of them: equal shares, or
    proportional to `class_weights` ({label: weight}; weight 0 leaves a class out). Tolerance:
    on every rank, every epoch, each class gets its exact share rounded down or up, so counts
    are within one row of it (a `BatchSampler(..., drop_last=True)` then drops at most one
    partial batch).

    How rows are drawn: each class's rows, in dataset order, are cut into blocks of
    `block_size` consecutive rows of that class, from a random starting point each epoch. A class
    is walked through whole passes, its blocks in a new random order each pass, until its share
    is met: a class with fewer rows than its share repeats rows (each as often as the others,
    give or take one), one with more draws a random subset of its blocks, another each epoch. The
    blocks of all classes are then put in random order and the rows are shuffled within windows
    of `window` blocks, as in `BlockShuffleSampler`. A block is one contiguous read where the
    class's rows lie together; where a class is spread through a file, its block spans about
    `block_size / (the class's fraction of the rows)` rows, which reading merges into few runs
    while the gaps are small.

    Sharding is `DistributedSampler`'s: with `num_replicas` > 1 each rank gets `num_samples /
    num_replicas` rows (rounded up, or down with `drop_last`), balanced on its own; the ranks'
    draws are cut from one stream per class, so together they are what one process would draw
    over the same total, and no row is on two ranks unless its class repeats rows. Seeded by
    `seed` and the epoch (`set_epoch`): every rank and every run draws the same epoch. Use it like
    `BlockShuffleSampler`, as a DataLoader's `sampler`, or inside a `BatchSampler` for
    `MappedCollection`'s whole batches; DataLoader workers only fetch what it yields.

    >>> labels = ["a"] * 90 + ["b"] * 10
    >>> sampler = BalancedBlockSampler(labels, block_size=5, seed=0)
    >>> drawn = [labels[i] for i in sampler]
    >>> len(sampler), drawn.count("a"), drawn.count("b")
    (100, 50, 50)
    >>> sampler.class_counts()
    {'a': 50, 'b': 50}

    Weighted: twice as many rows of "a" as of "b", 30 rows per epoch, over two ranks:

    >>> ranks = [BalancedBlockSampler(labels, num_samples=30, class_weights={"a": 2, "b": 1},
    ...                               num_replicas=2, rank=r) for r in range(2)]
    >>> [len(r) for r in ranks], [r.class_counts() for r in ranks]
    ([15, 15], [{'a': 10, 'b': 5}, {'a': 10, 'b': 5}])
    """

    def __init__(
        self,
        labels: Sequence[Any] | np.ndarray | pd.Series,
        block_size: int = 64,
        window: int = 4,
        num_samples: int | None = None,
        class_weights: Mapping[Any, float] | None = None,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ):
        values = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) else labels
        if values.ndim != 1:
            raise ValueError(f"labels must be one label per row (1-D), got shape {values.shape}")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        if window < 0:
            raise ValueError(f"window must be >= 0 blocks, got {window}")
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas - 1}], got {rank}")
        try:
            codes, classes = pd.factorize(values, sort=True, use_na_sentinel=False)
        except TypeError:  # labels that do not sort together: first seen, first
            codes, classes = pd.factorize(values, use_na_sentinel=False)
        self.classes: list[Any] = list(classes)
        self.n = len(values)
        total = self.n if num_samples is None else int(num_samples)
        if total < 0:
            raise ValueError(f"num_samples must be >= 0, got {num_samples}")
        weights = np.ones(len(self.classes))
        if class_weights is not None:
            weights = self._weights(class_weights)
        if total and not (weights > 0).any():
            raise ValueError(
                "no rows to draw: every class has weight 0 (or there are no labels); give some "
                "class a positive weight"
            )
        self.block_size = int(block_size)
        self.window = int(window)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.drop_last = drop_last
        self.epoch = 0
        self.total = total
        self.num_samples = total // num_replicas if drop_last else -(-total // num_replicas)
        self._shares = weights / weights.sum() if weights.sum() > 0 else weights
        order = np.argsort(codes, kind="stable")
        cuts = np.flatnonzero(np.diff(codes[order])) + 1
        # Each class's rows in dataset order (a stable sort keeps it).
        self._rows = np.split(order.astype(np.int64), cuts) if self.n else []
        # Rows per class on each rank: rank r's remainder units start at class r.
        self._quota = np.stack(
            [
                _largest_remainder(self.num_samples, self._shares, r)
                for r in range(self.num_replicas)
            ]
        )

    def _weights(self, class_weights: Mapping[Any, float]) -> np.ndarray:
        known = {_key(c): i for i, c in enumerate(self.classes)}
        unknown = [label for label in class_weights if _key(label) not in known]
        if unknown:
            raise ValueError(
                f"class_weights names labels that no row has: {unknown[:5]!r}; the labels are "
                f"{self.classes[:10]!r}{' ...' if len(self.classes) > 10 else ''}"
            )
        missing = [c for c in self.classes if not any(_key(k) == _key(c) for k in class_weights)]
        if missing:
            raise ValueError(
                f"class_weights has no weight for {missing[:5]!r}: give every class a weight "
                "(0 leaves it out)"
            )
        weights = np.zeros(len(self.classes))
        for label, weight in class_weights.items():
            if not np.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"class weight of {label!r} must be a finite number >= 0, got {weight!r}"
                )
            weights[known[_key(label)]] = float(weight)
        return weights

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration draw epoch `epoch`'s rows.

        >>> s = BalancedBlockSampler(["a", "b"] * 50, block_size=4)
        >>> first = list(s); s.set_epoch(1); first != list(s)
        True
        """
        self.epoch = int(epoch)

    def class_counts(self) -> dict[Any, int]:
        """Rows per class this rank draws each epoch (classes with weight 0 left out)."""
        quota, shares = self._quota[self.rank], self._shares
        return {c: int(q) for c, q, share in zip(self.classes, quota, shares) if share > 0}

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch, as an array."""
        rows_parts, id_parts, n_blocks = [], [], 0
        starts = self._quota[: self.rank].sum(axis=0)
        for c, rows in enumerate(self._rows):
            want = int(self._quota[:, c].sum())
            if not want:
                continue
            # One stream per class, the same on every rank: its own generator, so a class's
            # draw does not depend on the others'.
            rng = np.random.default_rng([self.seed, self.epoch, c])
            stream, block_of = self._class_stream(rows, want, rng)
            lo, hi = int(starts[c]), int(starts[c] + self._quota[self.rank, c])
            if hi > lo:
                ids = block_of[lo:hi]  # consecutive block numbers, ascending
                rows_parts.append(stream[lo:hi])
                id_parts.append(ids - ids[0] + n_blocks)
                n_blocks += int(ids[-1] - ids[0]) + 1
        if not rows_parts:
            return np.zeros(0, dtype=np.int64)
        local = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
        order = local.permutation(n_blocks)
        drawn, block = np.concatenate(rows_parts), np.concatenate(id_parts)
        # Blocks in `order`, each kept whole: where each block begins in the output, then
        # every row's place, all at once (a list of blocks cost seconds for millions of rows).
        lengths = np.bincount(block, minlength=n_blocks)
        begins = np.zeros(n_blocks, dtype=np.int64)
        begins[order] = np.cumsum(lengths[order]) - lengths[order]
        first_row = np.cumsum(lengths) - lengths  # each block's first row in `drawn`
        out = np.empty_like(drawn)
        out[begins[block] + np.arange(len(drawn)) - first_row[block]] = drawn
        if self.window:
            out = _shuffle_windows(out, self.window * self.block_size, local)
        return out

    def _class_stream(
        self, rows: np.ndarray, want: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """`want` rows of one class, in blocks, and each position's block number."""
        n, size = len(rows), self.block_size
        n_blocks = -(-n // size)
        parts, ids, made, first_id = [], [], 0, 0
        while made < want:  # whole passes: each a new cut and a new block order
            shift = int(rng.integers(size)) if n > size else 0
            cut = np.roll(rows, -shift) if shift else rows
            order = rng.permutation(n_blocks)
            # The blocks in that order, each in dataset order (the last may be short).
            position = (order[:, None] * size + np.arange(size)).reshape(-1)
            keep = position < n
            parts.append(cut[position[keep]])
            ids.append(np.repeat(np.arange(n_blocks) + first_id, size)[keep])
            first_id += n_blocks
            made += n
        return np.concatenate(parts)[:want], np.concatenate(ids)[:want]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (
            f"BalancedBlockSampler(n={self.n}, classes={len(self.classes)}, "
            f"num_samples={self.total}, block_size={self.block_size}, window={self.window}, "
            f"seed={self.seed}, epoch={self.epoch}, rank={self.rank}/{self.num_replicas})"
        )
