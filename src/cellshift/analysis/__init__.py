"""Screen analysis: input checks, DEGs and knock-down, distances of perturbations to control."""

from cellshift.analysis.degs import degs
from cellshift.analysis.scoring import perturbation_distances, score_perturbations
from cellshift.analysis.screen_input import Screen, get_embedding, validate_screen

__all__ = ["Screen", "degs", "get_embedding", "perturbation_distances", "score_perturbations", "validate_screen"]
