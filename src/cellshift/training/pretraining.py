"""Masked-gene pre-training, one code path from a laptop CPU to many GPUs (DESIGN §2.3).

The loop reads top to bottom (nanoGPT style): for every optimizer step take
``gradient_accumulation`` length-grouped mini-batches, mask 15% of their gene tokens, backward the
loss, clip the gradient norm, step AdamW and the linear warm-up/decay schedule; log; checkpoint
every ``save_every`` steps. ``accelerate`` provides the device, bf16 autocast on CUDA and DDP:
``cellshift pretrain ...`` runs on one device, ``accelerate launch -m cellshift pretrain ...`` or
``torchrun -m cellshift pretrain ...`` on many; no line of this file names a device.

Exact resume: the batch order is a function of (seed, epoch), the masks of (seed, epoch, batch),
and the checkpoint holds weights, optimizer, scheduler and RNG states, so a run killed and
resumed ends with the same weights as one that never stopped (on CPU; GPU kernels may differ
in the last bits).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cellshift.data.gene_table import GeneTable
from cellshift.models import CellshiftForMaskedGeneModeling, config_from_preset
from cellshift.models.inputs import CellBatch, CellCollator
from cellshift.training._loop import mixed_precision, save_checkpoint, save_final_model, truncate_log
from cellshift.training.checkpoints import (
    list_checkpoints,
    load_checkpoint,
)
from cellshift.training.corpora import SPLIT_FILE, open_corpora, save_split, split_heldout
from cellshift.training.masking import choose_positions, corrupt, special_token_mask
from cellshift.training.sampler import LengthGroupedBatchSampler

TRAINING_DIR = "training"
LOSS_LOG = "loss.csv"
LOG_COLUMNS = ["step", "epoch", "loss", "gene_loss", "value_loss", "learning_rate", "tokens", "seconds"]
SPECIES = ["human", "mouse"]


@dataclass
class PretrainSettings:
    """Settings of a pre-training run (defaults sized for a CPU demo; Zhao et al. 2025 in brackets).

    Attributes
    ----------
    preset
        Model size: ``tiny``, ``small``, ``geneformer-v1``, ``base``.
    use_values, use_species
        Fuse expression values / a species embedding into the input (DESIGN §2.2).
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
        Tokens kept per cell (default: the model's input size).
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
        ``{name: genes x dim table}`` indexed by vocabulary tokens (human Ensembl IDs), fused into
        the input as frozen prior-knowledge vectors; genes missing from a table get zeros.
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
    from accelerate import Accelerator
    from transformers import get_linear_schedule_with_warmup

    settings = settings or PretrainSettings()
    out = Path(out)
    training_dir = out / TRAINING_DIR
    accelerator = Accelerator(mixed_precision=mixed_precision(settings.mixed_precision))
    if accelerator.is_main_process:
        _prepare_out(out, training_dir, settings, resume, overwrite)
    accelerator.wait_for_everyone()

    cells = open_corpora(list(corpora))
    train_rows, heldout_rows = split_heldout(cells, settings.heldout_fraction, settings.seed)
    if accelerator.is_main_process and not resume:
        save_split(training_dir / SPLIT_FILE, cells, heldout_rows)

    torch.manual_seed(settings.seed)
    model = _build_model(cells.gene_table, settings, priors, cells.cls_eos_tokens)
    if not resume:
        _start_from_gene_frequencies(model, cells, train_rows, settings.seed)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    collate = CellCollator(
        model.config,
        max_length=settings.max_length,
        pad_to_multiple_of=8 if accelerator.device.type == "cuda" else None,
    )
    dataset = cells.dataset.select_columns(collate.columns())
    sampler = LengthGroupedBatchSampler(
        cells.lengths[train_rows],
        settings.batch_size,
        mega_batch_factor=settings.mega_batch_factor,
        seed=settings.seed,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    steps_per_epoch = math.ceil(len(sampler) / settings.gradient_accumulation)
    total_steps = settings.max_steps or settings.epochs * steps_per_epoch
    warmup = settings.warmup_steps if settings.warmup_steps is not None else max(1, round(0.05 * total_steps))

    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    step, epoch, batches_done = 0, 0, 0
    if resume:
        newest = list_checkpoints(training_dir / "checkpoints")[-1]
        state = load_checkpoint(
            newest,
            model=accelerator.unwrap_model(model),
            optimizer=optimizer,
            scheduler=scheduler,
            rank=accelerator.process_index,
        )
        step, epoch, batches_done = state["step"], state["epoch"], state["batches_done"]
        if accelerator.is_main_process:
            truncate_log(training_dir / LOSS_LOG, step)

    gene_token_ids = torch.as_tensor(cells.gene_table.gene_ids)
    special_ids = accelerator.unwrap_model(model).config.special_token_ids
    mask_token_id = accelerator.unwrap_model(model).config.mask_token_id
    bar = tqdm(
        total=total_steps, initial=step, desc="pre-training", disable=not progress or not accelerator.is_main_process
    )
    started, tokens_seen, window = time.perf_counter(), 0, []
    model.train()
    while step < total_steps:
        epoch_batches = sampler.batches(epoch)
        while batches_done < len(epoch_batches) and step < total_steps:
            group = range(batches_done, min(batches_done + settings.gradient_accumulation, len(epoch_batches)))
            for i, position in enumerate(group):
                batch = collate(dataset, train_rows[epoch_batches[position]])
                generator = torch.Generator().manual_seed(_mask_seed(settings.seed, epoch, position, accelerator))
                inputs = _masked_inputs(batch, special_ids, gene_token_ids, mask_token_id, settings, generator)
                inputs = {name: t.to(accelerator.device) if t is not None else None for name, t in inputs.items()}
                last = i == len(group) - 1
                with nullcontext() if last else accelerator.no_sync(model):
                    output = model(**inputs)
                    accelerator.backward(output.loss / len(group))
                window.append(_loss_parts(output))
                tokens_seen += batch.n_tokens
            accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            batches_done += len(group)
            step += 1
            bar.update(1)
            if step % settings.log_every == 0 or step == total_steps:
                _log(training_dir / LOSS_LOG, step, epoch, window, scheduler, tokens_seen, started, accelerator)
                bar.set_postfix(loss=f"{np.mean([w[0] for w in window]):.3f}")
                window = []
            if step % settings.save_every == 0 or step == total_steps:
                save_checkpoint(
                    training_dir, step, epoch, batches_done, model, optimizer, scheduler, settings, accelerator
                )
        if batches_done >= len(epoch_batches):
            epoch, batches_done = epoch + 1, 0
    bar.close()

    save_final_model(accelerator, model, cells.gene_table, out)
    return PretrainResult(
        out,
        training_dir / LOSS_LOG,
        step,
        epoch + batches_done / max(len(sampler), 1),
        tokens_seen,
        time.perf_counter() - started,
    )


def _prepare_out(out: Path, training_dir: Path, settings: PretrainSettings, resume: bool, overwrite: bool) -> None:
    """Check that ``out`` can take this run, and record the settings."""
    settings_file = training_dir / "settings.json"
    record = asdict(settings)
    if resume:
        if not list_checkpoints(training_dir / "checkpoints"):
            raise FileNotFoundError(f"nothing to resume in {out}: it holds no checkpoint; start without --resume")
        saved = json.loads(settings_file.read_text())
        changed = {k for k in record if k not in ("max_steps", "epochs") and saved.get(k) != record[k]}
        if changed:
            raise ValueError(f"cannot resume {out} with changed settings {sorted(changed)}; use the original ones")
        return
    if training_dir.exists() or (out / "config.json").exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a model or run; pass --resume to continue or --overwrite")
        import shutil

        shutil.rmtree(training_dir, ignore_errors=True)
    training_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(record, indent=2))


def _build_model(
    table: GeneTable, settings: PretrainSettings, priors: dict[str, pd.DataFrame] | None, cls_eos_tokens: bool
) -> CellshiftForMaskedGeneModeling:
    """A freshly initialised model for ``table``'s vocabulary, with priors filled in."""
    priors = priors or {}
    config = config_from_preset(
        settings.preset,
        table,
        use_values=settings.use_values,
        species=SPECIES if settings.use_species else None,
        prior_dims={name: frame.shape[1] for name, frame in priors.items()} or None,
        cls_eos_tokens=cls_eos_tokens,
        **settings.model_options,
    )
    model = CellshiftForMaskedGeneModeling(config)
    for name, frame in priors.items():
        model.cellshift.set_prior(name, torch.as_tensor(align_prior(frame, table), dtype=torch.float32))
    model.gene_table = table
    return model


def _start_from_gene_frequencies(model, cells, train_rows: np.ndarray, seed: int, max_cells: int = 100_000) -> None:
    """Set the gene head's output bias to the log-frequency of each gene in (a sample of) the training cells.

    With bias ``b_g = log((n_g + 1) / (N + V))`` an untrained model already ranks genes like the
    gene-frequency baseline, and training spends its steps on what the context of a cell adds
    (the usual initialisation of a classifier's bias to the log class priors). Special tokens
    keep the floor value.
    """
    from cellshift.training.evaluation import gene_frequency

    rows = train_rows
    if len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_cells, replace=False))
    counts = gene_frequency(cells.dataset, rows, model.config.vocab_size).astype(np.float64)
    counts[model.config.special_token_ids] = 0
    bias = np.log((counts + 1) / (counts.sum() + len(counts)))
    with torch.no_grad():
        model.gene_head.decoder.bias.copy_(torch.as_tensor(bias, dtype=model.gene_head.decoder.bias.dtype))


