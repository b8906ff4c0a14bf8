"""Exact 1-Wasserstein distance between two samples with Euclidean ground cost."""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from scipy.optimize import linear_sum_assignment, linprog

from ._pairwise import distance_block
from ._validation import ArrayLike, as_point_pair

DEFAULT_MAX_PAIRS = 1_000_000


def wasserstein_from_cost(cost: np.ndarray, *, max_pairs: int = DEFAULT_MAX_PAIRS) -> float:
    """Optimal transport cost between two uniform empirical measures, from their cost matrix.

    ``W = min_P sum_{i, j} P_ij C_ij`` over plans ``P >= 0`` with row sums ``1/n`` and column
    sums ``1/m`` (``C`` is ``n x m``).

    - ``n == m``: an optimal plan is a permutation (Birkhoff), found exactly by
      :func:`scipy.optimize.linear_sum_assignment`; ``W`` is the mean matched cost.
      Time ``O(n^3)``.
    - ``n != m``: the transportation linear programme with ``n * m`` variables is solved
      exactly by HiGHS (:func:`scipy.optimize.linprog`), with integer supplies ``m`` and
      demands ``n`` and the objective divided by ``n * m``. Time grows faster than
      ``n * m``: about 3 s for 300 x 1,000 and 18 s for 500 x 2,000 on 2 CPU cores.

    Parameters
    ----------
    cost
        ``n x m`` matrix of ground costs, finite.
    max_pairs
        Largest ``n * m`` accepted for unequal sizes; larger problems raise instead of
        running for a long time.

    Returns
    -------
    float
        The optimal transport cost.

    Raises
    ------
    ValueError
        If ``cost`` is not a finite, non-empty 2-D matrix, or unequal sizes exceed ``max_pairs``.
    RuntimeError
        If the linear programme solver does not report an optimal solution (no fallback value).
    """
    cost = np.asarray(cost, dtype=np.float64)
    rows, columns, masses = optimal_plan(cost, max_pairs=max_pairs)
    return float(masses @ cost[rows, columns])


def optimal_plan(cost: np.ndarray, *, max_pairs: int = DEFAULT_MAX_PAIRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Support of an optimal transport plan between uniform measures: ``(rows, columns, masses)``.

    ``P[rows[k], columns[k]] = masses[k]`` and ``P`` is 0 elsewhere; the masses sum to 1. See
    :func:`wasserstein_from_cost` for the solvers and the errors raised.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"cost must be a non-empty 2-D matrix, got shape {cost.shape}")
    if not np.isfinite(cost).all():
        raise ValueError("cost contains NaN or infinite values")
    n, m = cost.shape
    if n == m:
        rows, columns = linear_sum_assignment(cost)
        return rows, columns, np.full(n, 1.0 / n)
    if n * m > max_pairs:
        raise ValueError(
            f"exact optimal transport between samples of unequal sizes {n} and {m} solves a "
            f"linear programme with {n * m:,} variables, more than max_pairs={max_pairs:,}; "
            "raise max_pairs (time grows faster than n * m) or compare size-matched "
            "subsamples (equal sizes use an O(n^3) assignment solver)"
        )
    plan = _transport_lp(cost)
    rows, columns = np.nonzero(plan)
    return rows, columns, plan[rows, columns]


def _transport_lp(cost: np.ndarray) -> np.ndarray:
    """Optimal ``n x m`` plan (masses summing to 1) between uniform measures, solved exactly by HiGHS."""
    n, m = cost.shape
    plan_index = np.arange(n * m)  # variable P_ij sits at i * m + j
    ones = np.ones(n * m)
    row_sums = scipy.sparse.csr_matrix((ones, (np.repeat(np.arange(n), m), plan_index)), shape=(n, n * m))
    column_sums = scipy.sparse.csr_matrix((ones, (np.tile(np.arange(m), n), plan_index)), shape=(m, n * m))
    # Total supply equals total demand, so the last column constraint follows from the others.
    constraints = scipy.sparse.vstack([row_sums, column_sums[:-1]]).tocsr()
    # Supplies m and demands n (total n * m): integer data; the objective is divided back below.
    targets = np.concatenate([np.full(n, float(m)), np.full(m - 1, float(n))])
    result = linprog(cost.ravel(), A_eq=constraints, b_eq=targets, bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"optimal transport linear programme failed: {result.message}")
    return np.clip(result.x, 0.0, None).reshape(n, m) / (n * m)


def wasserstein(X: ArrayLike, Y: ArrayLike, *, max_pairs: int = DEFAULT_MAX_PAIRS) -> float:
    """Exact 1-Wasserstein distance between two samples, Euclidean ground cost.

    ``W1 = min_P sum_{i, j} P_ij ||x_i - y_j||`` over transport plans between the uniform
    measures on the rows of ``X`` and of ``Y``. Equal sizes: mean matched distance of the
    optimal one-to-one assignment. Unequal sizes: exact linear programme, see
    :func:`wasserstein_from_cost` for the cost and ``max_pairs``.

    Parameters
    ----------
    X, Y
        Samples (cells x dimensions), numpy arrays or torch tensors with the same number of
        columns. The ``len(X) x len(Y)`` cost matrix is built on their device with one matrix
        product (float64, exact to about ``1e-8 |x|``), solved on the CPU, and the cost of the
        optimal plan is then summed from exact coordinate differences of its matched pairs, so
        coincident points cost exactly 0 and the value is optimal to about ``1e-8 |x|``.
    max_pairs
        Largest ``len(X) * len(Y)`` accepted when the sizes differ.

    Returns
    -------
    float
        The 1-Wasserstein distance.

    Raises
    ------
    ValueError
        If the inputs are not 2-D, are empty, have different numbers of columns, hold NaN or
        infinite values, or unequal sizes exceed ``max_pairs``.
    RuntimeError
        If the solver fails.
    """
    x, y = as_point_pair(X, Y, min_rows=1)
    cost = distance_block(x, y, "euclidean").cpu().numpy()
    rows, columns, masses = optimal_plan(cost, max_pairs=max_pairs)
    index = torch.from_numpy
    matched = torch.linalg.vector_norm(x[index(rows).to(x.device)] - y[index(columns).to(y.device)], dim=1)
    return float(masses @ matched.cpu().numpy())
