"""Chunked reading of a cells x genes count matrix from an ``.h5ad`` file or an AnnData.

From a file, only ``obs``, ``var`` and the requested rows of ``X`` (or a layer) are read:
memory grows with the chunk size, not with the number of cells.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

from cellshift.data.checks import check_raw_counts


def float_counts(counts: sparse.spmatrix, *, in_place: bool = False) -> sparse.csr_matrix:
    """``counts`` as CSR float64 without explicit zeros.

    The caller's matrix is left alone (copied when it is CSR float64 already) unless
    ``in_place``, for a block the caller owns.
    """
    block = counts.tocsr().astype(np.float64, copy=False)
    if block is counts and not in_place:
        block = block.copy()
    block.eliminate_zeros()
    return block


class CountReader:
    """Row-chunk access to counts in ``X`` or a layer of an AnnData (in memory, backed or a path).

    Parameters
    ----------
    source
        An ``.h5ad`` path, or an AnnData (a backed AnnData is read through its file).
    layer
        Layer holding raw counts; ``None`` reads ``X``.
    """

    def __init__(self, source: str | os.PathLike | ad.AnnData, *, layer: str | None = None) -> None:
        self.layer = layer
        self._adata: ad.AnnData | None = None
        self._file: h5py.File | None = None
        if isinstance(source, ad.AnnData) and source.isbacked:
            source = source.filename
        if isinstance(source, ad.AnnData):
            self._adata = source
            self.path = None
            self.obs, self.var = source.obs, source.var
            self.layers = list(source.layers.keys())
        else:
            self.path = Path(source)
            if not self.path.exists():
                raise FileNotFoundError(f"input file {self.path} does not exist")
            try:
                self._file = h5py.File(self.path, "r")
                self.obs = ad.io.read_elem(self._file["obs"])
                self.var = ad.io.read_elem(self._file["var"])
            except (OSError, KeyError) as error:
                if self._file is not None:
                    self._file.close()
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise ValueError(
                    f"cannot read {self.path} as .h5ad (is it a complete AnnData file?): {reason}"
                ) from None
            self.layers = list(self._file["layers"].keys()) if "layers" in self._file else []
        if layer is not None and layer not in self.layers:
            raise KeyError(f"layer {layer!r} not found in {self.name}; available layers: {self.layers or 'none'}")
        self._matrix = self._open_matrix()

    @property
    def name(self) -> str:
        """The file path, or ``"AnnData"`` for an in-memory object."""
        return str(self.path) if self.path else "AnnData"

    @property
    def n_obs(self) -> int:
        """Number of cells."""
        return len(self.obs)

    @property
    def n_vars(self) -> int:
        """Number of genes."""
        return len(self.var)

    def _open_matrix(self):
        if self._adata is not None:
            return self._adata.X if self.layer is None else self._adata.layers[self.layer]
        element = self._file["X"] if self.layer is None else self._file["layers"][self.layer]
        if isinstance(element, h5py.Group):
            encoding = element.attrs.get("encoding-type", "")
            if encoding == "csc_matrix":
                raise ValueError(
                    f"{self.name} stores counts column-wise (CSC); reading cells in chunks needs CSR. "
                    "Convert once: adata.X = adata.X.tocsr(); adata.write_h5ad(path)"
                )
            return ad.io.sparse_dataset(element)
        return element

    def read_rows(self, start: int, stop: int, *, as_stored: bool = False) -> sparse.csr_matrix:
        """Counts of cells ``start:stop`` as CSR float64 (explicit zeros removed; :func:`float_counts`).

        ``as_stored``: CSR in the stored dtype, explicit zeros kept (for code that converts as it reads).
        """
        block = self._matrix[start:stop]
        block = sparse.csr_matrix(block) if not sparse.issparse(block) else block.tocsr()
        return block if as_stored else float_counts(block, in_place=True)  # the slice is this call's own

    def check_first_rows(self, n_rows: int) -> None:
        """Refuse an input whose first ``n_rows`` cells are not raw counts, before any long work.

        The steps that read the input check each block again as they read it, so a problem
        further in is refused too; this check makes the common case (a whole ``X`` normalised)
        fail at once.
        """
        where = f"X of {self.name}" if self.layer is None else f"layer {self.layer!r} of {self.name}"
        check_raw_counts(self.read_rows(0, min(n_rows, self.n_obs)).data, where=where, layers=self.layers)

    def chunks(self, chunk_size: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` row ranges covering all cells, ``chunk_size`` at a time."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        for start in range(0, self.n_obs, chunk_size):
            yield start, min(start + chunk_size, self.n_obs)

    def gene_names(self, gene_key: str | None = None) -> pd.Index:
        """Gene identifiers: the var index, or the var column ``gene_key``."""
        if gene_key is None:
            return self.var.index.astype(str)
        if gene_key not in self.var.columns:
            raise KeyError(f"var column {gene_key!r} not found in {self.name}; var columns: {list(self.var.columns)}")
        return pd.Index(self.var[gene_key].astype(str))

    def close(self) -> None:
        """Close the underlying file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None
