"""Prior-knowledge gene vectors built from tables: GRN, gene families, co-expression, promoters.

The layer between ``tokenize`` and ``models`` (no torch): :func:`build_priors` writes a priors
directory (one genes x dim table per source, keyed by human Ensembl ID, and a manifest),
:func:`load_priors` reads it back for ``cellshift pretrain --priors PRIORS_DIR``.
"""

from cellshift._lazy import lazy_exports

_EXPORTS = {
    "PriorBuild": "build",
    "PriorSettings": "build",
    "build_priors": "build",
    "CoexpressionPairs": "coexpression",
    "coexpression_pairs": "coexpression",
    "GRAPH_METHODS": "graph",
    "GeneGraph": "graph",
    "embed_graph": "graph",
    "promoter_prior": "promoter",
    "bipartite_spectral_embedding": "spectral",
    "PriorSet": "store",
    "check_prior_table": "store",
    "load_priors": "store",
    "read_prior_table": "store",
    "vocabulary_coverage": "vocabulary",
    "walk_embedding": "walks",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
