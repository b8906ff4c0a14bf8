"""``cellshift embed``: add cell embeddings (pca, hvg, scvi-linear, scvi-5l, model) to obsm."""

from __future__ import annotations

import argparse
import time

from cellshift._io import atomic_path, check_model_dir, check_writable
from cellshift._pretrained import model_argument
from cellshift.cli._common import comma_list, read_screen
from cellshift.embed.registry import CELL_EMBEDDINGS, EmbedOptions, add_cell_embedding, get_cell_embedding


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cellshift embed``."""
    parser.add_argument("input", help=".h5ad with raw counts")
    parser.add_argument(
        "--method",
        type=comma_list,
        required=True,
        help="one or more of pca, hvg, scvi-linear, scvi-5l, model (cellshift.embed.registry), comma-separated",
    )
    parser.add_argument("--out", required=True, help=".h5ad to write: the input plus the new obsm entries")
    parser.add_argument("--model", default=None, type=model_argument, help="model directory for --method model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--layer", default=None, help="layer with raw counts (default: X)")
    bounds = EmbedOptions.BOUNDS
    parser.add_argument("--seed", type=bounds["seed"].parse, default=0, help="random seed of the scVI models")
    parser.add_argument(
        "--max-epochs", type=bounds["max_epochs"].parse, default=None, help="scVI epoch budget (default: by data size)"
    )
    parser.add_argument("--batch-key", default=None, help="obs column with a technical batch for scVI")
    parser.add_argument("--accelerator", default="auto", help="scVI device: auto, cpu, gpu, ... (default: auto)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    """Run ``cellshift embed``."""
    methods = list(dict.fromkeys(args.method))
    if not methods:
        raise ValueError(f"--method names no embedding; valid embeddings: {', '.join(CELL_EMBEDDINGS)}")
    embeddings = [get_cell_embedding(name) for name in methods]  # unknown names fail here, with the valid names
    needing_model = [embedding.name for embedding in embeddings if embedding.needs_model]
    if needing_model and args.model is None:
        raise ValueError(f"--method {needing_model[0]} needs --model MODEL_DIR (from cellshift pretrain or finetune)")
    if needing_model:
        check_model_dir(args.model, option="--model")
    out = check_writable(args.out, args.overwrite)
    adata = read_screen(args.input, args.layer)
    input_keys = set(adata.obsm)
    options = EmbedOptions(
        layer=args.layer,
        seed=args.seed,
        max_epochs=args.max_epochs,
        batch_key=args.batch_key,
        accelerator=args.accelerator,
        model=args.model,
        progress=not args.quiet,
    )
    for name in methods:
        start = time.perf_counter()
        key = add_cell_embedding(adata, name, options)
        replaced = " (replacing the input's)" if key in input_keys else ""
        n_cells, n_dims = adata.obsm[key].shape
        print(f"{name}: obsm[{key!r}] {n_cells} x {n_dims}{replaced}, {time.perf_counter() - start:.1f} s")
    with atomic_path(out) as temporary:
        adata.write_h5ad(temporary)
    print(f"wrote {out}")
    return 0
