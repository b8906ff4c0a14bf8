"""Log-normalised expression of a corpus, streamed in blocks of cells (for co-expression).

A corpus is any of

- an ``.h5ad`` file of raw counts (``X`` or a layer), read ``chunk_size`` rows at a time by
  :class:`cellshift.data.CountReader`; values ``x_cg = log(1 + 1e4 c_cg / sum_g' c_cg')``;
- a directory of such files (every ``*.h5ad`` in it, in name order);
- a tokenised corpus directory from ``cellshift tokenize --values``: its ``values`` column already
  holds ``log1p(1e4 c_cg / T_c)`` of the genes kept per cell (the top ``max_length`` by rank), so
  genes beyond a cell's token limit count as not expressed in it.

No cells x genes dense matrix is formed: each block is a sparse CSR matrix of the block's cells.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.data import CountReader, check_raw_counts
from cellshift.tokenize.corpus import METADATA_FILE, Corpus

TARGET_SUM = 1e4


def corpus_files(path: str | os.PathLike) -> list[Path]:
    """The inputs of a corpus path: itself (a file or tokenised corpus) or the ``.h5ad`` files in a folder.

    Parameters
    ----------
    path
        An ``.h5ad`` file, a folder of them, or a tokenised corpus directory.

    Returns
    -------
    list of pathlib.Path
        One entry per input.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"co-expression corpus {path} does not exist")
    if path.is_file() or (path / METADATA_FILE).exists():
        return [path]
    files = sorted(path.glob("*.h5ad"))
    if not files:
        raise ValueError(f"{path} holds neither .h5ad files nor a tokenised corpus ({METADATA_FILE})")
    return files


def expression_blocks(
    path: str | os.PathLike, *, chunk_size: int = 2048, layer: str | None = None, gene_key: str | None = None
) -> Iterator[tuple[pd.Index, sparse.csr_matrix]]:
    """Yield ``(genes, block)``: gene names and a cells x genes CSR block of log-normalised values.

    Parameters
    ----------
    path
        An ``.h5ad`` file, a folder of them, or a tokenised corpus directory (see the module docstring).
    chunk_size
        Cells per block.
    layer
        Layer of the ``.h5ad`` files holding raw counts (``None``: ``X``).
    gene_key
        ``var`` column of the ``.h5ad`` files holding gene names (``None``: the index).

    Yields
    ------
    tuple of (pandas.Index, scipy.sparse.csr_matrix)
        The block's gene names (columns) and its values (no explicit zeros).
    """
    for source in corpus_files(path):
        if source.is_dir():  # a tokenised corpus (corpus_files lists the files of other folders)
            yield from _corpus_blocks(Corpus.open(source), chunk_size)
        else:
            yield from _count_blocks(source, chunk_size, layer, gene_key)


def _count_blocks(path: Path, chunk_size: int, layer: str | None, gene_key: str | None):
    reader = CountReader(path, layer=layer)
    try:
        genes = reader.gene_names(gene_key)
        for start, stop in reader.chunks(chunk_size):
            counts = reader.read_rows(start, stop)
            check_raw_counts(counts.data, where=f"counts of {reader.name}", layers=reader.layers)
            totals = np.asarray(counts.sum(axis=1)).ravel()
            scale = TARGET_SUM / np.where(totals > 0, totals, 1.0)
            values = sparse.diags(scale) @ counts
            values.data = np.log1p(values.data)
            yield genes, values.tocsr()
    finally:
        reader.close()


def _corpus_blocks(corpus: Corpus, chunk_size: int):
    genes = pd.Index(corpus.gene_table().tokens, dtype=str)
    dataset = corpus.dataset()
    if "values" not in dataset.column_names:
        raise ValueError(
            f"tokenised corpus {corpus.path} has no values column; co-expression needs expression values: "
            "tokenise with --values (values=True) or give the raw-count .h5ad files"
        )
    dataset = dataset.select_columns(["input_ids", "values"])
    for start in range(0, len(dataset), chunk_size):
        rows = dataset[start : start + chunk_size]
        lengths = [len(ids) for ids in rows["input_ids"]]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate(rows["input_ids"]).astype(np.int64)
        data = np.concatenate(rows["values"]).astype(np.float64)
        block = sparse.csr_matrix((data, indices, indptr), shape=(len(lengths), len(genes)))
        block.eliminate_zeros()  # <cls> / <eos> carry value 0
        yield genes, block
