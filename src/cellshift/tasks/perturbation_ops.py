"""In-silico perturbations of one rank-value encoded cell: delete, overexpress, inhibit, activate.

A cell is its gene tokens in rank order (highest normalised expression first) and their values;
``<cls>``/``<eos>`` around them, when the model uses them, never move. With ``n`` gene tokens and
a gene at position ``p`` (0 = rank 1), as in Geneformer's in-silico perturber (Theodoris et al.
2023):

- ``delete``: the gene's token is removed; every other token keeps its order;
- ``overexpress``: the gene moves to position 0 (a gene the cell lacks is inserted there); its
  value becomes the cell's largest value;
- ``inhibit``: the gene moves down to ``min(n - 1, p + s)``; ``activate``: up to ``max(0, p - s)``,
  with ``s = max(1, round(shift * n))`` (``shift`` is a quantile of the cell's ranks); the gene
  takes the value of the gene whose place it takes.

Several genes perturbed together are perturbed one after the other, in the order given.
"""

from __future__ import annotations

import numpy as np

OPERATIONS = ("delete", "overexpress", "inhibit", "activate")
# Operations that can apply to a gene the cell does not express (it is inserted at rank 1).
INSERTING = ("overexpress",)


def check_operation(operation: str, shift: float) -> None:
    """Refuse an unknown operation or a shift outside (0, 1]."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown perturbation {operation!r}; choose from {', '.join(OPERATIONS)}")
    if operation in ("inhibit", "activate") and not 0 < shift <= 1:
        raise ValueError(f"--shift is a quantile of the cell's ranks, in (0, 1]; got {shift}")


def gene_region(n_tokens: int, special_tokens: bool) -> slice:
    """Positions of the gene tokens in a cell of ``n_tokens`` (``<cls>`` first and ``<eos>`` last when used)."""
    return slice(1, n_tokens - 1) if special_tokens else slice(0, n_tokens)


def perturb_cell(
    input_ids: np.ndarray,
    values: np.ndarray,
    genes: tuple[int, ...],
    operation: str,
    *,
    shift: float = 0.25,
    special_tokens: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The cell's tokens and values after perturbing ``genes`` (token IDs).

    Parameters
    ----------
    input_ids, values
        The cell's tokens and values, in rank order.
    genes
        Token IDs perturbed together. ``delete``, ``inhibit`` and ``activate`` need every one in
        the cell; ``overexpress`` inserts a missing one.
    operation
        One of :data:`OPERATIONS` (see the module docstring).
    shift
        Quantile of the cell's ranks a gene moves by (``inhibit``, ``activate``).
    special_tokens
        The cell starts with ``<cls>`` and ends with ``<eos>``.

    Returns
    -------
    input_ids, values : numpy.ndarray
        New arrays; the input arrays are not changed.
    """
    input_ids, values = np.asarray(input_ids), np.asarray(values)
    region = gene_region(len(input_ids), special_tokens)
    ids, vals = input_ids[region], values[region]
    for gene in genes:
        ids, vals = _perturb_one(ids, vals, gene, operation, shift)
    ids_out = np.concatenate([input_ids[: region.start], ids, input_ids[region.stop :]]).astype(input_ids.dtype)
    values_out = np.concatenate([values[: region.start], vals, values[region.stop :]]).astype(values.dtype)
    return ids_out, values_out


def _perturb_one(ids: np.ndarray, vals: np.ndarray, gene: int, operation: str, shift: float):
    """Perturb one gene of a cell's gene tokens (no special tokens)."""
    where = np.flatnonzero(ids == gene)
    if len(where) == 0 and operation not in INSERTING:
        raise ValueError(f"token {gene} is not in the cell, so it cannot be {operation}d")
    if operation == "delete":
        return np.delete(ids, where), np.delete(vals, where)
    if operation == "overexpress":
        top_value = vals.max(initial=0.0)
        rest_ids, rest_vals = np.delete(ids, where), np.delete(vals, where)
        return np.concatenate([[gene], rest_ids]), np.concatenate([[top_value], rest_vals])
    position, n = int(where[0]), len(ids)
    step = max(1, round(shift * n))
    target = min(n - 1, position + step) if operation == "inhibit" else max(0, position - step)
    new_value = vals[target]
    rest_ids, rest_vals = np.delete(ids, position), np.delete(vals, position)
    return np.insert(rest_ids, target, gene), np.insert(rest_vals, target, new_value)
