"""Lazy, cached readers of the bundled gene annotation tables (see ``datasets/files``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

FILES = Path(__file__).resolve().parents[1] / "datasets" / "files"
GENES = FILES / "genes"


@lru_cache(maxsize=1)
def gencode_human() -> pd.DataFrame:
    """GENCODE v44 human genes: columns ``ensembl_id, symbol`` in file order (62,754 rows)."""
    return pd.read_csv(
        GENES / "ids" / "gencode_v44_gene_id2name.csv",
        header=None,
        names=["ensembl_id", "symbol"],
        dtype=str,
    )


@lru_cache(maxsize=1)
def hgnc_aliases() -> pd.DataFrame:
    """HGNC approved symbols and aliases with their Ensembl IDs: columns ``alias, ensembl_id``.

    One row per (alias, Ensembl ID); the approved symbol is listed as its own alias. Used only
    for symbols that GENCODE v44 does not know (renamed genes, e.g. ``AARS`` -> ``AARS1``).
    """
    table = pd.read_csv(GENES / "ids" / "hgnc_biomart_2023_ids_symbols_aliases.tsv", sep="\t", dtype=str)
    table = table.dropna(subset=["ensg"])
    long = pd.concat(
        [table[["symb", "ensg"]].rename(columns={"symb": "alias"})]
        + [table[[col, "ensg"]].rename(columns={col: "alias"}) for col in ("synonym1", "synonym2")]
    )
    long = long.dropna().drop_duplicates().rename(columns={"ensg": "ensembl_id"})
    return long.reset_index(drop=True)


@lru_cache(maxsize=1)
def one_to_one_orthologs() -> pd.DataFrame:
    """Human-mouse one-to-one orthologs (Ensembl 105): columns ``human, mouse`` (symbols).

    The source table lists all orthology pairs; a pair is kept when neither its human nor its
    mouse symbol appears in any other pair (16,757 pairs).
    """
    pairs = pd.read_csv(
        GENES / "orthologs" / "ensembl105_human2mouse_symbols.csv",
        header=None,
        names=["human", "mouse"],
        dtype=str,
    ).dropna()
    unique_human = ~pairs["human"].duplicated(keep=False)
    unique_mouse = ~pairs["mouse"].duplicated(keep=False)
    return pairs[unique_human & unique_mouse].reset_index(drop=True)


@lru_cache(maxsize=1)
def mouse_symbols() -> frozenset[str]:
    """All mouse symbols of the bundled ortholog tables (Ensembl 105 and MGI), for species detection."""
    ensembl = pd.read_csv(GENES / "orthologs" / "ensembl105_human2mouse_symbols.csv", header=None, dtype=str)[1]
    mgi = pd.read_csv(GENES / "orthologs" / "mgi_HMD_HumanPhenotype.rpt", sep="\t", header=None, dtype=str)[2]
    return frozenset(pd.concat([ensembl, mgi]).dropna())


@lru_cache(maxsize=1)
def human_symbols() -> frozenset[str]:
    """All human symbols of GENCODE v44 and HGNC (approved and aliases), for species detection."""
    return frozenset(gencode_human()["symbol"]) | frozenset(hgnc_aliases()["alias"])


@lru_cache(maxsize=1)
def mouse_symbol_case() -> dict[str, str]:
    """Upper-cased mouse symbol -> the symbol as the bundled tables write it (``GCG`` -> ``Gcg``).

    Only symbols whose upper-case form is unique (all but 7 of the 22,669 bundled mouse symbols).
    """
    by_upper: dict[str, list[str]] = {}
    for symbol in sorted(mouse_symbols()):
        by_upper.setdefault(symbol.upper(), []).append(symbol)
    return {upper: symbols[0] for upper, symbols in by_upper.items() if len(symbols) == 1}
