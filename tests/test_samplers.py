"""BlockShuffleSampler and BalancedBlockSampler: coverage, balance, epochs, sharding, contiguity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loaders import BalancedBlockSampler, BlockShuffleSampler


def test_each_index_once_per_epoch_and_epochs_differ() -> None:
    sampler = BlockShuffleSampler(1000, block_size=16, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(1000)) and len(sampler) == 1000
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(1000)) and second != first
    assert list(BlockShuffleSampler(1000, block_size=16, seed=4)) != first
    assert all(isinstance(i, int) for i in first[:5])


def test_blocks_stay_contiguous_without_window_shuffle() -> None:
    order = list(BlockShuffleSampler(100, block_size=10, window=0, seed=1))
    blocks = [order[i : i + 10] for i in range(0, 100, 10)]
    assert all(block == list(range(block[0], block[0] + 10)) for block in blocks)
    assert [b[0] for b in blocks] != list(range(0, 100, 10))  # block order is shuffled
    ordered = list(BlockShuffleSampler(100, block_size=10, window=0, shuffle_blocks=False))
    assert ordered == list(range(100))


def test_window_shuffle_stays_within_the_window() -> None:
    order = np.array(list(BlockShuffleSampler(64, block_size=4, window=2, seed=0)))
    windows = order.reshape(-1, 8)
    blocks = windows // 4
    # Each window of 8 indices holds exactly two whole blocks.
    assert all(len(set(w)) == 2 and all((w == b).sum() == 4 for b in set(w)) for w in blocks)
    assert not all((np.diff(w) == 1).all() for w in windows)  # shuffled inside


def test_shards_are_disjoint_and_equal() -> None:
    shards = [list(BlockShuffleSampler(96, block_size=8, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(s) for s in shards] == [32, 32, 32]
    assert sorted(i for s in shards for i in s) == list(range(96))


def test_uneven_shards_pad_or_drop_like_distributed_sampler() -> None:
    padded = [BlockShuffleSampler(10, block_size=3, num_replicas=3, rank=r) for r in range(3)]
    assert [len(s) for s in padded] == [4, 4, 4]
    everything = [i for s in padded for i in s]
    assert len(everything) == 12 and set(everything) == set(range(10))
    dropped = [
        BlockShuffleSampler(10, block_size=3, num_replicas=3, rank=r, drop_last=True)
        for r in range(3)
    ]
    assert [len(s) for s in dropped] == [3, 3, 3]
    kept = [i for s in dropped for i in s]
    assert len(set(kept)) == 9


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rank"):
        BlockShuffleSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="block_size"):
        BlockShuffleSampler(10, block_size=0)
    with pytest.raises(ValueError, match="window"):
        BlockShuffleSampler(10, window=-1)
    assert list(BlockShuffleSampler(0)) == []


def test_accepts_a_dataset_and_feeds_a_dataloader() -> None:
    torch = pytest.importorskip("torch")
    data = list(range(50))
    sampler = BlockShuffleSampler(data, block_size=5)
    seen = torch.cat(list(torch.utils.data.DataLoader(data, batch_size=8, sampler=sampler)))
    assert sorted(seen.tolist()) == data


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 300),
    block_size=st.integers(1, 40),
    window=st.integers(0, 5),
    replicas=st.integers(1, 4),
    epoch=st.integers(0, 3),
    drop_last=st.booleans(),
)
def test_sharding_property(
    n: int, block_size: int, window: int, replicas: int, epoch: int, drop_last: bool
) -> None:
    shards = []
    for rank in range(replicas):
        sampler = BlockShuffleSampler(
            n,
            block_size=block_size,
            window=window,
            num_replicas=replicas,
            rank=rank,
            drop_last=drop_last,
        )
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)
    assert len({len(s) for s in shards}) == 1  # equal lengths
    everything = [i for s in shards for i in s]
    if n % replicas == 0:
        assert sorted(everything) == list(range(n))  # every index exactly once
    elif drop_last:
        assert len(set(everything)) == len(everything) == (n // replicas) * replicas
    else:
        assert set(everything) == set(range(n))


def test_batches_of_indices_through_torch_batch_sampler() -> None:
    """MappedCollection's whole-batch path takes the sampler wrapped in torch's BatchSampler:
    the same indices, in the same order, cut into batches."""
    torch = pytest.importorskip("torch")
    sampler = BlockShuffleSampler(100, block_size=8, window=2, seed=2)
    sampler.set_epoch(3)
    batches = list(torch.utils.data.BatchSampler(sampler, batch_size=32, drop_last=False))
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert [i for batch in batches for i in batch] == list(sampler)
    data = np.arange(100) * 10  # indexed by a list of indices, as MappedCollection is
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=batches)
    # Each item the DataLoader fetches is data[batch], a whole batch at once.
    assert [b.tolist() for b in loader] == [(np.array(b) * 10).tolist() for b in batches]


# -- BalancedBlockSampler --------------------------------------------------------------------------


def _skewed_labels(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Three classes at 80%, 15% and 5%, interleaved as cells are in a real file."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array(["T", "B", "NK"], dtype=object), size=n, p=[0.8, 0.15, 0.05])


def test_balanced_classes_get_equal_shares_each_epoch() -> None:
    labels = _skewed_labels()
    sampler = BalancedBlockSampler(labels, block_size=32, seed=1)
    assert len(sampler) == len(labels)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        drawn = labels[sampler.indices()]
        counts = {c: int((drawn == c).sum()) for c in ("T", "B", "NK")}
        assert counts == {"T": 1000, "B": 1000, "NK": 1000}
    assert sampler.class_counts() == {"B": 1000, "NK": 1000, "T": 1000}


def test_balanced_rare_rows_repeat_evenly_and_common_rows_do_not_repeat() -> None:
    labels = _skewed_labels()
    drawn = BalancedBlockSampler(labels, block_size=16, seed=2).indices()
    uses = np.bincount(drawn, minlength=len(labels))
    rare = labels == "NK"
    # NK has ~150 rows for 1000 draws: each row ~6.7 times, never more than one apart.
    assert uses[rare].max() - uses[rare].min() <= 1 and uses[rare].min() >= 6
    common = labels == "T"
    assert uses[common].max() == 1 and uses[common].sum() == 1000


def test_balanced_weights_and_num_samples() -> None:
    labels = _skewed_labels()
    sampler = BalancedBlockSampler(
        labels, num_samples=700, class_weights={"T": 4, "B": 2, "NK": 1}, block_size=8
    )
    drawn = labels[sampler.indices()]
    assert len(drawn) == 700
    assert [(drawn == c).sum() for c in ("T", "B", "NK")] == [400, 200, 100]
    zero = BalancedBlockSampler(labels, class_weights={"T": 1, "B": 1, "NK": 0})
    assert "NK" not in set(labels[zero.indices()]) and set(zero.class_counts()) == {"B", "T"}


def test_balanced_is_seeded_and_deterministic() -> None:
    labels = _skewed_labels()
    a = BalancedBlockSampler(labels, seed=5)
    b = BalancedBlockSampler(list(labels), seed=5)  # a list of labels draws the same
    assert list(a) == list(b) == list(a)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(BalancedBlockSampler(labels, seed=6)) != list(BalancedBlockSampler(labels, seed=5))


def test_balanced_reads_blocks_of_neighbouring_rows_of_a_class() -> None:
    # Classes stored together (sorted files): each block is one run of consecutive rows.
    labels = np.repeat(np.array(["a", "b", "c"], dtype=object), [600, 300, 100])
    order = BalancedBlockSampler(labels, block_size=50, window=0, seed=3).indices()
    runs = np.split(order, np.flatnonzero(np.diff(order) != 1) + 1)
    # A block may wrap at a class's end, or be cut where a pass or a share ends: nearly all
    # runs are whole blocks.
    assert np.median([len(r) for r in runs]) >= 50 and len(runs) <= 2 * len(order) / 50
    # Classes interleaved: a block is 50 consecutive rows *of its class*.
    mixed = _skewed_labels()
    order = BalancedBlockSampler(mixed, block_size=50, window=0, seed=3).indices()
    first = order[:50]
    assert len(set(mixed[first])) == 1 and (np.diff(first) > 0).all()


def test_balanced_window_shuffles_within_windows_only() -> None:
    labels = _skewed_labels()
    plain = BalancedBlockSampler(labels, block_size=20, window=0, seed=4).indices()
    mixed = BalancedBlockSampler(labels, block_size=20, window=3, seed=4).indices()
    assert not np.array_equal(plain, mixed)
    for start in range(0, len(plain), 60):  # the same rows within each window of 3 blocks
        assert sorted(plain[start : start + 60]) == sorted(mixed[start : start + 60])


def test_balanced_shards_are_disjoint_and_complete() -> None:
    # Equal classes: a balanced epoch is every row once, split over the ranks.
    labels = np.tile(np.array(["x", "y", "z", "w"], dtype=object), 150)
    shards = [
        BalancedBlockSampler(labels, block_size=10, num_replicas=3, rank=r, seed=7)
        for r in range(3)
    ]
    drawn = [s.indices() for s in shards]
    assert [len(d) for d in drawn] == [200] * 3
    assert sorted(np.concatenate(drawn).tolist()) == list(range(600))
    for d in drawn:  # each rank is balanced on its own
        assert sorted(np.unique(labels[d], return_counts=True)[1].tolist()) == [50, 50, 50, 50]
    # Skewed classes, no class repeating rows: disjoint ranks.
    skewed = _skewed_labels()
    parts = [
        BalancedBlockSampler(skewed, num_samples=400, num_replicas=2, rank=r).indices()
        for r in range(2)
    ]
    assert len(set(parts[0]) & set(parts[1])) == 0


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 400),
    n_classes=st.integers(1, 6),
    num_samples=st.integers(0, 500),
    block_size=st.integers(1, 30),
    window=st.integers(0, 3),
    replicas=st.integers(1, 4),
    drop_last=st.booleans(),
    epoch=st.integers(0, 2),
    seed=st.integers(0, 3),
)
def test_balanced_tolerance_property(
    n: int,
    n_classes: int,
    num_samples: int,
    block_size: int,
    window: int,
    replicas: int,
    drop_last: bool,
    epoch: int,
    seed: int,
) -> None:
    """On every rank, every class gets its share of the rank's rows to within one row."""
    labels = np.random.default_rng(seed).integers(0, n_classes, n)
    present = np.unique(labels)
    per_rank = num_samples // replicas if drop_last else -(-num_samples // replicas)
    for rank in range(replicas):
        sampler = BalancedBlockSampler(
            labels,
            num_samples=num_samples,
            block_size=block_size,
            window=window,
            num_replicas=replicas,
            rank=rank,
            drop_last=drop_last,
        )
        sampler.set_epoch(epoch)
        drawn = sampler.indices()
        assert len(drawn) == len(sampler) == per_rank
        assert ((drawn >= 0) & (drawn < n)).all()
        counts = np.array([(labels[drawn] == c).sum() for c in present])
        assert np.abs(counts - per_rank / len(present)).max() < 1
        assert sum(sampler.class_counts().values()) == per_rank


