"""``cellshift annotate``: label cells from a labelled reference, within a species or across human and mouse.

Runs :func:`cellshift.tasks.annotate` and writes into ``--out``: ``predictions.csv`` (cell, method,
predicted label, its probability, true label, probability of each class), ``metrics.csv``
(accuracy and macro-F1 per method and fold), ``per_class.csv``, ``confusion.png`` and the fitted
classifiers (``classifiers/<method>/``, reusable with ``--classifier``). Method ``model``
fine-tunes the ``--model`` with a linear head (``--freeze-layers``, ``--epochs``, ``--max-steps``,
``--max-length``, ``--learning-rate``, ``--validation-fraction``, ``--patience``; defaults of
:class:`cellshift.training.ClassifierSettings`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cellshift._io import check_model_dir, write_csv_atomic
from cellshift._pretrained import model_argument
from cellshift.cli._common import check_outputs, comma_list, read_counts
from cellshift.cli._finetuning import FINETUNING, add_classifier_training_options
from cellshift.plotting.annotation import confusion_matrices
from cellshift.tasks.annotation import AnnotationSettings, annotate
from cellshift.tasks.cell_labels import read_label_map
from cellshift.tasks.classifiers import CLASSIFIERS
from cellshift.tasks.finetuned_classifier import FINETUNING_OPTIONS
from cellshift.training import ClassifierSettings

OUTPUTS = {"predictions": "predictions.csv", "metrics": "metrics.csv", "per_class": "per_class.csv"}
FIGURE = "confusion.png"
DEFAULTS = AnnotationSettings(label_key="")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift annotate``."""
    parser.add_argument("--reference", default=None, help="labelled reference .h5ad with raw counts")
    parser.add_argument(
        "--query", default=None, help=".h5ad with raw counts to label (default: hold out reference cells)"
    )
    parser.add_argument("--label-key", required=True, help="obs column of the reference labels")
    parser.add_argument("--query-label-key", default=None, help="obs column of the query's true labels, if any")
    parser.add_argument(
        "--methods",
        type=comma_list,
        default=list(DEFAULTS.methods),
        help=f"comma-separated: {', '.join(CLASSIFIERS)} (default: {','.join(DEFAULTS.methods)})",
    )
    parser.add_argument(
        "--model", default=None, type=model_argument, help="pre-trained model directory for model-frozen and model"
    )
    _add_finetuning_arguments(parser)
    parser.add_argument("--split", dest="split_key", default=None, help="obs column of donors: hold out whole donors")
    bounds = AnnotationSettings.BOUNDS
    parser.add_argument(
        "--test-fraction", type=bounds["test_fraction"].parse, default=DEFAULTS.test_fraction, help="held-out share"
    )
    parser.add_argument(
        "--folds",
        dest="n_folds",
        type=bounds["n_folds"].parse,
        default=None,
        help="cross-validate with N folds instead",
    )
    parser.add_argument("--label-map", default=None, help="CSV label,mapped renaming labels in both data sets")
    parser.add_argument("--classifier", default=None, help="folder of a saved classifier: label --query with it")
    parser.add_argument("--query-species", choices=["human", "mouse"], default=None, help="default: detected")
    parser.add_argument("--reference-species", choices=["human", "mouse"], default=None, help="default: detected")
    parser.add_argument("--layer", default=None, help="layer with raw counts in both files (default: X)")
    parser.add_argument("--seed", type=bounds["seed"].parse, default=DEFAULTS.seed)
    parser.add_argument("--out", required=True, help="folder for the tables, figure and classifiers")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_finetuning_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of methods ``model-frozen`` and ``model`` (fine-tuning), with :class:`ClassifierSettings`' defaults."""
    group = parser.add_argument_group("methods model-frozen and model (fine-tuning)")
    add_classifier_training_options(group)
    bounds = ClassifierSettings.BOUNDS
    group.add_argument(
        "--batch-size",
        type=bounds["batch_size"].parse,
        default=None,
        help=f"cells per batch (default: {FINETUNING.batch_size} to fine-tune, 64 to embed for model-frozen)",
    )
    group.add_argument(
        "--max-length",
        type=bounds["max_length"].parse,
        default=None,
        help="tokens per cell (default: the model's input size)",
    )
    group.add_argument(
        "--validation-fraction",
        type=bounds["validation_fraction"].parse,
        default=FINETUNING.validation_fraction,
        help="share of the training cells held out for early stopping (0: none)",
    )
    group.add_argument(
        "--patience",
        type=bounds["patience"].parse,
        default=FINETUNING.patience,
        help="evaluations without a better macro-F1 before stopping",
    )
    group.add_argument("--device", default=None, help="cpu to stay on the CPU (default: a GPU when visible)")


def _method_options(args: argparse.Namespace) -> dict:
    """Options for the classifiers: model, device, batch size and length when given, fine-tuning's for method model."""
    shared = ("model", "device", "batch_size", "max_length")  # read by model-frozen and model
    options = {name: getattr(args, name) for name in shared if getattr(args, name)}
    if "model" in args.methods:
        options.update({name: getattr(args, name) for name in FINETUNING_OPTIONS if name not in shared})
    return options


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift annotate``."""
    if args.classifier is None and args.reference is None:
        raise ValueError("give --reference (to train) or --classifier (a saved one) with --query")
    if args.classifier is not None and args.query is None:
        raise ValueError("--classifier labels a --query: give the cells to label")
    out = Path(args.out)
    check_outputs([out / name for name in [*OUTPUTS.values(), FIGURE]], args.overwrite)
    if args.model:
        check_model_dir(args.model, option="--model")
    label_map = read_label_map(args.label_map) if args.label_map else None
    reference = read_counts(args.reference, args.layer) if args.reference else None
    query = read_counts(args.query, args.layer) if args.query else None
    settings = AnnotationSettings(
        label_key=args.label_key,
        methods=tuple(dict.fromkeys(args.methods)),
        query_label_key=args.query_label_key,
        split_key=args.split_key,
        test_fraction=args.test_fraction,
        n_folds=args.n_folds,
        seed=args.seed,
    )
    result = annotate(
        reference,
        query,
        settings=settings,
        label_map=label_map,
        classifier=args.classifier,
        method_options=_method_options(args),
        query_species=args.query_species,
        reference_species=args.reference_species,
        progress=not args.quiet,
    )
    for name, file in OUTPUTS.items():
        write_csv_atomic(getattr(result, name), out / file, args.overwrite)
    if args.classifier is None:
        for method, classifier in result.classifiers.items():
            classifier.save(out / "classifiers" / method)
    _report(result, out, args.overwrite)
    return 0


def _report(result, out: Path, overwrite: bool) -> None:
    """Print what was found and draw the confusion matrices."""
    if result.alignment is not None:
        print(result.alignment.summary())
    pooled = result.metrics[result.metrics["fold"].isin(["all"])]
    print(pooled.drop(columns="fold").to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if len(result.unknown_labels):
        print(f"query labels the reference lacks (not scored): {dict(result.unknown_labels)}")
    if result.confusion:
        scores = dict(zip(pooled["method"], pooled["macro_f1"], strict=True))
        confusion_matrices(result.confusion, out / FIGURE, macro_f1=scores, overwrite=overwrite)
    print(f"results in {out}/ ({', '.join(OUTPUTS.values())}, classifiers/)")
