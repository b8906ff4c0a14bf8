"""How well predicted cell labels match true ones: accuracy, macro-F1, per-class F1, confusion counts.

Only cells whose true label is a class the classifier knows are scored; cells with other labels
(a cell type absent from the reference) cannot be right and are counted, not scored. Macro-F1 is
the unweighted mean of the per-class F1 over the known classes present among the scored cells
(GeneCompass picks checkpoints on it), so rare types weigh as much as common ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def score_predictions(true: pd.Series, predicted: pd.Series, classes: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 of ``predicted`` on the cells whose ``true`` label is in ``classes``.

    Returns
    -------
    dict
        ``n_scored, n_unknown_label, accuracy, macro_f1`` (NaN scores when nothing can be scored).
    """
    known = true.notna() & true.isin(list(classes))
    unknown = int((true.notna() & ~known).sum())
    if not known.any():
        return {"n_scored": 0, "n_unknown_label": unknown, "accuracy": np.nan, "macro_f1": np.nan}
    truth, guess = true[known].astype(str), predicted[known].astype(str)
    present = sorted(set(truth))
    return {
        "n_scored": int(known.sum()),
        "n_unknown_label": unknown,
        "accuracy": float(accuracy_score(truth, guess)),
        "macro_f1": float(f1_score(truth, guess, labels=present, average="macro", zero_division=0)),
    }


def per_class_scores(true: pd.Series, predicted: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support of every known class present among the scored cells."""
    known = true.notna() & true.isin(list(classes))
    truth, guess = true[known].astype(str), predicted[known].astype(str)
    present = sorted(set(truth))
    precision, recall, f1, support = precision_recall_fscore_support(truth, guess, labels=present, zero_division=0)
    return pd.DataFrame({"label": present, "precision": precision, "recall": recall, "f1": f1, "support": support})


def confusion_counts(true: pd.Series, predicted: pd.Series, classes: Sequence[str]) -> pd.DataFrame:
    """Cells per (true label, predicted label): rows are every true label seen, columns the classes."""
    labelled = true.notna()
    truth, guess = true[labelled].astype(str), predicted[labelled].astype(str)
    rows = sorted(set(truth) | set(classes), key=lambda label: (label not in classes, label))
    counts = confusion_matrix(truth, guess, labels=rows)
    table = pd.DataFrame(counts, index=pd.Index(rows, name="true"), columns=pd.Index(rows, name="predicted"))
    return table.loc[sorted(set(truth), key=rows.index), list(classes)]
