"""Summary tables of a screen's results, ready to show or write.

- :func:`medians_table`: median normalised distance per model, pool and metric, like Table 1
  of Zhao et al. 2025 (the 0-DEG pool and the perturbations with >= 20 DEGs).
- :func:`ranked_table`: perturbations ranked by one model's normalised distance.
- :func:`split_table` and :func:`split_overview`: the parts of a split and its settings.
- :func:`attach_n_degs`: the number of DEGs of each perturbation beside its scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from cellshift.analysis.screen_input import scored_rows
from cellshift.analysis.split import PerturbationSplit

Z_METRICS = ("edistance", "cosine_edistance", "wasserstein")
MIN_DEGS = 20
PAIR_POOL = "between perturbations (pairs)"


def attach_n_degs(scores: pd.DataFrame, degs: pd.DataFrame | Mapping[str, int] | pd.Series | None) -> pd.DataFrame:
    """Return ``scores`` with an ``n_degs`` column, taken from ``degs`` when given.

    Parameters
    ----------
    scores
        Table with a ``perturbation`` column (and maybe ``n_degs`` already).
    degs
        ``None`` (keep the ``n_degs`` column of ``scores``, if any), a DataFrame with columns
        ``perturbation, n_degs`` (as from :func:`cellshift.analysis.degs`), or a mapping / Series
        from perturbation to number of DEGs. Perturbations it does not cover get NaN.

    Returns
    -------
    pandas.DataFrame
        A copy of ``scores``; ``n_degs`` is absent only when neither input has it.
    """
    if degs is None:
        return scores.copy()
    if isinstance(degs, pd.DataFrame):
        missing = {"perturbation", "n_degs"} - set(degs.columns)
        if missing:
            raise KeyError(f"degs table lacks column(s) {sorted(missing)}; it needs 'perturbation' and 'n_degs'")
        degs = degs.set_index(degs["perturbation"].astype(str))["n_degs"]
    lookup = pd.Series(degs, dtype=float)
    table = scores.drop(columns=["n_degs"], errors="ignore").copy()
    table["n_degs"] = table["perturbation"].astype(str).map(lookup).to_numpy()
    return table


def medians_table(
    scores_by_model: Mapping[str, pd.DataFrame],
    degs: pd.DataFrame | Mapping[str, int] | None = None,
    *,
    pools: Mapping[str, Iterable[str]] | None = None,
    metrics: Sequence[str] | None = None,
    min_degs: int = MIN_DEGS,
    pairs_by_model: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Median normalised distance ``median(<metric>_z)`` per model, pool of perturbations and metric.

    Parameters
    ----------
    scores_by_model
        Model (embedding) name -> scores table of :func:`cellshift.analysis.score_perturbations`.
    degs
        Number of DEGs per perturbation (table with ``perturbation, n_degs`` or a mapping);
        without it, an ``n_degs`` column of the scores is used.
    pools
        Pool name -> perturbation labels (e.g. ``{"test (>= 20 DEGs)": test_labels}``, or
        :func:`split_pools`). Default: ``"0 DEGs"`` (``n_degs == 0``) and ``">= <min_degs> DEGs"``;
        when the number of DEGs is unknown, one pool ``"all perturbations"``.
    metrics
        Metrics to summarise; default: those of :data:`Z_METRICS` whose ``_z`` column is in every table.
    min_degs
        Lower bound of the strong pool.
    pairs_by_model
        Model name -> pair table of :func:`cellshift.analysis.score_perturbation_pairs`: adds a
        row ``"between perturbations (pairs)"`` per model with the median over pairs.

    Returns
    -------
    pandas.DataFrame
        One row per (model, pool): ``model, pool, n_perturbations`` and ``<metric>_z`` medians
        (NaN z-scores skipped; NaN when a pool is empty or a metric has no pair values); only
        scored perturbations count (``status``).
    """
    if not scores_by_model:
        raise ValueError("scores_by_model is empty; give at least one model's scores table")
    metrics = list(metrics) if metrics is not None else _common_metrics(scores_by_model)
    columns = [f"{metric}_z" for metric in metrics]
    rows = []
    for model, scores in scores_by_model.items():
        missing = [name for name in ["perturbation", *columns] if name not in scores.columns]
        if missing:
            raise KeyError(f"scores of model {model!r} lack column(s) {missing}; columns: {list(scores.columns)}")
        table = attach_n_degs(scored_rows(scores), degs)
        labels = table["perturbation"].astype(str)
        for pool, members in _pool_masks(table, labels, pools, min_degs).items():
            medians = table.loc[members, columns].median()
            rows.append({"model": model, "pool": pool, "n_perturbations": int(members.sum()), **medians.to_dict()})
        if pairs_by_model and model in pairs_by_model:
            rows.append(_pair_medians(model, pairs_by_model[model], columns))
    return pd.DataFrame(rows, columns=["model", "pool", "n_perturbations", *columns])


def split_pools(split: PerturbationSplit) -> dict[str, tuple[str, ...]]:
    """The pools of the paper's Table 1 from a split: the 0-DEG pool and the test perturbations."""
    return {"0-DEG pool": split.zero_deg, f"test (>= {split.min_degs} DEGs)": split.test}


def _common_metrics(scores_by_model: Mapping[str, pd.DataFrame]) -> list[str]:
    """The metrics of :data:`Z_METRICS` with a ``_z`` column in every table."""
    common = [m for m in Z_METRICS if all(f"{m}_z" in frame.columns for frame in scores_by_model.values())]
    if not common:
        raise KeyError(f"no table has a z-score column of every model; expected one of {[f'{m}_z' for m in Z_METRICS]}")
    return common


