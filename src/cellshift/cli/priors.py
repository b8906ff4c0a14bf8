"""``cellshift priors build``: prior-knowledge gene vectors (GRN, families, co-expression, promoter) -> a directory."""

from __future__ import annotations

import argparse
import time

from cellshift.priors import GRAPH_METHODS, PriorSettings, build_priors
from cellshift.priors.grn import BUNDLED_NETWORKS

DEFAULTS = PriorSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift priors``."""
    parser.description = (
        "Build one genes x dim matrix per prior source, keyed by human Ensembl ID, plus manifest.json; "
        "use it with `cellshift pretrain --priors PRIORS_DIR`."
    )
    parser.add_argument("action", choices=["build"], help="build a priors directory")
    parser.add_argument(
        "--grn",
        default=None,
        help=f"comma-separated networks: {', '.join(BUNDLED_NETWORKS)} and/or CSV/TSV files with tf,target columns",
    )
    parser.add_argument("--families", default=None, help="hgnc, or a CSV/TSV file with gene,family columns")
    parser.add_argument(
        "--coexpression",
        default=None,
        metavar="CORPUS",
        help="raw-count .h5ad, a folder of them, or a corpus from `cellshift tokenize --values`",
    )
    parser.add_argument("--promoter", default=None, metavar="FILE", help="table of promoter vectors or a FASTA")
    parser.add_argument("--out", required=True, metavar="PRIORS_DIR", help="directory to create")
    parser.add_argument(
        "--dim", type=PriorSettings.BOUNDS["dim"].parse, default=DEFAULTS.dim, help="dimension of each source's vectors"
    )
    parser.add_argument("--method", default=DEFAULTS.method, choices=list(GRAPH_METHODS), help="graph embedding")
    parser.add_argument("--seed", type=PriorSettings.BOUNDS["seed"].parse, default=DEFAULTS.seed)
    parser.add_argument("--confidence", default=DEFAULTS.confidence, help="DoRothEA confidence levels kept")
    parser.add_argument(
        "--min-correlation",
        type=PriorSettings.BOUNDS["min_correlation"].parse,
        default=DEFAULTS.min_correlation,
        help="least co-expression Pearson r",
    )
    parser.add_argument(
        "--min-cells",
        type=PriorSettings.BOUNDS["min_cells"].parse,
        default=DEFAULTS.min_cells,
        help="least cells expressing both genes of a pair",
    )
    parser.add_argument(
        "--coexpression-cells",
        default=DEFAULTS.coexpression_cells,
        choices=["all", "expressed"],
        help="correlate over all cells, or over cells expressing both genes (GeneCompass)",
    )
    parser.add_argument(
        "--max-genes",
        type=PriorSettings.BOUNDS["max_genes"].parse,
        default=DEFAULTS.max_genes,
        help="most genes tested for co-expression",
    )
    parser.add_argument(
        "--chunk-size",
        type=PriorSettings.BOUNDS["chunk_size"].parse,
        default=DEFAULTS.chunk_size,
        help="cells read at a time",
    )
    parser.add_argument("--layer", default=DEFAULTS.layer, help="layer of the .h5ad inputs holding raw counts")
    parser.add_argument("--gene-key", default=DEFAULTS.gene_key, help="var column of the .h5ad inputs with gene names")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift priors build``."""
    settings = PriorSettings(
        dim=args.dim,
        method=args.method,
        seed=args.seed,
        confidence=args.confidence,
        min_correlation=args.min_correlation,
        min_cells=args.min_cells,
        coexpression_cells=args.coexpression_cells,
        max_genes=args.max_genes,
        chunk_size=args.chunk_size,
        layer=args.layer,
        gene_key=args.gene_key,
    )
    started = time.perf_counter()
    built = build_priors(
        args.out,
        grn=[name.strip() for name in args.grn.split(",") if name.strip()] if args.grn else None,
        families=args.families,
        coexpression=args.coexpression,
        promoter=args.promoter,
        settings=settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    for name, source in built.manifest["sources"].items():
        print(f"{name}: {source['n_genes']:,} genes x {source['dim']} ({source['file']})")
    print(f"priors in {built.path} (manifest sha256 {built.sha256[:12]}, {time.perf_counter() - started:.0f} s)")
    return 0
