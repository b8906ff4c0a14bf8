"""Predicting the expression change of unseen knock-downs from gene embeddings (DESIGN §2.8).

:func:`benchmark` runs the whole protocol; :func:`predict` fits one embedding regressor and
predicts; :func:`response_targets` / :func:`mask_deltas` give the changes to predict.
"""

from cellshift.analysis.response.baselines import (
    Prediction,
    predict_linear,
    predict_no_change,
    predict_training_mean,
    training_mean,
)
from cellshift.analysis.response.evaluation import METRICS, method_ranks, response_metrics, summarize_scores
from cellshift.analysis.response.noise import experimental_error
from cellshift.analysis.response.protocol import BASELINES, DEFAULT_EMBEDDINGS, ResponseBenchmark, benchmark
from cellshift.analysis.response.regressors import REGRESSORS, embedding_regressor, predict, predict_from_embedding
from cellshift.analysis.response.splits import Split, perturbation_splits
from cellshift.analysis.response.targets import PseudobulkDesign, changes_table, mask_deltas, response_targets

__all__ = [
    "BASELINES",
    "DEFAULT_EMBEDDINGS",
    "METRICS",
    "REGRESSORS",
    "Prediction",
    "PseudobulkDesign",
    "ResponseBenchmark",
    "Split",
    "benchmark",
    "changes_table",
    "embedding_regressor",
    "experimental_error",
    "mask_deltas",
    "method_ranks",
    "perturbation_splits",
    "predict",
    "predict_from_embedding",
    "predict_linear",
    "predict_no_change",
    "predict_training_mean",
    "response_metrics",
    "response_targets",
    "summarize_scores",
    "training_mean",
]