def test_balanced_missing_labels_are_a_class() -> None:
    labels = ["a", None, "a", np.nan, "b", "a"]
    sampler = BalancedBlockSampler(labels, num_samples=6, block_size=1)
    counts = sampler.class_counts()
    assert len(counts) == 3 and sorted(counts.values()) == [2, 2, 2]
    drawn = [labels[i] for i in sampler]
    assert sum(1 for v in drawn if v is None or v != v) == 2
    weighted = BalancedBlockSampler(
        labels, num_samples=4, class_weights={"a": 1, "b": 1, None: 0}, block_size=1
    )
    assert sorted(labels[i] for i in weighted) == ["a", "a", "b", "b"]


def test_balanced_bad_arguments() -> None:
    labels = ["a", "b"]
    with pytest.raises(ValueError, match="no weight for"):
        BalancedBlockSampler(labels, class_weights={"a": 1})
    with pytest.raises(ValueError, match="no row has"):
        BalancedBlockSampler(labels, class_weights={"a": 1, "b": 1, "c": 1})
    with pytest.raises(ValueError, match="every class has weight 0"):
        BalancedBlockSampler(labels, class_weights={"a": 0, "b": 0})
    with pytest.raises(ValueError, match=">= 0"):
        BalancedBlockSampler(labels, class_weights={"a": -1, "b": 1})
    with pytest.raises(ValueError, match="1-D"):
        BalancedBlockSampler(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="rank"):
        BalancedBlockSampler(labels, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="block_size"):
        BalancedBlockSampler(labels, block_size=0)
    with pytest.raises(ValueError, match="num_samples"):
        BalancedBlockSampler(labels, num_samples=-1)
    with pytest.raises(ValueError, match="no rows to draw"):
        BalancedBlockSampler([], num_samples=3)
    assert list(BalancedBlockSampler([])) == []
