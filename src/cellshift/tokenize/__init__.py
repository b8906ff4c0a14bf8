"""Rank-value encoding of raw-count cells into an Arrow corpus (DESIGN §2.1)."""

from cellshift.tokenize._tokenize import tokenize
from cellshift.tokenize.corpus import Corpus, load_corpus
from cellshift.tokenize.medians import compute_gene_medians
from cellshift.tokenize.rank import EncodedCells, rank_value_encode

__all__ = ["Corpus", "EncodedCells", "compute_gene_medians", "load_corpus", "rank_value_encode", "tokenize"]
