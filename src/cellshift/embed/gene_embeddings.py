"""Gene embeddings for response prediction (Cole et al. 2025): tables of genes x dimensions.

Each method maps gene names to vectors; genes a method knows nothing about have no row, so a
caller can count what an embedding covers. :func:`gene_embedding` runs one method by name
(registry :data:`GENE_EMBEDDINGS`):

- ``"pca"``: gene loadings of a PCA, either of log-normalised control cells (Cole et al.'s PCA
  baseline) or, when no cells exist, of a perturbations x genes table of changes (pass only the
  training perturbations: test rows would leak into the embedding);
- ``"grn"``: spectral embedding of the bundled TF-target networks (DoRothEA A-C + TRRUST);
- ``"family"``: spectral embedding of the HGNC gene groups (gene x group membership graph);
- ``"random"``: standard normal vectors, a floor any real embedding has to beat;
- ``"model"``: a foundation model's contextual gene embeddings averaged over cells
  (:func:`cellshift.embed.model_genes.model_gene_embeddings`), keyed by human Ensembl ID.

The prior-knowledge embeddings are the regularised spectral embeddings of
:mod:`cellshift.priors.spectral` (DI-SIM, Rohe, Qin & Yu 2016) of the bundled tables, keyed by
gene symbol; ``cellshift priors build`` makes prior vectors keyed by Ensembl ID from the same
tables and more (:mod:`cellshift.priors`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

from cellshift.data import log_normalized, resolve_to_human_ensembl
from cellshift.datasets import gene_families, grn
from cellshift.embed.model_genes import model_gene_embeddings
from cellshift.priors.spectral import bipartite_spectral_embedding, directed_spectral_embedding


@dataclass(frozen=True)
class EmbeddingInputs:
    """What the gene-embedding methods may need besides the gene names.

    Attributes
    ----------
    cells
        Raw-count cells (e.g. the control cells of a screen) for ``pca`` and ``model``.
    changes
        Perturbations x genes table of changes, for ``pca`` when there are no cells
        (training perturbations only).
    model_dir
        Model checkpoint directory, for ``model``.
    model_layer
        Hidden layer whose states are averaged, for ``model`` (``-1``: the last).
    n_components
        Dimension of ``pca``, ``grn``, ``family`` and ``random`` (fewer when the data has fewer).
    seed
        Seed of ``random``.
    """

    cells: ad.AnnData | None = None
    changes: pd.DataFrame | None = None
    model_dir: str | None = None
    model_layer: int = -1
    n_components: int = 64
    seed: int = 0


def gene_embedding(method: str, genes: Sequence[str], **inputs) -> pd.DataFrame:
    """Embed ``genes`` with a registered method; genes the method does not cover have no row.

    Parameters
    ----------
    method
        One of :data:`GENE_EMBEDDINGS`: ``pca``, ``grn``, ``family``, ``random``, ``model``.
    genes
        Gene names to embed (perturbation labels: human symbols, or Ensembl IDs for ``model``).
    **inputs
        Fields of :class:`EmbeddingInputs` (``cells``, ``changes``, ``model_dir``,
        ``model_layer``, ``n_components``, ``seed``).

    Returns
    -------
    pandas.DataFrame
        The covered genes (first occurrence, input order) x dimensions, float64.
    """
    if method not in GENE_EMBEDDINGS:
        raise ValueError(f"unknown gene embedding {method!r}; choose from {', '.join(GENE_EMBEDDINGS)}")
    wanted = list(dict.fromkeys(map(str, genes)))
    table = GENE_EMBEDDINGS[method](wanted, EmbeddingInputs(**inputs))
    return table.loc[[g for g in wanted if g in table.index]].astype(np.float64)


def pca_gene_embedding(
    data: ad.AnnData | pd.DataFrame, *, n_components: int = 64, layer: str | None = None
) -> pd.DataFrame:
    """Gene loadings of a PCA: each gene's weights on the top principal components.

    An AnnData holds raw-count cells and is log-normalised first
    (``log(1 + 1e4 c_ig / sum_g' c_ig')``); a DataFrame holds perturbations x genes changes, used
    as they are, with missing values (NaN) replaced by the gene's mean over the other rows. Genes
    are centred, not scaled; scanpy computes the PCA (ARPACK, ``random_state=0``) with
    ``min(n_components, n_rows - 1, n_genes - 1)`` components.

    Parameters
    ----------
    data
        Raw-count cells x genes, or a perturbations x genes table of changes.
    n_components
        Number of components asked for.
    layer
        Layer holding the counts of an AnnData; ``None`` uses ``X``.

    Returns
    -------
    pandas.DataFrame
        Genes x components (``varm['PCs']`` of scanpy), indexed by gene name.
    """
    if isinstance(data, ad.AnnData):
        matrix = log_normalized(data, layer=layer)
    else:
        values = data.to_numpy(dtype=np.float64, copy=True)
        values[~np.isfinite(values)] = np.nan
        gene_means = np.nan_to_num(pd.DataFrame(values).mean(axis=0).to_numpy())  # 0 where a gene has no value
        values = np.where(np.isnan(values), gene_means[None, :], values)
        matrix = ad.AnnData(values, var=pd.DataFrame(index=data.columns.astype(str)))
    n_used = min(n_components, matrix.n_obs - 1, matrix.n_vars - 1)
    if n_used < 1:
        shape = f"{matrix.n_obs} x {matrix.n_vars}"
        raise ValueError(f"a PCA gene embedding needs at least 2 rows and 2 genes, got {shape}")
    sc.pp.pca(matrix, n_comps=n_used, random_state=0, svd_solver="arpack")
    return _frame(matrix.varm["PCs"], matrix.var_names)


def grn_gene_embedding(
    *,
    networks: Sequence[str] = ("dorothea_hs", "trrust"),
    confidence: str = "ABC",
    n_components: int = 64,
) -> pd.DataFrame:
    """Spectral embedding of the union of bundled TF -> target networks.

    A gene's vector is ``[its row as a regulator (U), its row as a target (V)]`` from
    :func:`cellshift.priors.spectral.directed_spectral_embedding` with ``n_components // 2``
    singular vectors, zeros for a role the gene does not have (DI-SIM). Modes of regulation are ignored.

    Parameters
    ----------
    networks
        Names for :func:`cellshift.datasets.grn` (``dorothea_hs``, ``dorothea_mm``, ``trrust``).
    confidence
        DoRothEA confidence levels kept (A most, E least confident; ``"ABC"`` is DoRothEA's
        recommendation for most uses; E alone adds 425k mostly inferred edges).
    n_components
        Dimension (``2 * (n_components // 2)``).

    Returns
    -------
    pandas.DataFrame
        Genes (symbols) x components.
    """
    tables = []
    for name in networks:
        table = grn(name)
        if "confidence" in table.columns:
            table = table[table["confidence"].isin(list(confidence))]
        tables.append(table.rename(columns={"tf": "source"})[["source", "target"]])
    return directed_spectral_embedding(pd.concat(tables), n_components=n_components)


def family_gene_embedding(*, n_components: int = 64) -> pd.DataFrame:
    """Spectral embedding of the HGNC gene groups: the gene x group membership graph.

    The bundled HGNC group table (joined to symbols through the bundled HGNC ID table, see
    :func:`cellshift.datasets.gene_families`) gives one edge per gene-group membership; a gene's
    vector is its row of ``U`` in :func:`cellshift.priors.spectral.bipartite_spectral_embedding`.

    Parameters
    ----------
    n_components
        Dimension.

    Returns
    -------
    pandas.DataFrame
        Genes (symbols) x components.
    """
    links = gene_families()
    edges = pd.DataFrame({"source": links["symbol"], "target": links["family_id"]})
    genes, _ = bipartite_spectral_embedding(edges, n_components=n_components)
    return genes


def random_gene_embedding(genes: Sequence[str], *, n_components: int = 64, seed: int = 0) -> pd.DataFrame:
    """Independent standard normal vectors, one per distinct gene (in order of first appearance).

    Parameters
    ----------
    genes
        Gene names.
    n_components
        Dimension.
    seed
        Seed of the generator.

    Returns
    -------
    pandas.DataFrame
        Genes x components.
    """
    names = pd.Index(list(dict.fromkeys(map(str, genes))))
    values = np.random.default_rng(seed).standard_normal((len(names), n_components))
    return _frame(values, names)


def model_gene_embedding(
    model_dir: str,
    cells: ad.AnnData,
    genes: Sequence[str],
    *,
    layer: int = -1,
    species: str = "human",
    max_cells: int | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """A model's contextual gene embeddings (mean over cells), re-keyed by the given gene names.

    Cole et al.: the embedding of gene ``g`` is the mean over cells containing ``g`` of the hidden
    state (layer ``layer``) at ``g``'s token, computed by
    :func:`cellshift.embed.model_genes.model_gene_embeddings` (keyed by human Ensembl ID); the
    gene names are mapped to Ensembl IDs by :func:`cellshift.data.resolve_to_human_ensembl`
    (symbols through :func:`cellshift.data.symbols_to_ensembl`).

    Parameters
    ----------
    model_dir
        Checkpoint directory of the model.
    cells
        Raw-count cells whose contexts are averaged (any genes; the model's gene table tokenises them).
    genes
        Gene names to embed (symbols or Ensembl IDs).
    layer
        Hidden layer (``-1``: the last).
    species
        Species of symbol ``genes`` (mouse symbols go through one-to-one orthologs).
    max_cells, batch_size
        Passed on when given (the model function's defaults otherwise).

    Returns
    -------
    pandas.DataFrame
        The given genes with an embedding x model dimensions.
    """
    given = {"max_cells": max_cells, "batch_size": batch_size}
    options = {name: value for name, value in given.items() if value is not None}
    table = model_gene_embeddings(model_dir, cells, layer=layer, **options)
    mapping, _ = resolve_to_human_ensembl(list(genes), species=species)
    found = [(g, e) for g, e in zip(mapping.source, mapping.target, strict=True) if e is not None and e in table.index]
    values = table.loc[[e for _, e in found]].to_numpy(dtype=np.float64)
    return _frame(values, pd.Index([g for g, _ in found]))


def _frame(values: np.ndarray, index: Sequence[str]) -> pd.DataFrame:
    values = np.asarray(values, dtype=np.float64)
    return pd.DataFrame(values, index=pd.Index(index, dtype=str), columns=[f"dim{k}" for k in range(values.shape[1])])


def _pca(genes: list[str], inputs: EmbeddingInputs) -> pd.DataFrame:
    if inputs.cells is not None:
        return pca_gene_embedding(inputs.cells, n_components=inputs.n_components)
    if inputs.changes is not None:
        return pca_gene_embedding(inputs.changes, n_components=inputs.n_components)
    raise ValueError("the pca gene embedding needs control cells (cells=) or training changes (changes=)")


def _model(genes: list[str], inputs: EmbeddingInputs) -> pd.DataFrame:
    if inputs.model_dir is None or inputs.cells is None:
        raise ValueError(
            "the model gene embedding needs a checkpoint (model_dir=, --model) and cells to average over "
            "(cells=: the screen's control cells, or --model-cells with --deltas)"
        )
    return model_gene_embedding(inputs.model_dir, inputs.cells, genes, layer=inputs.model_layer)


GENE_EMBEDDINGS: dict[str, Callable[[list[str], EmbeddingInputs], pd.DataFrame]] = {
    "pca": _pca,
    "grn": lambda genes, inputs: grn_gene_embedding(n_components=inputs.n_components),
    "family": lambda genes, inputs: family_gene_embedding(n_components=inputs.n_components),
    "random": lambda genes, inputs: random_gene_embedding(genes, n_components=inputs.n_components, seed=inputs.seed),
    "model": _model,
}
