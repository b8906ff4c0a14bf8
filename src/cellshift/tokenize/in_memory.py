"""Tokenise the cells of an AnnData in memory, with a model's gene table (no corpus on disk).

Used to embed a screen with a pre-trained model: every cell is encoded exactly as
:func:`cellshift.tokenize.tokenize` would encode it, and none is dropped silently.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
from scipy import sparse

from cellshift.data import detect_species
from cellshift.data.gene_table import GeneTable
from cellshift.tokenize.encode import TokenizeSettings, encode_block
from cellshift.tokenize.plan import plan_genes
from cellshift.tokenize.rank import EncodedCells


def encode_anndata(
    adata: ad.AnnData,
    gene_table: GeneTable,
    *,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    max_length: int = 2048,
    cls_eos_tokens: bool = False,
    chunk_size: int = 4096,
) -> tuple[EncodedCells, str]:
    """Rank-value encode every cell of ``adata`` (raw counts) with ``gene_table``.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` or ``layer``.
    gene_table
        The model's vocabulary and medians (``model.gene_table``).
    layer, gene_key, species
        Where the counts are, the var column of gene IDs or symbols (default: var index), and
        the species (default: detected from the genes).
    max_length
        Tokens kept per cell, special tokens included.
    cls_eos_tokens
        Start each cell with ``<cls>`` and end it with ``<eos>`` (as the model's training corpora).
    chunk_size
        Cells encoded at a time.

    Returns
    -------
    The encoded cells in ``adata``'s order and the species.

    Raises
    ------
    ValueError
        When a cell expresses no gene of the vocabulary: it could not be embedded, so the error
        names how many and which cells, rather than dropping them.
    """
    genes = list(map(str, adata.var[gene_key] if gene_key is not None else adata.var_names))
    species = species or detect_species(genes)
    plan = plan_genes(genes, gene_table, species=species, source="the AnnData")
    special = gene_table.special_tokens
    if cls_eos_tokens and not {"<cls>", "<eos>"} <= set(special):
        raise ValueError(f"gene table {gene_table.name!r} has no <cls>/<eos> tokens to start and end cells with")
    special_ids = (special["<cls>"], special["<eos>"]) if cls_eos_tokens else None
    settings = TokenizeSettings(max_length=max_length, special_tokens=special_ids is not None, min_genes=0, values=True)
    counts = adata.layers[layer] if layer is not None else adata.X
    input_ids, values, offsets = [], [], [np.zeros(1, dtype=np.int64)]
    for start in range(0, adata.n_obs, chunk_size):
        block = sparse.csr_matrix(counts[start : start + chunk_size], dtype=np.float64)
        encoded = encode_block(block, plan, settings, special_ids=special_ids, where="the AnnData")
        if len(encoded.kept_rows) < block.shape[0]:
            missing = np.setdiff1d(np.arange(block.shape[0]), encoded.kept_rows) + start
            raise ValueError(
                f"{len(missing)} cells (e.g. {list(adata.obs_names[missing[:3]])}) express no gene of the model's "
                "vocabulary or have no counts; remove them before embedding"
            )
        input_ids.append(encoded.cells.input_ids)
        values.append(encoded.cells.values)
        offsets.append(encoded.cells.offsets[1:] + offsets[-1][-1])
    cells = EncodedCells(np.concatenate(input_ids), np.concatenate(values), np.concatenate(offsets))
    return cells, species
