"""On-target knock-down in responders and non-responders: the check of a per-cell responder call.

A cell called a responder by :func:`cellshift.analysis.score_cells` should have lost its target
gene; a non-responder (an escaper) should keep it. Per perturbation whose target gene is
measured, with ``n_ig = 1e4 c_ig / sum_g' c_ig'``:

``knockdown_responders = mean_responders(n_t) / mean_control(n_t)`` and the same for the
non-responders (1 = no knock-down, 0 = the target is gone).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.analysis.cell_scores import CONTROL, NON_RESPONDER, RESPONDER
from cellshift.analysis.differential import counts_per_10k, match_gene

KNOCKDOWN_COLUMNS = [
    "perturbation",
    "target",
    "n_responders",
    "n_non_responders",
    "knockdown_responders",
    "knockdown_non_responders",
]


def responder_knockdown(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    layer: str | None = None,
    key_added: str = "perturbation",
) -> pd.DataFrame:
    """Target expression of responders and non-responders relative to control cells.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (or ``layer``), with ``obs['{key_added}_response']`` from
        :func:`cellshift.analysis.score_cells`.
    perturbation_key
        ``obs`` column of the perturbation labels; a label is its target gene (matched as a
        symbol or Ensembl ID).
    layer
        Layer with the raw counts (default: ``X``).
    key_added
        The ``key_added`` of :func:`cellshift.analysis.score_cells`.

    Returns
    -------
    pandas.DataFrame
        One row per scored perturbation whose target is measured and expressed in controls:
        ``perturbation, target, n_responders, n_non_responders, knockdown_responders,
        knockdown_non_responders`` (NaN for a class without cells).
    """
    response = adata.obs[f"{key_added}_response"].astype(str).to_numpy()
    labels = adata.obs[perturbation_key].astype(str).to_numpy()
    scored = np.isin(response, [RESPONDER, NON_RESPONDER])
    normalized = counts_per_10k(adata, layer)
    rows = []
    for group in sorted(set(labels[scored])):
        target = match_gene(group, adata.var_names)
        if target is None:
            continue
        expression = normalized[:, adata.var_names.get_loc(target)].toarray().ravel()
        control_mean = expression[response == CONTROL].mean()
        if not control_mean > 0:
            continue
        cells = labels == group
        responders, others = cells & (response == RESPONDER), cells & (response == NON_RESPONDER)
        rows.append(
            {
                "perturbation": group,
                "target": target,
                "n_responders": int(responders.sum()),
                "n_non_responders": int(others.sum()),
                "knockdown_responders": _ratio(expression[responders], control_mean),
                "knockdown_non_responders": _ratio(expression[others], control_mean),
            }
        )
    return pd.DataFrame(rows, columns=KNOCKDOWN_COLUMNS)


def _ratio(values: np.ndarray, control_mean: float) -> float:
    """Mean of ``values`` over the control mean; NaN for no values."""
    return float(values.mean() / control_mean) if values.size else float("nan")
