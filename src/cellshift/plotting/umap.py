"""UMAP of perturbed vs control cells, per perturbation and per embedding (Zhao et al. 2025, Figures 2-4).

Cells are sampled per group (at most ``max_cells_per_group`` of the control cells and of each
chosen perturbation, seeded), the embedding rows are L2-normalised as for the distances
(``z_i / ||z_i||``, so Euclidean neighbours are cosine neighbours), and scanpy computes the
kNN graph (``pp.neighbors(use_rep=...)``) and the UMAP (``tl.umap``) with ``random_state=seed``.
The computation runs on a new AnnData that holds only the sampled cells' embedding: the
caller's AnnData is never modified.

``layout="shared"`` computes one UMAP per embedding over the control cells and all chosen
perturbations (every panel of an embedding has the same coordinates); ``"per_perturbation"``
computes one UMAP per panel over the control cells and that perturbation only.
In every panel the control cells are grey and the perturbed cells are coloured on top.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cellshift.analysis.scoring import l2_normalize
from cellshift.analysis.screen_input import get_embedding, validate_screen
from cellshift.plotting._save import finish, new_figure

Layout = Literal["shared", "per_perturbation"]
CONTROL_COLOR = "#c4c4c4"
PERTURBED_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
MAX_PANELS = 24
SAMPLE_STREAM = 7


def compute_umap(
    Z: np.ndarray,
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.5,
    n_epochs: int | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Two-dimensional UMAP coordinates of the rows of ``Z`` (scanpy ``pp.neighbors`` + ``tl.umap``).

    Parameters
    ----------
    Z
        Cells x dimensions embedding, finite values.
    seed
        ``random_state`` of the neighbour search and of the UMAP optimisation.
    n_neighbors
        Neighbours of the kNN graph (at most ``n_cells - 1``).
    min_dist
        UMAP ``min_dist``.
    n_epochs
        Optimisation epochs (scanpy ``maxiter``); ``None`` lets umap-learn choose (500 for
        small data, 200 above 10,000 cells).
    normalize
        L2-normalise the rows first, as the distances do.

    Returns
    -------
    numpy.ndarray
        Cells x 2 float array.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] < 3:
        raise ValueError(f"UMAP needs a 2-D embedding of at least 3 cells, got shape {Z.shape}")
    bare = ad.AnnData(obs=pd.DataFrame(index=[str(i) for i in range(Z.shape[0])]))
    bare.obsm["rep"] = l2_normalize(Z) if normalize else Z
    sc.pp.neighbors(bare, n_neighbors=min(n_neighbors, Z.shape[0] - 1), use_rep="rep", random_state=seed)
    sc.tl.umap(bare, min_dist=min_dist, maxiter=n_epochs, random_state=seed)
    return np.asarray(bare.obsm["X_umap"], dtype=np.float64)


def umap_perturbed_vs_control(
    adata: ad.AnnData,
    *,
    embedding: str,
    perturbation_key: str,
    control: str,
    perturbations: Sequence[str] | None = None,
    max_cells_per_group: int | None = 500,
    layout: Layout = "shared",
    ncols: int = 4,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.5,
    n_epochs: int | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """UMAP panels of one embedding, one per perturbation: control cells grey, perturbed cells coloured.

    See the module docstring for the sampling, the normalisation and the layouts.

    Parameters
    ----------
    adata
        Screen with the embedding in ``obsm[embedding]``; not modified.
    embedding
        ``obsm`` key of the embedding.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    perturbations
        Perturbations to show (one panel each); ``None`` shows all (at most ``MAX_PANELS``).
    max_cells_per_group
        Cells sampled per group (control cells included); ``None`` keeps every cell.
    layout
        ``"shared"`` (one UMAP for all panels) or ``"per_perturbation"`` (one UMAP per panel).
    ncols
        Panels per row.
    seed
        Seed of the sampling and of UMAP.
    n_neighbors, min_dist, n_epochs
        See :func:`compute_umap`.
    path
        Write the figure there as PNG (atomically).
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    return _umap_figure(
        adata,
        {embedding: embedding},
        perturbation_key=perturbation_key,
        control=control,
        perturbations=perturbations,
        max_cells_per_group=max_cells_per_group,
        layout=layout,
        ncols=ncols,
        umap_options={"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist, "n_epochs": n_epochs},
        path=path,
        overwrite=overwrite,
    )


def umap_compare_embeddings(
    adata: ad.AnnData,
    *,
    embeddings: Sequence[str] | Mapping[str, str],
    perturbation_key: str,
    control: str,
    perturbations: Sequence[str] | None = None,
    max_cells_per_group: int | None = 500,
    layout: Layout = "shared",
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.5,
    n_epochs: int | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Figure:
    """UMAP panels of several embeddings side by side (e.g. before and after fine-tuning).

    One row per perturbation, one column per embedding; every embedding sees the same sampled
    cells. See the module docstring for the sampling, the normalisation and the layouts.

    Parameters
    ----------
    adata
        Screen with the embeddings in ``obsm``; not modified.
    embeddings
        ``obsm`` keys, or a mapping from a column title (e.g. ``"fine-tuned"``) to an ``obsm`` key.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    perturbations
        Perturbations to show (one row each); ``None`` shows all (at most ``MAX_PANELS`` panels).
    max_cells_per_group
        Cells sampled per group (control cells included); ``None`` keeps every cell.
    layout
        ``"shared"`` (one UMAP per embedding) or ``"per_perturbation"`` (one UMAP per panel).
    seed
        Seed of the sampling and of UMAP.
    n_neighbors, min_dist, n_epochs
        See :func:`compute_umap`.
    path
        Write the figure there as PNG (atomically).
    overwrite
        Replace an existing ``path``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (also saved when ``path`` is given).
    """
    named = dict(embeddings) if isinstance(embeddings, Mapping) else {key: key for key in embeddings}
    if not named:
        raise ValueError("embeddings is empty; give at least one obsm key")
    return _umap_figure(
        adata,
        named,
        perturbation_key=perturbation_key,
        control=control,
        perturbations=perturbations,
        max_cells_per_group=max_cells_per_group,
        layout=layout,
        ncols=len(named),
        umap_options={"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist, "n_epochs": n_epochs},
        path=path,
        overwrite=overwrite,
    )


def _umap_figure(
    adata: ad.AnnData,
    embeddings: dict[str, str],
    *,
    perturbation_key: str,
    control: str,
    perturbations: Sequence[str] | None,
    max_cells_per_group: int | None,
    layout: Layout,
    ncols: int,
    umap_options: dict,
    path: str | os.PathLike | None,
    overwrite: bool,
) -> Figure:
    """Sample cells, compute the UMAPs and draw the panels (row-major: perturbation, then embedding)."""
    if layout not in ("shared", "per_perturbation"):
        raise ValueError(f"layout must be 'shared' or 'per_perturbation', got {layout!r}")
    screen = validate_screen(adata, perturbation_key=perturbation_key, control=control, min_cells=1)
    chosen = _choose_perturbations(perturbations, screen.groups, control, n_embeddings=len(embeddings))
    cells = _sample_cells(screen.labels, [control, *chosen], max_cells_per_group, umap_options["seed"])
    labels = screen.labels[cells]
    totals = pd.Series(screen.labels).value_counts()

    n_panels = len(chosen) * len(embeddings)
    nrows = -(-n_panels // ncols)
    figure = new_figure(3.2 * min(ncols, n_panels), 3.2 * nrows)
    axes = figure.subplots(nrows, min(ncols, n_panels), squeeze=False).ravel()
    for axis in axes[n_panels:]:
        axis.set_visible(False)
    for column, (title, key) in enumerate(embeddings.items()):
        Z = get_embedding(adata, key)[cells]
        shared = compute_umap(Z, **umap_options) if layout == "shared" else None
        for row, group in enumerate(chosen):
            panel = np.isin(labels, [control, group])
            coords = shared[panel] if shared is not None else compute_umap(Z[panel], **umap_options)
            axis = axes[row * len(embeddings) + column]
            _draw_panel(axis, coords, labels[panel] == group, PERTURBED_COLORS[row % len(PERTURBED_COLORS)])
            counted = f"{int((labels == group).sum())} of {int(totals[group])} cells"
            axis.set_title(f"{group} ({counted})" if len(embeddings) == 1 else f"{title}\n{group} ({counted})")
    n_control = int((labels == control).sum())
    figure.suptitle(f"UMAP, grey: {n_control} of {int(totals[control])} control cells ({control})")
    return finish(figure, path, overwrite)


def _choose_perturbations(
    perturbations: Sequence[str] | None, groups: tuple[str, ...], control: str, n_embeddings: int
) -> list[str]:
    """The perturbations to draw, checked against the labels present."""
    if perturbations is None:
        chosen = list(groups)
        if len(chosen) * n_embeddings > MAX_PANELS:
            raise ValueError(
                f"the screen has {len(chosen)} perturbations, too many panels for one figure "
                f"(at most {MAX_PANELS}); pass perturbations=[...] to choose some"
            )
    else:
        chosen = [str(label) for label in perturbations]
    if not chosen:
        raise ValueError("no perturbation to show; pass perturbations=[...] with at least one label")
    if control in chosen:
        raise ValueError(f"{control!r} is the control label; list perturbed groups only")
    unknown = [label for label in chosen if label not in groups]
    if unknown:
        raise KeyError(f"perturbation(s) {unknown} do not occur in the screen; some labels: {list(groups)[:20]}")
    return chosen


def _sample_cells(labels: np.ndarray, groups: list[str], max_cells: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_cells`` random cells of each group (all cells when ``None``)."""
    rng = np.random.default_rng([seed, SAMPLE_STREAM])
    picked = []
    for group in groups:
        members = np.flatnonzero(labels == group)
        if max_cells is not None and members.size > max_cells:
            members = rng.choice(members, max_cells, replace=False)
        picked.append(members)
    return np.sort(np.concatenate(picked))


def _draw_panel(axis: Axes, coords: np.ndarray, perturbed: np.ndarray, color: str) -> None:
    """Grey control cells, then the perturbed cells in ``color`` on top; no axes ticks."""
    size = float(np.clip(3000 / max(len(coords), 1), 1.0, 12.0))
    axis.scatter(*coords[~perturbed].T, s=size, c=CONTROL_COLOR, linewidths=0, rasterized=True)
    axis.scatter(*coords[perturbed].T, s=size, c=color, linewidths=0, rasterized=True)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_xlabel("UMAP 1")
    axis.set_ylabel("UMAP 2")
