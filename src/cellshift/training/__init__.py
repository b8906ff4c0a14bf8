"""Pre-training (masking, length-grouped batches, loop, checkpoints) and contrastive fine-tuning."""

from cellshift.training.contrastive import FinetuneResult, FinetuneSettings, finetune
from cellshift.training.corpora import TrainingCells, open_corpora
from cellshift.training.masking import choose_positions, corrupt
from cellshift.training.pairs import PairBatch, PairBatches, contrastive_loss
from cellshift.training.pretraining import PretrainResult, PretrainSettings, pretrain
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
    "choose_positions",
    "contrastive_loss",
    "corrupt",
    "finetune",
    "open_corpora",
    "pretrain",
]
