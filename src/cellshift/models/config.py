"""Model configuration: a BERT configuration plus cellshift's input options, and size presets.

:class:`CellshiftConfig` extends :class:`transformers.BertConfig`, so the encoder is built by
``transformers.BertModel`` from it (SDPA attention by default) and a Geneformer ``config.json``
maps onto it field by field. The extra fields choose which inputs are fused into each token's
embedding:

- ``use_values``: the expression value ``log1p(normalised count)`` through a continuous encoder;
- ``prior_dims``: named prior-knowledge gene matrices (vocabulary x dim), each projected;
- ``species``: a species embedding at the first position of every cell.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import BertConfig

from cellshift.data.gene_table import GeneTable

# Sizes (layers, hidden, heads, feed-forward, input length, activation, dropout).
PRESETS: dict[str, dict] = {
    "tiny": dict(
        num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, max_position_embeddings=256
    ),
    # CPU demo size. No attention dropout: on CPU it samples a mask over every (head, query, key)
    # and keeps SDPA on its unfused kernel.
    "small": dict(
        num_hidden_layers=4,
        hidden_size=128,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=2048,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.0,
    ),
    # Geneformer V1 (Theodoris et al. 2023): 6 layers, 256 hidden, 4 heads, 512 FFN, 2048 input.
    "geneformer-v1": dict(
        num_hidden_layers=6,
        hidden_size=256,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=2048,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.02,
    ),
    "base": dict(
        num_hidden_layers=12,
        hidden_size=512,
        num_attention_heads=8,
        intermediate_size=1024,
        max_position_embeddings=2048,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.02,
    ),
}


@strict
class CellshiftConfig(BertConfig):
    """Configuration of a cellshift model.

    Parameters (besides :class:`transformers.BertConfig`'s)
    ----------
    use_values
        Fuse each token's expression value into its input embedding and add a masked-value
        regression head.
    prior_dims
        ``{name: dim}`` of the prior-knowledge gene matrices; the matrices themselves are frozen
        buffers of the model, saved with its weights.
    prior_manifest
        SHA-256 of the ``manifest.json`` of the priors directory the matrices came from
        (``cellshift priors build``), so a model names the exact prior vectors it was trained with.
    species
        Species names (e.g. ``["human", "mouse"]``) for the species embedding at the first
        position; ``None`` for no species embedding.
    gene_loss_weight, value_loss_weight
        ``loss = gene_loss_weight * CE + value_loss_weight * MSE`` (GeneCompass: 0.2 and 0.8);
        without values the loss is the cross-entropy alone.
    mask_token_id
        ID of the ``<mask>`` token in the vocabulary.
    cls_eos_tokens
        Cells start with ``<cls>`` and end with ``<eos>`` (Geneformer V2), as in the corpora the
        model was trained on; cells embedded later are tokenised the same way.
    special_token_ids
        IDs never masked or sampled as random replacements (padding, mask, cls, eos).
    gene_tokens
        The token of every row of the gene embedding, in token-ID order (the gene table's tokens
        when the model was built); loading checks the saved gene table against it.
    """

    model_type = "cellshift"

    use_values: bool = False
    prior_dims: dict[str, int] | None = None
    prior_manifest: str | None = None
    species: list[str] | None = None
    gene_loss_weight: float = 0.2
    value_loss_weight: float = 0.8
    mask_token_id: int = 1
    cls_eos_tokens: bool = False
    special_token_ids: list[int] | None = None
    gene_tokens: list[str] | None = None
    tie_word_embeddings: bool = False

    @property
    def uses_fusion(self) -> bool:
        """Whether any input besides the gene token is fused into the token embedding."""
        return self.use_values or bool(self.prior_dims)


def config_from_preset(preset: str, gene_table: GeneTable, **options) -> CellshiftConfig:
    """Build a :class:`CellshiftConfig` for ``gene_table``'s vocabulary from a size preset.

    Presets: ``tiny`` (tests), ``small`` (CPU demo), ``geneformer-v1``, ``base``. ``options``
    override preset fields or set cellshift's input options.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    special = gene_table.special_tokens
    if "<pad>" not in special or "<mask>" not in special:
        raise ValueError(f"gene table {gene_table.name!r} needs <pad> and <mask> tokens for masked-gene modelling")
    settings = {
        "vocab_size": len(gene_table),
        "type_vocab_size": 1,
        "pad_token_id": special["<pad>"],
        "mask_token_id": special["<mask>"],
        "special_token_ids": sorted(special.values()),
        "gene_tokens": list(gene_table.tokens),
        **PRESETS[preset],
        **options,
    }
    return CellshiftConfig(**settings)
