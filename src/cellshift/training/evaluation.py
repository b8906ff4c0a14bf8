"""Masked-gene evaluation of a pre-trained model on held-out cells (Zhao et al. 2025, appendix A.2).

In every held-out cell, 15% of the genes among its top ``top_genes`` (2,000) ranked genes are
replaced by ``<mask>``; the model scores every gene of the vocabulary at each masked position.
Genes still visible in the cell are excluded (a gene occurs once per cell), for the model and the
baseline alike.

- **hits@k**: the true gene is among the k best-scored genes. Averaged per true gene first, then
  over genes (macro average), so frequent genes do not dominate.
- **rank Spearman@K**: the masked positions are filled, in rank order, with the best-scored gene
  not used yet (a gene occurs once per cell); for the cell's
  true top-K genes, Spearman correlation between their true rank and their rank in the predicted
  sequence (a gene that does not appear gets rank K); averaged over cells.
- **frequency baseline**: scores each gene by how often it occurs in the training cells, fills
  masked positions with the most frequent invisible genes in order. A model that learned
  nothing about cells scores at or below it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from scipy import stats
from tqdm.auto import tqdm

from cellshift._io import check_model_dir
from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT, check_options
from cellshift.models import IGNORE_INDEX, CellshiftForMaskedGeneModeling
from cellshift.models.inputs import CellCollator
from cellshift.training.corpora import SPLIT_FILE, heldout_rows_of, open_corpora
from cellshift.training.gene_frequency import gene_frequency
from cellshift.training.loop import SETTINGS_FILE, TRAINING_DIR
from cellshift.training.masking import MaskedBatch, choose_positions, special_token_mask

HITS_AT = (1, 10, 100)
SPEARMAN_AT = (100, 500, 2000)


@torch.no_grad()
def evaluate_masked_genes(
    model,
    dataset,
    rows: np.ndarray,
    frequency: np.ndarray,
    *,
    top_genes: int = 2000,
    mask_probability: float = 0.15,
    batch_size: int = 32,
    max_length: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate ``model`` and the frequency baseline on cells ``rows`` of ``dataset``.

    Parameters
    ----------
    model
        A :class:`~cellshift.models.CellshiftForMaskedGeneModeling`, on any device.
    dataset
        A ``datasets.Dataset`` of tokenised cells (a corpus).
    rows
        Held-out cells to evaluate.
    frequency
        Occurrences of each token in the training cells (:func:`gene_frequency`).
    top_genes
        Only genes among a cell's first ``top_genes`` are masked; also the largest Spearman cut-off.
    mask_probability
        Share of those genes masked in each cell (at least one).
    batch_size, seed, progress
        Cells per forward pass; seed of the masks; progress bar.
    max_length
        Tokens read per cell, as in pre-training (:func:`cellshift.models.inputs.token_limit`).

    Returns
    -------
    One row per method (``model``, ``frequency``) with columns ``hits@1``, ``hits@10``,
    ``hits@100``, ``spearman@100``, ``spearman@500``, ``spearman@2000``, ``n_cells``,
    ``n_masked`` and ``n_genes`` (distinct masked genes).
    """
    config = model.config
    device = next(model.parameters()).device
    model.eval()
    collate = CellCollator(config, max_length=max_length)
    data = collate.select_columns(dataset)
    not_gene = torch.zeros(config.vocab_size, dtype=torch.bool)
    not_gene[config.special_token_ids] = True
    baseline_scores = torch.log1p(torch.as_tensor(frequency, dtype=torch.float32)).masked_fill(not_gene, -torch.inf)
    generator = torch.Generator().manual_seed(seed)
    tallies = {"model": _Tally(), "frequency": _Tally()}
    n_masked = 0
    for start in tqdm(range(0, len(rows), batch_size), desc="evaluating", disable=not progress):
        batch = collate(data, rows[start : start + batch_size])
        genes = ~special_token_mask(batch.input_ids, config.special_token_ids) & batch.attention_mask.bool()
        within_top = genes.cumsum(dim=1) <= top_genes
        chosen = choose_positions(genes & within_top, mask_probability, generator, exact=True)
        hidden = replace(batch, input_ids=batch.input_ids.masked_fill(chosen, config.mask_token_id))
        masked = MaskedBatch(hidden, torch.where(chosen, batch.input_ids, IGNORE_INDEX))
        logits = model(**masked.to(device).model_inputs()).gene_logits.float().cpu()
        cell_of_row = torch.nonzero(chosen)[:, 0]  # logits rows are the masked positions, row-major
        for i in range(len(batch.input_ids)):
            positions = torch.nonzero(chosen[i]).flatten()
            if len(positions) == 0:
                continue
            n_masked += len(positions)
            excluded = not_gene.clone()  # a gene occurs once per cell: genes still visible cannot be the answer
            excluded[batch.input_ids[i][genes[i] & ~chosen[i]]] = True
            model_scores = logits[cell_of_row == i].masked_fill(excluded, -torch.inf)
            base_row = baseline_scores.masked_fill(excluded, -torch.inf)
            cell, cell_genes = batch.input_ids[i], genes[i]
            tallies["model"].add(cell, cell_genes, positions, model_scores, _distinct_best(model_scores))
            base_scores, base_fill = base_row.expand(len(positions), -1), torch.topk(base_row, len(positions)).indices
            tallies["frequency"].add(cell, cell_genes, positions, base_scores, base_fill)
    summary = [
        {"method": method, **tally.scores(), "n_cells": len(rows), "n_masked": n_masked, "n_genes": len(tally.ranks)}
        for method, tally in tallies.items()
    ]
    return pd.DataFrame(summary).set_index("method")


