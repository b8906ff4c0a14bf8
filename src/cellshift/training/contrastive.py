"""Contrastive fine-tuning of a pre-trained model on a Perturb-seq screen (Zhao et al. 2025).

The pairs, their loss and batches are in :mod:`cellshift.training.pairs`, the choice of cells in
:mod:`cellshift.training.finetune_cells`. The cells are tokenised in memory with the model's own
gene table by :func:`cellshift.models.inputs.encode_cells`, exactly as ``cellshift embed``
tokenises the cells it embeds (with ``<cls>``/``<eos>`` when the model was trained with them).

:func:`finetune` chooses, tokenises and pairs the cells; its training loop reads top to bottom:
one optimizer step per batch of pairs, AdamW at a constant learning rate 1e-5 (no schedule),
weight decay 1e-2, every encoder parameter up to the penultimate layer trained ("all layers" of
the paper), gradient-norm clipping at 1 (the Hugging Face ``Trainer`` default) unless switched
off; at every log step the loss of the validation pairs (when validation controls are given); a
checkpoint every ``save_every`` steps. The loss reads the penultimate layer, so the encoder runs
only up to it (``num_layers``): the last layer could get no gradient, is frozen (DDP requires a
gradient for every trainable parameter) and is saved with its pre-trained weights.

The frame is :mod:`cellshift.training.loop`'s, as for pre-training: ``accelerate`` for the device,
bf16 on CUDA and data parallelism (each process takes every ``world_size``-th pair of the same
batch, so one optimizer step still sees one kind of batch), a CSV loss log, checkpoints that
resume exactly (on CPU, a resumed run ends with the same weights as one that never stopped). The
fine-tuned encoder is saved with ``save_pretrained`` (config, weights, gene table) and loads with
``CellshiftModel.from_pretrained``; the masked-gene head of the pre-trained model is dropped (the
contrastive loss does not train it, and it no longer fits the fine-tuned hidden states).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import anndata as ad
import numpy as np
import torch
from accelerate import Accelerator
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
from cellshift.models import CellshiftModel
from cellshift.models.inputs import ModelCells, encode_cells
from cellshift.models.loading import load_encoder
from cellshift.training.finetune_cells import choose_cells, record_cells
from cellshift.training.loop import (
    LOSS_LOG,
    TRAINING_DIR,
    LossLog,
    Position,
    check_model_directories,
    check_run_dir,
    is_due,
    mixed_precision,
    optimizer_steps,
    prepare_run_dir,
    resume_run,
    save_checkpoint,
    save_final_model,
)
from cellshift.training.pairs import (
    MARGIN,
    PairBatches,
    PairLosses,
    ValidationPairs,
    contrastive_loss,
    pair_distances,
)

SPLIT_FILE = "split.json"
LOG_COLUMNS = [
    "step",
    "epoch",
    "loss",
    "similar_loss",
    "dissimilar_loss",
    "similar_distance",
    "dissimilar_distance",
    "validation_loss",
    "validation_similar_distance",
    "validation_dissimilar_distance",
    "learning_rate",
    "pairs",
    "seconds",
]


@dataclass
class FinetuneSettings(CheckedSettings):
    """Settings of a contrastive fine-tuning run (Zhao et al. 2025 in brackets).

    Attributes
    ----------
    epochs, max_steps
        Run ``epochs`` passes over the perturbed training cells, or stop after ``max_steps``
        optimizer steps (one step per batch, similar and dissimilar batches alike).
    batch_size
        Pairs per batch (all processes together); a batch runs ``2 * batch_size`` cells.
    learning_rate, weight_decay
        AdamW at a constant learning rate [1e-5, the paper's], weight decay [1e-2]. For small models
        and short runs use 1e-4: at 1e-5, 600 steps of a ``small`` model on Papalexi left the
        loss flat (cells ~1.3 apart, far inside the margin), while 1e-4 moved the held-out JAK2
        30x further from control.
    margin
        Margin m of the loss [20].
    max_grad_norm
        Gradient-norm clipping; ``None`` switches it off.
    max_length
        Tokens kept per cell (default: all that fit the model's input, see
        :func:`cellshift.models.inputs.token_limit`).
    save_every, keep_last
        Checkpoint every ``save_every`` steps; keep the newest ``keep_last``.
    log_every
        Write the loss log every ``log_every`` steps.
    mixed_precision
        ``"auto"`` (bf16 on a CUDA device that supports it), ``"bf16"``, ``"fp16"`` or ``"no"``.
    validation_fraction
        With validation controls given to :func:`finetune`: share of each training
        perturbation's cells held out of training for the validation loss (seeded).
    validation_pairs
        At most this many similar and this many dissimilar validation pairs.
    seed
        Seed of the pairs, batch order and dropout.
    """

    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    learning_rate: float = 1e-5
    weight_decay: float = 1e-2
    margin: float = MARGIN
    max_grad_norm: float | None = 1.0
    max_length: int | None = None
    save_every: int = 500
    keep_last: int = 2
    log_every: int = 10
    mixed_precision: str = "auto"
    validation_fraction: float = 0.1
    validation_pairs: int = 256
    seed: int = 0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "epochs": POSITIVE_INT,
        "max_steps": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "learning_rate": POSITIVE,
        "weight_decay": NON_NEGATIVE,
        "margin": POSITIVE,
        "max_grad_norm": POSITIVE,
        "max_length": POSITIVE_INT,
        "save_every": POSITIVE_INT,
        "keep_last": POSITIVE_INT,
        "log_every": POSITIVE_INT,
        "validation_fraction": FRACTION,
        "validation_pairs": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
    }


@dataclass
class FinetuneResult:
    """Where a run wrote its model and log, and what it did."""

    model_dir: Path
    loss_log: Path
    steps: int
    epochs_completed: float
    pairs_seen: int
    seconds: float


@dataclass(frozen=True)
class BatchLoss:
    """The loss of one training batch, its kind, and the mean distance of its pairs."""

    loss: float
    similar: bool
    distance: float


def check_finetune_dirs(
    model: str | os.PathLike, out: str | os.PathLike, settings: FinetuneSettings, *, resume: bool, overwrite: bool
) -> None:
    """Refuse, before any work, a model that is not a saved model or an ``out`` that cannot take this run."""
    check_model_directories(Path(model), Path(out))
    check_run_dir(Path(out), run_settings(Path(model), settings), resume=resume, overwrite=overwrite)


def run_settings(model_dir: Path, settings: FinetuneSettings) -> dict:
    """The settings a fine-tuning run records (``training/settings.json``): the model and the settings."""
    return {"model": str(model_dir.resolve()), **asdict(settings)}


def finetune(
    model: str | os.PathLike,
    adata: ad.AnnData,
    out: str | os.PathLike,
    *,
    perturbation_key: str,
    perturbations: Sequence[str],
    control_cells: Sequence[str],
    validation_controls: Sequence[str] = (),
    settings: FinetuneSettings | None = None,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    split: Mapping | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> FinetuneResult:
    """Fine-tune a saved cellshift model contrastively on the training cells of a screen.

    Parameters
    ----------
    model
        Directory of a pre-trained model (``cellshift pretrain``, or a Geneformer model saved with
        ``save_pretrained``); its gene table tokenises the cells. The directory is only read.
    adata
        The screen: raw counts in ``X`` or ``layer``. Only the cells named below are tokenised.
    out
        New model directory: the fine-tuned encoder plus ``training/`` (settings, training cells,
        split, loss log, checkpoints).
    perturbation_key
        ``obs`` column with the perturbation labels.
    perturbations
        Training perturbations: all their cells are trained on. Test perturbations must not be here.
    control_cells
        ``obs_names`` of the control cells to train on (the training share of the controls).
    validation_controls
        ``obs_names`` of held-out control cells (e.g. ``PerturbationSplit.control_validation``).
        When given, ``settings.validation_fraction`` of each training perturbation's cells are
        held out too, and every log row gets the contrastive loss and mean distances of fixed
        validation pairs (similar: two validation controls; dissimilar: a held-out perturbed
        cell and a validation control), computed without dropout or gradient.
    settings
        :class:`FinetuneSettings`; default ``FinetuneSettings()``.
    layer, gene_key, species
        Where the counts are, the var column of gene IDs or symbols (default: var index), and
        the species (default: detected).
    split
        A JSON-serialisable record of how the screen was split (e.g. ``dataclasses.asdict`` of a
        :class:`cellshift.analysis.PerturbationSplit`), written to ``training/split.json``.
    resume
        Continue from the newest checkpoint in ``out`` (settings and training cells must match).
    overwrite
        Start afresh in an ``out`` that already holds a model or run.
    progress
        Show a progress bar.

    Returns
    -------
    FinetuneResult
        The model is in ``out`` and loads with ``CellshiftModel.from_pretrained(out)``.
    """
    settings = settings or FinetuneSettings()
    model_dir, out = Path(model), Path(out)
    check_finetune_dirs(model_dir, out, settings, resume=resume, overwrite=overwrite)
    training_dir = out / TRAINING_DIR
    chosen = choose_cells(
        adata,
        perturbation_key=perturbation_key,
        perturbations=perturbations,
        control_cells=control_cells,
        validation_controls=validation_controls,
        validation_fraction=settings.validation_fraction,
        seed=settings.seed,
    )
    accelerator = Accelerator(mixed_precision=mixed_precision(settings.mixed_precision))
    if accelerator.is_main_process:
        prepare_run_dir(out, run_settings(model_dir, settings), resume=resume, overwrite=overwrite)
        record_cells(training_dir, chosen.record(adata, perturbation_key), resume=resume)
        if split is not None and not resume:
            (training_dir / SPLIT_FILE).write_text(json.dumps(split, indent=1) + "\n")
    accelerator.wait_for_everyone()

    # data: the chosen cells tokenised for the model, in batches of pairs that alternate similar / dissimilar
    encoder = load_encoder(model_dir)
    pad_to = 8 if accelerator.device.type == "cuda" else None  # tensor cores like multiples of 8
    cells = encode_cells(
        adata[chosen.rows],
        encoder,
        layer=layer,
        gene_key=gene_key,
        species=species,
        max_length=settings.max_length,
        pad_to_multiple_of=pad_to,
    )
    pairs = chosen.pair_batches(settings.batch_size, settings.seed)
    pairs.check_shared_by(accelerator.num_processes)
    validation = chosen.validation_pairs(settings.validation_pairs, settings.seed)
    return _train(encoder, cells, pairs, validation, settings, accelerator, out, resume=resume, progress=progress)


def _train(
    encoder: CellshiftModel,
    cells: ModelCells,
    pairs: PairBatches,
    validation: ValidationPairs | None,
    settings: FinetuneSettings,
    accelerator: Accelerator,
    out: Path,
    *,
    resume: bool,
    progress: bool,
) -> FinetuneResult:
    """The training loop of :func:`finetune`: one optimizer step per batch of pairs, then the final save."""
    training_dir = out / TRAINING_DIR
    # model and optimizer: the last layer stays as it is (the loss reads the penultimate one); constant learning rate
    encoder.bert.encoder.layer[-1].requires_grad_(False)
    torch.manual_seed(settings.seed)
    total_steps = settings.max_steps if settings.max_steps is not None else settings.epochs * len(pairs)
    trainable = [parameter for parameter in encoder.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    encoder, optimizer = accelerator.prepare(encoder, optimizer)
    log = LossLog(training_dir / LOSS_LOG, LOG_COLUMNS, write=accelerator.is_main_process)
    position = resume_run(training_dir, accelerator, encoder, optimizer, None, log) if resume else Position()

    share = slice(accelerator.process_index, None, accelerator.num_processes)  # this process's pairs of a batch
    pairs_seen = pairs.pairs_before(position.epoch, position.batches_done)
    show = progress and accelerator.is_main_process
    bar = tqdm(total=total_steps, initial=position.step, desc="fine-tuning", disable=not show)
    started, window = time.perf_counter() - position.seconds, []  # a resumed run counts on from its checkpoint
    encoder.train()
    for step in optimizer_steps(position, total_steps, pairs.epoch):
        (batch,) = step.batches
        distances = pair_distances(encoder, cells, (batch.first[share], batch.second[share]), accelerator)
        labels = torch.as_tensor(batch.labels[share], device=distances.device)
        loss = contrastive_loss(distances, labels, margin=settings.margin)
        accelerator.backward(loss)
        if settings.max_grad_norm is not None:
            accelerator.clip_grad_norm_(encoder.parameters(), settings.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(BatchLoss(loss.item(), batch.similar, distances.mean().item()))
        pairs_seen += len(batch.first)
        position.seconds = time.perf_counter() - started
        bar.update(1)
        if is_due(position.step, settings.log_every, total_steps):
            checked = None
            if validation is not None:
                checked = validation.evaluate(encoder, cells, accelerator, settings.margin, settings.batch_size)
            log.append(_log_row(position, window, checked, optimizer, pairs_seen, started))
            window = []
        if is_due(position.step, settings.save_every, total_steps):
            save_checkpoint(training_dir, position, encoder, optimizer, None, settings.keep_last, accelerator)
    bar.close()

    save_final_model(accelerator, encoder, out)
    epochs_completed = position.epoch + position.batches_done / len(pairs)
    seconds = time.perf_counter() - started
    return FinetuneResult(out, training_dir / LOSS_LOG, position.step, epochs_completed, pairs_seen, seconds)


def _log_row(
    position: Position, window: list[BatchLoss], validation: PairLosses | None, optimizer, pairs_seen: int, started
) -> dict[str, object]:
    """The loss-log row of a step: mean loss and distance per kind of batch since the last row, and the validation."""

    def mean(values: list[float]) -> float | str:
        return float(np.mean(values)) if values else ""

    similar = [batch for batch in window if batch.similar]
    dissimilar = [batch for batch in window if not batch.similar]
    row = {
        "step": position.step,
        "epoch": position.epoch,
        "loss": mean([batch.loss for batch in window]),
        "similar_loss": mean([batch.loss for batch in similar]),
        "dissimilar_loss": mean([batch.loss for batch in dissimilar]),
        "similar_distance": mean([batch.distance for batch in similar]),
        "dissimilar_distance": mean([batch.distance for batch in dissimilar]),
        "learning_rate": optimizer.param_groups[0]["lr"],
        "pairs": pairs_seen,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if validation is not None:
        row["validation_loss"] = validation.loss
        row["validation_similar_distance"] = validation.similar_distance
        row["validation_dissimilar_distance"] = validation.dissimilar_distance
    return row
