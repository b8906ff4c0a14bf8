"""Downstream tasks of the foundation model: gene classification."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "GeneClassification": "gene_classification",
    "classify_genes": "gene_classification",
    "GeneLabels": "gene_label_table",
    "gene_labels": "gene_label_table",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
