"""scVI embedding baselines: the posterior mean of a variational autoencoder fit to raw counts.

Two architectures, both with a zero-inflated negative binomial (ZINB) likelihood, dropout 0.1,
early stopping on the validation ELBO and the KL term warmed up linearly over the epoch budget:

- ``"linear"``: ``scvi.model.LinearSCVI`` (LDVAE, Svensson et al. 2020): one hidden encoder
  layer, and a decoder that is one linear layer from the latent space to the genes.
- ``"5l"``: ``scvi.model.SCVI`` (Lopez et al. 2018) with five hidden layers in the encoder and
  five in the decoder.

scvi-tools is an optional dependency: ``pip install 'cellshift[scvi]'``.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy import sparse

from cellshift.data.checks import check_raw_counts

MAX_LATENT = 300
DROPOUT_RATE = 0.1
GENE_LIKELIHOOD = "zinb"
EARLY_STOPPING_PATIENCE = 10


@dataclass(frozen=True)
class ScviVariant:
    """One scVI architecture: the scvi-tools model class and its number of hidden layers."""

    model: str
    n_layers: int


VARIANTS = {
    "linear": ScviVariant(model="LinearSCVI", n_layers=1),
    "5l": ScviVariant(model="SCVI", n_layers=5),
}


def default_n_latent(n_genes: int) -> int:
    """Latent size used when none is given: ``min(300, max(2, n_genes // 10))``.

    Zhao et al. 2025 use 300 latent dimensions, scaled down on small data: a latent space at
    least as wide as the gene panel would not compress anything, so at most one dimension per
    ten genes is used (29 on the 299-gene Papalexi panel).
    """
    return min(MAX_LATENT, max(2, n_genes // 10))


def default_max_epochs(n_cells: int) -> int:
    """Epoch budget used when none is given: about one million cells seen, ``clip(round(1e6 / n_cells), 10, 400)``.

    48 epochs for the 20,729-cell Papalexi screen, 10 for a million cells; early stopping may end
    training sooner.
    """
    return int(np.clip(round(1e6 / max(n_cells, 1)), 10, 400))


def embed_scvi(
    adata: ad.AnnData,
    *,
    variant: str = "linear",
    layer: str | None = None,
    n_latent: int | None = None,
    n_hidden: int = 128,
    max_epochs: int | None = None,
    batch_size: int = 512,
    batch_key: str | None = None,
    seed: int = 0,
    key_added: str | None = None,
    accelerator: str = "auto",
) -> None:
    """Embed cells by the posterior mean of an scVI model trained on their raw counts.

    The model is fit on a private copy of the counts (``adata`` gets no scvi-tools registration
    columns), with 10% of the cells held out for early stopping (patience 10 epochs on the
    validation ELBO). The seed fixes the weights, the train/validation split and the batch order:
    the same seed gives the same embedding on CPU. The caller's global random states are restored.

    Parameters
    ----------
    adata
        Cells x genes with raw counts (non-negative integers) in ``X`` or ``layers[layer]``.
    variant
        ``"linear"`` (LinearSCVI: one encoder layer, linear decoder) or ``"5l"`` (SCVI with five
        hidden encoder and decoder layers).
    layer
        Layer holding the counts; ``None`` uses ``X``.
    n_latent
        Latent dimensions; ``None`` uses :func:`default_n_latent` (300, fewer on small panels).
    n_hidden
        Units per hidden layer.
    max_epochs
        Most passes over the data; ``None`` uses :func:`default_max_epochs`.
    batch_size
        Cells per gradient step and per inference batch.
    batch_key
        ``obs`` column with a technical batch to condition on (e.g. ``"bio_rep"``); ``None``: one batch.
    seed
        Seed of ``scvi.settings.seed``.
    key_added
        Key in ``obsm``; defaults to ``"X_scvi_linear"`` or ``"X_scvi_5l"``.
    accelerator
        Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``, ...); training uses one device.

    Returns
    -------
    None
        Writes ``adata.obsm[key]`` (cells x latent, float32) and ``adata.uns['scvi'][key]``
        (the settings, the epochs trained and the last validation ELBO).
    """
    key = key_added or f"X_scvi_{variant}"
    epochs = default_max_epochs(adata.n_obs) if max_epochs is None else max_epochs
    if epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {epochs}")
    scvi = _import_scvi()
    with _quiet_lightning(), _seeded(scvi, seed):
        model = scvi_model(
            adata, variant=variant, layer=layer, n_latent=n_latent, n_hidden=n_hidden, batch_key=batch_key
        )
        model.train(
            max_epochs=epochs,
            accelerator=accelerator,
            devices=1,
            batch_size=batch_size,
            early_stopping=True,
            early_stopping_patience=EARLY_STOPPING_PATIENCE,
            plan_kwargs={"n_epochs_kl_warmup": epochs},
            enable_progress_bar=False,
        )
        latent = np.asarray(model.get_latent_representation(batch_size=batch_size), dtype=np.float32)
    if not np.isfinite(latent).all():
        raise ValueError(
            f"scVI ({variant}) produced non-finite latent values; training diverged. Try another seed, a smaller "
            "batch_size or fewer max_epochs."
        )
    adata.obsm[key] = latent
    spec = VARIANTS[variant]
    settings = {
        "variant": variant,
        "model": spec.model,
        "n_layers": spec.n_layers,
        "n_hidden": n_hidden,
        "n_latent": latent.shape[1],
        "gene_likelihood": GENE_LIKELIHOOD,
        "dropout_rate": DROPOUT_RATE,
        "max_epochs": epochs,
        "batch_size": batch_size,
        "early_stopping_patience": EARLY_STOPPING_PATIENCE,
        "seed": seed,
        "layer": layer or "X",
        "scvi_version": scvi.__version__,
        **_training_summary(model),
    }
    if batch_key is not None:
        settings["batch_key"] = batch_key
    records = adata.uns.get("scvi", {})
    adata.uns["scvi"] = {**records, key: settings}


def scvi_model(
    adata: ad.AnnData,
    *,
    variant: str = "linear",
    layer: str | None = None,
    n_latent: int | None = None,
    n_hidden: int = 128,
    batch_key: str | None = None,
):
    """Build an untrained scvi-tools model of one :data:`VARIANTS` architecture on a private copy of the counts.

    The counts are checked (raw, no empty cell) and copied into a new AnnData holding only them
    and ``batch_key``, so ``adata`` gets no scvi-tools registration columns. Weights are drawn from
    torch's global generator: seed it first (``scvi.settings.seed``) for a reproducible model.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` or ``layers[layer]``.
    variant
        ``"linear"`` or ``"5l"``.
    layer
        Layer holding the counts; ``None`` uses ``X``.
    n_latent
        Latent dimensions; ``None`` uses :func:`default_n_latent`.
    n_hidden
        Units per hidden layer.
    batch_key
        ``obs`` column with a technical batch; ``None``: one batch.

    Returns
    -------
    scvi.model.LinearSCVI or scvi.model.SCVI
        The model, ZINB likelihood, dropout 0.1, ready for ``train()``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown scVI variant {variant!r}; choose one of {sorted(VARIANTS)}")
    scvi = _import_scvi()
    spec = VARIANTS[variant]
    counts = _checked_counts(adata, layer)
    obs = pd.DataFrame(index=adata.obs_names.copy())
    if batch_key is not None:
        if batch_key not in adata.obs:
            raise KeyError(f"batch_key {batch_key!r} is not an obs column; columns: {list(adata.obs.columns)}")
        obs[batch_key] = adata.obs[batch_key].astype(str).to_numpy()
    latent_size = default_n_latent(adata.n_vars) if n_latent is None else n_latent
    if latent_size < 1:
        raise ValueError(f"n_latent must be >= 1, got {latent_size}")
    data = ad.AnnData(X=counts, obs=obs)
    model_class = getattr(scvi.model, spec.model)
    model_class.setup_anndata(data, batch_key=batch_key)
    return model_class(
        data,
        n_hidden=n_hidden,
        n_latent=latent_size,
        n_layers=spec.n_layers,
        dropout_rate=DROPOUT_RATE,
        gene_likelihood=GENE_LIKELIHOOD,
    )


def _import_scvi():
    try:
        import scvi
    except ImportError as error:
        raise ImportError(
            "the scVI embeddings need scvi-tools, an optional dependency: pip install 'cellshift[scvi]'"
        ) from error
    return scvi


def _checked_counts(adata: ad.AnnData, layer: str | None) -> sparse.csr_matrix:
    """The counts as float32 CSR, after checking they are raw counts and that no cell is empty."""
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; layers: {list(adata.layers)} (None uses X)")
    counts = adata.X if layer is None else adata.layers[layer]
    counts = sparse.csr_matrix(counts, dtype=np.float32, copy=True)
    where = "X" if layer is None else f"layers[{layer!r}]"
    check_raw_counts(counts.data, where=where, layers=list(adata.layers))
    empty = np.flatnonzero(np.asarray(counts.sum(axis=1)).ravel() == 0)
    if empty.size:
        raise ValueError(
            f"{empty.size} cells have no counts (e.g. {adata.obs_names[empty[0]]!r}); scVI needs a library size > 0. "
            "Remove them first, e.g. sc.pp.filter_cells(adata, min_counts=1)."
        )
    return counts


def _training_summary(model) -> dict[str, float | int]:
    """Epochs trained and the last validation ELBO, from the model's training history."""
    history = model.history
    summary: dict[str, float | int] = {"epochs_trained": len(history["elbo_train"])}
    if "elbo_validation" in history:
        summary["elbo_validation"] = float(history["elbo_validation"].iloc[-1, 0])
    return summary


@contextmanager
def _seeded(scvi, seed: int) -> Iterator[None]:
    """Seed scvi-tools (torch, numpy, random) for the block, then restore the caller's random states."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
        scvi.settings.seed = seed
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-fit info lines (seed, devices, tips) and two harmless warnings for the block.

    The warnings are Lightning's note that an epoch has fewer batches than its logging interval
    (small data) and its ``LeafSpec`` deprecation notice under recent torch.
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The number of training batches")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*is deprecated")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
