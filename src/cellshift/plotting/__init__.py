"""Figures (matplotlib, no pyplot state): each function returns a Figure and can save it as PNG atomically."""

from cellshift.plotting._deg_classes import deg_class_labels, deg_classes
from cellshift.plotting._save import png_bytes, save_png
from cellshift.plotting.screen import (
    control_null,
    distance_distributions,
    enrichment_pvalues,
    pair_distance_distributions,
)
from cellshift.plotting.umap import compute_umap, umap_compare_embeddings, umap_perturbed_vs_control

__all__ = [
    "compute_umap",
    "control_null",
    "deg_class_labels",
    "deg_classes",
    "distance_distributions",
    "enrichment_pvalues",
    "pair_distance_distributions",
    "png_bytes",
    "save_png",
    "umap_compare_embeddings",
    "umap_perturbed_vs_control",
]
