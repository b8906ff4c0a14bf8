"""Input checks shared by the distance functions.

Every public function of :mod:`cellshift.metrics` turns its inputs into float64 torch tensors
through :func:`as_points`, so the rest of the code can assume 2-D, finite, float64 data on one
device.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def as_points(X: ArrayLike, name: str, *, min_rows: int = 1) -> torch.Tensor:
    """Return ``X`` as a 2-D float64 tensor (cells x dimensions), checking it on the way.

    Parameters
    ----------
    X
        A numpy array or a torch tensor with one row per cell.
    name
        How to call the input in error messages (``"X"``, ``"Y"``, ...).
    min_rows
        Smallest number of rows accepted (2 where a within-group mean over distinct pairs is
        needed).

    Returns
    -------
    torch.Tensor
        ``X`` as float64, on the device it already had (numpy arrays go to the CPU).

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, has fewer than ``min_rows`` rows, or holds NaN or infinite values.
    TypeError
        If ``X`` is neither a numpy array nor a torch tensor.
    """
    if isinstance(X, np.ndarray):
        tensor = torch.from_numpy(np.asarray(X, dtype=np.float64))
    elif isinstance(X, torch.Tensor):
        tensor = X.detach().to(torch.float64)
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(X).__name__}")
    if tensor.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (cells x dimensions), got {tensor.ndim} dimension(s) with shape {tuple(tensor.shape)}"
        )
    if tensor.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (cells), got {tensor.shape[0]}")
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return tensor


def as_point_pair(X: ArrayLike, Y: ArrayLike, *, min_rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Check two samples with :func:`as_points` and check that they can be compared.

    ``Y`` is moved to the device of ``X`` when ``Y`` is a numpy array; two tensors on
    different devices are an error rather than a silent copy.

    Raises
    ------
    ValueError
        If either sample fails :func:`as_points`, the numbers of columns differ, or the two
        tensors live on different devices.
    """
    x = as_points(X, "X", min_rows=min_rows)
    y = as_points(Y, "Y", min_rows=min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of dimensions (columns), got {x.shape[1]} and {y.shape[1]}"
        )
    if isinstance(Y, np.ndarray):
        y = y.to(x.device)
    elif isinstance(X, np.ndarray):
        x = x.to(y.device)
    if x.device != y.device:
        raise ValueError(f"X and Y are on different devices: {x.device} and {y.device}")
    return x, y


def check_nonzero_rows(X: torch.Tensor, name: str) -> None:
    """Raise a ``ValueError`` if a row of ``X`` is all zeros (cosine distance is undefined)."""
    zero_rows = torch.linalg.vector_norm(X, dim=1) == 0
    if bool(zero_rows.any()):
        first = int(torch.nonzero(zero_rows)[0, 0])
        raise ValueError(
            f"{name} has {int(zero_rows.sum())} row(s) with zero norm (first: row {first}); "
            "cosine distance is undefined for them"
        )
