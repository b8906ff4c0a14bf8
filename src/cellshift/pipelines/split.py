"""DEGs per perturbation, then the split by perturbation: the first steps of fine-tuning and of a screen run."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from cellshift.analysis.differential import degs as compute_degs
from cellshift.analysis.split import PerturbationSplit, split_perturbations
from cellshift.training.contrastive import SPLIT_FILE


@dataclass
class DegsAndSplit:
    """The DEGs of a screen and its split by perturbation.

    Attributes
    ----------
    degs
        One row per perturbation: ``perturbation, n_cells, n_degs, knockdown, ...``
        (:func:`cellshift.analysis.degs`; ``degs.csv`` of ``cellshift degs``).
    degs_per_gene
        One row per (perturbation, DEG); ``None`` when ``degs`` was given.
    split
        Train, test, 0-DEG and few-DEG perturbations and the control cells of each share.
    """

    degs: pd.DataFrame
    degs_per_gene: pd.DataFrame | None
    split: PerturbationSplit


def degs_and_split(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    control: str,
    min_cells: int = 20,
    exclude: Sequence[str] = (),
    layer: str | None = None,
    min_degs: int = 20,
    test_fraction: float = 0.2,
    seed: int = 0,
    degs: pd.DataFrame | None = None,
    split: PerturbationSplit | None = None,
) -> DegsAndSplit:
    """DEGs of every perturbation against control (unless given), then the split by perturbation (unless given).

    Parameters
    ----------
    adata
        The screen: cells x genes with raw counts, ``obs[perturbation_key]``.
    perturbation_key, control
        ``obs`` column of the perturbation labels and the label of control cells.
    min_cells, exclude
        Groups below ``min_cells`` cells get no DEGs; ``exclude`` labels are neither split nor controls.
    layer
        Layer with the raw counts (default: ``X``).
    min_degs, test_fraction, seed
        Settings of :func:`cellshift.analysis.split_perturbations`: DEGs a perturbation needs
        to be trained on, share of those held out as test perturbations, random seed.
    degs
        A DEG summary computed before (``degs.csv`` of ``cellshift degs``), used as it is.
    split
        A split made before (e.g. saved with a fine-tuned model), used as it is.

    Returns
    -------
    DegsAndSplit
        The DEG tables and the split.
    """
    degs_per_gene = None
    if degs is None:
        degs, degs_per_gene = compute_degs(
            adata,
            perturbation_key=perturbation_key,
            control=control,
            layer=layer,
            min_cells=min_cells,
            exclude=exclude,
        )
    if split is None:
        split = split_perturbations(
            adata,
            degs=degs,
            perturbation_key=perturbation_key,
            control=control,
            min_degs=min_degs,
            test_fraction=test_fraction,
            seed=seed,
            exclude=exclude,
        )
    return DegsAndSplit(degs, degs_per_gene, split)


def finetuned_split(model_dir: str | os.PathLike, adata: ad.AnnData, perturbation_key: str) -> PerturbationSplit:
    """The split saved with a fine-tuned model, checked against the screen.

    Parameters
    ----------
    model_dir
        Directory of a model fine-tuned by ``cellshift finetune`` (split in ``training/split.json``).
    adata
        The screen.
    perturbation_key
        ``obs`` column of the perturbation labels.

    Returns
    -------
    PerturbationSplit
        The split the model was fine-tuned with.

    Raises
    ------
    FileNotFoundError
        If the model directory has no saved split.
    ValueError
        If the split names perturbations that are not in the screen.
    """
    path = Path(model_dir) / "training" / SPLIT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: without the split saved at fine-tuning the held-out perturbations of {model_dir} are "
            "unknown; fine-tune with `cellshift finetune` (it saves the split) or let `cellshift screen` fine-tune"
        )
    split = PerturbationSplit.load(path)
    labels = set(adata.obs[perturbation_key].astype(str))
    unknown = sorted(set(split.train + split.test + split.zero_deg) - labels)
    if unknown:
        raise ValueError(f"the split of {model_dir} names perturbations {unknown} that are not in this screen")
    return split
