"""Benchmark: cell-type annotation within a species (by donor) and across human and mouse.

What is measured
----------------
``cellshift.tasks.annotate`` (the code behind ``cellshift annotate``) on bundled real data:

* ``kang_by_donor``: Kang et al. 2018 control PBMCs (8,684 cells, 4 types, 5 donors), 5-fold
  cross-validation holding out whole donors (``split_key="sample_id"``);
* ``baron_human_to_mouse`` / ``baron_mouse_to_human``: Baron et al. 2016 pancreas, all cells of
  one species as the reference, all of the other as the query (5 shared types).

Methods: ``logreg-pca``, ``logreg``, ``celltypist`` (when installed) and, with ``--model DIR``,
``model-frozen`` (and ``model`` when registered: fine-tuned classification head). Reported:
accuracy and macro-F1 on all predicted cells, seconds per method.

Run
---
``.venv/bin/python benchmarks/annotation.py [--model MODEL_DIR]`` (a few minutes on 2 cores).
Results: ``benchmarks/results/annotation.json`` and ``annotation.md``; confusion matrices in
``benchmarks/_work/annotation/`` (not tracked).
"""

import argparse
import json
import time
import warnings
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path

import pandas as pd

from cellshift.datasets import baron2016_pancreas, kang2018_pbmc
from cellshift.plotting.annotation import confusion_matrices
from cellshift.tasks import AnnotationSettings, annotate
from cellshift.tasks.classifiers import CLASSIFIERS

RESULTS = Path(__file__).parent / "results"
WORK = Path(__file__).parent / "_work" / "annotation"


def cases():
    """(name, reference, query, settings) of every case."""
    kang = kang2018_pbmc()
    baron = baron2016_pancreas()
    human, mouse = (baron[baron.obs["species"] == s].copy() for s in ("human", "mouse"))
    yield "kang_by_donor", kang, None, {"label_key": "cluster_id", "split_key": "sample_id", "n_folds": 5}
    yield "baron_human_to_mouse", human, mouse, {"label_key": "cell_type"}
    yield "baron_mouse_to_human", mouse, human, {"label_key": "cell_type"}


def methods(model: str | None) -> list[str]:
    chosen = ["logreg-pca", "logreg"]
    if find_spec("celltypist"):
        chosen.append("celltypist")
    if model:
        chosen += [name for name in ("model-frozen", "model") if name in CLASSIFIERS]
    return chosen


def run(model: str | None) -> list[dict]:
    rows = []
    WORK.mkdir(parents=True, exist_ok=True)
    for name, reference, query, options in cases():
        confusion, scores = {}, {}
        for method in methods(model):
            started = time.perf_counter()
            result = annotate(
                reference,
                None if query is None else query.copy(),
                settings=AnnotationSettings(methods=(method,), **options),
                method_options={"model": model} if method.startswith("model") else {},
                progress=False,
            )
            seconds = time.perf_counter() - started
            pooled = result.metrics[result.metrics["fold"] == "all"].iloc[0]
            rows.append({"case": name, "method": method, "seconds": round(seconds, 1), **pooled.drop("fold").to_dict()})
            confusion.update(result.confusion)
            scores[method] = pooled["macro_f1"]
            print(rows[-1], flush=True)
        confusion_matrices(confusion, WORK / f"{name}.png", macro_f1=scores, overwrite=True)
    return rows


def render(rows: list[dict], model: str | None) -> str:
    table = pd.DataFrame(rows)
    wide = table.pivot(index="method", columns="case", values="macro_f1")
    accuracy = table.pivot(index="method", columns="case", values="accuracy")
    lines = ["| method | " + " | ".join(wide.columns) + " |", "|---|" + "---:|" * len(wide.columns)]
    for method in wide.index:
        cells = [f"{wide.loc[method, c]:.3f} ({accuracy.loc[method, c]:.3f})" for c in wide.columns]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines.append("")
    lines.append(f"Macro-F1 (accuracy in brackets) over all predicted cells; model: {model or 'none'}; {stamp}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="pre-trained cellshift model directory")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = run(args.model)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "annotation.json").write_text(json.dumps({"model": args.model, "rows": rows}, indent=1) + "\n")
    (RESULTS / "annotation.md").write_text(render(rows, args.model))
    print(render(rows, args.model))


if __name__ == "__main__":
    main()
