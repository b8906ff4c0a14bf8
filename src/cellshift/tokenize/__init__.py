"""Rank-value encoding of raw-count cells into an Arrow corpus (Geneformer, Theodoris et al. 2023)."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "tokenize": "_tokenize",
    "Corpus": "corpus",
    "load_corpus": "corpus",
    "compute_gene_medians": "medians",
    "EncodedCells": "rank",
    "rank_value_encode": "rank",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
