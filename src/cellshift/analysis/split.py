"""Split a screen by perturbation for contrastive fine-tuning (Zhao et al. 2025).

Perturbations are sorted by their number of DEGs (from :func:`cellshift.analysis.degs`):

- ``n_degs >= min_degs``: eligible for fine-tuning. A random share ``test_fraction`` of them is
  held out as **test** perturbations (never seen in fine-tuning); the rest are **train**.
- ``n_degs == 0``: the **0-DEG pool**, ranked later by distance (:mod:`cellshift.analysis.enrichment`).
- ``0 < n_degs < min_degs``: **few_degs**, used neither for training nor in the pool.

The control cells are split by cell (``obs_names``) into train / validation / test.

The number of test perturbations out of ``n`` eligible ones is ``round(test_fraction * n)``
(halves round up), at least 1 when ``test_fraction > 0``; the validation and test control
shares are rounded the same way and the train share takes the rest. Perturbations are drawn
from the generator ``numpy.random.default_rng([seed, 0])`` over their sorted names and control
cells from ``default_rng([seed, 1])`` in ``obs`` order, so a split depends only on ``seed``, the
DEG counts and the control cells, never on the row order of the summary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cellshift._io import check_writable, write_text_atomic
from cellshift._validate import FRACTION, NON_NEGATIVE_INT, check_options
from cellshift.analysis.screen_input import scored_rows, validate_screen

PERTURBATION_STREAM, CONTROL_STREAM = range(2)


@dataclass(frozen=True)
class PerturbationSplit:
    """Perturbations and control cells of a screen, split for fine-tuning and evaluation.

    Attributes
    ----------
    train
        Perturbations with at least ``min_degs`` DEGs used for fine-tuning, sorted.
    test
        Perturbations with at least ``min_degs`` DEGs held out from fine-tuning, sorted.
    zero_deg
        Perturbations with 0 DEGs (the pool ranked by distance), sorted.
    few_degs
        Perturbations with 1 to ``min_degs - 1`` DEGs, in no set above, sorted.
    control_train, control_validation, control_test
        ``obs_names`` of the control cells in each share, in ``obs`` order; disjoint, and
        together all control cells.
    n_degs
        Number of DEGs of every perturbation of the summary.
    perturbation_key, control
        ``obs`` column and control label the split was made with.
    min_degs, test_fraction, control_fractions, seed
        The settings that made the split.
    """

    train: tuple[str, ...]
    test: tuple[str, ...]
    zero_deg: tuple[str, ...]
    few_degs: tuple[str, ...]
    control_train: tuple[str, ...]
    control_validation: tuple[str, ...]
    control_test: tuple[str, ...]
    n_degs: dict[str, int]
    perturbation_key: str
    control: str
    min_degs: int
    test_fraction: float
    control_fractions: tuple[float, float, float]
    seed: int

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the split as JSON, atomically; refuse to replace a file unless ``overwrite``."""
        path = check_writable(path, overwrite)
        write_text_atomic(path, json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PerturbationSplit:
        """Read a split written by :meth:`save`."""
        fields = json.loads(Path(path).read_text())
        for name in ("train", "test", "zero_deg", "few_degs", "control_train", "control_validation", "control_test"):
            fields[name] = tuple(fields[name])
        fields["control_fractions"] = tuple(fields["control_fractions"])
        return cls(**fields)


def deg_counts(summary: pd.DataFrame) -> pd.Series:
    """Number of DEGs per perturbation from a DEG summary, checked.

    Parameters
    ----------
    summary
        Table with columns ``perturbation`` and ``n_degs`` (the first table of
        :func:`cellshift.analysis.degs`, or ``degs.csv`` of ``cellshift degs``); rows whose
        ``status`` says they were not tested (too few cells) are left out.

    Returns
    -------
    pandas.Series
        Integer ``n_degs`` indexed by perturbation label (strings).

    Raises
    ------
    KeyError
        If a column is missing.
    ValueError
        If a perturbation occurs twice or a count is missing, negative or not an integer.
    """
    missing = [column for column in ("perturbation", "n_degs") if column not in summary.columns]
    if missing:
        raise KeyError(
            f"the DEG summary lacks column(s) {missing}; it needs 'perturbation' and 'n_degs' "
            f"(the output of `cellshift degs`); it has {list(summary.columns)}"
        )
    summary = scored_rows(summary)
    labels = summary["perturbation"].astype(str)
    duplicated = sorted(set(labels[labels.duplicated()]))
    if duplicated:
        raise ValueError(f"the DEG summary lists perturbation(s) more than once: {duplicated[:10]}")
    counts = pd.to_numeric(summary["n_degs"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(counts) | (counts < 0) | (counts != np.round(counts))
    if bad.any():
        raise ValueError(
            f"n_degs must be non-negative integers; bad values for {list(labels[bad])[:10]}: "
            f"{list(summary['n_degs'][bad])[:10]}"
        )
    return pd.Series(counts.astype(int), index=pd.Index(labels.to_numpy(), name="perturbation"), name="n_degs")


def split_perturbations(
    adata: ad.AnnData,
    *,
    degs: pd.DataFrame,
    perturbation_key: str,
    control: str,
    min_degs: int = 20,
    test_fraction: float = 0.2,
    control_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> PerturbationSplit:
    """Split the perturbations of a screen by their DEGs, and its control cells by cell.

    See the module docstring for the sets and the rounding. Perturbations of ``adata`` missing
    from ``degs`` (too few cells, excluded) belong to no set.

    Parameters
    ----------
    adata
        The screen; only ``obs`` and ``obs_names`` are read (a backed AnnData will do).
    degs
        DEG summary with columns ``perturbation`` and ``n_degs`` (see :func:`deg_counts`).
    perturbation_key
        ``obs`` column with the perturbation labels.
    control
        Label of the control cells.
    min_degs
        Perturbations with at least this many DEGs are used for training or testing (the paper: 20).
    test_fraction
        Share of those held out as test perturbations, in ``[0, 1)``.
    control_fractions
        Shares of control cells for train, validation and test; non-negative, summing to 1.
    seed
        Seed of both draws.
    exclude
        Labels that are never controls (as in :func:`validate_screen`).

    Returns
    -------
    PerturbationSplit
        The sets of perturbations and control cells, with the settings.

    Raises
    ------
    ValueError
        If no perturbation reaches ``min_degs`` (the message gives the best one), too few do
        for a test set, the fractions are invalid, ``degs`` names perturbations absent from
        ``adata`` or the control, or ``obs_names`` are not unique.
    """
    check_options(
        {"test_fraction": test_fraction, "min_degs": min_degs, "seed": seed},
        {"test_fraction": FRACTION, "min_degs": NON_NEGATIVE_INT, "seed": NON_NEGATIVE_INT},
    )
    fractions = np.asarray(control_fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(
            f"control_fractions must be three non-negative shares (train, validation, test) summing to 1, "
            f"got {control_fractions}"
        )
    if not adata.obs_names.is_unique:
        raise ValueError("adata.obs_names are not unique; call adata.obs_names_make_unique() before splitting")
    screen = validate_screen(adata, perturbation_key=perturbation_key, control=control, min_cells=1, exclude=exclude)
    n_degs = deg_counts(degs)
    unknown = sorted(set(n_degs.index) - set(screen.groups))
    if unknown:
        raise ValueError(
            f"the DEG summary lists {len(unknown)} perturbation(s) that are not perturbations of "
            f"obs[{perturbation_key!r}] (absent, excluded or the control): {unknown[:10]}; "
            "was it computed on this screen?"
        )

    train, test = _split_eligible(n_degs, min_degs, test_fraction, seed)
    control_train, control_validation, control_test = _split_controls(
        adata.obs_names[screen.control_mask].astype(str).to_numpy(), fractions, seed
    )
    return PerturbationSplit(
        train=train,
        test=test,
        zero_deg=tuple(sorted(n_degs.index[n_degs == 0])),
        few_degs=tuple(sorted(n_degs.index[(n_degs > 0) & (n_degs < min_degs)])),
        control_train=control_train,
        control_validation=control_validation,
        control_test=control_test,
        n_degs={label: int(count) for label, count in n_degs.sort_index().items()},
        perturbation_key=perturbation_key,
        control=control,
        min_degs=int(min_degs),
        test_fraction=float(test_fraction),
        control_fractions=tuple(float(f) for f in fractions),
        seed=int(seed),
    )


def _round_half_up(value: float) -> int:
    return int(np.floor(value + 0.5))


def _split_eligible(
    n_degs: pd.Series, min_degs: int, test_fraction: float, seed: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Train and test perturbations among those with at least ``min_degs`` DEGs."""
    eligible = np.array(sorted(n_degs.index[n_degs >= min_degs]), dtype=object)
    if eligible.size == 0:
        if n_degs.empty:
            raise ValueError("the DEG summary has no perturbations")
        best = n_degs.idxmax()
        raise ValueError(
            f"no perturbation has at least {min_degs} DEGs; the most is {n_degs[best]} ({best!r}); "
            f"lower --min-degs (min_degs=) to at most {n_degs[best]}"
        )
    n_test = max(1, _round_half_up(test_fraction * eligible.size)) if test_fraction > 0 else 0
    if n_test >= eligible.size:
        raise ValueError(
            f"only {eligible.size} perturbation(s) have at least {min_degs} DEGs: too few for {n_test} test "
            f"perturbation(s) and at least one for training; lower the DEG minimum (--min-degs) or the test "
            "share (0 holds none out)"
        )
    order = np.random.default_rng([seed, PERTURBATION_STREAM]).permutation(eligible.size)
    test = tuple(sorted(eligible[order[:n_test]]))
    train = tuple(sorted(eligible[order[n_test:]]))
    return train, test


def _split_controls(names: np.ndarray, fractions: np.ndarray, seed: int) -> tuple[tuple[str, ...], ...]:
    """Control cell names in train / validation / test shares, each in ``obs`` order."""
    n_validation = _round_half_up(fractions[1] * names.size)
    n_test = min(_round_half_up(fractions[2] * names.size), names.size - n_validation)
    share = np.zeros(names.size, dtype=int)
    order = np.random.default_rng([seed, CONTROL_STREAM]).permutation(names.size)
    share[order[:n_validation]] = 1
    share[order[n_validation : n_validation + n_test]] = 2
    return tuple(tuple(names[share == i]) for i in range(3))
