"""Checks on a perturbation screen before DEGs or distances: labels, control cells, embeddings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import anndata as ad
import numpy as np
import pandas as pd

SCORED = "scored"
"""``status`` of a perturbation that was scored or tested; the others say why not (e.g. too few cells)."""


@dataclass(frozen=True)
class Screen:
    """The cells of a screen, sorted into control, scored groups and groups left out.

    Attributes
    ----------
    perturbation_key
        ``obs`` column holding the perturbation label of each cell.
    control
        Label of the control cells.
    labels
        Perturbation label of every cell, as strings.
    control_mask
        ``True`` for the control cells (excluded labels are never controls).
    groups
        Perturbations that are scored (at least ``min_cells`` cells), sorted.
    sizes
        Number of cells of each scored perturbation, in the order of ``groups``.
    too_small
        Perturbations with fewer than ``min_cells`` cells and their sizes; reported, not scored.
    excluded
        Labels the user excluded that occur in the data; neither scored nor used as controls.
    """

    perturbation_key: str
    control: str
    labels: np.ndarray
    control_mask: np.ndarray
    groups: tuple[str, ...]
    sizes: tuple[int, ...]
    too_small: dict[str, int]
    excluded: tuple[str, ...]
    min_cells: int = 1

    @property
    def n_control(self) -> int:
        """Number of control cells."""
        return int(self.control_mask.sum())

    def group_mask(self, group: str) -> np.ndarray:
        """``True`` for the cells of perturbation ``group``."""
        mask = np.zeros(self.labels.size, dtype=bool)
        mask[self.group_rows[group]] = True
        return mask

    @cached_property
    def group_rows(self) -> dict[str, np.ndarray]:
        """Row indices of every label's cells (one hashing pass over the labels, not one per group)."""
        codes, names = pd.factorize(self.labels)
        order = np.argsort(codes, kind="stable")
        bounds = np.cumsum(np.bincount(codes, minlength=len(names)))
        starts = bounds - np.bincount(codes, minlength=len(names))
        return {str(name): order[start:stop] for name, start, stop in zip(names, starts, bounds, strict=True)}

    def in_groups(self, groups: Iterable[str]) -> np.ndarray:
        """``True`` for the cells whose label is one of ``groups`` (hashed, linear in the cells)."""
        return pd.Index(list(groups)).get_indexer(self.labels) >= 0

    def scored_mask(self) -> np.ndarray:
        """``True`` for the cells of scored perturbations and for the control cells."""
        return self.in_groups(self.groups) | self.control_mask

    def require_groups(self) -> None:
        """Raise a ``ValueError`` when no perturbation has enough cells to be scored or tested."""
        if self.groups:
            return
        if not self.too_small:
            raise ValueError(
                f"obs[{self.perturbation_key!r}] has no perturbation besides the control {self.control!r}"
                f"{' and the excluded labels' if self.excluded else ''}: nothing to compare with the controls"
            )
        raise ValueError(
            f"no perturbation has at least {self.min_cells} cells (min_cells, --min-cells); the largest has "
            f"{max(self.too_small.values())}: lower the minimum or add cells"
        )

    def with_unscored(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` of the scored perturbations with ``status`` and a row for each group too small to score.

        The added rows (last) hold ``perturbation, n_cells`` and ``status`` (the reason), other
        columns empty, so that every group left out is reported with its size. Integer columns
        stay integers (pandas ``Int64``) and ``table.attrs`` is kept.
        """
        table = table.assign(status=SCORED)
        if not self.too_small:
            return table
        rows = pd.DataFrame(
            {
                "perturbation": list(self.too_small),
                "n_cells": list(self.too_small.values()),
                "status": f"too few cells (< {self.min_cells}, min_cells)",
            }
        )
        integers = [name for name, dtype in table.dtypes.items() if pd.api.types.is_integer_dtype(dtype)]
        combined = pd.concat([table, rows.reindex(columns=table.columns)], ignore_index=True)
        combined = combined.astype({name: "Int64" for name in integers})
        combined.attrs = table.attrs
        return combined

    def require_controls(self, needed: int, why: str) -> None:
        """Raise a ``ValueError`` when there are fewer than ``needed`` control cells.

        Parameters
        ----------
        needed
            Number of control cells required.
        why
            What needs them, for the message (e.g. ``"the null for groups of 300 cells"``).
        """
        if self.n_control < needed:
            raise ValueError(
                f"{why} needs at least {needed} control cells ({self.control!r}), but the screen has "
                f"{self.n_control}; lower --min-cells/--null-size, or add control cells"
            )


def validate_screen(
    adata: ad.AnnData,
    *,
    perturbation_key: str,
    control: str,
    min_cells: int = 20,
    exclude: Iterable[str] = (),
) -> Screen:
    """Check the perturbation labels of a screen and sort its cells into groups.

    Parameters
    ----------
    adata
        Cells x genes; ``adata.obs[perturbation_key]`` labels each cell.
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells (e.g. ``"non-targeting"``).
    min_cells
        Perturbations with fewer cells are reported in ``too_small`` and not scored.
    exclude
        Labels to leave out entirely (e.g. cells with several guides); neither scored nor used
        as controls. Each must occur (a misspelt label would otherwise leave its cells in).

    Returns
    -------
    Screen
        Control mask, scored groups and their sizes, groups too small, excluded labels.

    Raises
    ------
    KeyError
        If ``perturbation_key`` is not an ``obs`` column (the message lists the columns).
    ValueError
        If cells have no label (NaN), ``control`` is absent or excluded (the message lists the
        most common labels), an excluded label does not occur, or there are fewer than 2 control
        cells.
    """
    labels = obs_labels(adata, perturbation_key, "perturbation key")
    exclude = {str(label) for label in exclude}
    counts = pd.Series(labels).value_counts()
    if control not in counts.index or control in exclude:
        common = ", ".join(f"{label!r} ({n})" for label, n in counts.head(10).items())
        reason = "is excluded" if control in exclude else f"does not occur in obs[{perturbation_key!r}]"
        raise ValueError(f"control label {control!r} {reason}; most common labels: {common}")
    absent = sorted(exclude - set(counts.index))
    if absent:
        raise ValueError(
            f"excluded label(s) {absent} (--exclude) do not occur in obs[{perturbation_key!r}]; check the spelling "
            f"(labels: {', '.join(map(str, counts.index[:10]))}{', ...' if len(counts) > 10 else ''})"
        )

    control_mask = labels == control
    if control_mask.sum() < 2:
        raise ValueError(f"the control {control!r} has {int(control_mask.sum())} cell(s); at least 2 are needed")
    perturbations = counts.drop([control, *exclude])
    kept = perturbations[perturbations >= min_cells].sort_index()
    small = perturbations[perturbations < min_cells].sort_index()
    return Screen(
        perturbation_key=perturbation_key,
        control=control,
        labels=labels,
        control_mask=control_mask,
        groups=tuple(map(str, kept.index)),
        sizes=tuple(int(n) for n in kept.to_numpy()),
        too_small={str(label): int(n) for label, n in small.items()},
        excluded=tuple(sorted(exclude)),
        min_cells=int(min_cells),
    )


def obs_labels(adata: ad.AnnData, key: str, what: str) -> np.ndarray:
    """The labels of ``adata.obs[key]`` as strings, refusing a missing column or cells without a label.

    A missing label (NaN) would otherwise become a group called ``"nan"``.

    Parameters
    ----------
    adata
        Cells with ``obs``.
    key
        The ``obs`` column.
    what
        What the column is, for the message (e.g. ``"perturbation key"``, ``"batch key"``).

    Raises
    ------
    KeyError
        If ``key`` is not an ``obs`` column (the message lists the columns).
    ValueError
        If some cells have no label (the message says how many).
    """
    if key not in adata.obs.columns:
        raise KeyError(
            f"{what} {key!r} is not a column of adata.obs; "
            f"available columns: {', '.join(map(str, adata.obs.columns)) or '(none)'}"
        )
    column = adata.obs[key]
    missing = int(column.isna().sum())
    if missing:
        raise ValueError(
            f"{missing} of {adata.n_obs} cells have no label (NaN) in obs[{key!r}]; give them a label (one to "
            "exclude, e.g. 'unassigned') or remove those cells"
        )
    return column.astype(str).to_numpy()


def scored_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a scores or DEG table whose ``status`` is :data:`SCORED` (all rows of a table without one)."""
    if "status" not in table.columns:
        return table
    return table[table["status"] == SCORED]


def get_embedding(adata: ad.AnnData, key: str) -> np.ndarray:
    """Return ``adata.obsm[key]`` as a float64 cells x dimensions array, after checks.

    Raises
    ------
    KeyError
        If ``key`` is not in ``obsm`` (the message lists the available keys).
    ValueError
        If the embedding is not 2-D or holds NaN or infinite values (the message says how many
        cells).
    """
    if key not in adata.obsm:
        raise KeyError(
            f"embedding {key!r} is not in adata.obsm; available keys: {', '.join(adata.obsm.keys()) or '(none)'}"
        )
    values = adata.obsm[key]
    values = values.toarray() if hasattr(values, "toarray") else np.asarray(values)
    values = values.astype(np.float64)
    if values.ndim != 2:
        raise ValueError(f"embedding {key!r} must be 2-D (cells x dimensions), got shape {values.shape}")
    bad_cells = ~np.isfinite(values).all(axis=1)
    if bad_cells.any():
        raise ValueError(
            f"embedding {key!r} has NaN or infinite values in {int(bad_cells.sum())} of {values.shape[0]} cells"
        )
    return values
