"""Cell embeddings of a screen: baselines computed from raw counts (PCA, highly variable genes)."""

from cellshift.embed.baselines import embed_hvg, embed_pca, log_normalized

__all__ = ["embed_hvg", "embed_pca", "log_normalized"]
