"""Reading count matrices, gene identifiers, orthologs, gene tables and input checks."""

from cellshift.data.checks import check_raw_counts
from cellshift.data.gene_table import GeneTable
from cellshift.data.genes import (
    GeneMapping,
    detect_id_type,
    detect_species,
    ensembl_to_symbols,
    human_to_mouse,
    mouse_to_human,
    resolve_to_human_ensembl,
    symbols_to_ensembl,
)
from cellshift.data.reading import CountReader

__all__ = [
    "CountReader",
    "GeneMapping",
    "GeneTable",
    "check_raw_counts",
    "detect_id_type",
    "detect_species",
    "ensembl_to_symbols",
    "human_to_mouse",
    "mouse_to_human",
    "resolve_to_human_ensembl",
    "symbols_to_ensembl",
]
