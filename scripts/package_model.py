"""Package a model of ``benchmarks/ablation.py`` as cellshift's bundled pre-trained model.

Copies the weights, config and gene table of one ablation run into
``src/cellshift/datasets/files/models/<name>/``, with its training settings, the held-out cells of
its corpora as cell IDs (so ``cellshift evaluate`` finds them in a corpus re-tokenised anywhere)
and a model card (``MODEL_CARD.md``) holding the data, the settings and the evaluation of the
stored weights (float16 on disk, half the size; loaded as float32).

    PYTHONPATH=src python scripts/package_model.py benchmarks/_work/ablation/base_seed0_frac1
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from cellshift._io import write_text_atomic
from cellshift._pretrained import PACKAGED_MODELS, PACKAGED_MODELS_DIR
from cellshift.models import CellshiftForMaskedGeneModeling
from cellshift.training.corpora import open_corpora
from cellshift.training.evaluation import evaluate_model_dir

SPLIT = "heldout_cells.json"
CORPUS_NAMES = {"kang": "kang2018_pbmc", "pancreas": "pancreas_mouse", "baron": "baron2016_pancreas"}


def heldout_by_cell_id(split_file: Path) -> list[dict]:
    """The split file's entries with held-out cells named by ID instead of a local path."""
    entries = []
    for corpus in json.loads(split_file.read_text()):
        cells = open_corpora([corpus["path"]])
        ids = list(cells.dataset.select(corpus["heldout"])["cell_id"])
        name = CORPUS_NAMES.get(Path(corpus["path"]).name, Path(corpus["path"]).name)
        entries.append({"corpus": name, "n_cells": corpus["n_cells"], "heldout": [], "heldout_cell_ids": ids})
    return entries


def model_card(name: str, result: dict, settings: dict, size_mib: float, seconds: float) -> str:
    """The model card: what the model is, how it was trained, how it scores."""
    lines = ["| held-out cells | hits@10 model | hits@10 frequency | Spearman@100 model | Spearman@100 frequency |"]
    lines.append("|---|---:|---:|---:|---:|")
    for species in ("human", "mouse"):
        keys = [f"{species}_{m}_{side}" for m in ("hits@10", "spearman@100") for side in ("model", "frequency")]
        lines.append(f"| {species} | " + " | ".join(f"{result[key]:.4f}" for key in keys) + " |")
    table = "\n".join(lines)
    return f"""# {name}

A `small` cellshift model (4 layers, hidden 128, 4 heads) pre-trained by masked-gene modelling by
the cellshift project on the bundled corpora only: Kang et al. 2018 PBMCs (human, 8,680 cells),
Bastidas-Ponce et al. 2019 E15.5 pancreas (mouse, 739 cells) and Baron et al. 2016 pancreas (human
and mouse, 328 cells); ortholog-mapped vocabulary (mouse genes through one-to-one human
orthologs), gene medians from these corpora. It is arm `{result["arm"]}`, seed {result["seed"]}, of
`benchmarks/ablation.py` (the README's ablation table), {size_mib:.1f} MiB.

## Training

{result["steps"]} AdamW steps of {settings["batch_size"]} cells, {settings["max_length"]} tokens per cell,
peak learning rate {settings["learning_rate"]}, 15% of genes masked, 5% of every corpus held out;
one CPU thread, {seconds:.0f} s (shared 2-core machine).
All settings: `training/settings.json`. Held-out cells: `training/heldout_cells.json` (by cell ID).

## Evaluation (held-out cells, 300 per corpus; the stored float16 weights, loaded as float32)

{table}

Downstream (frozen model): Kang cell-type annotation by donor, macro-F1
{result["annotation_kang_f1"]:.3f}; Baron human -> mouse, macro-F1 {result["annotation_human_to_mouse_f1"]:.3f};
dosage-sensitive TF AUROC {result["dosage_auroc"]:.3f} (coverage {result["dosage_coverage"]:.0%} of the 490 TFs).

## Use and limits

`cellshift.models.load_pretrained("{name}")`, `--model {name}` in the CLI, and `cellshift demo`.
A demonstration model: trained on ~10,000 cells for minutes, not on a 30M-cell atlas; its
vocabulary is the ~12,500 genes of these corpora. Use it to try cellshift, not for biology.
Licences of the training data: see `datasets/files/PROVENANCE.md` (Kang GPL-3 package, Bastidas-Ponce
GPL-3 package, Baron MIT).
"""


def main() -> None:
    """Copy the run's model and write its held-out cells and model card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an ablation run folder (with model/ and result.json)")
    parser.add_argument("--name", default=PACKAGED_MODELS[0])
    args = parser.parse_args()
    model, out = args.run / "model", PACKAGED_MODELS_DIR / args.name
    if out.exists():
        shutil.rmtree(out)
    save_half_precision(model, out)
    (out / "training").mkdir()
    settings_file = model / "training" / "settings.json"
    shutil.copy2(settings_file, out / "training" / "settings.json")
    entries = heldout_by_cell_id(model / "training" / SPLIT)
    write_text_atomic(out / "training" / SPLIT, json.dumps(entries))
    trained_on = {Path(c["path"]).name: c["path"] for c in json.loads((model / "training" / SPLIT).read_text())}
    stored = {
        species: evaluate_model_dir(out, trained_on[corpus], max_cells=300, progress=False)
        for species, corpus in (("human", "kang"), ("mouse", "pancreas"))
    }
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file()) / 2**20
    result = json.loads((args.run / "result.json").read_text())
    for species, table in stored.items():  # the card reports the stored (float16) weights
        for side in ("model", "frequency"):
            result[f"{species}_hits@10_{side}"] = float(table.loc[side, "hits@10"])
            result[f"{species}_spearman@100_{side}"] = float(table.loc[side, "spearman@100"])
    seconds = float(pd.read_csv(model / "training" / "loss.csv")["seconds"].iloc[-1])
    card = model_card(args.name, result, json.loads(settings_file.read_text()), size, seconds)
    write_text_atomic(out / "MODEL_CARD.md", card)
    print(f"{out}: {size:.1f} MiB")


def save_half_precision(model_dir: Path, out: Path) -> None:
    """The model saved with float16 weights (half the size) and a config that loads them as float32."""
    model = CellshiftForMaskedGeneModeling.from_pretrained(model_dir)
    model.half().save_pretrained(out)
    config = json.loads((out / "config.json").read_text())
    config["dtype"] = "float32"
    write_text_atomic(out / "config.json", json.dumps(config, indent=2))


if __name__ == "__main__":
    main()
