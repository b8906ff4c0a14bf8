"""Cell and gene embeddings: a cellshift model's, and baselines from raw counts (PCA, HVG, scVI)."""

from cellshift.embed.baselines import embed_hvg, embed_pca, log_normalized
from cellshift.embed.model_cells import embed_model
from cellshift.embed.model_genes import model_gene_embeddings
from cellshift.embed.scvi import embed_scvi

__all__ = ["embed_hvg", "embed_model", "embed_pca", "embed_scvi", "log_normalized", "model_gene_embeddings"]
