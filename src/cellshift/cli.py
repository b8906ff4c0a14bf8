"""Command-line interface: one sub-command per step, each a thin wrapper of the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _comma_list(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="raw-count .h5ad files")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--gene-key", default=None, help="var column with gene IDs or symbols (default: var index)")
    parser.add_argument("--species", choices=["human", "mouse"], default=None, help="default: detected from gene IDs")
    parser.add_argument(
        "--min-genes",
        type=int,
        default=500,
        help="drop cells expressing fewer genes (default 500, as Zhao et al. 2025; lower it for small panels)",
    )
    parser.add_argument("--chunk-size", type=int, default=2048, help="cells read and encoded at a time")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _tokenize(args: argparse.Namespace) -> int:
    from cellshift.tokenize import tokenize

    corpus = tokenize(
        args.inputs,
        args.out,
        gene_table=args.gene_table,
        max_length=args.max_length,
        special_tokens=args.special_tokens,
        obs_keys=args.obs_keys,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        min_genes=args.min_genes,
        workers=args.workers,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    meta = corpus.metadata
    print(f"wrote {meta['n_cells_kept']} cells ({meta['n_cells_dropped']} dropped) to {corpus.path}")
    for item in meta["inputs"]:
        print(
            f"  {item['source']}: {item['species']}, {item['kept']}/{item['cells']} cells kept, "
            f"dropped {item['dropped']}, {item['n_in_vocabulary']}/{item['n_input_genes']} genes in vocabulary"
        )
    return 0


def _medians(args: argparse.Namespace) -> int:
    from cellshift.data.gene_table import GeneTable
    from cellshift.tokenize import compute_gene_medians

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    medians = compute_gene_medians(
        args.inputs,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        min_genes=args.min_genes,
        chunk_size=args.chunk_size,
        progress=not args.quiet,
    )
    table = GeneTable.from_medians(medians, name=str(out))
    table.save(out)
    print(f"wrote a gene table of {len(medians)} genes (+{len(table) - len(medians)} special tokens) to {out}")
    return 0


def _add_screen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="screen .h5ad with raw counts")
    parser.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    parser.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    parser.add_argument("--min-cells", type=int, default=20, help="groups with fewer cells are reported, not scored")
    parser.add_argument("--exclude", type=_comma_list, default=[], help="labels neither scored nor used as controls")
    parser.add_argument("--out", required=True, help="CSV to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def _write_csv(frame, path: Path, overwrite: bool) -> None:
    """Write a table atomically; refuse to replace an existing file unless asked."""
    import os

    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another --out or pass --overwrite")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    frame.to_csv(temporary, index=False)
    os.replace(temporary, path)


def _degs(args: argparse.Namespace) -> int:
    import anndata as ad

    from cellshift.analysis import degs

    adata = ad.read_h5ad(args.input)
    summary, per_gene = degs(
        adata,
        perturbation_key=args.perturbation_key,
        control=args.control,
        method=args.method,
        fdr=args.fdr,
        target_gene_key=args.target_gene_key,
        layer=args.layer,
        min_cells=args.min_cells,
        exclude=args.exclude,
    )
    out = Path(args.out)
    genes_out = out.with_name(f"{out.stem}.genes{out.suffix}")
    _write_csv(summary, out, args.overwrite)
    _write_csv(per_gene, genes_out, args.overwrite)
    print(f"{len(summary)} perturbations, {(summary['n_degs'] == 0).sum()} with 0 DEGs: {out} (per gene: {genes_out})")
    return 0


def _score(args: argparse.Namespace) -> int:
    import anndata as ad
    import pandas as pd

    from cellshift.analysis import score_perturbations
    from cellshift.embed import embed_hvg, embed_pca

    adata = ad.read_h5ad(args.input)
    key = {"pca": "X_pca", "hvg": "X_hvg"}.get(args.embedding, args.embedding)
    if args.embedding == "pca":
        embed_pca(adata, layer=args.layer)
    elif args.embedding == "hvg":
        embed_hvg(adata, layer=args.layer)
    scores = score_perturbations(
        adata,
        embedding=key,
        perturbation_key=args.perturbation_key,
        control=args.control,
        metrics=args.metrics,
        n_null=args.n_null,
        null_size=args.null_size,
        reference=args.reference,
        seed=args.seed,
        min_cells=args.min_cells,
        exclude=args.exclude,
    )
    if args.degs:
        known = pd.read_csv(args.degs)[["perturbation", "n_degs", "knockdown"]]
        scores = scores.merge(known, on="perturbation", how="left")
    _write_csv(scores, Path(args.out), args.overwrite)
    print(f"scored {len(scores)} perturbations on {key} with {', '.join(args.metrics)}: {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cellshift.demo import run_demo

    run_demo(Path(args.out), workers=args.workers, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``cellshift`` argument parser."""
    parser = argparse.ArgumentParser(prog="cellshift", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    tokenize = commands.add_parser("tokenize", help="rank-value encode raw-count cells into an Arrow corpus")
    _add_input_options(tokenize)
    tokenize.add_argument("--out", required=True, help="corpus directory to create")
    tokenize.add_argument(
        "--gene-table",
        default="geneformer-gc30M",
        help="geneformer-gc30M, geneformer-gc95M or a TSV from `cellshift medians`",
    )
    tokenize.add_argument("--max-length", type=int, default=2048, help="tokens per cell, special tokens included")
    tokenize.add_argument("--special-tokens", action="store_true", help="add <cls> and <eos>")
    tokenize.add_argument("--obs-keys", type=_comma_list, default=[], help="obs columns to keep, comma-separated")
    tokenize.add_argument("--workers", type=int, default=1, help="encoding processes")
    tokenize.set_defaults(handler=_tokenize)

    medians = commands.add_parser("medians", help="non-zero gene medians of a corpus -> a gene table")
    _add_input_options(medians)
    medians.add_argument("--out", required=True, help="gene table to write (.tsv or .tsv.gz)")
    medians.set_defaults(handler=_medians)

    degs_parser = commands.add_parser("degs", help="DEGs and on-target knock-down of each perturbation vs control")
    _add_screen_options(degs_parser)
    degs_parser.add_argument("--method", choices=["wilcoxon", "anderson_darling"], default="wilcoxon")
    degs_parser.add_argument("--fdr", type=float, default=0.05, help="Benjamini-Hochberg FDR threshold")
    degs_parser.add_argument("--target-gene-key", default=None, help="obs column with the target gene (default: label)")
    degs_parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    degs_parser.set_defaults(handler=_degs)

    score = commands.add_parser("score", help="distance of each perturbation to control, z-scored against a null")
    _add_screen_options(score)
    score.add_argument("--embedding", required=True, help="pca, hvg (computed from counts) or an obsm key")
    score.add_argument("--metrics", type=_comma_list, default=["edistance", "cosine_edistance", "wasserstein"])
    score.add_argument("--n-null", type=int, default=1000, help="control draws per null")
    score.add_argument("--null-size", type=int, default=None, help="fixed null group size (default: each group's)")
    score.add_argument(
        "--reference",
        choices=["all", "matched"],
        default="all",
        help="all control cells (default) or the paper's single size-matched sample",
    )
    score.add_argument("--seed", type=int, default=0)
    score.add_argument("--degs", default=None, help="degs.csv from `cellshift degs`, to add n_degs and knockdown")
    score.add_argument("--layer", default=None, help="layer with raw counts for pca/hvg (default: X)")
    score.set_defaults(handler=_score)

    demo = commands.add_parser("demo", help="run the main job on the bundled real data")
    demo.add_argument("--out", default="results/demo", help="output directory")
    demo.add_argument("--workers", type=int, default=1)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; errors in the input are printed as one line, without a traceback."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"cellshift {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