def _pool_masks(
    table: pd.DataFrame, labels: pd.Series, pools: Mapping[str, Iterable[str]] | None, min_degs: int
) -> dict[str, pd.Series]:
    """Boolean row mask of each pool."""
    if pools is not None:
        return {name: labels.isin([str(label) for label in members]) for name, members in pools.items()}
    if "n_degs" not in table.columns:
        return {"all perturbations": pd.Series(True, index=table.index)}
    return {"0 DEGs": table["n_degs"] == 0, f">= {min_degs} DEGs": table["n_degs"] >= min_degs}


def _pair_medians(model: str, pairs: pd.DataFrame, columns: list[str]) -> dict[str, object]:
    """The medians row of one model's pair table (NaN for a metric without pair values)."""
    n_perturbations = len(set(pairs["perturbation_1"]) | set(pairs["perturbation_2"]))
    medians = {column: pairs[column].median() if column in pairs.columns else float("nan") for column in columns}
    return {"model": model, "pool": PAIR_POOL, "n_perturbations": n_perturbations, **medians}


def ranked_table(
    scores: pd.DataFrame,
    *,
    metric: str = "edistance",
    degs: pd.DataFrame | Mapping[str, int] | None = None,
    top: int | None = None,
) -> pd.DataFrame:
    """Perturbations ranked by ``<metric>_z`` (rank 1 = farthest from control; NaN last).

    Parameters
    ----------
    scores
        Scores table of :func:`cellshift.analysis.score_perturbations`.
    metric
        Metric whose normalised distance ranks the perturbations.
    degs
        Number of DEGs per perturbation (see :func:`medians_table`); a ``knockdown`` column of a
        degs table is carried over too.
    top
        Keep only the first ``top`` rows.

    Returns
    -------
    pandas.DataFrame
        ``rank, perturbation, n_cells``, then ``n_degs``, ``knockdown`` and
        ``fraction_responders`` (per-cell calls) when known, the ``_z`` of every metric
        present, ``<metric>_pvalue``, its source (``draws``, or ``tail fit`` past the draws'
        floor), ``<metric>_fdr`` (Benjamini-Hochberg) and ``status``; perturbations not scored
        (too few cells) come last, without a rank.
    """
    column = f"{metric}_z"
    if column not in scores.columns:
        raise KeyError(f"scores lack {column!r}; columns: {list(scores.columns)}")
    table = attach_n_degs(scores, degs)
    if isinstance(degs, pd.DataFrame) and "knockdown" in degs.columns:
        knockdown = degs.set_index(degs["perturbation"].astype(str))["knockdown"]
        table["knockdown"] = table["perturbation"].astype(str).map(knockdown).to_numpy()
    scored = scored_rows(table).sort_values(column, ascending=False, na_position="last", kind="stable")
    table = pd.concat([scored, table.drop(scored.index)], ignore_index=True)
    table.insert(0, "rank", pd.array([*range(1, len(scored) + 1), *[None] * (len(table) - len(scored))], "Int64"))
    kept = [
        "rank",
        "perturbation",
        "n_cells",
        "n_degs",
        "knockdown",
        "fraction_responders",
        *(f"{m}_z" for m in Z_METRICS),
        f"{metric}_pvalue",
        f"{metric}_pvalue_source",
        f"{metric}_fdr",
        "status",
    ]
    kept = [name for name in kept if name in table.columns]
    return table[kept].head(top) if top is not None else table[kept]


def split_table(
    split: PerturbationSplit | Mapping[str, Iterable[str]] | pd.DataFrame, *, column: str = "split"
) -> pd.DataFrame:
    """Number and labels of the perturbations in each part of the split.

    Parameters
    ----------
    split
        A :class:`~cellshift.analysis.PerturbationSplit` (parts: train, test, 0-DEG pool and the
        perturbations with too few DEGs), a mapping part name -> perturbation labels, or a table
        with ``perturbation`` and ``column``.
    column
        Column of the table naming the part.

    Returns
    -------
    pandas.DataFrame
        ``part, n_perturbations, perturbations`` (labels sorted, comma-separated).
    """
    rows = []
    for part, members in _split_parts(split, column).items():
        labels = sorted(str(label) for label in members)
        rows.append({"part": part, "n_perturbations": len(labels), "perturbations": ", ".join(labels)})
    return pd.DataFrame(rows, columns=["part", "n_perturbations", "perturbations"])


def _split_parts(
    split: PerturbationSplit | Mapping[str, Iterable[str]] | pd.DataFrame, column: str
) -> dict[str, Iterable[str]]:
    """Part name -> perturbation labels, from any of the forms :func:`split_table` takes."""
    if isinstance(split, PerturbationSplit):
        return {
            "train (fine-tuning)": split.train,
            "test (held out)": split.test,
            "0-DEG pool": split.zero_deg,
            f"1-{split.min_degs - 1} DEGs (not used)": split.few_degs,
        }
    if isinstance(split, pd.DataFrame):
        if {"perturbation", column} - set(split.columns):
            raise KeyError(f"split table needs columns 'perturbation' and {column!r}; columns: {list(split.columns)}")
        return {part: rows["perturbation"] for part, rows in split.groupby(column, sort=False)}
    return dict(split)


def split_overview(split: PerturbationSplit) -> dict[str, object]:
    """The control cells of each share and the settings of a split, as key/value pairs.

    Parameters
    ----------
    split
        The split.

    Returns
    -------
    dict
        ``control cells (train / validation / test)`` (counts joined by ``" / "``), ``min_degs``,
        ``test_fraction`` and ``seed``.
    """
    shares = (split.control_train, split.control_validation, split.control_test)
    return {
        "control cells (train / validation / test)": " / ".join(str(len(cells)) for cells in shares),
        "min_degs": split.min_degs,
        "test_fraction": split.test_fraction,
        "seed": split.seed,
    }
