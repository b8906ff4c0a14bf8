"""Cell embeddings by name: the function that computes each one and the ``obsm`` key it writes.

======================  ==========================  ====================================
name                    ``obsm`` key                computed by
======================  ==========================  ====================================
``pca``                 ``X_pca``                   :func:`~cellshift.embed.embed_pca`
``hvg``                 ``X_hvg``                   :func:`~cellshift.embed.embed_hvg`
``scvi-linear``         ``X_scvi_linear``           :func:`~cellshift.embed.embed_scvi`
``scvi-5l``             ``X_scvi_5l``               :func:`~cellshift.embed.embed_scvi`
``model``               ``X_cellshift``             :func:`~cellshift.embed.embed_model`
``pretrained``          ``X_cellshift_pretrained``  :func:`~cellshift.embed.embed_model`
``finetuned``           ``X_cellshift_finetuned``   :func:`~cellshift.embed.embed_model`
======================  ==========================  ====================================

The three model embeddings differ only in their key: ``cellshift embed --method model`` writes
``X_cellshift``; a screen run keeps its pre-trained and fine-tuned models apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import anndata as ad

from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT, Bounds, CheckedSettings
from cellshift.embed.baselines import embed_hvg, embed_pca
from cellshift.embed.model_cells import embed_model
from cellshift.embed.scvi import embed_scvi

BASELINES = ("pca", "hvg", "scvi-linear", "scvi-5l")
"""The embeddings computed from the counts alone, without a model."""


@dataclass(frozen=True)
class EmbedOptions(CheckedSettings):
    """Options of the cell embeddings; each embedding reads the ones it needs.

    Attributes
    ----------
    layer
        Layer with the raw counts (default: ``X``); every embedding.
    seed, max_epochs, batch_key, accelerator
        scVI: seed, epoch budget (``None``: by data size), ``obs`` column of a technical batch,
        Lightning device (see :func:`~cellshift.embed.embed_scvi`).
    model
        Model directory of the model embeddings (``cellshift pretrain`` or ``finetune``).
    progress
        Show a progress bar (model embeddings).
    """

    layer: str | None = None
    seed: int = 0
    max_epochs: int | None = None
    batch_key: str | None = None
    accelerator: str = "auto"
    model: str | os.PathLike | None = None
    progress: bool = True

    BOUNDS: ClassVar[dict[str, Bounds]] = {"seed": NON_NEGATIVE_INT, "max_epochs": POSITIVE_INT}


@dataclass(frozen=True)
class CellEmbedding:
    """One cell embedding: its name, the ``obsm`` key it writes and the function that computes it.

    Attributes
    ----------
    name
        Name used by the command line and the screen pipeline.
    key
        ``obsm`` key written.
    compute
        ``compute(adata, key, options)`` writes ``adata.obsm[key]``.
    needs_model
        Whether it needs a model directory (``EmbedOptions.model``).
    """

    name: str
    key: str
    compute: Callable[[ad.AnnData, str, EmbedOptions], None]
    needs_model: bool = False


def _pca(adata: ad.AnnData, key: str, options: EmbedOptions) -> None:
    embed_pca(adata, layer=options.layer, key_added=key)


def _hvg(adata: ad.AnnData, key: str, options: EmbedOptions) -> None:
    embed_hvg(adata, layer=options.layer, key_added=key)


def _scvi(adata: ad.AnnData, key: str, options: EmbedOptions, *, variant: str) -> None:
    embed_scvi(
        adata,
        variant=variant,
        layer=options.layer,
        max_epochs=options.max_epochs,
        batch_key=options.batch_key,
        seed=options.seed,
        key_added=key,
        accelerator=options.accelerator,
    )


def _model(adata: ad.AnnData, key: str, options: EmbedOptions) -> None:
    if options.model is None:
        raise ValueError(f"the model embedding {key!r} needs a model directory (EmbedOptions.model)")
    embed_model(adata, options.model, layer=options.layer, key_added=key, progress=options.progress)


CELL_EMBEDDINGS: dict[str, CellEmbedding] = {
    embedding.name: embedding
    for embedding in (
        CellEmbedding("pca", "X_pca", _pca),
        CellEmbedding("hvg", "X_hvg", _hvg),
        CellEmbedding("scvi-linear", "X_scvi_linear", partial(_scvi, variant="linear")),
        CellEmbedding("scvi-5l", "X_scvi_5l", partial(_scvi, variant="5l")),
        CellEmbedding("model", "X_cellshift", _model, needs_model=True),
        CellEmbedding("pretrained", "X_cellshift_pretrained", _model, needs_model=True),
        CellEmbedding("finetuned", "X_cellshift_finetuned", _model, needs_model=True),
    )
}


def get_cell_embedding(name: str) -> CellEmbedding:
    """Return the registered cell embedding called ``name``.

    Raises
    ------
    ValueError
        If no embedding has that name; the message lists the valid names.
    """
    if name not in CELL_EMBEDDINGS:
        raise ValueError(f"unknown embedding {name!r}; valid embeddings: {', '.join(CELL_EMBEDDINGS)}")
    return CELL_EMBEDDINGS[name]


def add_cell_embedding(adata: ad.AnnData, name: str, options: EmbedOptions | None = None) -> str:
    """Compute the embedding called ``name`` into ``adata.obsm`` and return its key.

    Parameters
    ----------
    adata
        Cells x genes with raw counts.
    name
        A name of :data:`CELL_EMBEDDINGS`.
    options
        Options of the embedding (default: :class:`EmbedOptions` ``()``).

    Returns
    -------
    str
        The ``obsm`` key written (see the table of the module docstring). The embedding
        function may also write ``uns`` entries: ``uns['X_hvg']`` (the genes), ``uns['scvi'][key]``
        (scVI settings) and ``uns[key]`` (model embeddings).
    """
    embedding = get_cell_embedding(name)
    embedding.compute(adata, embedding.key, options or EmbedOptions())
    return embedding.key
