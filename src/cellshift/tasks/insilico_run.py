"""One pass of in-silico perturbation: every chosen cell, a list of perturbations, their null draws.

For cell ``c`` with embedding ``o`` (unperturbed) and ``p`` (perturbed), the measures are

    cosine_shift       = 1 - cos(o, p)                                (Theodoris et al. 2023)
    shift_to_<state>   = cos(p, m_state) - cos(o, m_state)            (m_state: centroid of a cell state)

and, with ``affected``, for every other gene ``t`` of the cell with contextual embeddings
``h_o(t)``, ``h_p(t)``: ``1 - cos(h_o(t), h_p(t))``, averaged over cells per perturbation and gene
(Geneformer's and GeneCompass's shift of the other genes' embeddings). Each perturbation's mean
embedding change ``mean_c (p - o)`` is kept per draw, to compare its direction with real cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cellshift.models import CellshiftModel
from cellshift.tasks.cell_tokens import CellSource
from cellshift.tasks.perturbation_ops import INSERTING, gene_region, perturb_cell
from cellshift.tasks.perturbation_stats import draw_null_genes
from cellshift.tasks.variant_batches import Variant, encode_variants, gene_tokens_of

NULL_STREAM = 1


@dataclass(frozen=True)
class RunPlan:
    """What one pass perturbs and how.

    Attributes
    ----------
    perturbations
        Index in the whole run -> tokens perturbed together.
    operation, shift
        See :func:`cellshift.tasks.perturbation_ops.perturb_cell`.
    n_null, null_window
        Null draws per cell and perturbation; their rank window (:mod:`~cellshift.tasks.perturbation_stats`).
    excluded, absent_pool
        Tokens never drawn as null genes; tokens a null draw may insert.
    states
        State name -> centroid of its cells' embeddings.
    affected
        Also measure the shift of the other genes' contextual embeddings.
    batch_size, cell_layer, gene_layer, seed
        Forward passes and randomness.
    """

    perturbations: dict[int, tuple[int, ...]]
    operation: str
    shift: float
    n_null: int
    null_window: float
    excluded: np.ndarray
    absent_pool: np.ndarray
    states: dict[str, np.ndarray]
    affected: bool
    batch_size: int
    cell_layer: int
    gene_layer: int
    seed: int


@dataclass
class RunOutput:
    """Tables of one pass: ``per_cell`` rows, mean embedding changes, affected-gene shifts (or ``None``)."""

    per_cell: pd.DataFrame
    directions: pd.DataFrame
    affected: pd.DataFrame | None


def run_perturbations(
    model: CellshiftModel, source: CellSource, rows: np.ndarray, plan: RunPlan, progress_bar=None
) -> RunOutput:
    """Encode every chosen cell and its variants and measure each variant against its cell.

    Parameters
    ----------
    model
        The encoder, on its device, in eval mode.
    source
        The cells.
    rows
        Rows of the cells to perturb (visited from the longest to the shortest).
    plan
        The perturbations and settings.
    progress_bar
        A tqdm bar advanced by one per sequence encoded, or ``None``.

    Returns
    -------
    RunOutput
        The measures of every variant.
    """
    special = list(model.config.special_token_ids)
    order = rows[np.argsort(-source.cells.lengths[rows], kind="stable")]
    variants = _variant_stream(source, order, plan)
    batches = encode_variants(
        model,
        source.cells,
        variants,
        batch_size=plan.batch_size,
        cell_layer=plan.cell_layer,
        gene_layer=plan.gene_layer,
        with_gene_states=plan.affected,
    )
    records, delta_sums, delta_counts = [], defaultdict(float), defaultdict(int)
    affected_sums: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    original = None
    for batch in batches:
        for i, variant in enumerate(batch.variants):
            embedding = batch.cell_embeddings[i]
            states = batch.gene_states[i] if plan.affected else None
            if variant.perturbation < 0:
                original = (embedding, gene_tokens_of(variant.input_ids, special), states)
                continue
            records.append(_measures(variant, original[0], embedding, plan.states))
            key = (variant.perturbation, variant.draw)
            delta_sums[key] = delta_sums[key] + (embedding - original[0])
            delta_counts[key] += 1
            if plan.affected and variant.draw == 0:
                tokens = gene_tokens_of(variant.input_ids, special)
                _add_affected(affected_sums[variant.perturbation], original[1:], tokens, states)
        if progress_bar is not None:
            progress_bar.update(len(batch.variants))
    return RunOutput(
        pd.DataFrame(records), _directions(delta_sums, delta_counts), _affected_table(affected_sums, plan.affected)
    )


def _variant_stream(source: CellSource, order: np.ndarray, plan: RunPlan) -> Iterator[Variant]:
    """Each cell, then its perturbed versions and their null draws."""
    special_tokens = source.cells.collate.keeps_eos
    for cell in order:
        ids, values = source.cell_tokens(int(cell))
        yield Variant(int(cell), -1, 0, ids, values)
        cell_genes = ids[gene_region(len(ids), special_tokens)]
        for index, genes in plan.perturbations.items():
            if plan.operation not in INSERTING and not np.isin(genes, cell_genes).all():
                continue
            draws = [genes]
            for draw in range(1, plan.n_null + 1):
                rng = np.random.default_rng([plan.seed, NULL_STREAM, int(cell), index, draw])
                draws.append(
                    draw_null_genes(
                        cell_genes,
                        genes,
                        rng,
                        excluded=plan.excluded,
                        absent_pool=plan.absent_pool,
                        window=plan.null_window,
                    )
                )
            for draw, perturbed in enumerate(draws):
                if perturbed is None:
                    continue
                new_ids, new_values = perturb_cell(
                    ids, values, perturbed, plan.operation, shift=plan.shift, special_tokens=special_tokens
                )
                yield Variant(int(cell), index, draw, *source.within_limit(new_ids, new_values))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norms) if norms > 0 else 0.0


def _measures(variant: Variant, original: np.ndarray, perturbed: np.ndarray, states: dict[str, np.ndarray]) -> dict:
    """One per-cell row: the cosine shift and the shift toward each state's centroid."""
    row = {
        "cell": variant.cell,
        "perturbation": variant.perturbation,
        "draw": variant.draw,
        "cosine_shift": 1.0 - _cosine(original, perturbed),
    }
    for name, centroid in states.items():
        row[f"shift_to_{name}"] = _cosine(perturbed, centroid) - _cosine(original, centroid)
    return row


