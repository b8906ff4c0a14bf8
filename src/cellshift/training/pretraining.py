"""Masked-gene pre-training, one code path from a laptop CPU to many GPUs.

:func:`pretrain` reads top to bottom (nanoGPT style): for every optimizer step take
``gradient_accumulation`` length-grouped mini-batches, mask 15% of their gene tokens, backward the
loss, clip the gradient norm, step AdamW and the linear warm-up/decay schedule; log; checkpoint
every ``save_every`` steps (the run directory, resume, log and checkpoints are
:mod:`cellshift.training.loop`'s). ``accelerate`` provides the device, bf16 autocast on CUDA and
DDP: ``cellshift pretrain ...`` runs on one device, ``accelerate launch -m cellshift pretrain ...``
or ``torchrun -m cellshift pretrain ...`` on many; no device is hard-coded.

Exact resume: the batch order is a function of (seed, epoch), the masks of (seed, epoch, batch,
process), and the checkpoint holds weights, optimizer, scheduler and RNG states, so a run killed
and resumed ends with the same weights as one that never stopped (on CPU; GPU kernels may differ
in the last bits).
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from cellshift._validate import (
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    OPEN_FRACTION,
    POSITIVE,
    POSITIVE_INT,
    Bounds,
    CheckedSettings,
)
from cellshift.models import CellshiftForMaskedGeneModeling, MaskedGeneOutput, config_from_preset
from cellshift.models.inputs import CellCollator
from cellshift.models.priors import align_prior
from cellshift.training.corpora import SPLIT_FILE, TrainingCells, open_corpora, save_split, split_heldout
from cellshift.training.gene_frequency import start_from_gene_frequencies
from cellshift.training.loop import (
    LOSS_LOG,
    TRAINING_DIR,
    LossLog,
    Position,
    is_due,
    mixed_precision,
    optimizer_steps,
    prepare_run_dir,
    resume_run,
    save_checkpoint,
    save_final_model,
)
from cellshift.training.masking import mask_batch
from cellshift.training.sampler import LengthGroupedBatchSampler

LOG_COLUMNS = ["step", "epoch", "loss", "gene_loss", "value_loss", "learning_rate", "tokens", "seconds"]
SPECIES = ["human", "mouse"]


@dataclass
class PretrainSettings(CheckedSettings):
    """Settings of a pre-training run (defaults sized for a CPU demo; Zhao et al. 2025 in brackets).

    Attributes
    ----------
    preset
        Model size: ``tiny``, ``small``, ``geneformer-v1``, ``base``.
    use_values, use_species
        Fuse expression values / a species embedding into the input. Corpora of the joint human +
        mouse vocabulary always get the species embedding (GeneCompass), fed each cell's species.
    epochs, max_steps
        Run ``epochs`` passes over the training cells [3], or stop after ``max_steps`` optimizer steps.
    batch_size
        Cells per mini-batch per process [11].
    gradient_accumulation
        Mini-batches per optimizer step [2].
    learning_rate, warmup_steps, weight_decay
        AdamW peak learning rate [1e-3], linear warm-up steps [10,000] (default: 5% of all steps),
        then linear decay to 0; weight decay [1e-3].
    max_grad_norm
        Gradient-norm clipping.
    mask_probability
        Share of gene tokens to predict [0.15].
    max_length
        Tokens kept per cell (default: all that fit the model's input, see
        :func:`cellshift.models.inputs.token_limit`).
    mega_batch_factor
        Mini-batches per mega-batch of the length-grouped sampler.
    heldout_fraction
        Cells of every corpus kept out of training for ``cellshift evaluate``.
    save_every, keep_last
        Checkpoint every ``save_every`` steps; keep the newest ``keep_last``.
    log_every
        Write the loss log every ``log_every`` steps.
    gradient_checkpointing
        Recompute activations in the backward pass (less memory, ~30% slower).
    mixed_precision
        ``"auto"`` (bf16 on a CUDA device that supports it, else full precision), ``"bf16"``, ``"no"``.
    seed
        Seed of the weights, data order and masks.
    model_options
        Further :class:`~cellshift.models.CellshiftConfig` fields (e.g. ``{"hidden_dropout_prob": 0}``).
    """

    preset: str = "small"
    use_values: bool = False
    use_species: bool = False
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    gradient_accumulation: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int | None = None
    weight_decay: float = 1e-3
    max_grad_norm: float = 1.0
    mask_probability: float = 0.15
    max_length: int | None = None
    mega_batch_factor: int = 50
    heldout_fraction: float = 0.05
    save_every: int = 500
    keep_last: int = 2
    log_every: int = 10
    gradient_checkpointing: bool = False
    mixed_precision: str = "auto"
    seed: int = 0
    model_options: dict = field(default_factory=dict)

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "epochs": POSITIVE_INT,
        "max_steps": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "gradient_accumulation": POSITIVE_INT,
        "learning_rate": POSITIVE,
        "warmup_steps": NON_NEGATIVE_INT,
        "weight_decay": NON_NEGATIVE,
        "max_grad_norm": POSITIVE,
        "mask_probability": OPEN_FRACTION,
        "max_length": POSITIVE_INT,
        "mega_batch_factor": POSITIVE_INT,
        "heldout_fraction": FRACTION,
        "save_every": POSITIVE_INT,
        "keep_last": POSITIVE_INT,
        "log_every": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
    }


@dataclass
class PretrainResult:
    """Where a run wrote its model and log, and what it did."""

    model_dir: Path
    loss_log: Path
    steps: int
    epochs_completed: float
    tokens_seen: int
    seconds: float


def pretrain(
    corpora: list[str | os.PathLike],
    out: str | os.PathLike,
    settings: PretrainSettings | None = None,
    *,
    priors: dict[str, pd.DataFrame] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> PretrainResult:
    """Pre-train a cellshift model on tokenised corpora by masked-gene modelling.

    Parameters
    ----------
    corpora
        Corpus directories from :func:`cellshift.tokenize.tokenize`, all with the same gene table.
    out
        Model directory: the final model (``save_pretrained`` layout) plus ``training/`` with
        checkpoints, the loss log, the settings and the held-out cells.
    settings
        :class:`PretrainSettings`; default ``PretrainSettings()``.
    priors
        ``{name: genes x dim table}`` indexed by human Ensembl IDs or symbols, fused into the input
        as frozen prior-knowledge vectors (:func:`~cellshift.models.priors.align_prior`: mouse
        tokens of a joint vocabulary read their human ortholog's row); genes missing get zeros.
    resume
        Continue from the newest checkpoint in ``out`` (its settings must match).
    overwrite
        Start afresh in an ``out`` that already holds a run.
    progress
        Show a progress bar.

    Returns
    -------
    A :class:`PretrainResult`; the model is in ``out`` and loads with
    ``CellshiftForMaskedGeneModeling.from_pretrained(out)``.
    """
    settings = settings or PretrainSettings()
    out = Path(out)
    training_dir = out / TRAINING_DIR
    accelerator = Accelerator(mixed_precision=mixed_precision(settings.mixed_precision))
    cells = open_corpora(list(corpora))  # before anything is written: a bad corpus leaves no run behind
    if accelerator.is_main_process:
        prepare_run_dir(out, asdict(settings), resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()

    # data: the training cells of every corpus in length-grouped mini-batches; a share held out
    train_rows, heldout_rows = split_heldout(cells, settings.heldout_fraction, settings.seed)
    if accelerator.is_main_process and not resume:
        save_split(training_dir / SPLIT_FILE, cells, heldout_rows)
    sampler = LengthGroupedBatchSampler(
        cells.lengths[train_rows],
        settings.batch_size,
        mega_batch_factor=settings.mega_batch_factor,
        seed=settings.seed,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )

    # model, optimizer and schedule: linear warm-up to the peak learning rate, then linear decay to 0
    torch.manual_seed(settings.seed)
    model = _new_model(cells, train_rows, settings, priors, start_from_frequencies=not resume)
    config = model.config
    pad_to = 8 if accelerator.device.type == "cuda" else None  # tensor cores like multiples of 8
    collate = CellCollator(config, max_length=settings.max_length, pad_to_multiple_of=pad_to)
    dataset = collate.select_columns(cells.dataset)
    total_steps = settings.max_steps
    if total_steps is None:
        total_steps = settings.epochs * math.ceil(len(sampler) / settings.gradient_accumulation)
    warmup = settings.warmup_steps if settings.warmup_steps is not None else max(1, round(0.05 * total_steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    log = LossLog(training_dir / LOSS_LOG, LOG_COLUMNS, write=accelerator.is_main_process)
    position = resume_run(training_dir, accelerator, model, optimizer, scheduler, log) if resume else Position()

    show = progress and accelerator.is_main_process
    bar = tqdm(total=total_steps, initial=position.step, desc="pre-training", disable=not show)
    started, window = time.perf_counter() - position.seconds, []  # a resumed run counts on from its checkpoint
    model.train()
    for step in optimizer_steps(position, total_steps, sampler.batches, settings.gradient_accumulation):
        for i, (index, rows) in enumerate(zip(step.positions, step.batches, strict=True)):
            batch = collate(dataset, train_rows[rows])
            generator = torch.Generator().manual_seed(_mask_seed(settings.seed, position.epoch, index, accelerator))
            masked = mask_batch(batch, config, settings.mask_probability, generator)
            last = i == len(step.batches) - 1  # gradients are synchronised across processes once per step
            with nullcontext() if last else accelerator.no_sync(model):
                output = model(**masked.to(accelerator.device).model_inputs())
                accelerator.backward(output.loss / len(step.batches))
            window.append(_losses(output))
            position.tokens_seen += batch.n_tokens
        accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        position.seconds = time.perf_counter() - started
        if is_due(position.step, settings.log_every, total_steps):
            log.append(_log_row(position, window, optimizer))
            window = []
        if is_due(position.step, settings.save_every, total_steps):
            save_checkpoint(training_dir, position, model, optimizer, scheduler, settings.keep_last, accelerator)
    bar.close()

    save_final_model(accelerator, model, out)
    epochs_completed = position.epoch + position.batches_done / len(sampler)
    seconds = time.perf_counter() - started
    return PretrainResult(out, training_dir / LOSS_LOG, position.step, epochs_completed, position.tokens_seen, seconds)


def _new_model(
    cells: TrainingCells,
    train_rows: np.ndarray,
    settings: PretrainSettings,
    priors: dict[str, pd.DataFrame] | None,
    *,
    start_from_frequencies: bool,
) -> CellshiftForMaskedGeneModeling:
    """A freshly initialised model for the corpora's vocabulary, with priors filled in.

    With ``start_from_frequencies`` the gene head starts from the training cells' gene frequencies
    (:func:`~cellshift.training.gene_frequency.start_from_gene_frequencies`); a resumed run loads its weights instead.
    """
    priors = priors or {}
    table = cells.gene_table
    use_species = settings.use_species or table.vocabulary == "joint"
    config = config_from_preset(
        settings.preset,
        table,
        use_values=settings.use_values,
        species=SPECIES if use_species else None,
        prior_dims={name: frame.shape[1] for name, frame in priors.items()} or None,
        cls_eos_tokens=cells.cls_eos_tokens,
        **settings.model_options,
    )
    model = CellshiftForMaskedGeneModeling(config)
    for name, frame in priors.items():
        model.cellshift.set_prior(name, torch.as_tensor(align_prior(frame, table), dtype=torch.float32))
    model.gene_table = table
    if start_from_frequencies:
        start_from_gene_frequencies(model, cells, train_rows, settings.seed)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def _mask_seed(seed: int, epoch: int, index: int, accelerator: Accelerator) -> int:
    """A seed for the masks of one mini-batch, independent of where a run was resumed."""
    return int(np.random.SeedSequence([seed, epoch, index, accelerator.process_index]).generate_state(1)[0])


def _losses(output: MaskedGeneOutput) -> tuple[float, float, float]:
    """(loss, gene loss, value loss) of one mini-batch as floats; NaN where a part does not exist."""
    value = output.value_loss.item() if output.value_loss is not None else float("nan")
    return output.loss.item(), output.gene_loss.item(), value


def _log_row(position: Position, window: list, optimizer) -> dict[str, object]:
    """The loss-log row of a step: mean losses of the mini-batches since the last row, learning rate, tokens, time.

    Tokens and seconds are the run's totals, a resumed run's included.
    """
    losses = np.array(window)
    return {
        "step": position.step,
        "epoch": position.epoch,
        "loss": losses[:, 0].mean(),
        "gene_loss": losses[:, 1].mean(),
        "value_loss": "" if np.isnan(losses[:, 2]).any() else losses[:, 2].mean(),
        "learning_rate": optimizer.param_groups[0]["lr"],
        "tokens": position.tokens_seen,
        "seconds": round(position.seconds, 3),
    }
