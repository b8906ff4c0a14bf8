"""``cellshift tokenize``: rank-value encode raw-count cells into an Arrow corpus."""

from __future__ import annotations

import argparse

from cellshift._validate import POSITIVE_INT
from cellshift.cli._common import add_input_options, add_parallel_options, comma_list
from cellshift.data.vocabulary import VOCABULARIES
from cellshift.tokenize import tokenize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift tokenize``."""
    add_input_options(parser)
    parser.add_argument("--out", required=True, help="corpus directory to create")
    parser.add_argument(
        "--gene-table",
        default="geneformer-gc30M",
        help="geneformer-gc30M, geneformer-gc95M or a TSV from `cellshift medians`",
    )
    parser.add_argument(
        "--vocabulary",
        choices=VOCABULARIES,
        default=None,
        help="ortholog (Geneformer) or joint (mouse genes keep mouse tokens); default: the gene table's",
    )
    parser.add_argument(
        "--max-length", type=POSITIVE_INT.parse, default=2048, help="tokens per cell, special tokens included"
    )
    parser.add_argument("--special-tokens", action="store_true", help="add <cls> and <eos>")
    parser.add_argument("--obs-keys", type=comma_list, default=[], help="obs columns to keep, comma-separated")
    parser.add_argument(
        "--values", action="store_true", help="store log1p(normalised count) per token (for models using values)"
    )
    add_parallel_options(parser)
    parser.add_argument(
        "--kernel", choices=["auto", "numba", "numpy"], default="auto", help="encoding implementation (same output)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift tokenize``."""
    corpus = tokenize(
        args.inputs,
        args.out,
        gene_table=args.gene_table,
        max_length=args.max_length,
        special_tokens=args.special_tokens,
        values=args.values,
        obs_keys=args.obs_keys,
        layer=args.layer,
        gene_key=args.gene_key,
        species=args.species,
        species_key=args.species_key,
        vocabulary=args.vocabulary,
        min_genes=args.min_genes,
        workers=args.workers,
        backend=args.backend,
        kernel=args.kernel,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    meta = corpus.metadata
    dropped, vocabulary = meta["n_cells_dropped"], meta["gene_table"]["vocabulary"]
    print(f"wrote {meta['n_cells_kept']} cells ({dropped} dropped, {vocabulary} vocabulary) to {corpus.path}")
    for item in meta["inputs"]:
        genes = item.get("by_species", {item["species"]: item})
        in_vocabulary = ", ".join(
            f"{name} {plan['n_in_vocabulary']}/{plan['n_input_genes']}" for name, plan in genes.items()
        )
        print(
            f"  {item['source']}: {item['species']}, {item['kept']}/{item['cells']} cells kept, "
            f"dropped {item['dropped']}, genes in vocabulary: {in_vocabulary}"
        )
    return 0
