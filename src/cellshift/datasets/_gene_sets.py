"""Bundled gene sets: essential, non-essential, cell-cycle and transcription-factor genes."""

from __future__ import annotations

import re

import pandas as pd

from cellshift.data.genes import human_to_mouse
from cellshift.datasets._bundled import FILES

GENES = FILES / "genes"
_ENTREZ_SUFFIX = re.compile(r"\s*\(\d+\)$")

GENE_SETS = {
    "essential": "DepMap CRISPR-inferred common essentials (1,687 genes)",
    "essential_hart": "Hart et al. core essential genes CEGv2 (684)",
    "nonessential": "Hart et al. non-essential genes NEGv1 (927)",
    "cell_cycle": "Tirosh et al. S + G2/M genes, 2019 update (97)",
    "cell_cycle_s": "Tirosh et al. S-phase genes, 2019 update",
    "cell_cycle_g2m": "Tirosh et al. G2/M genes, 2019 update",
    "tf": "Lambert et al. 2018 human transcription factors (1,639)",
}


def gene_set(name: str, *, species: str = "human") -> list[str]:
    """Symbols of a bundled gene set, sorted.

    Parameters
    ----------
    name
        One of ``essential``, ``essential_hart``, ``nonessential``, ``cell_cycle``,
        ``cell_cycle_s``, ``cell_cycle_g2m``, ``tf``.
    species
        ``human``, or ``mouse`` for the one-to-one mouse orthologs of the human set.
    """
    if name not in GENE_SETS:
        raise ValueError(f"unknown gene set {name!r}; choose from {sorted(GENE_SETS)}")
    symbols = sorted(set(_read(name)))
    if species == "human":
        return symbols
    if species == "mouse":
        return sorted(t for t in human_to_mouse(symbols).target if t is not None)
    raise ValueError(f"unknown species {species!r}; use 'human' or 'mouse'")


def _read(name: str) -> list[str]:
    if name == "essential":
        table = pd.read_csv(GENES / "essential" / "CRISPRInferredCommonEssentials.csv")
        return [_ENTREZ_SUFFIX.sub("", g) for g in table.iloc[:, 0]]
    if name in ("essential_hart", "nonessential"):
        file = "CEGv2.txt" if name == "essential_hart" else "NEGv1.txt"
        return pd.read_csv(GENES / "essential" / file, sep="\t")["GENE"].tolist()
    if name.startswith("cell_cycle"):
        phases = {"cell_cycle": ("s", "g2m"), "cell_cycle_s": ("s",), "cell_cycle_g2m": ("g2m",)}[name]
        folder = GENES / "cell_cycle"
        return [
            g for phase in phases for g in (folder / f"cc.genes.updated.2019_{phase}.genes.txt").read_text().split()
        ]
    return (GENES / "tf" / "Lambert2018_TF_names_v_1.01.txt").read_text().split()
