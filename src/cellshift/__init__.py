"""cellshift: single-cell foundation models for genetic perturbation screens."""

__version__ = "0.1.0"
