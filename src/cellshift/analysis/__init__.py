"""Screen analysis: input checks, DEGs and knock-down, distances to control, splits, 0-DEG enrichment."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "degs": "differential",
    "load_gene_set": "enrichment",
    "zero_deg_enrichment": "enrichment",
    "perturbation_distances": "scoring",
    "score_perturbation_pairs": "pair_scoring",
    "score_perturbations": "scoring",
    "score_cells": "cell_scores",
    "responder_knockdown": "responders",
    "Screen": "screen_input",
    "get_embedding": "screen_input",
    "validate_screen": "screen_input",
    "PerturbationSplit": "split",
    "deg_counts": "split",
    "split_perturbations": "split",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
