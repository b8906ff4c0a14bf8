"""Screen analysis: input checks, DEGs and knock-down, distances to control, splits, 0-DEG enrichment."""

from cellshift.analysis.degs import degs
from cellshift.analysis.enrichment import load_gene_set, zero_deg_enrichment
from cellshift.analysis.scoring import perturbation_distances, score_perturbation_pairs, score_perturbations
from cellshift.analysis.screen_input import Screen, get_embedding, validate_screen
from cellshift.analysis.split import PerturbationSplit, deg_counts, split_perturbations

__all__ = [
    "PerturbationSplit",
    "Screen",
    "deg_counts",
    "degs",
    "get_embedding",
    "load_gene_set",
    "perturbation_distances",
    "score_perturbation_pairs",
    "score_perturbations",
    "split_perturbations",
    "validate_screen",
    "zero_deg_enrichment",
]
