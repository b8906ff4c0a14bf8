import numpy as np
import pytest
from scipy import stats

from cellshift.training import LengthGroupedBatchSampler


@pytest.fixture(scope="module")
def lengths():
    return np.random.default_rng(0).integers(50, 2048, size=1003)


def test_every_cell_once_per_epoch(lengths):
    sampler = LengthGroupedBatchSampler(lengths, 16, mega_batch_factor=8, seed=1)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        seen = np.concatenate([np.asarray(b) for b in sampler])
        assert np.array_equal(np.sort(seen), np.arange(len(lengths)))
    assert len(list(sampler)) == len(sampler) == 63


def test_batches_are_length_homogeneous(lengths):
    sampler = LengthGroupedBatchSampler(lengths, 16, mega_batch_factor=8, seed=1)
    grouped = np.mean([np.ptp(lengths[b]) for b in sampler.batches(0)])
    order = np.random.default_rng(2).permutation(len(lengths))
    random = np.mean([np.ptp(lengths[order[i : i + 16]]) for i in range(0, len(order), 16)])
    assert grouped < 0.15 * random  # dynamic padding wastes little


def test_consecutive_batches_are_not_ordered_by_length(lengths):
    """Zhao et al. 2025: without the shuffle of mini-batches, training ends ~60x worse in perplexity."""
    sampler = LengthGroupedBatchSampler(lengths, 16, mega_batch_factor=8, seed=1)
    means = [lengths[b].mean() for b in sampler.batches(0)]
    rho = stats.spearmanr(np.arange(len(means)), means).statistic
    assert abs(rho) < 0.3
    steps_down = np.mean(np.diff(means) < 0)
    assert 0.3 < steps_down < 0.7  # a sorted order would give 0 or 1


def test_epochs_and_seeds_change_the_order(lengths):
    sampler = LengthGroupedBatchSampler(lengths, 16, seed=1)
    first, second = sampler.batches(0), sampler.batches(1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=False))
    again = LengthGroupedBatchSampler(lengths, 16, seed=1).batches(0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_processes_get_disjoint_shares_of_equal_length(lengths):
    world = 3
    shares = [LengthGroupedBatchSampler(lengths, 16, seed=4, rank=r, world_size=world).batches(0) for r in range(world)]
    assert len({len(share) for share in shares}) == 1
    cells = [np.concatenate(share) for share in shares]
    total = np.concatenate(cells)
    assert set(total) == set(range(len(lengths)))  # every cell is seen
    padded = len(total) - len(lengths)
    assert 0 <= padded < 16 * world  # wrapped around to whole rounds only
    for a in range(world):
        for b in range(a + 1, world):
            assert len(np.intersect1d(cells[a], cells[b])) <= padded


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="rank 2"):
        LengthGroupedBatchSampler(np.ones(4), 2, rank=2, world_size=2)
    with pytest.raises(ValueError, match="no cells"):
        LengthGroupedBatchSampler(np.array([]), 2)
