"""How well any prediction could do: the experimental error of the measured changes.

A measured change ``delta_p`` averages a finite number of cells, so even a perfect predictor of
the true effect misses it by about its sampling error. Bootstrap: resample with replacement the
cells of every perturbation and the control cells of every batch (each group keeps its size),
recompute the pseudobulk change ``delta*_p`` (:class:`PseudobulkDesign`) and score it against
``delta_p`` with the benchmark's metrics (``l2``, ``pearson``, ``mse``); the error bound of a
perturbation is the mean over ``n_bootstrap`` draws. Methods with a lower L2 than this bound fit
the noise of the measurement, not the effect. Needs cells: changes read from a table have none.
"""

from __future__ import annotations

from collections.abc import Iterable

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.analysis.response.evaluation import response_metrics
from cellshift.analysis.response.targets import PseudobulkDesign


def experimental_error(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    control: str,
    batch_key: str | None = None,
    layer: str | None = None,
    exclude: Iterable[str] = (),
    n_bootstrap: int = 20,
    seed: int = 0,
) -> pd.DataFrame:
    """Bootstrap estimate of each perturbation's measurement error (see the module docstring).

    Parameters
    ----------
    adata
        Cells x genes with raw counts.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    batch_key
        ``obs`` column with the batch (gem group); ``None``: one batch.
    layer
        Layer holding the counts; ``None`` uses ``X``.
    exclude
        Labels neither scored nor used as controls.
    n_bootstrap
        Number of bootstrap draws.
    seed
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        One row per perturbation (index = label): mean ``l2``, ``pearson`` and ``mse`` over draws.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    design = PseudobulkDesign(
        adata, perturbation_key=perturbation_key, control=control, batch_key=batch_key, layer=layer, exclude=exclude
    )
    measured = design.changes()
    rng = np.random.default_rng(seed)
    draws = [
        response_metrics(design.changes(design.bootstrap_multiplicity(rng)), measured)[["l2", "pearson", "mse"]]
        for _ in range(n_bootstrap)
    ]
    error = sum(draw.to_numpy() for draw in draws) / n_bootstrap
    return pd.DataFrame(error, index=pd.Index(design.perturbations, dtype=str), columns=["l2", "pearson", "mse"])
