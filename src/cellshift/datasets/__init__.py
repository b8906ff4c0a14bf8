"""Bundled real data sets, gene sets and loaders for full public sources (cached, checksummed)."""

from cellshift.datasets._bundled import (
    baron2016_pancreas,
    bundled_corpora,
    gene_families,
    grn,
    kang2018_pbmc,
    pancreas_mouse,
    papalexi2021,
)
from cellshift.datasets._census import cellxgene_census
from cellshift.datasets._gene_sets import GENE_SETS, gene_set
from cellshift.datasets._remote import (
    ChecksumError,
    default_cache_dir,
    download,
    figshare_file,
    replogle2022_k562_essential,
)

__all__ = [
    "GENE_SETS",
    "ChecksumError",
    "baron2016_pancreas",
    "bundled_corpora",
    "cellxgene_census",
    "default_cache_dir",
    "download",
    "figshare_file",
    "gene_families",
    "gene_set",
    "grn",
    "kang2018_pbmc",
    "pancreas_mouse",
    "papalexi2021",
    "replogle2022_k562_essential",
]