def align_prior(frame: pd.DataFrame, table: GeneTable) -> np.ndarray:
    """Rows of a genes x dim prior table in vocabulary order; tokens without a row get zeros.

    The table may be indexed by human Ensembl IDs, human symbols or mouse symbols (mapped through
    :func:`cellshift.data.resolve_to_human_ensembl`); a gene listed twice keeps its first row.
    """
    from cellshift.data import resolve_to_human_ensembl

    mapping, _ = resolve_to_human_ensembl(list(frame.index))
    matrix = np.zeros((len(table), frame.shape[1]), dtype=np.float32)
    rows, positions = [], []
    for row, gene in enumerate(mapping.target):
        position = table.token_id(gene) if gene is not None else None
        if position is not None and position not in positions:
            rows.append(row)
            positions.append(position)
    if not rows:
        raise ValueError(
            f"no gene of the prior table (e.g. {list(frame.index[:3])}) is in the vocabulary "
            f"(e.g. {list(table.tokens[4:7])}); index the table by gene symbols or Ensembl IDs"
        )
    matrix[positions] = frame.to_numpy(np.float32)[rows]
    return matrix


def _mask_seed(seed: int, epoch: int, position: int, accelerator) -> int:
    """A seed for the masks of one mini-batch, independent of where a run was resumed."""
    return int(np.random.SeedSequence([seed, epoch, position, accelerator.process_index]).generate_state(1)[0])


