"""``cellshift embed``: add cell embeddings (PCA, HVG, scVI) to a screen's ``obsm``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from cellshift._io import atomic_path, check_writable
from cellshift.cli._common import comma_list

if TYPE_CHECKING:
    import anndata as ad


def _pca(adata: ad.AnnData, args: argparse.Namespace) -> str:
    from cellshift.embed import embed_pca

    embed_pca(adata, layer=args.layer)
    return "X_pca"


def _hvg(adata: ad.AnnData, args: argparse.Namespace) -> str:
    from cellshift.embed import embed_hvg

    embed_hvg(adata, layer=args.layer)
    return "X_hvg"


def _scvi(adata: ad.AnnData, args: argparse.Namespace, *, variant: str) -> str:
    from cellshift.embed import embed_scvi

    key = f"X_scvi_{variant}"
    embed_scvi(
        adata,
        variant=variant,
        layer=args.layer,
        max_epochs=args.max_epochs,
        batch_key=args.batch_key,
        seed=args.seed,
        key_added=key,
        accelerator=args.accelerator,
    )
    return key


def _model(adata: ad.AnnData, args: argparse.Namespace) -> str:
    from cellshift.embed.model_cells import embed_model

    if args.model is None:
        raise ValueError("--method model needs --model MODEL_DIR (from cellshift pretrain or finetune)")
    embed_model(adata, args.model, layer=args.layer, key_added="X_cellshift", progress=not args.quiet)
    return "X_cellshift"


METHODS: dict[str, Callable[[ad.AnnData, argparse.Namespace], str]] = {
    "model": _model,
    "pca": _pca,
    "hvg": _hvg,
    "scvi-linear": partial(_scvi, variant="linear"),
    "scvi-5l": partial(_scvi, variant="5l"),
}
"""Method name -> function that writes one embedding into ``adata.obsm`` and returns its key."""


def method_list(text: str) -> list[str]:
    """Parse ``--method pca,hvg`` into known method names, in order and without repeats."""
    methods = list(dict.fromkeys(comma_list(text)))
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown or [text]}; choose from {', '.join(METHODS)}")
    return methods


def _embed(args: argparse.Namespace) -> int:
    import anndata as ad

    out = check_writable(args.out, args.overwrite)
    adata = ad.read_h5ad(args.input)
    input_keys = set(adata.obsm)
    for name in args.method:
        start = time.perf_counter()
        key = METHODS[name](adata, args)
        replaced = " (replacing the input's)" if key in input_keys else ""
        n_cells, n_dims = adata.obsm[key].shape
        print(f"{name}: obsm[{key!r}] {n_cells} x {n_dims}{replaced}, {time.perf_counter() - start:.1f} s")
    with atomic_path(out) as temporary:
        adata.write_h5ad(temporary)
    print(f"wrote {out}")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``embed`` sub-command."""
    parser = commands.add_parser("embed", help="add cell embeddings (pca, hvg, scvi-linear, scvi-5l) to obsm")
    parser.add_argument("input", help=".h5ad with raw counts")
    parser.add_argument(
        "--method",
        type=method_list,
        required=True,
        help=f"one or more of {', '.join(METHODS)}, comma-separated",
    )
    parser.add_argument("--out", required=True, help=".h5ad to write: the input plus the new obsm entries")
    parser.add_argument("--model", default=None, help="model directory for --method model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scVI models")
    parser.add_argument("--max-epochs", type=int, default=None, help="scVI epoch budget (default: by data size)")
    parser.add_argument("--batch-key", default=None, help="obs column with a technical batch for scVI")
    parser.add_argument("--accelerator", default="auto", help="scVI device: auto, cpu, gpu, ... (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.set_defaults(handler=_embed)
