"""Gene-set enrichment among the top-ranked 0-DEG perturbations (Zhao et al. 2025).

The 0-DEG pool holds the ``N`` scored perturbations with no DEG. For each metric they are
ranked by the normalised distance ``<metric>_z``, largest first (ties by label). For each
``n`` in ``top``, ``k`` counts the top ``n`` whose label is in the gene set (labels are gene
symbols, compared case-insensitively), out of ``K`` pool labels in the set.

Permutation test: ``P`` random sets of ``n`` perturbations drawn without replacement from the
pool; ``p = (#{draws with hits >= k} + 1) / (P + 1)``. Under the null ``k`` is hypergeometric,
``P(hits >= k) = hypergeom.sf(k - 1, N, K, n)``, with mean ``expected = n K / N``. One set of
draws serves every ``n``, metric and gene set: a draw is the first ``max(top)`` entries of a
random permutation of the pool (so its first ``n`` are a uniform random ``n``-subset), taken from
``numpy.random.default_rng(seed)``; a gene set's result therefore does not depend on which other
gene sets or metrics are tested with it.

Bonferroni: ``p_bonferroni = min(1, p * len(top))``, correcting over the ``n`` values tested for
one gene set and one metric only (not over metrics or gene sets).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cellshift._validate import NON_NEGATIVE_INT, POSITIVE_INT, check_options
from cellshift.analysis.screen_input import scored_rows
from cellshift.analysis.split import deg_counts
from cellshift.datasets import GENE_SETS, gene_set

COLUMNS = [
    "gene_set",
    "metric",
    "top_n",
    "n_pool",
    "n_in_set_pool",
    "k",
    "expected",
    "p_value",
    "p_bonferroni",
    "top_perturbations",
    "hits",
]
DRAW_CHUNK_ELEMENTS = 4_000_000  # random keys generated at a time (32 MB of float64)


def load_gene_set(spec: str, *, species: str = "human") -> tuple[str, list[str]]:
    """Return the name and genes of a bundled gene set or of a file with one gene per line.

    Parameters
    ----------
    spec
        A bundled set (``essential``, ``cell_cycle``, ... see
        :func:`cellshift.datasets.gene_set`) or the path of a text file with one gene symbol
        per line (blank lines and lines starting with ``#`` are skipped).
    species
        Species of a bundled set.

    Returns
    -------
    tuple of str and list of str
        The set's name (the file's stem for a file) and its genes.

    Raises
    ------
    ValueError
        If ``spec`` is neither a bundled set nor an existing file, or the file lists no gene.
    """
    if spec in GENE_SETS:
        return spec, gene_set(spec, species=species)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"gene set {spec!r} is neither a bundled set ({', '.join(sorted(GENE_SETS))}) nor an existing file "
            f"with one gene per line"
        )
    genes = [line.strip() for line in path.read_text().splitlines()]
    genes = [gene for gene in genes if gene and not gene.startswith("#")]
    if not genes:
        raise ValueError(f"gene set file {path} lists no gene (one symbol per line expected)")
    return path.stem, genes


def zero_deg_enrichment(
    scores: pd.DataFrame,
    *,
    gene_sets: Mapping[str, Iterable[str]],
    degs: pd.DataFrame | None = None,
    metrics: Sequence[str] | None = None,
    top: Sequence[int] = (3, 5, 10),
    n_permutations: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Test whether the 0-DEG perturbations ranked highest by distance are enriched for gene sets.

    See the module docstring for the ranking, the permutation p-value and the Bonferroni
    correction.

    Parameters
    ----------
    scores
        One row per perturbation with ``perturbation`` and ``<metric>_z`` columns (the output of
        :func:`cellshift.analysis.score_perturbations`).
    gene_sets
        Name -> gene symbols (see :func:`load_gene_set`).
    degs
        DEG summary with ``perturbation`` and ``n_degs`` (see :func:`cellshift.analysis.degs`);
        ``None`` uses an ``n_degs`` column of ``scores``.
    metrics
        Metrics to rank by; ``None`` takes every ``<metric>_z`` column of ``scores``.
    top
        Numbers ``n`` of top-ranked perturbations to test, each at most the pool size.
    n_permutations
        Number ``P`` of random draws.
    seed
        Seed of the draws.

    Returns
    -------
    pandas.DataFrame
        One row per gene set, metric and ``n``: ``gene_set, metric, top_n, n_pool, n_in_set_pool,
        k, expected, p_value, p_bonferroni, top_perturbations, hits`` (the last two are the top
        ``n`` labels and those in the set, ``;``-joined, best first).

    Raises
    ------
    KeyError
        If a column is missing (the message lists what is there).
    ValueError
        If the pool is empty, an ``n`` is not in ``1..N``, a z-score of the pool is NaN, a gene
        set is empty, or ``n_permutations < 1``.
    """
    if "perturbation" not in scores.columns:
        raise KeyError(f"the scores table needs a 'perturbation' column; it has {list(scores.columns)}")
    z_columns = _z_columns(scores, metrics)
    pool = _zero_deg_pool(scores, degs)
    top = sorted({int(n) for n in top})
    if not top or top[0] < 1 or top[-1] > len(pool):
        raise ValueError(
            f"top must list numbers between 1 and the 0-DEG pool size ({len(pool)}), got {top}; "
            "choose smaller --top values"
        )
    check_options(
        {"n_permutations": n_permutations, "seed": seed}, {"n_permutations": POSITIVE_INT, "seed": NON_NEGATIVE_INT}
    )
    if not gene_sets:
        raise ValueError("no gene set given")

    draws = _random_draws(len(pool), top[-1], n_permutations, seed)
    labels = pool["perturbation"].to_numpy()
    rows = []
    for set_name, genes in gene_sets.items():
        members = {str(gene).upper() for gene in genes}
        if not members:
            raise ValueError(f"gene set {set_name!r} is empty")
        in_pool_set = np.array([label.upper() in members for label in labels])
        null_hits = np.cumsum(in_pool_set[draws], axis=1)
        for metric, column in z_columns.items():
            order = _rank(pool, column)
            ranked, ranked_in_set = labels[order], in_pool_set[order]
            for n in top:
                k = int(ranked_in_set[:n].sum())
                p_value = (np.sum(null_hits[:, n - 1] >= k) + 1) / (n_permutations + 1)
                rows.append(
                    {
                        "gene_set": set_name,
                        "metric": metric,
                        "top_n": n,
                        "n_pool": len(pool),
                        "n_in_set_pool": int(in_pool_set.sum()),
                        "k": k,
                        "expected": n * in_pool_set.sum() / len(pool),
                        "p_value": float(p_value),
                        "p_bonferroni": float(min(1.0, p_value * len(top))),
                        "top_perturbations": ";".join(ranked[:n]),
                        "hits": ";".join(ranked[:n][ranked_in_set[:n]]),
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _z_columns(scores: pd.DataFrame, metrics: Sequence[str] | None) -> dict[str, str]:
    """Metric -> its ``<metric>_z`` column of ``scores``."""
    available = [str(column)[: -len("_z")] for column in scores.columns if str(column).endswith("_z")]
    if metrics is None:
        if not available:
            raise KeyError(
                f"the scores table has no '<metric>_z' column (from `cellshift score`); it has {list(scores.columns)}"
            )
        metrics = available
    missing = [metric for metric in metrics if metric not in available]
    if missing:
        raise KeyError(f"no z-score column for metric(s) {missing} in the scores table; available metrics: {available}")
    return {metric: f"{metric}_z" for metric in metrics}


def _zero_deg_pool(scores: pd.DataFrame, degs: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of ``scores`` whose perturbation has 0 DEGs; warns about 0-DEG perturbations not scored."""
    scored = scored_rows(scores)
    scored = scored.assign(perturbation=scored["perturbation"].astype(str))
    if scored["perturbation"].duplicated().any():
        duplicated = sorted(set(scored["perturbation"][scored["perturbation"].duplicated()]))
        raise ValueError(f"the scores table lists perturbation(s) more than once: {duplicated[:10]}")
    if degs is None:
        if "n_degs" not in scored.columns:
            raise KeyError(
                "the scores table has no 'n_degs' column: pass the DEG summary (--degs degs.csv, degs=), "
                "or score with `cellshift score --degs`"
            )
        n_degs = deg_counts(scored[["perturbation", "n_degs"]])
    else:
        n_degs = deg_counts(degs)
    zero = set(n_degs.index[n_degs == 0])
    unscored = sorted(zero - set(scored["perturbation"]))
    if unscored:
        warnings.warn(
            f"{len(unscored)} perturbation(s) with 0 DEGs have no score and are left out of the pool: {unscored[:10]}",
            stacklevel=3,
        )
    pool = scored[scored["perturbation"].isin(zero)].reset_index(drop=True)
    if pool.empty:
        raise ValueError(
            f"no scored perturbation has 0 DEGs ({len(n_degs)} in the DEG summary, {len(scored)} scored); "
            "the 0-DEG pool is empty"
        )
    return pool


def _rank(pool: pd.DataFrame, column: str) -> np.ndarray:
    """Row positions of the pool by ``column`` descending, ties by label; NaN is an error."""
    values = pool[column].to_numpy(dtype=float)
    if np.isnan(values).any():
        raise ValueError(
            f"{column} is NaN for 0-DEG perturbation(s) {list(pool['perturbation'][np.isnan(values)])[:10]} "
            "(a null without spread); leave the metric out (--metrics) or rescore with more null draws"
        )
    ranked = pool.assign(_value=values, _position=np.arange(len(pool)))
    ranked = ranked.sort_values(["_value", "perturbation"], ascending=[False, True], kind="stable")
    return ranked["_position"].to_numpy()


def _random_draws(n_pool: int, size: int, n_draws: int, seed: int) -> np.ndarray:
    """``n_draws x size`` pool indices: the first ``size`` entries of random permutations of the pool.

    Each row sorts ``n_pool`` uniform keys (only its ``size`` smallest, by ``argpartition``), so
    every prefix of a row is a uniform random subset drawn without replacement.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, DRAW_CHUNK_ELEMENTS // n_pool)
    parts = []
    for start in range(0, n_draws, chunk):
        keys = rng.random((min(chunk, n_draws - start), n_pool))
        smallest = np.argpartition(keys, size - 1, axis=1)[:, :size]
        order = np.argsort(np.take_along_axis(keys, smallest, axis=1), axis=1)
        parts.append(np.take_along_axis(smallest, order, axis=1))
    return np.concatenate(parts)
