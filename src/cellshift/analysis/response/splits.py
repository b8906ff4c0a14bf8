"""Random splits of perturbations into training and test sets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import KFold


class Split(NamedTuple):
    """One split: its number and the perturbation labels on each side."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def perturbation_splits(perturbations: Sequence[str], *, n_splits: int = 5, seed: int = 0) -> list[Split]:
    """Split perturbations ``n_splits`` times so that each test perturbation is unseen in training.

    Shuffled K-fold (scikit-learn ``KFold(n_splits, shuffle=True, random_state=seed)``): ``n_splits``
    random, disjoint test sets of ``~1/n_splits`` of the perturbations; every perturbation is
    predicted exactly once, by models that never saw it.

    Parameters
    ----------
    perturbations
        Distinct perturbation labels.
    n_splits
        Number of splits (at least 2, at most the number of perturbations).
    seed
        Seed of the shuffle.

    Returns
    -------
    list of Split
        ``(index, train, test)``; labels keep their input order within each side.
    """
    labels = np.asarray(list(map(str, perturbations)))
    if len(set(labels)) != len(labels):
        raise ValueError("perturbation labels must be distinct to split them")
    if not 2 <= n_splits <= len(labels):
        raise ValueError(f"n_splits must be between 2 and the number of perturbations ({len(labels)}), got {n_splits}")
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(labels)
    return [Split(k, tuple(labels[train]), tuple(labels[test])) for k, (train, test) in enumerate(folds)]
