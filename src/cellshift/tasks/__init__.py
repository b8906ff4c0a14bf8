"""Downstream tasks of gene and cell embeddings: gene classification (dosage sensitivity)."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "GeneClassification": "gene_classification",
    "classify_genes": "gene_classification",
    "GeneLabels": "labels",
    "gene_labels": "labels",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
