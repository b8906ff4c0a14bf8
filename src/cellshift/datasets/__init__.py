"""Bundled real data sets, gene sets and loaders for full public sources (cached, checksummed)."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "baron2016_pancreas": "_bundled",
    "bundled_corpora": "_bundled",
    "gene_families": "_bundled",
    "grn": "_bundled",
    "kang2018_pbmc": "_bundled",
    "pancreas_mouse": "_bundled",
    "papalexi2021": "_bundled",
    "cellxgene_census": "_census",
    "dosage_sensitive_tfs": "_gene_classes",
    "GENE_SETS": "_gene_sets",
    "gene_set": "_gene_sets",
    "ChecksumError": "_remote",
    "default_cache_dir": "_remote",
    "download": "_remote",
    "figshare_file": "_remote",
    "replogle2022_k562_essential": "_remote",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
