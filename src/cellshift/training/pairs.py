"""Pairs of cells for contrastive fine-tuning: which pairs form each batch, their distances and loss.

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
dissimilar**.

**Validation pairs** (:class:`ValidationPairs`): fixed pairs of held-out cells, drawn once, whose
loss and mean distances are computed without dropout or gradient.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from accelerate import Accelerator

from cellshift.models import CellshiftModel
from cellshift.models.inputs import ModelCells
from cellshift.models.pooling import mean_over_genes

MARGIN = 20.0
VALIDATION_STREAM = 7  # seeds validation draws as (seed, VALIDATION_STREAM, ...), apart from the epochs' (seed, epoch)


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

    def check_shared_by(self, n_processes: int) -> None:
        """Raise unless every batch holds at least one pair for each of ``n_processes`` processes."""
        if self.smallest_batch < n_processes:
            raise ValueError(
                f"the smallest batch holds {self.smallest_batch} pairs, fewer than the {n_processes} processes "
                "sharing it; raise batch_size or leave out perturbations with very few cells"
            )

    def pairs_before(self, epoch: int, batches_done: int) -> int:
        """Pairs trained on before batch ``batches_done`` of ``epoch`` (where a resumed run starts)."""
        return epoch * self.pairs_per_epoch + sum(len(batch.first) for batch in self.epoch(epoch)[:batches_done])

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


def pair_distances(
    encoder: CellshiftModel, cells: ModelCells, pairs: tuple[np.ndarray, np.ndarray], accelerator: Accelerator
) -> torch.Tensor:
    """Euclidean distances between the cell embeddings of the pairs ``(first[i], second[i])``.

    Both cells of every pair run through the encoder in one padded batch, up to the penultimate
    layer (the cell embedding of :func:`cellshift.models.pooling.cell_embedding`).

    Parameters
    ----------
    encoder
        The encoder (wrapped for data parallelism or not).
    cells
        The tokenised cells; pairs hold positions among them.
    pairs
        ``(first, second)``, cell positions of the two cells of each pair.
    accelerator
        Places the batch on the encoder's device.
    """
    first, second = pairs
    config = accelerator.unwrap_model(encoder).config
    penultimate = config.num_hidden_layers - 1
    batch = cells.batch(np.concatenate([first, second])).to(accelerator.device)
    output = encoder(**batch.model_inputs(), num_layers=penultimate)
    embedding = mean_over_genes(
        output.last_hidden_state, batch.input_ids, batch.attention_mask, config.special_token_ids
    )
    return torch.linalg.vector_norm(embedding[: len(first)] - embedding[len(first) :], dim=-1)


@dataclass(frozen=True)
class PairLosses:
    """Contrastive loss and mean distances of a set of pairs.

    Attributes
    ----------
    loss
        The margin loss over all pairs.
    similar_distance, dissimilar_distance
        Mean distance of the similar and of the dissimilar pairs.
    """

    loss: float
    similar_distance: float
    dissimilar_distance: float


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

    def evaluate(
        self, encoder: CellshiftModel, cells: ModelCells, accelerator: Accelerator, margin: float, batch_size: int
    ) -> PairLosses:
        """Contrastive loss and mean distances of similar and dissimilar pairs, without dropout or gradient.

        Every process takes every ``world_size``-th pair; the sums are added over processes.
        """
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
                distances = pair_distances(model, cells, pair, accelerator).double()
                similar = torch.as_tensor(labels[window], device=distances.device)
                sums[0] += contrastive_loss(distances, similar, margin=margin) * len(distances)
                sums[1] += distances[similar == 1].sum()
                sums[2] += distances[similar == 0].sum()
                sums[3] += (similar == 1).sum()
                sums[4] += (similar == 0).sum()
        model.train()
        sums = accelerator.reduce(sums, reduction="sum").tolist()
        return PairLosses(sums[0] / (sums[3] + sums[4]), sums[1] / max(sums[3], 1), sums[2] / max(sums[4], 1))
