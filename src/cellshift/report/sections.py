"""Tables and the standard sections of a screen report, from the scores and enrichment tables.

- :func:`medians_table`: median normalised distance per model, pool and metric, like Table 1
  of Zhao et al. 2025 (the 0-DEG pool and the perturbations with >= 20 DEGs).
- :func:`ranked_table`: perturbations ranked by one model's normalised distance.
- :func:`split_table`: the perturbations of each part of the split.
- :func:`software_versions`: versions of Python and of the packages of a run.
- :func:`screen_sections`: all of these as :class:`~cellshift.report.html.Section` s.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from cellshift.plotting import attach_n_degs
from cellshift.report.html import FigureLike, Section

if TYPE_CHECKING:
    from cellshift.analysis.split import PerturbationSplit

METRICS = ("edistance", "cosine_edistance", "wasserstein")
MIN_DEGS = 20
PAIR_POOL = "between perturbations (pairs)"
PACKAGES = (
    "cellshift",
    "numpy",
    "scipy",
    "pandas",
    "anndata",
    "scanpy",
    "torch",
    "transformers",
    "scikit-learn",
    "umap-learn",
    "matplotlib",
    "scvi-tools",
)

TITLES = {
    "summary": "Summary",
    "medians": "Median normalised distance per model",
    "ranking": "Ranked perturbations",
    "enrichment": "0-DEG enrichment",
    "split": "Split of the perturbations",
    "settings": "Run settings",
    "versions": "Software versions",
}


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
        Pool name -> perturbation labels (e.g. ``{"test (>= 20 DEGs)": test_labels}``). Default:
        ``"0 DEGs"`` (``n_degs == 0``) and ``">= <min_degs> DEGs"``; when the number of DEGs is
        unknown, one pool ``"all perturbations"``.
    metrics
        Metrics to summarise; default: those of :data:`METRICS` whose ``_z`` column is in every table.
    min_degs
        Lower bound of the strong pool.
    pairs_by_model
        Model name -> pair table of :func:`cellshift.analysis.score_perturbation_pairs`: adds a
        row ``"between perturbations (pairs)"`` per model with the median over pairs.

    Returns
    -------
    pandas.DataFrame
        One row per (model, pool): ``model, pool, n_perturbations`` and ``<metric>_z`` medians
        (NaN z-scores skipped; NaN when a pool is empty or a metric has no pair values).
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
        table = attach_n_degs(scores, degs)
        labels = table["perturbation"].astype(str)
        for pool, members in _pool_masks(table, labels, pools, min_degs).items():
            medians = table.loc[members, columns].median()
            rows.append({"model": model, "pool": pool, "n_perturbations": int(members.sum()), **medians.to_dict()})
        if pairs_by_model and model in pairs_by_model:
            pairs = pairs_by_model[model]
            n_perturbations = len(set(pairs["perturbation_1"]) | set(pairs["perturbation_2"]))
            medians = {
                column: pairs[column].median() if column in pairs.columns else float("nan") for column in columns
            }
            rows.append({"model": model, "pool": PAIR_POOL, "n_perturbations": n_perturbations, **medians})
    return pd.DataFrame(rows, columns=["model", "pool", "n_perturbations", *columns])


def split_pools(split: PerturbationSplit) -> dict[str, tuple[str, ...]]:
    """The pools of the paper's Table 1 from a split: the 0-DEG pool and the test perturbations."""
    return {"0-DEG pool": split.zero_deg, f"test (>= {split.min_degs} DEGs)": split.test}


def _common_metrics(scores_by_model: Mapping[str, pd.DataFrame]) -> list[str]:
    """The metrics of :data:`METRICS` with a ``_z`` column in every table."""
    common = [m for m in METRICS if all(f"{m}_z" in frame.columns for frame in scores_by_model.values())]
    if not common:
        raise KeyError(f"no table has a z-score column of every model; expected one of {[f'{m}_z' for m in METRICS]}")
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
        ``rank, perturbation, n_cells``, then ``n_degs`` and ``knockdown`` when known, the
        ``_z`` of every metric present and ``<metric>_pvalue``.
    """
    column = f"{metric}_z"
    if column not in scores.columns:
        raise KeyError(f"scores lack {column!r}; columns: {list(scores.columns)}")
    table = attach_n_degs(scores, degs)
    if isinstance(degs, pd.DataFrame) and "knockdown" in degs.columns:
        knockdown = degs.set_index(degs["perturbation"].astype(str))["knockdown"]
        table["knockdown"] = table["perturbation"].astype(str).map(knockdown).to_numpy()
    table = table.sort_values(column, ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    kept = ["rank", "perturbation", "n_cells", "n_degs", "knockdown", *(f"{m}_z" for m in METRICS), f"{metric}_pvalue"]
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
    split: PerturbationSplit | Mapping[str, Iterable[str]] | pd.DataFrame, column: str = "split"
) -> dict[str, Iterable[str]]:
    """Part name -> perturbation labels, from any of the forms :func:`split_table` takes."""
    from cellshift.analysis.split import PerturbationSplit

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


def _split_section(split: PerturbationSplit | Mapping[str, Iterable[str]] | pd.DataFrame) -> Section:
    """The split's table, with the control cells and settings of a PerturbationSplit."""
    from cellshift.analysis.split import PerturbationSplit

    summary = None
    if isinstance(split, PerturbationSplit):
        summary = {
            "control cells (train / validation / test)": " / ".join(
                str(len(cells)) for cells in (split.control_train, split.control_validation, split.control_test)
            ),
            "min_degs": split.min_degs,
            "test_fraction": split.test_fraction,
            "seed": split.seed,
        }
    return Section(TITLES["split"], summary=summary, table=split_table(split))


