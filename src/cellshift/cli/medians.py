"""``cellshift medians``: non-zero gene medians of a corpus -> a gene table."""

from __future__ import annotations

import argparse

from cellshift._io import check_writable
from cellshift.cli._common import add_input_options, add_parallel_options
from cellshift.data.gene_table import GeneTable
from cellshift.data.vocabulary import MOUSE_TOKEN_PREFIX, VOCABULARIES
from cellshift.tokenize import compute_gene_medians


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift medians``."""
    add_input_options(parser)
    parser.add_argument("--out", required=True, help="gene table to write (.tsv or .tsv.gz)")
    parser.add_argument(
        "--vocabulary",
        choices=VOCABULARIES,
        default="ortholog",
        help="ortholog: mouse genes as their human orthologs (Geneformer); joint: mouse genes keep mouse tokens",
    )
    add_parallel_options(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift medians``."""
    out = check_writable(args.out, args.overwrite)
    medians = compute_gene_medians(
        args.inputs,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        species_key=args.species_key,
        vocabulary=args.vocabulary,
        min_genes=args.min_genes,
        chunk_size=args.chunk_size,
        workers=args.workers,
        backend=args.backend,
        progress=not args.quiet,
    )
    table = GeneTable.from_medians(medians, name=str(out))
    table.save(out)
    n_mouse = int(medians.index.str.startswith(MOUSE_TOKEN_PREFIX).sum())
    print(
        f"wrote a gene table of {len(medians)} genes ({len(medians) - n_mouse} human, {n_mouse} mouse tokens; "
        f"{args.vocabulary} vocabulary) (+{len(table) - len(medians)} special tokens) to {out}"
    )
    return 0
