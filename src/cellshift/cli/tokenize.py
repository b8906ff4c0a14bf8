"""``cellshift tokenize`` and ``cellshift medians``: raw counts -> corpus, gene table."""

from __future__ import annotations

import argparse

from cellshift.cli._common import add_input_options, comma_list


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
    from cellshift._io import check_writable
    from cellshift.data.gene_table import GeneTable
    from cellshift.tokenize import compute_gene_medians

    out = check_writable(args.out, args.overwrite)
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


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``tokenize`` and ``medians`` sub-commands."""
    tokenize = commands.add_parser("tokenize", help="rank-value encode raw-count cells into an Arrow corpus")
    add_input_options(tokenize)
    tokenize.add_argument("--out", required=True, help="corpus directory to create")
    tokenize.add_argument(
        "--gene-table",
        default="geneformer-gc30M",
        help="geneformer-gc30M, geneformer-gc95M or a TSV from `cellshift medians`",
    )
    tokenize.add_argument("--max-length", type=int, default=2048, help="tokens per cell, special tokens included")
    tokenize.add_argument("--special-tokens", action="store_true", help="add <cls> and <eos>")
    tokenize.add_argument("--obs-keys", type=comma_list, default=[], help="obs columns to keep, comma-separated")
    tokenize.add_argument("--workers", type=int, default=1, help="encoding processes")
    tokenize.set_defaults(handler=_tokenize)

    medians = commands.add_parser("medians", help="non-zero gene medians of a corpus -> a gene table")
    add_input_options(medians)
    medians.add_argument("--out", required=True, help="gene table to write (.tsv or .tsv.gz)")
    medians.set_defaults(handler=_medians)
