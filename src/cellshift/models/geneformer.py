"""Load a Geneformer checkpoint (a ``BertForMaskedLM`` directory) as a cellshift model.

Geneformer (Theodoris et al. 2023) is a BERT masked-language model over rank-value-encoded cells.
Its encoder and masked-LM head have the same layout as cellshift's gene-only model, so the
weights are copied tensor for tensor and the outputs are identical. Its token dictionary and gene
medians become the model's gene table, so the loaded model tokenises its own inputs.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from cellshift.data.gene_table import SPECIAL_TOKENS, GeneTable
from cellshift.models.config import CellshiftConfig
from cellshift.models.modeling import CellshiftForMaskedGeneModeling

# Geneformer parameter name prefix -> cellshift parameter name prefix.
KEY_MAP = {
    "bert.": "cellshift.bert.",
    "cls.predictions.transform.dense.": "gene_head.dense.",
    "cls.predictions.transform.LayerNorm.": "gene_head.layer_norm.",
    "cls.predictions.decoder.": "gene_head.decoder.",
}


def load_geneformer(
    model_dir: str | os.PathLike,
    *,
    gene_table: str | os.PathLike | GeneTable = "geneformer-gc30M",
    token_dictionary: str | os.PathLike | None = None,
    gene_medians: str | os.PathLike | None = None,
) -> CellshiftForMaskedGeneModeling:
    """Load Geneformer weights and vocabulary into a :class:`CellshiftForMaskedGeneModeling`.

    Parameters
    ----------
    model_dir
        A directory with ``config.json`` (``BertForMaskedLM``) and ``model.safetensors`` or
        ``pytorch_model.bin``, as published on the Hugging Face Hub.
    gene_table
        The vocabulary with medians: ``geneformer-gc30M`` (V1 models, 2048 input) or
        ``geneformer-gc95M`` (V2 models, 4096 input), bundled, or a TSV written by cellshift.
    token_dictionary, gene_medians
        Instead of ``gene_table``: Geneformer's own pickles (``token_dictionary_*.pkl``, a dict
        token -> ID, and ``gene_median_dictionary_*.pkl``, a dict Ensembl ID -> median).
    """
    if (token_dictionary is None) != (gene_medians is None):
        raise ValueError("pass both token_dictionary and gene_medians (Geneformer's two pickles), or neither")
    table = _table_from_pickles(token_dictionary, gene_medians) if token_dictionary is not None else gene_table
    table = table if isinstance(table, GeneTable) else GeneTable.load(table)

    source = BertForMaskedLM.from_pretrained(model_dir)
    source_config = source.config.to_dict()
    if source_config["vocab_size"] != len(table):
        raise ValueError(
            f"the checkpoint's vocabulary has {source_config['vocab_size']} tokens but gene table {table.name!r} has "
            f"{len(table)}; V1 checkpoints use geneformer-gc30M, V2 checkpoints geneformer-gc95M"
        )
    bert_fields = {key: source_config[key] for key in BertConfig.__dataclass_fields__ if key in source_config}
    bert_fields["tie_word_embeddings"] = False  # cellshift keeps the decoder weights as their own copy
    config = CellshiftConfig(
        **bert_fields,
        mask_token_id=table.token_id("<mask>"),
        special_token_ids=sorted(table.special_tokens.values()),
        gene_tokens=list(table.tokens),
        cls_eos_tokens={"<cls>", "<eos>"} <= set(table.special_tokens),  # V2 vocabularies and models
    )
    model = CellshiftForMaskedGeneModeling(config)
    model.load_state_dict(_renamed_state(source.state_dict()), strict=True)
    model.gene_table = table
    return model.eval()


def _renamed_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename Geneformer parameters to cellshift's; every tensor must find a new name."""
    renamed = {}
    for key, tensor in state.items():
        if key == "cls.predictions.bias":  # the same tensor as the decoder bias in transformers' BERT
            continue
        prefix = next((p for p in KEY_MAP if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"unexpected parameter {key!r} in the Geneformer checkpoint; is it a BertForMaskedLM?")
        renamed[KEY_MAP[prefix] + key[len(prefix) :]] = tensor.clone()
    return renamed


def _table_from_pickles(token_dictionary: str | os.PathLike, gene_medians: str | os.PathLike) -> GeneTable:
    """Build a gene table from Geneformer's token-dictionary and gene-median pickles."""
    tokens = pickle.loads(Path(token_dictionary).read_bytes())
    medians = pickle.loads(Path(gene_medians).read_bytes())
    by_id = sorted(tokens.items(), key=lambda item: item[1])
    if [token_id for _, token_id in by_id] != list(range(len(by_id))):
        raise ValueError(f"{token_dictionary}: token IDs must be 0..{len(by_id) - 1}")
    names = tuple(token for token, _ in by_id)
    values = np.array([np.nan if token in SPECIAL_TOKENS else float(medians[token]) for token in names])
    return GeneTable(names, values, str(token_dictionary))
