"""The exact permutation sd of the E-statistic against every labelling of a small pooled sample."""

from itertools import combinations

import numpy as np
import pytest

from cellshift.metrics import (
    ReferencePieces,
    cosine_edistance,
    edistance,
    edistance_permutation_sd,
    group_permutation_sds,
)


@pytest.mark.parametrize(("metric", "function"), [("edistance", edistance), ("cosine_edistance", cosine_edistance)])
@pytest.mark.parametrize(("n", "m"), [(2, 5), (3, 6), (5, 4), (6, 2)])
def test_sd_equals_the_spread_over_every_labelling(metric, function, n, m):
    rng = np.random.default_rng(n * 10 + m)
    pooled = rng.normal(size=(n + m, 3))
    pooled[0] *= 6  # an outlier: the case where real cells broke the old scaled null
    values = []
    for chosen in combinations(range(n + m), n):
        group = np.zeros(n + m, dtype=bool)
        group[list(chosen)] = True
        values.append(function(pooled[group], pooled[~group]))
    values = np.array(values)
    value, sd = ReferencePieces(pooled[n:], metric=metric).group_statistics(pooled[:n])
    assert value == pytest.approx(function(pooled[:n], pooled[n:]), rel=1e-12, abs=1e-12)
    assert abs(values.mean()) < 1e-12  # the U-statistic has permutation mean exactly 0
    assert sd == pytest.approx(values.std(), rel=1e-9)


def test_sd_from_the_pooled_sums_by_hand():
    rng = np.random.default_rng(0)
    pooled = rng.normal(size=(9, 2))
    distances = np.linalg.norm(pooled[:, None] - pooled[None], axis=-1)
    rows = distances.sum(axis=1)
    sd = edistance_permutation_sd(4, 5, rows.sum(), (rows**2).sum(), (distances**2).sum())
    assert sd == pytest.approx(ReferencePieces(pooled[4:]).group_sd(pooled[:4]), rel=1e-12)
    with pytest.raises(ValueError, match="at least 2 cells"):
        edistance_permutation_sd(1, 5, 1.0, 1.0, 1.0)


def test_subset_sd_is_the_sd_of_a_reference_split_and_groups_are_scored_together():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(7, 3))
    pieces = ReferencePieces(reference)
    assert pieces.subset_sd(3) == pytest.approx(ReferencePieces(reference[3:]).group_sd(reference[:3]), rel=1e-12)
    cells = np.vstack([reference, rng.normal(size=(4, 3)), rng.normal(size=(5, 3))])
    labels = ["ctrl"] * 7 + ["a"] * 4 + ["b"] * 5
    sds = group_permutation_sds(cells, labels, "ctrl")
    assert list(sds.index) == ["a", "b"]
    assert sds["b"] == pytest.approx(pieces.group_sd(cells[11:]), rel=1e-12)
