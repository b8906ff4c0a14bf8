"""Models that ship inside the package, loadable by name wherever a model directory is asked for.

``cellshift-small-bundled``: the ``small`` preset (4 layers, hidden 128) pre-trained by this
project on the bundled corpora (Kang PBMCs, Bastidas-Ponce mouse pancreas, Baron human + mouse
pancreas), the best arm of ``benchmarks/ablation.py``; its training settings and evaluation are
in the model card (``MODEL_CARD.md``) beside the weights.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGED_MODELS_DIR = Path(__file__).resolve().parent / "datasets" / "files" / "models"
PACKAGED_MODELS = ("cellshift-small-bundled",)


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """The directory of a packaged model given by name, or ``name_or_path`` itself as a path.

    A name of :data:`PACKAGED_MODELS` wins only when no directory of that name exists where it is
    given, so a user's own ``./cellshift-small-bundled`` folder is still read as a path.
    """
    text = str(name_or_path)
    if text in PACKAGED_MODELS and not Path(text).exists():
        return PACKAGED_MODELS_DIR / text
    return Path(name_or_path)


def model_argument(text: str) -> str:
    """An argparse ``type`` for model options: a packaged model's name becomes its directory."""
    return str(resolve_model(text))