def _masked_inputs(batch: CellBatch, special_ids, gene_token_ids, mask_token_id, settings, generator) -> dict:
    """Model inputs of a batch with ``mask_probability`` of its gene tokens masked (80/10/10)."""
    eligible = ~special_token_mask(batch.input_ids, special_ids) & batch.attention_mask.bool()
    chosen = choose_positions(eligible, settings.mask_probability, generator)
    if not chosen.any():  # a batch of very short cells: predict at least one token per cell
        chosen = choose_positions(eligible, settings.mask_probability, generator, exact=True)
    input_ids, labels = corrupt(
        batch.input_ids, chosen, mask_token_id=mask_token_id, gene_token_ids=gene_token_ids, generator=generator
    )
    return {
        "input_ids": input_ids,
        "attention_mask": batch.attention_mask,
        "values": batch.values,
        "species_ids": batch.species_ids,
        "labels": labels,
        "value_labels": batch.values,
    }


def _loss_parts(output) -> tuple[float, float, float]:
    """(loss, gene loss, value loss) as floats; NaN where a part does not exist."""
    value = output.value_loss.item() if output.value_loss is not None else float("nan")
    return output.loss.item(), output.gene_loss.item(), value


def _log(path: Path, step, epoch, window, scheduler, tokens_seen, started, accelerator) -> None:
    """Append the mean losses of the last steps to the CSV loss log (main process only)."""
    if not accelerator.is_main_process or not window:
        return
    losses = np.array(window)
    value_loss = "" if np.isnan(losses[:, 2]).any() else losses[:, 2].mean()
    row = [step, epoch, losses[:, 0].mean(), losses[:, 1].mean(), value_loss]
    row += [scheduler.get_last_lr()[0], tokens_seen, round(time.perf_counter() - started, 3)]
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(LOG_COLUMNS)
        writer.writerow(row)
