"""Train / test splits of labelled cells: stratified by label, and by donor when one is named.

Holding out whole donors (or samples) measures how a classifier does on a new person, which is
how it will be used; a split of cells within donors overstates accuracy. Both kinds come from
scikit-learn's stratified splitters (``StratifiedGroupKFold`` with the donor as the group,
``StratifiedKFold`` otherwise), shuffled with the seed: a hold-out split is the first fold of
``round(1 / test_fraction)`` folds.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


def cell_folds(
    labels: pd.Series, *, donors: pd.Series | None = None, n_folds: int = 5, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(train_rows, test_rows)`` of ``n_folds`` folds; every cell is tested once.

    Parameters
    ----------
    labels
        One label per cell.
    donors
        One donor (or sample) per cell: a donor's cells are never in train and test of one fold.
    n_folds
        Number of folds; with donors at most the number of donors.
    seed
        Seed of the shuffle.

    Raises
    ------
    ValueError
        When there are fewer donors than folds, or fewer than 2 folds.
    """
    if n_folds < 2:
        raise ValueError(f"need at least 2 folds, got {n_folds}")
    rows = np.zeros(len(labels))
    if donors is None:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        yield from splitter.split(rows, labels.to_numpy())
        return
    n_donors = donors.nunique()
    if n_donors < n_folds:
        raise ValueError(
            f"{n_donors} donors cannot make {n_folds} folds that hold out whole donors; "
            "use fewer folds or split by cells"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    yield from splitter.split(rows, labels.to_numpy(), groups=donors.astype(str).to_numpy())


def holdout_split(
    labels: pd.Series, *, donors: pd.Series | None = None, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One ``(train_rows, test_rows)`` split with about ``test_fraction`` of the cells (or donors) tested.

    Raises
    ------
    ValueError
        When ``test_fraction`` is not in (0, 0.5], or donors are too few to hold one out.
    """
    if not 0 < test_fraction <= 0.5:
        raise ValueError(f"test_fraction must be in (0, 0.5], got {test_fraction}")
    n_folds = max(2, round(1 / test_fraction))
    if donors is not None:
        n_folds = min(n_folds, donors.nunique())
    return next(cell_folds(labels, donors=donors, n_folds=n_folds, seed=seed))
