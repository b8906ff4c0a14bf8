"""The training loop of classification fine-tuning (:mod:`cellshift.training.classification`).

It reads top to bottom: one optimizer step per batch of cells, cross-entropy (mean over the
labelled cells or tokens of the batch), AdamW at a constant learning rate (default 5e-5,
Geneformer's for its cell classifier; no schedule, as early stopping rarely reaches the end of
one), weight decay 1e-3, gradient-norm clipping at 1. ``freeze_layers`` freezes the lowest encoder
layers and, when it is above 0, the input embeddings (Geneformer's ``freeze_layers``); for cells
the last layer is frozen as well, because the loss never reads it (it keeps its pre-trained weights).

With a validation share, the validation cross-entropy and macro-F1 (unweighted mean of the F1 of
the classes present, GeneCompass's selection metric) are computed every ``eval_every`` steps and
at each epoch's end, without dropout or gradient; :class:`cellshift.training.early_stopping.EarlyStopping`
keeps the best weights (highest macro-F1, ties broken by the lower validation loss) and stops after
``patience`` evaluations without improvement. The frame
(run directory, resume, named-column loss log, checkpoints) is :mod:`cellshift.training.loop`'s:
the early-stopping state and best weights are written into every checkpoint, so on CPU a resumed
run ends with the weights of one that never stopped. ``accelerate`` picks the device (bf16 on CUDA
with ``mixed_precision="auto"``); data-parallel processes each take every ``world_size``-th cell
of the same batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from cellshift._validate import (
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    Bounds,
    CheckedSettings,
)
from cellshift.models.classification import CellshiftClassifier, logits_in_batches
from cellshift.models.modeling import IGNORE_INDEX
from cellshift.training.classification_data import LabelledCells, ShuffledBatches
from cellshift.training.early_stopping import EarlyStopping
from cellshift.training.loop import (
    LOSS_LOG,
    TRAINING_DIR,
    LossLog,
    Position,
    is_due,
    newest_checkpoint,
    optimizer_steps,
    resume_run,
    save_checkpoint,
)

LOG_COLUMNS = ["step", "epoch", "loss", "validation_loss", "validation_macro_f1", "learning_rate", "seconds"]


@dataclass
class ClassifierSettings(CheckedSettings):
    """Settings of a classification fine-tuning run.

    Attributes
    ----------
    epochs, max_steps
        Run ``epochs`` passes over the training cells (5: Geneformer trains 1 epoch, early stopping
        ends most runs before 5), or stop after ``max_steps`` optimizer steps.
    batch_size
        Cells per optimizer step (all processes together).
    learning_rate, weight_decay
        AdamW at a constant learning rate (5e-5, Geneformer's cell classifier; small models
        trained briefly need more, e.g. 1e-3) and weight decay (1e-3, Geneformer's).
    freeze_layers
        Number of lowest encoder layers frozen; above 0 the input embeddings are frozen too.
    max_grad_norm
        Gradient-norm clipping; ``None`` switches it off.
    validation_fraction
        Share held out of training for validation and early stopping (0: neither).
    eval_every
        Evaluate on the validation share every this many steps (and at each epoch's end).
    patience
        Stop after this many evaluations without a better macro-F1 (or, at equal macro-F1, a lower
        validation loss); ``None`` never stops early.
    max_length
        Tokens kept per cell (default: all that fit the model's input).
    save_every, keep_last, log_every
        Checkpoint every ``save_every`` steps and keep the newest ``keep_last``; log every ``log_every`` steps.
    mixed_precision
        ``"auto"`` (bf16 on a CUDA device that supports it), ``"bf16"``, ``"fp16"`` or ``"no"``.
    seed
        Seed of the head's initial weights, validation share, batch order and dropout.
    """

    epochs: int = 5
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 1e-3
    freeze_layers: int = 0
    max_grad_norm: float | None = 1.0
    validation_fraction: float = 0.1
    eval_every: int = 50
    patience: int | None = 3
    max_length: int | None = None
    save_every: int = 500
    keep_last: int = 2
    log_every: int = 10
    mixed_precision: str = "auto"
    seed: int = 0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "epochs": POSITIVE_INT,
        "max_steps": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "learning_rate": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "freeze_layers": NON_NEGATIVE_INT,
        "max_grad_norm": POSITIVE,
        "validation_fraction": FRACTION,
        "eval_every": POSITIVE_INT,
        "patience": POSITIVE_INT,
        "max_length": POSITIVE_INT,
        "save_every": POSITIVE_INT,
        "keep_last": POSITIVE_INT,
        "log_every": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
    }


@dataclass
class ClassifierResult:
    """Where a run wrote its classifier and log, and how it ended.

    ``best_step`` and ``best_macro_f1`` are ``None`` without validation; the saved weights are
    those of ``best_step`` when there is one, else of the last step.
    """

    model_dir: Path
    loss_log: Path
    steps: int
    epochs_completed: float
    best_step: int | None
    best_macro_f1: float | None
    stopped_early: bool
    seconds: float


@dataclass(frozen=True)
class Validation:
    """Cross-entropy and macro-F1 of the validation cells (or tokens)."""

    loss: float
    macro_f1: float


def train_classifier(
    classifier: CellshiftClassifier,
    data: LabelledCells,
    settings: ClassifierSettings,
    accelerator: Accelerator,
    out: Path,
    *,
    resume: bool,
    progress: bool,
) -> ClassifierResult:
    """Train ``classifier`` on ``data`` and save it into ``out``: see the module docstring.

    ``classifier`` holds the encoder and a new head (seeded by the caller); ``data`` the tokenised
    cells, labels and rows; ``accelerator`` the run's device and processes (``out/training/`` is
    prepared). The classifier is saved into ``out``: the best weights with validation, else the last.
    """
    training_dir = out / TRAINING_DIR
    optimizer = _optimizer(classifier, settings)
    model, optimizer = accelerator.prepare(classifier, optimizer)
    log = LossLog(training_dir / LOSS_LOG, LOG_COLUMNS, write=accelerator.is_main_process)
    position, stopping = Position(), EarlyStopping(settings.patience)
    if resume:  # the weights, optimizer, random generators, position and early stopping of the newest checkpoint
        position = resume_run(training_dir, accelerator, model, optimizer, None, log)
        stopping = EarlyStopping.load(newest_checkpoint(training_dir), settings.patience)
    batches = ShuffledBatches(data.train_rows, settings.batch_size, settings.seed)
    if batches.smallest_batch < accelerator.num_processes:
        raise ValueError(f"batches of {batches.smallest_batch} cells cannot be shared by {accelerator.num_processes}")
    total_steps = settings.max_steps if settings.max_steps is not None else settings.epochs * len(batches)
    show = progress and accelerator.is_main_process
    bar = tqdm(total=total_steps, initial=position.step, desc="fine-tuning a classifier", disable=not show)
    started, losses = time.perf_counter(), []
    model.train()
    steps = iter(()) if stopping.stopped else optimizer_steps(position, total_steps, batches.epoch)
    for step in steps:
        losses.append(_train_step(model, optimizer, data, step.batches[0], settings, accelerator))
        bar.update(1)
        validation = None
        epoch_end = position.batches_done == len(batches)
        if data.has_validation and (epoch_end or is_due(position.step, settings.eval_every, total_steps)):
            validation = evaluate(model, data, settings.batch_size, accelerator)
            stopping.update((validation.macro_f1, -validation.loss), position.step, accelerator.unwrap_model(model))
        if validation is not None or is_due(position.step, settings.log_every, total_steps):
            log.append(_log_row(position, losses, validation, optimizer, started))
            losses = []
        if stopping.stopped or is_due(position.step, settings.save_every, total_steps):
            save_checkpoint(
                training_dir, position, model, optimizer, None, settings.keep_last, accelerator, stopping.save
            )
        if stopping.stopped:
            break
    bar.close()
    _save_best(accelerator, model, stopping, out)
    epochs = position.epoch + position.batches_done / len(batches)
    seconds = time.perf_counter() - started
    best = dict(best_step=stopping.best_step, best_macro_f1=stopping.best_score, stopped_early=stopping.stopped)
    return ClassifierResult(out, training_dir / LOSS_LOG, position.step, epochs, seconds=seconds, **best)


def _save_best(accelerator: Accelerator, model, stopping: EarlyStopping, out: Path) -> None:
    """Put the best weights back (with validation) and save the classifier from the main process."""
    stopping.restore(accelerator.unwrap_model(model))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save(out)
    accelerator.wait_for_everyone()


def _optimizer(classifier: CellshiftClassifier, settings: ClassifierSettings) -> torch.optim.Optimizer:
    """Freeze what is not trained (see the module docstring), AdamW over the rest."""
    layers = classifier.encoder.bert.encoder.layer
    if not 0 <= settings.freeze_layers <= len(layers):
        raise ValueError(f"freeze_layers must lie in [0, {len(layers)}], got {settings.freeze_layers}")
    if settings.freeze_layers > 0:
        classifier.encoder.bert.embeddings.requires_grad_(False)
        classifier.encoder.inputs.requires_grad_(False)
    for layer in layers[: settings.freeze_layers]:
        layer.requires_grad_(False)
    for unused in layers[classifier.encoder_layers_used() :]:
        unused.requires_grad_(False)
    trainable = [parameter for parameter in classifier.parameters() if parameter.requires_grad]
    return torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def _train_step(model, optimizer, data: LabelledCells, rows: np.ndarray, settings, accelerator) -> float:
    """One optimizer step on this process's share of a batch; returns its loss."""
    share = rows[accelerator.process_index :: accelerator.num_processes]
    batch = data.cells.batch(share)
    labels = data.labels(share, batch).to(accelerator.device)
    logits = model(**batch.to(accelerator.device).model_inputs())
    loss = F.cross_entropy(logits.float().flatten(0, -2), labels.flatten(), ignore_index=IGNORE_INDEX)
    accelerator.backward(loss)
    if settings.max_grad_norm is not None:
        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def evaluate(model, data: LabelledCells, batch_size: int, accelerator: Accelerator) -> Validation:
    """Cross-entropy and macro-F1 (of the most probable class) over the validation cells or tokens.

    The model runs in eval mode (no dropout) and without gradients, then returns to training mode.
    Macro-F1 is the unweighted mean F1 of the classes present among the validation labels.
    """
    model.eval()
    labels, logits = [], []
    for rows, batch, batch_logits in logits_in_batches(
        model, data.cells, data.validation_rows, batch_size=batch_size, device=accelerator.device
    ):
        batch_labels = data.labels(rows, batch, validation=True)
        labelled = batch_labels != IGNORE_INDEX
        labels.append(batch_labels[labelled])
        logits.append(batch_logits[labelled])
    model.train()
    labels, logits = torch.cat(labels), torch.cat(logits)
    predicted = logits.argmax(dim=-1)
    present = sorted(set(labels.tolist()))
    macro_f1 = f1_score(labels.numpy(), predicted.numpy(), labels=present, average="macro", zero_division=0)
    return Validation(F.cross_entropy(logits, labels).item(), float(macro_f1))


def _log_row(position: Position, losses: list[float], validation: Validation | None, optimizer, started) -> dict:
    """The loss-log row of a step: mean training loss since the last row, and the validation when evaluated."""
    row = {
        "step": position.step,
        "epoch": position.epoch,
        "loss": float(np.mean(losses)),
        "learning_rate": optimizer.param_groups[0]["lr"],
        "seconds": round(time.perf_counter() - started, 3),
    }
    if validation is not None:
        row.update(validation_loss=validation.loss, validation_macro_f1=validation.macro_f1)
    return row
