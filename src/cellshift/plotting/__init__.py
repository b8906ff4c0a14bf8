"""Figures (matplotlib, no pyplot state): each function returns a Figure and can save it as PNG atomically."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "deg_class_labels": "_deg_classes",
    "deg_classes": "_deg_classes",
    "png_bytes": "_save",
    "save_png": "_save",
    "control_null": "screen",
    "distance_distributions": "screen",
    "enrichment_pvalues": "screen",
    "pair_distance_distributions": "screen",
    "responder_fractions": "responders",
    "compute_umap": "umap",
    "umap_compare_embeddings": "umap",
    "umap_perturbed_vs_control": "umap",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
