"""Downstream tasks of the foundation model: cell-type annotation, gene classification, in-silico perturbation, GRNs."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "AnnotationResult": "annotation",
    "AnnotationSettings": "annotation",
    "annotate": "annotation",
    "CLASSIFIERS": "classifiers",
    "load_classifier": "classifiers",
    "align_to_reference": "gene_alignment",
    "GeneClassification": "gene_classification",
    "classify_genes": "gene_classification",
    "GeneLabels": "gene_label_table",
    "gene_labels": "gene_label_table",
    "GrnResult": "grn_inference",
    "GrnSettings": "grn_inference",
    "infer_grn": "grn_inference",
    "InsilicoResult": "insilico",
    "InsilicoSettings": "insilico",
    "insilico_perturb": "insilico",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