@dataclass
class _Tally:
    """One method's scores, cell after cell.

    Attributes
    ----------
    ranks
        ``{true gene: [rank of its score at each position where it was masked]}`` (0 = best).
    spearman
        ``{cut-off K: [rank Spearman@K of each cell]}``.
    """

    ranks: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    spearman: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(
        self, cell: torch.Tensor, genes: torch.Tensor, positions: torch.Tensor, scores: torch.Tensor, fill: torch.Tensor
    ) -> None:
        """Score one cell: ``scores`` ranks every token at each masked ``position``; ``fill`` is the method's guess."""
        truth = cell[positions]
        true_scores = scores.gather(1, truth[:, None])
        for gene, rank in zip(truth.tolist(), (scores > true_scores).sum(dim=1).tolist(), strict=True):
            self.ranks[gene].append(rank)
        filled = cell.clone()
        filled[positions] = fill
        tokens, predicted = cell[genes].numpy(), filled[genes].numpy()
        for cutoff in SPEARMAN_AT:
            k = min(cutoff, len(tokens))
            if k >= 3:
                self.spearman[cutoff].append(_rank_spearman(tokens[:k], predicted, k))

    def scores(self) -> dict[str, float]:
        """Macro-averaged hits@k (per gene, then over genes) and mean rank Spearman@K."""
        per_gene = [np.asarray(ranks) for ranks in self.ranks.values()]
        row = {f"hits@{k}": float(np.mean([np.mean(r < k) for r in per_gene])) if per_gene else np.nan for k in HITS_AT}
        for cutoff in SPEARMAN_AT:
            values = self.spearman[cutoff]
            row[f"spearman@{cutoff}"] = float(np.nanmean(values)) if values else np.nan
        return row


def _distinct_best(scores: torch.Tensor) -> torch.Tensor:
    """Fill masked positions in rank order, each with its best-scored gene not used before (a gene occurs once)."""
    scores = scores.clone()
    chosen = torch.empty(len(scores), dtype=torch.long)
    for row in range(len(scores)):
        chosen[row] = scores[row].argmax()
        scores[row + 1 :, chosen[row]] = -torch.inf
    return chosen