def _add_affected(sums: dict, original: tuple, tokens: np.ndarray, states: np.ndarray) -> None:
    """Add ``1 - cos`` of every gene present in both the cell and its variant to the running sums."""
    original_tokens, original_states = original
    position = {int(t): i for i, t in enumerate(original_tokens)}
    for j, token in enumerate(tokens.tolist()):
        i = position.get(token)
        if i is None:
            continue
        entry = sums[token]
        entry[0] += 1.0 - _cosine(original_states[i], states[j])
        entry[1] += 1


def _directions(sums: dict, counts: dict) -> pd.DataFrame:
    """Mean embedding change per perturbation and draw: ``perturbation, draw, n_cells, dim0...``."""
    if not sums:
        return pd.DataFrame(columns=["perturbation", "draw", "n_cells"])
    keys = sorted(sums)
    means = np.vstack([sums[k] / counts[k] for k in keys])
    table = pd.DataFrame(means, columns=[f"dim{d}" for d in range(means.shape[1])])
    head = pd.DataFrame(keys, columns=["perturbation", "draw"]).assign(n_cells=[counts[k] for k in keys])
    return pd.concat([head, table], axis=1)


def _affected_table(sums: dict, asked: bool) -> pd.DataFrame | None:
    """``perturbation, affected_token, shift, n_cells`` from the running sums."""
    if not asked:
        return None
    rows = [
        (perturbation, token, total / n, n)
        for perturbation, genes in sums.items()
        for token, (total, n) in genes.items()
    ]
    return pd.DataFrame(rows, columns=["perturbation", "affected_token", "shift", "n_cells"])
