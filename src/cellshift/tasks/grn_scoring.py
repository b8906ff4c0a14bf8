"""Scoring ranked TF -> target edges against a reference network (AUROC, AUPRC, early precision).

Candidates are every pair ``(tf, target)`` of a TF with at least one reference edge among the
candidate targets (TFs the reference does not cover cannot be scored) and a gene of the data
other than itself. A method's score ranks them; pairs it cannot score rank last (ties). Over all
candidates (pooled) and per TF:

- AUROC (``sklearn.metrics.roc_auc_score``) and AUPRC (average precision, ``average_precision_score``);
- early precision ratio (BEELINE, Pratapa et al. 2020): with ``k`` true edges among ``N``
  candidates, ``EPR = precision of the top k edges / (k / N)``; 1 is random, ``N / k`` is perfect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from cellshift.datasets import grn

REFERENCES = ("dorothea", "trrust")


@dataclass(frozen=True)
class Reference:
    """A reference network: its name and its ``tf, target`` pairs (human symbols)."""

    name: str
    edges: pd.DataFrame


@dataclass
class EdgeScores:
    """How one method's ranking agrees with one reference.

    Attributes
    ----------
    summary
        ``n_tfs, n_candidates, n_true, auroc, auprc, auprc_random, epr``.
    per_tf
        ``tf, n_candidates, n_true, auroc, auprc`` for TFs with true and false candidates.
    curve
        ``precision, recall`` of the pooled ranking (for the PR figure).
    """

    summary: dict
    per_tf: pd.DataFrame
    curve: pd.DataFrame


def load_reference(name: str | os.PathLike, *, confidence: str = "ABC") -> Reference:
    """A bundled network (``dorothea``: DoRothEA with the given confidence levels; ``trrust``) or a CSV file.

    A file needs columns ``tf`` and ``target`` (human symbols); other columns are ignored.
    """
    if str(name) == "dorothea":
        table = grn("dorothea_hs")
        table = table[table["confidence"].isin(list(confidence))]
        label = f"dorothea_{confidence}"
    elif str(name) == "trrust":
        table, label = grn("trrust"), "trrust"
    else:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(f"reference {name!r} is neither {' nor '.join(REFERENCES)} nor an existing file")
        table, label = pd.read_csv(path, sep=None, engine="python"), path.stem
        missing = {"tf", "target"} - set(table.columns)
        if missing:
            raise ValueError(f"reference file {path} lacks columns {sorted(missing)}; it needs tf,target")
    edges = table[["tf", "target"]].astype(str).drop_duplicates()
    return Reference(label, edges[edges["tf"] != edges["target"]].reset_index(drop=True))


def candidate_pairs(tfs: list[str], genes: list[str], reference: Reference) -> pd.DataFrame:
    """``tf, target, true`` for every TF with a reference edge into ``genes``, times every other gene.

    Raises
    ------
    ValueError
        No TF of the data has a reference edge to a gene of the data.
    """
    genes_set = set(genes)
    true_edges = reference.edges[reference.edges["tf"].isin(tfs) & reference.edges["target"].isin(genes_set)]
    covered = sorted(set(true_edges["tf"]))
    if not covered:
        raise ValueError(
            f"no TF of the data has an edge of reference {reference.name!r} to a gene of the data "
            f"({len(tfs)} TFs, {len(genes)} genes); the network cannot score this data"
        )
    gene_array = np.asarray(genes, dtype=object)
    pairs = pd.DataFrame(
        {"tf": np.repeat(np.asarray(covered, dtype=object), len(genes)), "target": np.tile(gene_array, len(covered))}
    )
    pairs = pairs[pairs["tf"] != pairs["target"]]
    marked = pairs.merge(true_edges, on=["tf", "target"], how="left", indicator=True)
    pairs = marked.assign(true=marked.pop("_merge") == "both").reset_index(drop=True)
    return pairs


def score_edges(edges: pd.DataFrame, candidates: pd.DataFrame) -> EdgeScores:
    """Score a method's ``tf, target, score`` edges on the candidate pairs (see the module docstring).

    Parameters
    ----------
    edges
        The method's scored pairs (higher = more likely an edge); pairs it lacks rank last.
    candidates
        :func:`candidate_pairs`.

    Returns
    -------
    EdgeScores
        Pooled and per-TF scores and the pooled PR curve.
    """
    merged = candidates.merge(edges[["tf", "target", "score"]], on=["tf", "target"], how="left")
    finite = merged["score"].to_numpy(dtype=float)
    lowest = np.nanmin(finite) - 1.0 if np.isfinite(finite).any() else 0.0
    scores = np.where(np.isfinite(finite), finite, lowest)
    truth = merged["true"].to_numpy(dtype=bool)
    n_true, n_candidates = int(truth.sum()), len(truth)
    top = np.argsort(-scores, kind="stable")[:n_true]
    summary = {
        "n_tfs": merged["tf"].nunique(),
        "n_candidates": n_candidates,
        "n_true": n_true,
        "n_scored": int(np.isfinite(finite).sum()),
        "auroc": _auroc(truth, scores),
        "auprc": float(average_precision_score(truth, scores)) if n_true else np.nan,
        "auprc_random": n_true / n_candidates,
        "epr": float(truth[top].mean() / (n_true / n_candidates)) if n_true else np.nan,
    }
    per_tf = []
    for tf, rows in merged.assign(value=scores).groupby("tf", sort=True):
        labels = rows["true"].to_numpy(dtype=bool)
        if 0 < labels.sum() < len(labels):
            values = rows["value"].to_numpy()
            per_tf.append(
                {
                    "tf": tf,
                    "n_candidates": len(labels),
                    "n_true": int(labels.sum()),
                    "auroc": _auroc(labels, values),
                    "auprc": float(average_precision_score(labels, values)),
                }
            )
    precision, recall, _ = precision_recall_curve(truth, scores)
    curve = pd.DataFrame({"precision": precision, "recall": recall})
    return EdgeScores(summary, pd.DataFrame(per_tf), curve)


def _auroc(truth: np.ndarray, scores: np.ndarray) -> float:
    """AUROC; NaN when only one class is present."""
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, scores))
