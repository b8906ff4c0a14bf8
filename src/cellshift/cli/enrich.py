"""``cellshift enrich`` and ``cellshift split``: 0-DEG enrichment and the split by perturbation."""

from __future__ import annotations

import argparse

from cellshift._io import check_writable, write_csv_atomic
from cellshift.cli._common import comma_list


def _enrich(args: argparse.Namespace) -> int:
    import pandas as pd

    from cellshift.analysis import load_gene_set, zero_deg_enrichment

    check_writable(args.out, args.overwrite)
    loaded = [load_gene_set(spec, species=args.species) for spec in args.gene_set]
    gene_sets = dict(loaded)
    if len(gene_sets) < len(loaded):
        raise ValueError(f"--gene-set names a set twice (files are named by their stem): {args.gene_set}")
    table = zero_deg_enrichment(
        pd.read_csv(args.scores),
        gene_sets=gene_sets,
        degs=pd.read_csv(args.degs) if args.degs else None,
        metrics=args.metrics,
        top=args.top,
        n_permutations=args.permutations,
        seed=args.seed,
    )
    write_csv_atomic(table, args.out, args.overwrite)
    best = table.loc[table["p_value"].idxmin()]
    print(
        f"0-DEG pool of {best['n_pool']}; {len(table)} tests; smallest p = {best['p_value']:.3g} "
        f"(Bonferroni {best['p_bonferroni']:.3g}: {best['gene_set']}, {best['metric']}, top {best['top_n']}, "
        f"k = {best['k']} vs {best['expected']:.2f} expected): {args.out}"
    )
    return 0


def _split(args: argparse.Namespace) -> int:
    import anndata as ad
    import pandas as pd

    from cellshift.analysis import split_perturbations

    check_writable(args.out, args.overwrite)
    fractions = tuple(float(share) for share in comma_list(args.control_fractions))
    if len(fractions) != 3:
        raise ValueError(
            f"--control-fractions takes three shares (train,validation,test), got {args.control_fractions}"
        )
    result = split_perturbations(
        ad.read_h5ad(args.input, backed="r"),
        degs=pd.read_csv(args.degs),
        perturbation_key=args.perturbation_key,
        control=args.control,
        min_degs=args.min_degs,
        test_fraction=args.test_fraction,
        control_fractions=fractions,
        seed=args.seed,
        exclude=args.exclude,
    )
    result.save(args.out, overwrite=args.overwrite)
    print(
        f"{len(result.train)} train and {len(result.test)} test perturbations (>= {args.min_degs} DEGs), "
        f"{len(result.zero_deg)} with 0 DEGs, {len(result.few_degs)} with fewer DEGs; control cells "
        f"{len(result.control_train)}/{len(result.control_validation)}/{len(result.control_test)}: {args.out}"
    )
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 3,5,10; got {text!r}") from None


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``enrich`` and ``split`` sub-commands."""
    enrich = commands.add_parser("enrich", help="gene-set enrichment among the top-ranked 0-DEG perturbations")
    enrich.add_argument("scores", help="scores.csv from `cellshift score`")
    enrich.add_argument("--degs", default=None, help="degs.csv from `cellshift degs` (default: n_degs of scores.csv)")
    enrich.add_argument(
        "--gene-set",
        type=comma_list,
        required=True,
        help="bundled sets (essential, cell_cycle, ...) or files with one gene per line, comma-separated",
    )
    enrich.add_argument("--species", choices=["human", "mouse"], default="human", help="species of bundled sets")
    enrich.add_argument("--top", type=_int_list, default=[3, 5, 10], help="numbers of top perturbations tested")
    enrich.add_argument("--permutations", type=int, default=10_000, help="random draws of the permutation test")
    enrich.add_argument("--metrics", type=comma_list, default=None, help="default: every <metric>_z column")
    enrich.add_argument("--seed", type=int, default=0)
    enrich.add_argument("--out", required=True, help="CSV to write")
    enrich.add_argument("--overwrite", action="store_true", help="replace an existing output")
    enrich.set_defaults(handler=_enrich)

    split = commands.add_parser("split", help="split perturbations (by DEGs) and control cells for fine-tuning")
    split.add_argument("degs", help="degs.csv from `cellshift degs`")
    split.add_argument("input", help="the screen .h5ad (only obs is read)")
    split.add_argument("--perturbation-key", required=True, help="obs column naming each cell's perturbation")
    split.add_argument("--control", required=True, help="label of control cells, e.g. non-targeting")
    split.add_argument("--min-degs", type=int, default=20, help="DEGs needed to train or test on a perturbation")
    split.add_argument("--test-fraction", type=float, default=0.2, help="share of those held out for testing")
    split.add_argument("--control-fractions", default="0.8,0.1,0.1", help="train,validation,test shares of controls")
    split.add_argument("--exclude", type=comma_list, default=[], help="labels never used as controls")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--out", required=True, help="JSON to write")
    split.add_argument("--overwrite", action="store_true", help="replace an existing output")
    split.set_defaults(handler=_split)
