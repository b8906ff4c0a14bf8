"""Copy the real data that cellshift ships from ``../shared/data`` into the package.

Run once by a developer (``python scripts/bundle_data.py``); users never need it. Files are
copied byte for byte, except Geneformer's pickled dictionaries, which are rewritten as one
gzipped TSV per gene table (``token, token_id, median``) so that the package never unpickles
data. Values are not changed.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEST = Path(__file__).resolve().parents[1] / "src" / "cellshift" / "datasets" / "files"

COPIED = [
    "perturbseq/papalexi2021_thp1_eccite_299genes.h5ad",
    "scrna/kang2018_pbmc_ctrl_8684cells_2511genes.h5ad",
    "scrna/bastidasponce2019_mouse_pancreas_739cells_7192genes.h5ad",
    "scrna/baron2016_pancreas_human_mouse_328cells_12474genes.h5ad",
    "genes",
]


def write_gene_table(corpus: str) -> None:
    """Rewrite Geneformer's token and median dictionaries of one corpus as a TSV."""
    folder = SHARED / "geneformer" / corpus
    with open(folder / f"token_dictionary_{corpus}.pkl", "rb") as handle:
        tokens = pickle.load(handle)
    with open(folder / f"gene_median_dictionary_{corpus}.pkl", "rb") as handle:
        medians = pickle.load(handle)
    out = DEST / "gene_tables" / f"geneformer-{corpus}.tsv.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    missing = 0
    with gzip.open(out, "wt") as handle:
        handle.write("token\ttoken_id\tmedian\n")
        for token, token_id in sorted(tokens.items(), key=lambda item: int(item[1])):
            if token.startswith("<"):
                handle.write(f"{token}\t{int(token_id)}\t\n")
                continue
            if token not in medians:
                missing += 1
                handle.write(f"{token}\t{int(token_id)}\t\n")
                continue
            handle.write(f"{token}\t{int(token_id)}\t{float(medians[token])!r}\n")
    print(f"{out.name}: {len(tokens)} tokens, {missing} genes without a median")


def main() -> int:
    """Copy the files and rewrite the gene tables; returns the exit status."""
    if not SHARED.exists():
        print(f"no shared data at {SHARED}", file=sys.stderr)
        return 1
    for relative in COPIED:
        source = SHARED / relative
        target = DEST / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    for corpus in ("gc30M", "gc95M"):
        write_gene_table(corpus)
    shutil.copy2(SHARED / "README.md", DEST / "SOURCES_shared_data.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