def _rank_spearman(true_top: np.ndarray, predicted: np.ndarray, k: int) -> float:
    """Spearman correlation of the true ranks 0..k-1 and the ranks of those genes in ``predicted``."""
    first_position = {}
    for position, gene in enumerate(predicted.tolist()):
        first_position.setdefault(gene, position)
    predicted_ranks = np.array([min(first_position.get(gene, k), k) for gene in true_top.tolist()])
    if np.all(predicted_ranks == predicted_ranks[0]):
        return float("nan")
    return float(stats.spearmanr(np.arange(k), predicted_ranks).statistic)


def evaluate_model_dir(
    model_dir: str | os.PathLike,
    corpus: str | os.PathLike,
    *,
    max_cells: int | None = 500,
    top_genes: int = 2000,
    batch_size: int = 32,
    max_length: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Evaluate a saved model on a corpus: :func:`evaluate_masked_genes` with the right cells.

    If the model was pre-trained on ``corpus``, its held-out cells are evaluated and the
    baseline's frequencies come from the corpus's training cells; otherwise all its cells are
    evaluated and the frequencies come from the model's training corpora. At most ``max_cells``
    cells (a seeded random subset) are evaluated. Cells are cut to ``max_length`` tokens, by
    default the ``max_length`` the model was pre-trained with (``training/settings.json``).
    """
    options = {"max_cells": max_cells, "top_genes": top_genes, "batch_size": batch_size, "max_length": max_length}
    check_options({**options, "seed": seed}, {**dict.fromkeys(options, POSITIVE_INT), "seed": NON_NEGATIVE_INT})
    model_dir = check_model_dir(model_dir)
    settings_file = model_dir / TRAINING_DIR / SETTINGS_FILE
    if max_length is None and settings_file.exists():
        max_length = json.loads(settings_file.read_text()).get("max_length")
    cells = open_corpora([corpus])
    model = CellshiftForMaskedGeneModeling.from_pretrained(model_dir)
    if model.gene_table is None or model.gene_table.sha256 != cells.gene_table.sha256:
        model_vocabulary = "no" if model.gene_table is None else f"the {model.gene_table.vocabulary}"
        raise ValueError(
            f"{corpus} was not tokenised with the model's gene table ({cells.gene_table.vocabulary} vocabulary; "
            f"the model has {model_vocabulary} vocabulary); tokenise it with "
            f"`cellshift tokenize ... --gene-table {model_dir / 'gene_table.tsv.gz'}`"
        )
    split_file = model_dir / TRAINING_DIR / SPLIT_FILE
    n_cells = cells.corpora[0]["n_cells"]
    heldout = heldout_rows_of(split_file, corpus, n_cells, cell_ids=lambda: cells.dataset["cell_id"])
    vocab_size = model.config.vocab_size
    if heldout is not None:
        rows = heldout
        frequency = gene_frequency(cells.dataset, np.setdiff1d(np.arange(n_cells), heldout), vocab_size)
    else:
        rows = np.arange(n_cells)
        frequency = _training_frequency(split_file, vocab_size)
    if max_cells is not None and len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_cells, replace=False))
    model.to(PartialState().device)
    return evaluate_masked_genes(
        model,
        cells.dataset,
        rows,
        frequency,
        top_genes=top_genes,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        progress=progress,
    )


def _training_frequency(split_file: Path, vocab_size: int) -> np.ndarray:
    """Token counts over the training cells of a model's corpora (those still on disk)."""
    if not split_file.exists():
        raise FileNotFoundError(
            f"{split_file} is missing, so the frequency baseline has no training cells; evaluate on a corpus "
            "the model was pre-trained on"
        )
    frequency = np.zeros(vocab_size, dtype=np.int64)
    found = 0
    for corpus in json.loads(split_file.read_text()):
        if Path(corpus["path"]).exists():
            cells = open_corpora([corpus["path"]])
            rows = np.setdiff1d(np.arange(corpus["n_cells"]), corpus["heldout"])
            frequency += gene_frequency(cells.dataset, rows, vocab_size)
            found += 1
    if not found:
        raise FileNotFoundError("none of the model's training corpora is on disk; the frequency baseline needs one")
    return frequency
