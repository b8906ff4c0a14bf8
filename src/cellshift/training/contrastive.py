"""Contrastive fine-tuning of a pre-trained model on a Perturb-seq screen (Zhao et al. 2025; DESIGN §2.4).

A sample is a pair of cells with label y: (control, control) is similar (y = 1), (perturbed,
control) dissimilar (y = 0). Each cell is embedded as the mean over its gene tokens of the
penultimate layer (:func:`cellshift.models.pooling.cell_embedding`), d is the Euclidean distance
between the two embeddings, and a batch of N pairs has the margin loss

    L = 1/(2N) * sum_i ( y_i d_i^2 + (1 - y_i) max(0, m - d_i)^2 ),   m = 20,

which pulls control cells together and pushes perturbed cells at least m away from control cells.

**Batches** (:class:`PairBatches`). Per epoch, seeded by (seed, epoch): every perturbed training
cell is the first cell of one dissimilar pair, its partner a control cell drawn from shuffled
passes over the controls; the cells of each perturbation are shuffled and cut into
``ceil(n / batch_size)`` batches of nearly equal size, so **a dissimilar batch holds cells of one
perturbation**. Before each dissimilar batch comes a similar batch of as many pairs of distinct
control cells (consecutive cells of shuffled passes), so **batches alternate similar /
dissimilar**. One optimizer step per batch: AdamW, learning rate 1e-5 (constant), weight decay
1e-2, every encoder parameter up to the penultimate layer trained ("all layers" of the paper);
gradient-norm clipping at 1 (the Hugging Face ``Trainer`` default) unless switched off. The loss
reads the penultimate layer, so the encoder runs only up to it (``num_layers``): the last layer
could get no gradient, is frozen (DDP requires a gradient for every trainable parameter) and is
saved with its pre-trained weights.

**Validation** (when validation controls are given, e.g. the split's validation share of the
controls): ``validation_fraction`` of each training perturbation's cells are held out of
training, and at every log step the loss and mean distances of fixed pairs of held-out cells
(:class:`ValidationPairs`) are computed without dropout or gradient and logged next to the
training loss.

Only the cells named by the caller are tokenised and trained on: the training perturbations
(those with >= 20 DEGs minus the held-out test perturbations, chosen by
:func:`cellshift.analysis.split_perturbations`) and the control cells of the training share.
They are tokenised in memory with the model's own gene table by
:func:`cellshift.tokenize.in_memory.encode_anndata` (with ``<cls>``/``<eos>`` when the model was
trained with them, ``config.cls_eos_tokens``), exactly as ``cellshift embed`` tokenises the cells
it embeds.

The loop follows :func:`cellshift.training.pretrain`: ``accelerate`` for the device, bf16 on CUDA
and data parallelism (each process takes every ``world_size``-th pair of the same batch, so one
optimizer step still sees one kind of batch), a CSV loss log, checkpoints that resume exactly (on
CPU, a resumed run ends with the same weights as one that never stopped). The fine-tuned encoder
is saved with ``save_pretrained`` (config, weights, gene table) and loads with
``CellshiftModel.from_pretrained``; the masked-gene head of the pre-trained model is dropped
(the contrastive loss does not train it, and it no longer fits the fine-tuned hidden states).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cellshift.models.inputs import ModelCells, encode_cells
from cellshift.models.loading import load_encoder
from cellshift.models.pooling import mean_over_genes
from cellshift.training._loop import mixed_precision, save_checkpoint, save_final_model, truncate_log
from cellshift.training.checkpoints import list_checkpoints, load_checkpoint
from cellshift.training.pretraining import LOSS_LOG, TRAINING_DIR

MARGIN = 20.0
SPLIT_FILE = "split.json"
CELLS_FILE = "training_cells.json"
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
VALIDATION_STREAM = 7


@dataclass
class FinetuneSettings:
    """Settings of a contrastive fine-tuning run (Zhao et al. 2025 in brackets).

    Attributes
    ----------
    epochs, max_steps
        Run ``epochs`` passes over the perturbed training cells, or stop after ``max_steps``
        optimizer steps (one step per batch, similar and dissimilar batches alike).
    batch_size
        Pairs per batch (all processes together); a batch runs ``2 * batch_size`` cells.
    learning_rate, weight_decay
        AdamW, constant learning rate [1e-5, the paper's], weight decay [1e-2]. For small models
        and short runs use 1e-4: at 1e-5, 600 steps of a ``small`` model on Papalexi left the
        loss flat (cells ~1.3 apart, far inside the margin), while 1e-4 moved the held-out JAK2
        30x further from control.
    margin
        Margin m of the loss [20].
    max_grad_norm
        Gradient-norm clipping; ``None`` switches it off.
    max_length
        Tokens kept per cell (default: the model's input size).
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
class PairBatch:
    """One batch of cell pairs: pair i is ``(first[i], second[i])``; ``second`` is always a control cell.

    Attributes
    ----------
    first, second
        Cell indices (in the caller's numbering) of the two cells of each pair.
    similar
        ``True`` for (control, control) pairs (y = 1), ``False`` for (perturbed, control) (y = 0).
    perturbation
        The perturbation of every first cell of a dissimilar batch; ``None`` for a similar batch.
    """

    first: np.ndarray
    second: np.ndarray
    similar: bool
    perturbation: str | None

    @property
    def labels(self) -> np.ndarray:
        """Label y of every pair: 1.0 similar, 0.0 dissimilar."""
        return np.full(len(self.first), 1.0 if self.similar else 0.0, dtype=np.float32)


class PairBatches:
    """The batches of every epoch, alternating similar and dissimilar (see the module docstring).

    Parameters
    ----------
    perturbed
        ``{perturbation: cell indices}`` of the perturbed training cells.
    controls
        Cell indices of the control training cells (at least 2 distinct; repeats are dropped).
    batch_size
        Largest number of pairs per batch.
    seed
        Seed; epoch ``e`` draws from ``numpy.random.default_rng([seed, e])``.
    """

    def __init__(
        self, perturbed: Mapping[str, Sequence[int]], controls: Sequence[int], *, batch_size: int, seed: int = 0
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.perturbed = {str(label): np.asarray(cells, dtype=np.int64) for label, cells in sorted(perturbed.items())}
        self.controls = np.unique(np.asarray(controls, dtype=np.int64))
        self.batch_size = batch_size
        self.seed = seed
        if not self.perturbed:
            raise ValueError("no perturbation to train on; pass at least one training perturbation")
        empty = [label for label, cells in self.perturbed.items() if len(cells) == 0]
        if empty:
            raise ValueError(f"training perturbation(s) {empty} have no cells")
        if len(self.controls) < 2:
            raise ValueError(f"similar pairs need at least 2 distinct control cells, got {len(self.controls)}")
        both = np.intersect1d(np.concatenate(list(self.perturbed.values())), self.controls)
        if both.size:
            raise ValueError(f"{both.size} cell(s) are both perturbed and control (e.g. {both[:3].tolist()})")

    def __len__(self) -> int:
        """Batches per epoch: twice the number of dissimilar batches."""
        return 2 * sum(_n_batches(len(cells), self.batch_size) for cells in self.perturbed.values())

    @property
    def smallest_batch(self) -> int:
        """Pairs in the smallest batch of an epoch."""
        return min(len(cells) // _n_batches(len(cells), self.batch_size) for cells in self.perturbed.values())

    @property
    def pairs_per_epoch(self) -> int:
        """Pairs per epoch: one dissimilar and one similar pair per perturbed cell."""
        return 2 * sum(len(cells) for cells in self.perturbed.values())

    def epoch(self, epoch: int) -> list[PairBatch]:
        """The batches of ``epoch``, similar first, then alternating."""
        rng = np.random.default_rng([self.seed, epoch])
        dissimilar = [
            (label, chunk)
            for label, cells in self.perturbed.items()
            for chunk in np.array_split(rng.permutation(cells), _n_batches(len(cells), self.batch_size))
        ]
        dissimilar = [dissimilar[i] for i in rng.permutation(len(dissimilar))]
        n_pairs = sum(len(chunk) for _, chunk in dissimilar)
        partners = _control_stream(rng, self.controls, n_pairs)
        similar_first, similar_second = _control_pairs(rng, self.controls, n_pairs)
        batches, start = [], 0
        for label, chunk in dissimilar:
            window = slice(start, start + len(chunk))
            batches.append(PairBatch(similar_first[window], similar_second[window], True, None))
            batches.append(PairBatch(chunk, partners[window], False, label))
            start += len(chunk)
        return batches


def _n_batches(n_cells: int, batch_size: int) -> int:
    return math.ceil(n_cells / batch_size)


def _control_stream(rng: np.random.Generator, controls: np.ndarray, n: int) -> np.ndarray:
    """``n`` control cells from consecutive shuffled passes over all controls."""
    passes = math.ceil(n / len(controls))
    return np.concatenate([rng.permutation(controls) for _ in range(passes)])[:n]


def _control_pairs(rng: np.random.Generator, controls: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of distinct control cells: consecutive cells of shuffled passes over the controls."""
    per_pass = len(controls) // 2
    shuffled = [rng.permutation(controls) for _ in range(math.ceil(n / per_pass))]
    first = np.concatenate([order[0 : 2 * per_pass : 2] for order in shuffled])[:n]
    second = np.concatenate([order[1 : 2 * per_pass : 2] for order in shuffled])[:n]
    return first, second


def contrastive_loss(distances: torch.Tensor, similar: torch.Tensor, *, margin: float = MARGIN) -> torch.Tensor:
    """Margin loss of a batch of pairs: ``1/(2N) * sum(y d^2 + (1 - y) max(0, m - d)^2)``.

    Parameters
    ----------
    distances
        ``(N,)`` Euclidean distances between the two cell embeddings of each pair.
    similar
        ``(N,)`` labels y: 1 for a similar pair, 0 for a dissimilar pair.
    margin
        m; dissimilar pairs farther apart than m cost nothing.

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    if distances.ndim != 1 or distances.shape != similar.shape:
        raise ValueError(
            f"distances {tuple(distances.shape)} and labels {tuple(similar.shape)} must be equal 1-d shapes"
        )
    y = similar.to(distances.dtype)
    terms = y * distances.square() + (1 - y) * torch.clamp(margin - distances, min=0).square()
    return terms.sum() / (2 * distances.numel())


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
    from accelerate import Accelerator

    settings = settings or FinetuneSettings()
    model_dir, out = Path(model), Path(out)
    if out.resolve() == model_dir.resolve():
        raise ValueError(f"--out {out} is the pre-trained model's directory; write the fine-tuned model elsewhere")
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(
            f"{model_dir} holds no saved model (config.json); pass a `cellshift pretrain` directory"
        )
    training_dir = out / TRAINING_DIR
    perturbed_rows, control_rows = _training_rows(adata, perturbation_key, perturbations, control_cells)
    validation_rows = validation_control_rows = np.array([], dtype=np.int64)
    if len(validation_controls):
        if not 0 < settings.validation_fraction < 1:
            raise ValueError(f"validation_fraction must lie in (0, 1), got {settings.validation_fraction}")
        _, validation_control_rows = _training_rows(adata, perturbation_key, perturbations, validation_controls)
        if len(validation_control_rows) < 2 or np.intersect1d(validation_control_rows, control_rows).size:
            raise ValueError(
                "validation_controls need at least 2 cells and must not overlap control_cells (the training controls)"
            )
        perturbed_rows, validation_rows = _hold_out(perturbed_rows, settings.validation_fraction, settings.seed)
    cells_record = {
        "perturbation_key": perturbation_key,
        "perturbations": {label: len(rows) for label, rows in perturbed_rows.items()},
        "control_cells": adata.obs_names[control_rows].astype(str).tolist(),
        "validation_perturbed_cells": adata.obs_names[np.sort(validation_rows)].astype(str).tolist(),
        "validation_controls": adata.obs_names[validation_control_rows].astype(str).tolist(),
    }
    accelerator = Accelerator(mixed_precision=mixed_precision(settings.mixed_precision))
    if accelerator.is_main_process:
        record = {"model": str(model_dir.resolve()), **asdict(settings)}
        _prepare_out(out, training_dir, record, cells_record, split, resume, overwrite)
    accelerator.wait_for_everyone()

    encoder = load_encoder(model_dir)
    table, config = encoder.gene_table, encoder.config
    rows = np.sort(np.concatenate([*perturbed_rows.values(), control_rows, validation_rows, validation_control_rows]))
    cells = encode_cells(
        adata[rows],
        encoder,
        layer=layer,
        gene_key=gene_key,
        species=species,
        max_length=settings.max_length,
        pad_to_multiple_of=8 if accelerator.device.type == "cuda" else None,
    )
    pairs = PairBatches(
        {label: np.searchsorted(rows, r) for label, r in perturbed_rows.items()},
        np.searchsorted(rows, control_rows),
        batch_size=settings.batch_size,
        seed=settings.seed,
    )
    validation = None
    if validation_rows.size:
        validation = ValidationPairs.draw(
            np.searchsorted(rows, validation_rows),
            np.searchsorted(rows, validation_control_rows),
            settings.validation_pairs,
            settings.seed,
        )
    if pairs.smallest_batch < accelerator.num_processes:
        raise ValueError(
            f"the smallest batch holds {pairs.smallest_batch} pairs, fewer than the {accelerator.num_processes} "
            "processes sharing it; raise batch_size or leave out perturbations with very few cells"
        )

    # The loss reads the penultimate layer: the last layer is neither run nor trained (no gradient
    # would reach it, and DDP requires every trainable parameter to get one). It is saved unchanged.
    encoder.bert.encoder.layer[-1].requires_grad_(False)
    torch.manual_seed(settings.seed)
    total_steps = settings.max_steps or settings.epochs * len(pairs)
    trainable = [parameter for parameter in encoder.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    encoder, optimizer = accelerator.prepare(encoder, optimizer)
    step, epoch, batches_done = 0, 0, 0
    if resume:
        state = load_checkpoint(
            list_checkpoints(training_dir / "checkpoints")[-1],
            model=accelerator.unwrap_model(encoder),
            optimizer=optimizer,
            scheduler=scheduler,
            rank=accelerator.process_index,
        )
        step, epoch, batches_done = state["step"], state["epoch"], state["batches_done"]
        if accelerator.is_main_process:
            truncate_log(training_dir / LOSS_LOG, step)

    share = slice(accelerator.process_index, None, accelerator.num_processes)
    special_ids = config.special_token_ids or [config.pad_token_id]
    bar = tqdm(
        total=total_steps, initial=step, desc="fine-tuning", disable=not progress or not accelerator.is_main_process
    )
    pairs_seen = epoch * pairs.pairs_per_epoch + sum(len(b.first) for b in pairs.epoch(epoch)[:batches_done])
    started, window = time.perf_counter(), []
    encoder.train()
    while step < total_steps:
        batches = pairs.epoch(epoch)
        while batches_done < len(batches) and step < total_steps:
            batch = batches[batches_done]
            first, second = batch.first[share], batch.second[share]
            pair = (first, second)
            distances = _pair_distances(encoder, cells, pair, special_ids, accelerator)
            labels = torch.as_tensor(batch.labels[share], device=distances.device)
            loss = contrastive_loss(distances, labels, margin=settings.margin)
            accelerator.backward(loss)
            if settings.max_grad_norm is not None:
                accelerator.clip_grad_norm_(encoder.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            window.append((loss.item(), batch.similar, distances.mean().item()))
            pairs_seen += len(batch.first)
            batches_done += 1
            step += 1
            bar.update(1)
            if step % settings.log_every == 0 or step == total_steps:
                checked = None
                if validation is not None:
                    inputs = (cells, special_ids)
                    checked = validation.evaluate(encoder, inputs, accelerator, settings.margin, settings.batch_size)
                row = (step, epoch, window, checked, scheduler, pairs_seen, started)
                _log(training_dir / LOSS_LOG, row, accelerator)
                bar.set_postfix(loss=f"{np.mean([w[0] for w in window]):.3f}")
                window = []
            if step % settings.save_every == 0 or step == total_steps:
                save_checkpoint(
                    training_dir, step, epoch, batches_done, encoder, optimizer, scheduler, settings, accelerator
                )
        if batches_done >= len(batches):
            epoch, batches_done = epoch + 1, 0
    bar.close()

    save_final_model(accelerator, encoder, table, out)
    return FinetuneResult(
        out,
        training_dir / LOSS_LOG,
        step,
        epoch + batches_done / len(pairs),
        pairs_seen,
        time.perf_counter() - started,
    )


def _hold_out(
    perturbed_rows: dict[str, np.ndarray], fraction: float, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split each perturbation's rows: ``floor(fraction * n)`` random rows held out, at least one kept."""
    rng = np.random.default_rng([seed, VALIDATION_STREAM, 0])
    kept, held_out = {}, []
    for label, rows in perturbed_rows.items():
        shuffled = rng.permutation(rows)
        n_out = min(int(fraction * len(rows)), len(rows) - 1)
        held_out.append(shuffled[:n_out])
        kept[label] = np.sort(shuffled[n_out:])
    return kept, np.sort(np.concatenate(held_out))


@dataclass(frozen=True)
class ValidationPairs:
    """Fixed validation pairs of held-out cells (positions in the tokenised cells).

    Similar pairs: two distinct validation controls; dissimilar pairs: a held-out perturbed cell
    and a validation control. ``labels`` is 1 for similar, 0 for dissimilar pairs.
    """

    first: np.ndarray
    second: np.ndarray
    labels: np.ndarray

    @classmethod
    def draw(cls, perturbed: np.ndarray, controls: np.ndarray, n_pairs: int, seed: int) -> ValidationPairs:
        """At most ``n_pairs`` similar and ``n_pairs`` dissimilar pairs, seeded."""
        rng = np.random.default_rng([seed, VALIDATION_STREAM, 1])
        shuffled = rng.permutation(controls)
        n_similar = min(n_pairs, len(shuffled) // 2)
        chosen = rng.permutation(perturbed)[:n_pairs]
        partners = rng.choice(controls, size=len(chosen), replace=True)
        return cls(
            first=np.concatenate([shuffled[:n_similar], chosen]),
            second=np.concatenate([shuffled[n_similar : 2 * n_similar], partners]),
            labels=np.concatenate([np.ones(n_similar, dtype=np.int64), np.zeros(len(chosen), dtype=np.int64)]),
        )

    def evaluate(self, encoder, inputs: tuple, accelerator, margin: float, batch_size: int) -> tuple[float, ...]:
        """Contrastive loss and mean distances of similar and dissimilar pairs, without dropout or gradient.

        Every process takes every ``world_size``-th pair; the sums are added over processes.
        """
        cells, special_ids = inputs
        model = accelerator.unwrap_model(encoder)
        share = slice(accelerator.process_index, None, accelerator.num_processes)
        first, second, labels = self.first[share], self.second[share], self.labels[share]
        # loss sum, similar distance sum, dissimilar distance sum, similar pairs, dissimilar pairs
        sums = torch.zeros(5, dtype=torch.float64, device=accelerator.device)
        model.eval()
        with torch.no_grad():
            for start in range(0, len(first), batch_size):
                window = slice(start, start + batch_size)
                pair = (first[window], second[window])
                distances = _pair_distances(model, cells, pair, special_ids, accelerator).double()
                similar = torch.as_tensor(labels[window], device=distances.device)
                sums[0] += contrastive_loss(distances, similar, margin=margin) * len(distances)
                sums[1] += distances[similar == 1].sum()
                sums[2] += distances[similar == 0].sum()
                sums[3] += (similar == 1).sum()
                sums[4] += (similar == 0).sum()
        model.train()
        sums = accelerator.reduce(sums, reduction="sum").tolist()
        return sums[0] / (sums[3] + sums[4]), sums[1] / max(sums[3], 1), sums[2] / max(sums[4], 1)


def _training_rows(
    adata: ad.AnnData, perturbation_key: str, perturbations: Sequence[str], control_cells: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Rows of ``adata`` of each training perturbation and of the control training cells, checked."""
    if perturbation_key not in adata.obs.columns:
        raise KeyError(f"obs has no column {perturbation_key!r}; obs columns: {list(adata.obs.columns)}")
    if not adata.obs_names.is_unique:
        raise ValueError("adata.obs_names are not unique; call adata.obs_names_make_unique() first")
    labels = adata.obs[perturbation_key].astype(str).to_numpy()
    perturbed = {}
    for label in sorted(set(map(str, perturbations))):
        perturbed[label] = np.flatnonzero(labels == label)
        if perturbed[label].size == 0:
            raise ValueError(f"training perturbation {label!r} has no cells in obs[{perturbation_key!r}]")
    positions = adata.obs_names.get_indexer(pd.Index(list(map(str, control_cells))))
    if (positions < 0).any():
        missing = [name for name, p in zip(control_cells, positions, strict=True) if p < 0]
        raise KeyError(f"{len(missing)} control cell(s) are not in adata.obs_names, e.g. {missing[:3]}")
    control_rows = np.unique(positions)
    clash = sorted(set(labels[control_rows]) & set(perturbed))
    if clash:
        raise ValueError(f"control cells carry training perturbation label(s) {clash}; pass control cells only")
    return perturbed, control_rows


def _prepare_out(
    out: Path,
    training_dir: Path,
    record: dict,
    cells_record: dict,
    split: Mapping | None,
    resume: bool,
    overwrite: bool,
) -> None:
    """Check that ``out`` can take this run; record settings, training cells and split (main process)."""
    settings_file, cells_file = training_dir / "settings.json", training_dir / CELLS_FILE
    if resume:
        if not list_checkpoints(training_dir / "checkpoints"):
            raise FileNotFoundError(f"nothing to resume in {out}: it holds no checkpoint; start without --resume")
        saved = json.loads(settings_file.read_text())
        changed = {k for k in record if k not in ("max_steps", "epochs") and saved.get(k) != record[k]}
        if changed:
            raise ValueError(f"cannot resume {out} with changed settings {sorted(changed)}; use the original ones")
        if json.loads(cells_file.read_text()) != cells_record:
            raise ValueError(
                f"cannot resume {out}: the training perturbations or control cells differ from the original run's "
                f"({cells_file}); use the same screen, DEGs and split settings"
            )
        return
    if training_dir.exists() or (out / "config.json").exists():
        if not overwrite:
            raise FileExistsError(f"{out} already holds a model or run; pass --resume to continue or --overwrite")
        shutil.rmtree(training_dir, ignore_errors=True)
    training_dir.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(json.dumps(record, indent=2))
    cells_file.write_text(json.dumps(cells_record, indent=1))
    if split is not None:
        (training_dir / SPLIT_FILE).write_text(json.dumps(split, indent=1) + "\n")


def _pair_distances(encoder, cells: ModelCells, pairs, special_ids, accelerator) -> torch.Tensor:
    """Euclidean distances between the cell embeddings of the pairs ``(first[i], second[i])``.

    Both cells of every pair run through the encoder in one padded batch, up to the penultimate
    layer (the cell embedding of :func:`cellshift.models.pooling.cell_embedding`).
    """
    first, second = pairs
    penultimate = accelerator.unwrap_model(encoder).config.num_hidden_layers - 1
    batch = cells.batch(np.concatenate([first, second])).to(accelerator.device)
    output = encoder(**batch.model_inputs(), num_layers=penultimate)
    embedding = mean_over_genes(output.last_hidden_state, batch.input_ids, batch.attention_mask, special_ids)
    return torch.linalg.vector_norm(embedding[: len(first)] - embedding[len(first) :], dim=-1)


def _log(path: Path, row: tuple, accelerator) -> None:
    """Append the mean loss and distances of the last steps, per kind of batch, and the validation, to the CSV log.

    ``row`` is ``(step, epoch, window, validation, scheduler, pairs_seen, started)``; ``validation``
    is ``None`` or ``(loss, similar distance, dissimilar distance)``.
    """
    step, epoch, window, validation, scheduler, pairs_seen, started = row
    if not accelerator.is_main_process or not window:
        return

    def mean(values: list[float]) -> float | str:
        return float(np.mean(values)) if values else ""

    kinds = {kind: [w for w in window if w[1] == kind] for kind in (True, False)}
    values = [step, epoch, mean([w[0] for w in window])]
    values += [mean([w[0] for w in kinds[True]]), mean([w[0] for w in kinds[False]])]
    values += [mean([w[2] for w in kinds[True]]), mean([w[2] for w in kinds[False]])]
    values += list(validation) if validation is not None else ["", "", ""]
    values += [scheduler.get_last_lr()[0], pairs_seen, round(time.perf_counter() - started, 3)]
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(LOG_COLUMNS)
        writer.writerow(values)
