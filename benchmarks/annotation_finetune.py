"""Benchmark: Kang PBMC cell types held out by donor, fine-tuned model vs frozen embeddings vs PCA.

What is measured
----------------
Accuracy and macro-F1 on the cells of one held-out donor (``holdout_split`` with
``split_key="sample_id"``: the first fold of a stratified group split, seed 0) of three annotation
methods trained on the other donors' cells:

* ``logreg-pca``: log-normalised expression, PCA (<= 50 components), logistic regression;
* ``model-frozen``: the pre-trained model's cell embeddings (penultimate layer, mean over gene
  tokens), scaled, logistic regression;
* ``model``: the same model fine-tuned with a linear head on that embedding (cross-entropy,
  AdamW, early stopping on a stratified 10% validation share by macro-F1, evaluated at each
  epoch's end), one row per ``learning_rate:epochs`` of ``--runs``.

To keep a CPU run short the cells are subsampled (seeded): at most ``--train-per-type`` cells of
each type from the training donors and ``--test-per-type`` from the held-out donor. The model
reads ``--max-length`` tokens per cell (the demo model was pre-trained on 256). Wall seconds
include embedding or fine-tuning and predicting; the machine's load average is recorded.

Usage: ``python -P benchmarks/annotation_finetune.py --model /tmp/demo_run/model`` (``-P``: the folder holds
a ``tokenize.py`` that would shadow the standard library's).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cellshift.datasets import kang2018_pbmc
from cellshift.tasks.annotation_metrics import score_predictions
from cellshift.tasks.cell_splits import holdout_split
from cellshift.tasks.classifiers import make_classifier

RESULTS = Path(__file__).parent / "results"


def subsample(cells, rows: np.ndarray, per_type: int, seed: int) -> np.ndarray:
    """At most ``per_type`` random rows of each cell type among ``rows``."""
    rng = np.random.default_rng(seed)
    types = cells.obs["cluster_id"].astype(str).to_numpy()[rows]
    chosen = [rng.permutation(rows[types == kind])[:per_type] for kind in sorted(set(types))]
    return np.sort(np.concatenate(chosen))


def run_method(method: str, options: dict, train, test) -> dict:
    """Fit on ``train``, predict ``test``; scores, seconds and, for ``model``, how fine-tuning went."""
    started = time.perf_counter()
    classifier = make_classifier(method, seed=0, **options)
    classifier.fit(train, train.obs["cluster_id"].astype(str))
    probabilities = classifier.predict_proba(test)
    predicted = pd.Series(np.asarray(classifier.classes)[probabilities.to_numpy().argmax(axis=1)])
    scores = score_predictions(test.obs["cluster_id"].astype(str).reset_index(drop=True), predicted, classifier.classes)
    row = {"method": method, **scores, "seconds": round(time.perf_counter() - started, 1)}
    training = getattr(classifier, "training", None)
    if training is not None:
        row.update(
            learning_rate=options["learning_rate"],
            epochs=options["epochs"],
            steps=training.steps,
            best_step=training.best_step,
            validation_macro_f1=training.best_macro_f1,
            stopped_early=training.stopped_early,
        )
    return row


def main() -> None:
    """Run the methods and write ``results/annotation_finetune.{json,md}``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="pre-trained model directory")
    parser.add_argument("--train-per-type", type=int, default=75)
    parser.add_argument("--test-per-type", type=int, default=75)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--runs", default="5e-5:3,1e-3:3,1e-3:8", help="learning_rate:epochs, one model run each")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cells = kang2018_pbmc()
    labels, donors = cells.obs["cluster_id"].astype(str), cells.obs["sample_id"]
    train_rows, test_rows = holdout_split(labels, donors=donors, test_fraction=0.2, seed=0)
    train = cells[subsample(cells, train_rows, args.train_per_type, 0)].copy()
    test = cells[subsample(cells, test_rows, args.test_per_type, 1)].copy()
    shared = {"model": args.model, "max_length": args.max_length, "device": "cpu"}
    runs = [("logreg-pca", {}), ("model-frozen", shared)]
    for run in args.runs.split(","):
        rate, epochs = run.split(":")
        runs.append(("model", {**shared, "learning_rate": float(rate), "epochs": int(epochs), "patience": 3}))
    rows = []
    for method, options in runs:
        rows.append(run_method(method, options, train, test))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    setup = {
        "model": args.model,
        "held_out_donor": sorted(set(test.obs["sample_id"].astype(str))),
        "train_cells": train.n_obs,
        "test_cells": test.n_obs,
        "max_length": args.max_length,
        "threads": args.threads,
        "load_average": os.getloadavg(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "annotation_finetune.json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=1) + "\n")
    text = table.to_string(index=False, float_format=lambda value: f"{value:.3g}")
    (RESULTS / "annotation_finetune.md").write_text(
        f"# Kang PBMC annotation, donor held out\n\n{setup}\n\n```\n{text}\n```\n"
    )
    print(text)


if __name__ == "__main__":
    main()
