"""Cell and gene embeddings: a cellshift model's, and baselines from raw counts (PCA, HVG, scVI)."""

from cellshift.embed.baselines import embed_hvg, embed_pca, log_normalized
from cellshift.embed.gene_embeddings import (
    GENE_EMBEDDINGS,
    bipartite_spectral_embedding,
    family_gene_embedding,
    gene_embedding,
    grn_gene_embedding,
    model_gene_embedding,
    pca_gene_embedding,
    random_gene_embedding,
)
from cellshift.embed.model_cells import embed_model
from cellshift.embed.model_genes import model_gene_embeddings
from cellshift.embed.scvi import embed_scvi

__all__ = [
    "GENE_EMBEDDINGS",
    "bipartite_spectral_embedding",
    "embed_hvg",
    "embed_model",
    "embed_pca",
    "embed_scvi",
    "family_gene_embedding",
    "gene_embedding",
    "grn_gene_embedding",
    "log_normalized",
    "model_gene_embedding",
    "model_gene_embeddings",
    "pca_gene_embedding",
    "random_gene_embedding",
]
