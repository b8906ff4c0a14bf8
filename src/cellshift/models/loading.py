"""Loading the encoder of any saved cellshift model (pre-trained with heads, or fine-tuned)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from transformers.utils import logging as transformers_logging

from cellshift._io import check_model_dir
from cellshift.models.modeling import GENE_TABLE_FILE, CellshiftForMaskedGeneModeling, CellshiftModel


def load_encoder(model_dir: str | os.PathLike) -> CellshiftModel:
    """The encoder of a saved cellshift model, with its gene table.

    A pre-trained directory holds a :class:`CellshiftForMaskedGeneModeling` (its ``config.json``
    names that architecture): it is loaded whole and its encoder kept, so every weight is accounted
    for; a fine-tuned directory holds the encoder alone.
    """
    model_dir = check_model_dir(model_dir)
    architectures = json.loads((model_dir / "config.json").read_text()).get("architectures") or []
    with _quiet_loading():
        if CellshiftForMaskedGeneModeling.__name__ in architectures:
            full = CellshiftForMaskedGeneModeling.from_pretrained(model_dir)
            encoder, encoder.gene_table = full.cellshift, full.gene_table
        else:
            encoder = CellshiftModel.from_pretrained(model_dir)
    if encoder.gene_table is None:
        raise ValueError(f"{model_dir} has no gene table ({GENE_TABLE_FILE}); it cannot tokenise cells")
    return encoder


def load_pretrained(name_or_path: str | os.PathLike) -> CellshiftForMaskedGeneModeling:
    """A pre-trained model with its masked-gene head, by the name of a packaged model or a directory.

    Parameters
    ----------
    name_or_path
        A name of :data:`cellshift._pretrained.PACKAGED_MODELS` (e.g. ``"cellshift-small-bundled"``,
        trained by this project on the bundled corpora; see its ``MODEL_CARD.md``) or a directory
        from ``cellshift pretrain``.

    Returns
    -------
    CellshiftForMaskedGeneModeling
        The model, with its gene table (``model.gene_table``).
    """
    model_dir = check_model_dir(name_or_path)
    with _quiet_loading():
        return CellshiftForMaskedGeneModeling.from_pretrained(model_dir)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' per-weight loading progress bar (a saved cellshift model loads whole)."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()
