"""Predicting the expression change of unseen knock-downs from gene embeddings (Cole et al. 2025).

:func:`benchmark` runs the whole protocol; :func:`predict` fits one embedding regressor and
predicts; :func:`response_targets` / :func:`mask_deltas` give the changes to predict.
"""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "Prediction": "baselines",
    "predict_linear": "baselines",
    "predict_no_change": "baselines",
    "predict_training_mean": "baselines",
    "training_mean": "baselines",
    "METRICS": "evaluation",
    "method_ranks": "evaluation",
    "response_metrics": "evaluation",
    "summarize_scores": "evaluation",
    "experimental_error": "noise",
    "BASELINES": "protocol",
    "DEFAULT_EMBEDDINGS": "protocol",
    "ResponseBenchmark": "protocol",
    "benchmark": "protocol",
    "REGRESSORS": "regressors",
    "embedding_regressor": "regressors",
    "predict": "regressors",
    "predict_from_embedding": "regressors",
    "Split": "splits",
    "perturbation_splits": "splits",
    "PseudobulkDesign": "targets",
    "changes_table": "targets",
    "mask_deltas": "targets",
    "response_targets": "targets",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