def software_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and each package's installed version (``"not installed"`` when absent)."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def screen_sections(
    scores_by_model: Mapping[str, pd.DataFrame],
    *,
    degs: pd.DataFrame | Mapping[str, int] | None = None,
    enrichment: pd.DataFrame | None = None,
    figures: Mapping[str, FigureLike] | None = None,
    summary: Mapping[str, object] | None = None,
    split: PerturbationSplit | Mapping[str, Iterable[str]] | pd.DataFrame | None = None,
    settings: Mapping[str, object] | None = None,
    pools: Mapping[str, Iterable[str]] | None = None,
    ranking_model: str | None = None,
    metric: str = "edistance",
    min_degs: int = MIN_DEGS,
    top: int | None = None,
    pairs_by_model: Mapping[str, pd.DataFrame] | None = None,
    medians: pd.DataFrame | None = None,
) -> list[Section]:
    """The standard sections of a screen report, in order.

    Summary (when given), medians per model (:func:`medians_table`), ranked perturbations of
    ``ranking_model`` (:func:`ranked_table`), 0-DEG enrichment (when given), one section per
    figure, split, run settings (when given) and software versions.

    Parameters
    ----------
    scores_by_model
        Model (embedding) name -> scores table.
    degs
        Number of DEGs (and knock-down) per perturbation.
    enrichment
        Table of :mod:`cellshift.analysis.enrichment`.
    figures
        Section title -> figure (Figure, PNG bytes or PNG file).
    summary
        Key/value pairs of the run (data set, cells, perturbations, ...).
    split
        The split of the perturbations (see :func:`split_table`). A
        :class:`~cellshift.analysis.PerturbationSplit` also sets the default pools of the medians
        table to its 0-DEG pool and its test perturbations (the paper's Table 1).
    settings
        Key/value pairs of the options of the run.
    pools
        Pools of the medians table (see :func:`medians_table`).
    ranking_model
        Model whose ranking is shown; default: the first.
    metric
        Metric of the ranking.
    min_degs
        Lower bound of the strong pool.
    top
        Rows of the ranking shown (``None``: all).
    pairs_by_model
        Pair tables per model, summarised in the medians table (see :func:`medians_table`).
    medians
        The medians table, when the caller already made it (then ``pools`` and
        ``pairs_by_model`` are not used).

    Returns
    -------
    list of Section
        Ready for :func:`cellshift.report.build_report`.
    """
    from cellshift.analysis.split import PerturbationSplit

    if pools is None and isinstance(split, PerturbationSplit):
        pools = split_pools(split)
    ranking_model = ranking_model if ranking_model is not None else next(iter(scores_by_model), None)
    if ranking_model not in scores_by_model:
        raise KeyError(f"ranking model {ranking_model!r} is not one of the models {list(scores_by_model)}")
    sections = [Section(TITLES["summary"], summary=summary)] if summary else []
    sections.append(
        Section(
            TITLES["medians"],
            text=(
                "Median over perturbations of the normalised distance z = (D - mean_null) / sd_null to the control "
                "cells, per model, pool of perturbations and metric (Zhao et al. 2025, Table 1). The pair rows give "
                "the median over pairs of perturbations of their normalised distance to each other."
            ),
            table=medians
            if medians is not None
            else medians_table(scores_by_model, degs, pools=pools, min_degs=min_degs, pairs_by_model=pairs_by_model),
        )
    )
    shown = "all" if top is None else f"top {top}"
    sections.append(
        Section(
            f"{TITLES['ranking']} ({ranking_model}, {metric})",
            text=f"Perturbations ({shown}) ranked by normalised {metric} in the {ranking_model} embedding.",
            table=ranked_table(scores_by_model[ranking_model], metric=metric, degs=degs, top=top),
        )
    )
    if enrichment is not None:
        sections.append(Section(TITLES["enrichment"], table=enrichment))
    sections += [Section(title, figure=figure) for title, figure in (figures or {}).items()]
    if split is not None:
        sections.append(_split_section(split))
    if settings:
        sections.append(Section(TITLES["settings"], summary=settings))
    sections.append(Section(TITLES["versions"], summary=software_versions()))
    return sections
