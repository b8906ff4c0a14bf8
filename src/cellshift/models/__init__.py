"""The cellshift foundation model: configuration, token inputs, BERT encoder, heads."""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from cellshift._pretrained import PACKAGED_MODELS
from cellshift.models.config import PRESETS, CellshiftConfig, config_from_preset
from cellshift.models.loading import load_encoder, load_pretrained
from cellshift.models.modeling import (
    IGNORE_INDEX,
    CellshiftForMaskedGeneModeling,
    CellshiftModel,
    EncoderOutput,
    MaskedGeneOutput,
)

AutoConfig.register("cellshift", CellshiftConfig, exist_ok=True)
AutoModel.register(CellshiftConfig, CellshiftModel, exist_ok=True)
AutoModelForMaskedLM.register(CellshiftConfig, CellshiftForMaskedGeneModeling, exist_ok=True)

__all__ = [
    "IGNORE_INDEX",
    "PRESETS",
    "CellshiftConfig",
    "CellshiftForMaskedGeneModeling",
    "CellshiftModel",
    "EncoderOutput",
    "MaskedGeneOutput",
    "PACKAGED_MODELS",
    "config_from_preset",
    "load_encoder",
    "load_pretrained",
]
