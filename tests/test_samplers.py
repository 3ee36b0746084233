"""BlockShuffleSampler: coverage, epochs, sharding, contiguity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loaders import BlockShuffleSampler


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
    assert sorted(sum(shards, [])) == list(range(96))


def test_uneven_shards_pad_or_drop_like_distributed_sampler() -> None:
    padded = [BlockShuffleSampler(10, block_size=3, num_replicas=3, rank=r) for r in range(3)]
    assert [len(s) for s in padded] == [4, 4, 4]
    everything = sum((list(s) for s in padded), [])
    assert len(everything) == 12 and set(everything) == set(range(10))
    dropped = [
        BlockShuffleSampler(10, block_size=3, num_replicas=3, rank=r, drop_last=True)
        for r in range(3)
    ]
    assert [len(s) for s in dropped] == [3, 3, 3]
    kept = sum((list(s) for s in dropped), [])
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
    everything = sum(shards, [])
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
