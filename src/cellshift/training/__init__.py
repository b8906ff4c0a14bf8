"""Pre-training (masking, length-grouped batches, loop, checkpoints) and contrastive fine-tuning."""

from cellshift.training.contrastive import (
    FinetuneResult,
    FinetuneSettings,
    PairBatch,
    PairBatches,
    contrastive_loss,
    finetune,
)
from cellshift.training.corpora import TrainingCells, open_corpora
from cellshift.training.masking import choose_positions, corrupt
from cellshift.training.pretraining import PretrainResult, PretrainSettings, align_prior, pretrain
from cellshift.training.sampler import LengthGroupedBatchSampler

__all__ = [
    "FinetuneResult",
    "FinetuneSettings",
    "LengthGroupedBatchSampler",
    "PairBatch",
    "PairBatches",
    "PretrainResult",
    "PretrainSettings",
    "TrainingCells",
    "align_prior",
    "choose_positions",
    "contrastive_loss",
    "corrupt",
    "finetune",
    "open_corpora",
    "pretrain",
]
