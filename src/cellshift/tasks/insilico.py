"""In-silico perturbation: delete, over-express, inhibit or activate genes in a model's view of cells.

For each chosen cell and each gene (or combination of genes), the cell's rank-value tokens are
perturbed (:mod:`cellshift.tasks.perturbation_ops`) and the perturbed cell is embedded beside the
original (:mod:`cellshift.tasks.insilico_run`); the measures are the cosine shift of the cell
embedding ``1 - cos(o, p)`` and, with a goal state, ``cos(p, goal) - cos(o, goal)`` where
``goal`` is the centroid of the goal-state cells in the same embedding (Theodoris et al. 2023).
Every perturbation is tested against the same operation applied to random genes of the same rank
in the same cells (:mod:`cellshift.tasks.perturbation_stats`), so a "top" gene is one that moves
cells more than its rank alone would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import anndata as ad
import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT, PROBABILITY, Bounds, CheckedSettings
from cellshift.embed._inference import load_encoder
from cellshift.models import CellshiftModel
from cellshift.tasks.cell_tokens import CellSource, load_cells, parse_state, resolve_genes, select_cells, token_symbols
from cellshift.tasks.insilico_checkpoint import ChunkStore
from cellshift.tasks.insilico_plan import check_passes, expressed_genes, plan_perturbations, presence_matrix
from cellshift.tasks.insilico_run import RunOutput, RunPlan, run_perturbations
from cellshift.tasks.perturbation_ops import check_operation
from cellshift.tasks.perturbation_stats import summarise_shifts
from cellshift.tasks.variant_batches import Variant, encode_variants

CELL_STREAM = 2


@dataclass(frozen=True)
class InsilicoSettings(CheckedSettings):
    """Options of :func:`insilico_perturb` (and of ``cellshift insilico``); see its parameters."""

    operation: str = "delete"
    shift: float = 0.25
    combos: int = 1
    n_null: int = 1
    null_window: float = 0.05
    affected: bool = False
    max_cells: int | None = None
    batch_size: int = 64
    max_passes: int = 200_000
    chunk_size: int = 64
    cell_layer: int = -2
    gene_layer: int = -1
    seed: int = 0

    BOUNDS: ClassVar[dict[str, Bounds]] = {
        "shift": PROBABILITY,
        "combos": POSITIVE_INT,
        "n_null": POSITIVE_INT,
        "null_window": PROBABILITY,
        "max_cells": POSITIVE_INT,
        "batch_size": POSITIVE_INT,
        "max_passes": POSITIVE_INT,
        "chunk_size": POSITIVE_INT,
        "seed": NON_NEGATIVE_INT,
    }


@dataclass
class InsilicoResult:
    """What an in-silico run found.

    Attributes
    ----------
    shifts
        One row per perturbation, the largest goal shift (else cosine shift) first: ``gene``
        (a combination joined by ``+``), ``tokens``, ``symbols``, ``n_cells``, and per measure
        (``cosine_shift``, ``shift_to_<state>``) its ``_mean, _sd, _null_mean, _pvalue, _fdr``.
    per_cell
        ``cell`` (obs name), ``gene``, ``draw`` (0 = the gene, k >= 1 = k-th null draw) and the measures.
    directions
        Mean embedding change ``mean_c (p - o)`` per ``gene`` and ``draw``: ``n_cells, dim0...``.
    affected
        ``gene, affected_token, affected_symbol, shift, n_cells`` (mean ``1 - cos`` of each other
        gene's contextual embedding), or ``None`` when not asked for.
    skipped
        ``gene, reason`` for every gene that was not perturbed.
    n_sequences
        Sequences encoded (estimate checked against ``max_passes``).
    """

    shifts: pd.DataFrame
    per_cell: pd.DataFrame
    directions: pd.DataFrame
    affected: pd.DataFrame | None
    skipped: pd.DataFrame
    n_sequences: int


def insilico_perturb(
    data: ad.AnnData | str | os.PathLike,
    model: str | os.PathLike | CellshiftModel,
    *,
    genes: Sequence[str] | None = None,
    cells: str | None = None,
    start_state: str | None = None,
    goal_state: str | None = None,
    alt_states: Sequence[str] = (),
    settings: InsilicoSettings | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> InsilicoResult:
    """Perturb genes in silico in chosen cells and measure how far, and where, the cells move.

    Parameters
    ----------
    data
        Raw-count cells (AnnData) or a corpus directory tokenised with the model's gene table.
    model
        A model directory or a loaded model with its gene table.
    genes
        Gene symbols or Ensembl IDs; ``None`` perturbs every gene expressed in the chosen cells.
    cells
        ``obs_key=value`` selecting the cells to perturb (default: all).
    start_state, goal_state, alt_states
        ``obs_key=value`` cell states: the start state's cells are perturbed (within ``cells``),
        and the shift toward the centroid of the goal (and of each alternative) state is measured.
    settings
        :class:`InsilicoSettings` (default: its defaults): operation (``delete``, ``overexpress``, ``inhibit``,
        ``activate``), its ``shift``, ``combos``, null draws, ``affected``, ``max_cells``
        (seeded subsample of the chosen and of each state's cells), batching, ``max_passes``, seed.
    checkpoint_dir
        Folder keeping finished chunks of ``chunk_size`` perturbations: a stopped run resumes there.
    device
        Default: a GPU when one is visible (bf16), else the CPU.
    progress
        Show a progress bar.

    Returns
    -------
    InsilicoResult
        The tables; the same seed and inputs give the same tables.
    """
    settings = settings or InsilicoSettings()
    check_operation(settings.operation, settings.shift)
    if alt_states and goal_state is None:
        raise ValueError("alternative states are compared with a goal state: give goal_state too")
    encoder = load_encoder(model, device)
    source = load_cells(data, encoder)
    rows = _chosen_rows(source, cells, start_state, settings)
    presence = presence_matrix(source, rows)
    named, skipped = _genes(genes, encoder, source, presence)
    perturbations, not_expressed, n_cells = plan_perturbations(named, presence, settings.operation, settings.combos)
    skipped = pd.concat([skipped, not_expressed], ignore_index=True)
    if not perturbations:
        raise ValueError(f"no gene can be perturbed in the chosen cells; skipped: {skipped.to_dict('records')}")
    states = _states(goal_state, alt_states)
    state_rows = {name: _state_rows(source, state, rows, settings, k) for k, (name, state) in enumerate(states, 1)}
    n_chunks = -(-len(perturbations) // settings.chunk_size)
    extra = sum(len(r) for r in state_rows.values()) + len(rows) * (n_chunks - 1)
    n_sequences = check_passes(n_cells, len(rows), settings.n_null, extra, settings.max_passes)
    centroids = {name: _centroid(encoder, source, r, settings) for name, r in state_rows.items()}
    plan = RunPlan(
        perturbations={},
        operation=settings.operation,
        shift=settings.shift,
        n_null=settings.n_null,
        null_window=settings.null_window,
        excluded=np.unique([t for _, tokens in perturbations for t in tokens]),
        absent_pool=expressed_genes(presence),
        states=centroids,
        affected=settings.affected,
        batch_size=settings.batch_size,
        cell_layer=settings.cell_layer,
        gene_layer=settings.gene_layer,
        seed=settings.seed,
    )
    fingerprint = {"settings": asdict(settings), "rows": rows.tolist(), "perturbations": perturbations}
    model_name = str(model) if isinstance(model, str | os.PathLike) else type(model).__name__
    fingerprint |= {"model": model_name, "states": [goal_state, *alt_states]}
    store = ChunkStore(checkpoint_dir, fingerprint)
    outputs = []
    with tqdm(total=n_sequences, desc=f"{settings.operation} in silico", disable=not progress) as bar:
        for chunk in range(n_chunks):
            indices = range(chunk * settings.chunk_size, min(len(perturbations), (chunk + 1) * settings.chunk_size))
            output = store.load(chunk)
            if output is None:
                chunk_plan = replace(plan, perturbations={i: perturbations[i][1] for i in indices})
                output = run_perturbations(encoder, source, rows, chunk_plan, bar)
                store.save(chunk, output)
            outputs.append(output)
    return _assemble(outputs, perturbations, encoder, source, skipped, n_sequences)


def _chosen_rows(source: CellSource, cells: str | None, start_state: str | None, settings) -> np.ndarray:
    """Rows of the cells to perturb: ``cells`` and ``start_state`` together, subsampled to ``max_cells``."""
    rows = np.intersect1d(select_cells(source.obs, cells), select_cells(source.obs, start_state, what="start state"))
    if len(rows) == 0:
        raise ValueError(f"no cell is both in --cells {cells!r} and in the start state {start_state!r}")
    return _subsample(rows, settings, 0)


def _subsample(rows: np.ndarray, settings: InsilicoSettings, stream: int) -> np.ndarray:
    """At most ``max_cells`` of ``rows``, drawn with the seed (sorted)."""
    if settings.max_cells is None or len(rows) <= settings.max_cells:
        return rows
    rng = np.random.default_rng([settings.seed, CELL_STREAM, stream])
    return np.sort(rng.choice(rows, settings.max_cells, replace=False))


def _states(goal_state: str | None, alt_states: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, key=value)`` of the goal (named ``goal``) and alternative states (named by their value)."""
    if goal_state is None:
        return []
    return [("goal", goal_state)] + [(parse_state(state)[1], state) for state in alt_states]


def _state_rows(source: CellSource, state: str, perturbed: np.ndarray, settings: InsilicoSettings, stream: int):
    """Rows of a state's cells (subsampled, stream ``stream``); refuses the very set of perturbed cells."""
    rows = select_cells(source.obs, state, what="state")
    if np.array_equal(rows, perturbed):
        raise ValueError(f"state {state!r} holds exactly the perturbed cells; the goal must be another state")
    return _subsample(rows, settings, stream)


def _centroid(encoder: CellshiftModel, source: CellSource, rows: np.ndarray, settings: InsilicoSettings) -> np.ndarray:
    """Mean embedding of unperturbed cells (the same layer and pooling as the perturbed cells)."""
    variants = (Variant(int(r), -1, 0, *source.cell_tokens(int(r))) for r in rows)
    batches = encode_variants(
        encoder, source.cells, variants, batch_size=settings.batch_size, cell_layer=settings.cell_layer
    )
    return np.vstack([b.cell_embeddings for b in batches]).mean(axis=0)


def _genes(genes, encoder, source, presence) -> tuple[dict[str, int], pd.DataFrame]:
    """Gene name -> token: the named genes, or every gene the chosen cells express (by symbol)."""
    if genes is not None:
        return resolve_genes(list(genes), encoder, source.cells.species)
    tokens = expressed_genes(presence)
    special = set(encoder.config.special_token_ids)
    tokens = np.array([t for t in tokens if t not in special], dtype=np.int64)
    names = token_symbols(encoder, tokens)
    return dict(zip(names, tokens.tolist(), strict=True)), pd.DataFrame(columns=["gene", "reason"])


def _assemble(outputs: list[RunOutput], perturbations, encoder, source, skipped, n_sequences) -> InsilicoResult:
    """Join the chunks, summarise per perturbation and name everything by gene."""
    labels = pd.Series([label for label, _ in perturbations])
    per_cell = pd.concat([o.per_cell for o in outputs], ignore_index=True)
    measures = [c for c in per_cell.columns if c == "cosine_shift" or c.startswith("shift_to_")]
    summary = summarise_shifts(per_cell, measures)
    shifts = summary.reset_index(names="perturbation")
    shifts.insert(0, "gene", labels[shifts["perturbation"]].to_numpy())
    groups = [perturbations[i][1] for i in shifts["perturbation"]]
    used = np.unique([t for group in groups for t in group])
    symbol = dict(zip(used.tolist(), token_symbols(encoder, used), strict=True))
    shifts.insert(1, "tokens", ["+".join(encoder.gene_table.tokens[t] for t in group) for group in groups])
    shifts.insert(2, "symbols", ["+".join(symbol[t] for t in group) for group in groups])
    sort_by = "shift_to_goal_mean" if "shift_to_goal_mean" in shifts else "cosine_shift_mean"
    shifts = shifts.sort_values(sort_by, ascending=False, kind="stable").drop(columns="perturbation")
    per_cell.insert(0, "gene", labels[per_cell.pop("perturbation")].to_numpy())
    per_cell["cell"] = source.obs.index[per_cell["cell"]].astype(str)
    directions = pd.concat([o.directions for o in outputs], ignore_index=True)
    directions.insert(0, "gene", labels[directions.pop("perturbation")].to_numpy())
    affected = None
    if outputs[0].affected is not None:
        affected = pd.concat([o.affected for o in outputs], ignore_index=True)
        affected.insert(0, "gene", labels[affected.pop("perturbation")].to_numpy())
        symbols = token_symbols(encoder, affected["affected_token"].to_numpy())
        affected["affected_token"] = [encoder.gene_table.tokens[t] for t in affected["affected_token"]]
        affected.insert(2, "affected_symbol", symbols)
    return InsilicoResult(shifts.reset_index(drop=True), per_cell, directions, affected, skipped, n_sequences)
