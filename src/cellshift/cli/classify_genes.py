"""``cellshift classify-genes``: how well gene embeddings separate two classes of genes (e.g. dosage sensitivity).

Runs :func:`cellshift.tasks.classify_genes` (stratified k-fold cross-validation of a scaled
logistic regression, per embedding) and writes ``scores.csv`` (per fold), ``summary.csv`` (per
method: coverage, AUROC and AUPRC with t-intervals), ``predictions.csv`` (out-of-fold, per gene)
and ``roc.png`` into ``--out``. With ``--finetune`` the ``--model`` is also fine-tuned on each fold's
training genes (token classification in the context of ``--cells``) and scored as method
``model-finetuned`` in the same tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_model_dir, write_csv_atomic
from cellshift._validate import FOLDS, NON_NEGATIVE_INT, POSITIVE_INT
from cellshift.cli._common import check_outputs, comma_list, read_counts
from cellshift.cli._finetuning import add_classifier_training_options
from cellshift.datasets import kang2018_pbmc
from cellshift.plotting.gene_classification import gene_classification_roc
from cellshift.tasks.gene_classification import DEFAULT_METHODS, NEEDS_CELLS, classify_genes
from cellshift.tasks.gene_label_table import gene_labels
from cellshift.training import ClassifierSettings

BUNDLED_LABELS = "dosage"
OUTPUTS = {"scores": "scores.csv", "summary": "summary.csv", "predictions": "predictions.csv", "roc": "roc.png"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``classify-genes`` to ``parser``.

    Parameters
    ----------
    parser
        The (sub-command) parser to fill.
    """
    parser.add_argument(
        "--labels",
        default=None,
        help="CSV with columns gene,label (Ensembl IDs or symbols), or 'dosage': the bundled "
        "dosage-sensitive / insensitive TFs of Geneformer (default)",
    )
    parser.add_argument("--positive", default=None, help="label of the positive class (default: the smaller class)")
    parser.add_argument(
        "--methods",
        type=comma_list,
        default=None,
        help="gene embeddings: pca,grn,family,random,model (default: pca,grn,family,random; model too with --model)",
    )
    parser.add_argument(
        "--model", default=None, help="model checkpoint directory, for the model embedding and --finetune"
    )
    parser.add_argument(
        "--cells",
        default=None,
        help="raw-count .h5ad for pca, model and --finetune (default: the bundled Kang 2018 PBMCs)",
    )
    parser.add_argument("--layer", default=None, help="layer of --cells with raw counts (default: X)")
    parser.add_argument("--folds", type=FOLDS.parse, default=5, help="cross-validation folds (default 5)")
    parser.add_argument(
        "--seed", type=NON_NEGATIVE_INT.parse, default=0, help="seed of the folds and the random embedding"
    )
    parser.add_argument(
        "--n-components", type=POSITIVE_INT.parse, default=64, help="dimension of pca, grn, family, random"
    )
    group = parser.add_argument_group("fine-tuning (method model-finetuned)")
    group.add_argument("--finetune", action="store_true", help="also fine-tune --model per fold (token classification)")
    add_classifier_training_options(group)
    parser.add_argument("--out", required=True, help="folder for scores.csv, summary.csv, predictions.csv, roc.png")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    """Classify the labelled genes with each embedding and write the tables and the ROC figure.

    Parameters
    ----------
    args
        Parsed options of :func:`add_arguments`.

    Returns
    -------
    int
        0 on success.
    """
    paths = {name: Path(args.out) / file for name, file in OUTPUTS.items()}
    check_outputs(paths.values(), args.overwrite)
    if args.model:
        check_model_dir(args.model, option="--model")
    methods = args.methods or ["pca", *DEFAULT_METHODS, *(["model"] if args.model else [])]
    labels = gene_labels(None if args.labels in (None, BUNDLED_LABELS) else args.labels, positive=args.positive)
    print(labels.summary())
    cells = None
    if args.finetune or any(method in NEEDS_CELLS for method in methods):
        cells = read_counts(args.cells, args.layer) if args.cells else kang2018_pbmc()
    result = classify_genes(
        labels,
        methods=methods,
        cells=cells,
        model_dir=args.model,
        n_folds=args.folds,
        seed=args.seed,
        n_components=args.n_components,
        finetune=args.finetune,
        finetune_settings=ClassifierSettings(
            freeze_layers=args.freeze_layers,
            epochs=args.epochs,
            max_steps=args.max_steps,
            learning_rate=args.learning_rate,
        ),
    )
    for name in ("scores", "summary", "predictions"):
        write_csv_atomic(getattr(result, name), paths[name], args.overwrite)
    gene_classification_roc(result.predictions, path=paths["roc"], overwrite=args.overwrite)
    columns = ["method", "n_embedded", "n_labelled", "auroc_mean", "auroc_ci_low", "auroc_ci_high", "auprc_mean"]
    print(result.summary[columns].to_string(index=False, float_format="{:.3f}".format))
    print(f"results in {args.out}/ ({', '.join(OUTPUTS.values())})")
    return 0
