"""Real-data check: GRNs from a pre-trained model's contextual gene embeddings over the bundled corpora.

``cellshift.tasks.infer_grn`` on the tokenised corpora of ``cellshift demo`` (Kang PBMCs, mouse
pancreas, Papalexi THP-1), ``--max-cells`` cells of each, every method (``model``, ``correlation``,
``random``, ``grn``, ``family``, and ``deletion`` for ``--max-tfs`` TFs) scored against DoRothEA
(A-C) and TRRUST on the same candidate pairs. The ``grn`` prior embedding is built from those two
networks: its rows are marked circular.

    PYTHONPATH=src python benchmarks/grn.py [--model DIR] [--corpora DIR]

Results: ``benchmarks/results/grn.json`` and ``grn.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _markdown import markdown_table

from cellshift.tasks import GrnSettings, infer_grn

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    """Run every method, print and write the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="/tmp/demo_run/model")
    parser.add_argument("--corpora", default="/tmp/demo_run/corpora")
    parser.add_argument("--max-cells", type=int, default=1000)
    parser.add_argument("--max-tfs", type=int, default=20)
    parser.add_argument("--deletion-cells", type=int, default=10)
    args = parser.parse_args()
    corpora = sorted(str(p) for p in Path(args.corpora).iterdir() if p.is_dir())
    settings = GrnSettings(
        methods=("model", "deletion", "correlation", "random", "grn", "family"),
        max_cells=args.max_cells,
        max_tfs=args.max_tfs,
        deletion_cells=args.deletion_cells,
    )
    start = time.perf_counter()
    result = infer_grn(corpora, args.model, settings=settings, device="cpu")
    seconds = time.perf_counter() - start
    columns = ["method", "reference", "circular", "n_tfs", "n_true", "n_scored", "auroc", "auprc", "auprc_random"]
    table = result.metrics[[*columns, "epr", "median_tf_auroc"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    RESULTS.mkdir(exist_ok=True)
    payload = {"settings": vars(args), "corpora": corpora, "seconds": seconds, "metrics": table.to_dict("records")}
    (RESULTS / "grn.json").write_text(json.dumps(payload, indent=1, default=str))
    note = (
        f"\nModel `{args.model}`; corpora {', '.join(Path(c).name for c in corpora)} ({args.max_cells} cells each); "
        f"deletion: {args.max_tfs} TFs in {args.deletion_cells} cells per corpus (the other TFs' pairs rank last). "
        "Candidates: every TF of the Lambert list with a reference edge into the data's genes x every gene of the "
        "data; the same pairs for every method. circular: the grn prior embedding is built from DoRothEA A-C + TRRUST. "
        f"{seconds:.0f} s on the CPU.\n"
    )
    markdown = markdown_table(table, ".4f")
    (RESULTS / "grn.md").write_text(f"# GRN inference on the bundled corpora\n\n{markdown}\n{note}")


if __name__ == "__main__":
    main()
