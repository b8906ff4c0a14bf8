"""Fine-tuning options shared by the commands that fine-tune a classifier (``annotate``, ``classify-genes``)."""

from __future__ import annotations

import argparse

from cellshift.training import ClassifierSettings

FINETUNING = ClassifierSettings()


def add_classifier_training_options(group: argparse._ArgumentGroup) -> None:
    """``--freeze-layers``, ``--epochs``, ``--max-steps`` and ``--learning-rate``.

    Their defaults and ranges are :class:`~cellshift.training.ClassifierSettings`'.
    """
    bounds = ClassifierSettings.BOUNDS
    group.add_argument(
        "--freeze-layers",
        type=bounds["freeze_layers"].parse,
        default=FINETUNING.freeze_layers,
        help="lowest encoder layers kept frozen",
    )
    group.add_argument(
        "--epochs", type=bounds["epochs"].parse, default=FINETUNING.epochs, help="passes over the training cells"
    )
    group.add_argument(
        "--max-steps", type=bounds["max_steps"].parse, default=FINETUNING.max_steps, help="stop after N steps instead"
    )
    group.add_argument(
        "--learning-rate",
        type=bounds["learning_rate"].parse,
        default=FINETUNING.learning_rate,
        help="AdamW, constant",
    )
