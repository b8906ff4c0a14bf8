"""Cell and gene embeddings: a cellshift model's, and baselines from raw counts (PCA, HVG, scVI)."""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "embed_hvg": "baselines",
    "embed_pca": "baselines",
    "GENE_EMBEDDINGS": "gene_embeddings",
    "bipartite_spectral_embedding": "gene_embeddings",
    "family_gene_embedding": "gene_embeddings",
    "gene_embedding": "gene_embeddings",
    "grn_gene_embedding": "gene_embeddings",
    "model_gene_embedding": "gene_embeddings",
    "pca_gene_embedding": "gene_embeddings",
    "random_gene_embedding": "gene_embeddings",
    "embed_model": "model_cells",
    "model_gene_embeddings": "model_genes",
    "embed_scvi": "scvi",
    "CELL_EMBEDDINGS": "registry",
    "EmbedOptions": "registry",
    "add_cell_embedding": "registry",
    "get_cell_embedding": "registry",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
