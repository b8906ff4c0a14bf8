"""Real data sets shipped inside cellshift (see ``files/PROVENANCE.md`` for sources and licences)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pandas as pd

FILES = Path(__file__).resolve().parent / "files"
PAPALEXI2021 = FILES / "perturbseq" / "papalexi2021_thp1_eccite_299genes.h5ad"
KANG2018 = FILES / "scrna" / "kang2018_pbmc_ctrl_8684cells_2511genes.h5ad"
PANCREAS_MOUSE = FILES / "scrna" / "bastidasponce2019_mouse_pancreas_739cells_7192genes.h5ad"
BARON2016 = FILES / "scrna" / "baron2016_pancreas_human_mouse_328cells_12474genes.h5ad"


def papalexi2021(*, backed: bool = False) -> ad.AnnData:
    """Papalexi et al. 2021 ECCITE-seq CRISPR knock-out screen in THP-1 cells (299-gene panel).

    20,729 cells x 299 genes (symbols), raw UMI counts; ``obs['target_gene']`` names the target
    (``non-targeting`` = 2,386 control cells; 25 targets), ``obs['guide_id']``, ``obs['bio_rep']``.
    """
    return ad.read_h5ad(PAPALEXI2021, backed="r" if backed else None)


def kang2018_pbmc(*, backed: bool = False) -> ad.AnnData:
    """Kang et al. 2018 control PBMCs (human): 8,684 cells x 2,511 genes, raw counts.

    ``var`` index = Ensembl ID, ``var['gene_symbol']``; ``obs['cluster_id']`` (CD4 T, CD14+
    monocytes, B, NK), ``obs['sample_id']`` (5 donors).
    """
    return ad.read_h5ad(KANG2018, backed="r" if backed else None)


def pancreas_mouse(*, backed: bool = False) -> ad.AnnData:
    """Bastidas-Ponce et al. 2019 E15.5 mouse pancreas: 739 cells x 7,192 mouse symbols.

    ``X`` = spliced counts (integers stored as float32), layers ``spliced``/``unspliced``,
    ``obs['clusters']`` (8 endocrine-development states).
    """
    return ad.read_h5ad(PANCREAS_MOUSE, backed="r" if backed else None)


def baron2016_pancreas(*, backed: bool = False) -> ad.AnnData:
    """Baron et al. 2016 pancreas, human (175) and mouse (153) cells, 12,474 upper-cased symbols.

    ``obs['species']``, ``obs['cell_type']``; mouse symbols were upper-cased by the source.
    """
    return ad.read_h5ad(BARON2016, backed="r" if backed else None)


def bundled_corpora() -> dict[str, Path]:
    """Paths of the bundled single-cell files, by short name (used by the demo and tests)."""
    return {
        "papalexi2021": PAPALEXI2021,
        "kang2018_pbmc": KANG2018,
        "pancreas_mouse": PANCREAS_MOUSE,
        "baron2016_pancreas": BARON2016,
    }


def grn(name: str = "dorothea_hs") -> pd.DataFrame:
    """A bundled TF -> target network with columns ``tf, target, mode`` (+ ``confidence``).

    ``dorothea_hs`` / ``dorothea_mm``: DoRothEA (confidence A-E, mode of regulation +1/-1);
    ``trrust``: TRRUST v2 human (mode ``Activation``/``Repression``/``Unknown``).
    """
    folder = FILES / "genes" / "grn"
    if name in ("dorothea_hs", "dorothea_mm"):
        table = pd.read_csv(folder / f"{name}.csv.gz")
        return table.rename(columns={"mor": "mode"})[["tf", "target", "mode", "confidence"]]
    if name == "trrust":
        table = pd.read_csv(folder / "trrust_v2_human.tsv", sep="\t")
        return table.rename(columns={"TF": "tf", "Target": "target", "Regulation": "mode"})[["tf", "target", "mode"]]
    raise ValueError(f"unknown network {name!r}; use 'dorothea_hs', 'dorothea_mm' or 'trrust'")


def gene_families() -> pd.DataFrame:
    """HGNC gene groups joined to symbols: columns ``symbol, ensembl_id, family_id, family``."""
    genes = FILES / "genes"
    links = pd.read_csv(genes / "families" / "gene_has_family.csv", dtype=str)
    families = pd.read_csv(genes / "families" / "family.csv", dtype=str)[["id", "name"]]
    ids = pd.read_csv(genes / "ids" / "hgnc_biomart_2023_ids_symbols_aliases.tsv", sep="\t", dtype=str)
    ids = ids.drop_duplicates("hgnc").assign(hgnc_id=lambda t: t["hgnc"].str.removeprefix("HGNC:"))
    table = links.merge(ids[["hgnc_id", "symb", "ensg"]], on="hgnc_id").merge(
        families, left_on="family_id", right_on="id"
    )
    return table.rename(columns={"symb": "symbol", "ensg": "ensembl_id", "name": "family"})[
        ["symbol", "ensembl_id", "family_id", "family"]
    ].reset_index(drop=True)
