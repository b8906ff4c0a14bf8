"""Classes of perturbations by their number of DEGs (Zhao et al. 2025: 0 DEGs vs >= 20 DEGs)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_DEGS = 20


def deg_class_labels(min_degs: int = MIN_DEGS) -> list[str]:
    """Labels of the three classes in order: ``"0 DEGs"``, ``"1-<min_degs - 1> DEGs"``, ``">= <min_degs> DEGs"``."""
    if min_degs < 2:
        raise ValueError(f"min_degs must be at least 2, got {min_degs}")
    return ["0 DEGs", f"1-{min_degs - 1} DEGs", f">= {min_degs} DEGs"]


def deg_classes(n_degs: pd.Series | np.ndarray, *, min_degs: int = MIN_DEGS) -> pd.Categorical:
    """Class of each perturbation: ``0`` DEGs, ``1 .. min_degs - 1`` DEGs, or ``>= min_degs`` DEGs.

    Parameters
    ----------
    n_degs
        Number of DEGs per perturbation; NaN (unknown) stays NaN.
    min_degs
        Lower bound of the strong class (the paper's training and test perturbations: 20).

    Returns
    -------
    pandas.Categorical
        Ordered categories :func:`deg_class_labels`.
    """
    values = np.asarray(n_degs, dtype=float)
    labels = deg_class_labels(min_degs)
    codes = np.select([values == 0, values >= min_degs, values > 0], [0, 2, 1], default=-1)
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)
