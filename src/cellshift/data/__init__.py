"""Reading count matrices, gene identifiers, orthologs, gene tables, normalisation and input checks.

The lowest layer: numpy, pandas, AnnData and scanpy only (never torch). Submodules load on first use.
"""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "check_raw_counts": "checks",
    "GeneTable": "gene_table",
    "GeneMapping": "genes",
    "detect_id_type": "genes",
    "detect_species": "genes",
    "ensembl_to_symbols": "genes",
    "human_to_mouse": "genes",
    "mouse_to_human": "genes",
    "resolve_to_human_ensembl": "genes",
    "symbols_to_ensembl": "genes",
    "canonical_mouse_symbols": "genes",
    "log_normalized": "normalize",
    "CountReader": "reading",
    "VOCABULARIES": "vocabulary",
    "human_keys": "vocabulary",
    "vocabulary_keys": "vocabulary",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
