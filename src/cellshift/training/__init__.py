"""Pre-training (masking, length-grouped batches, loop, checkpoints), contrastive and classification fine-tuning."""

from cellshift.training.classification import (
    ClassifierResult,
    ClassifierSettings,
    finetune_cell_classifier,
    finetune_gene_classifier,
)
from cellshift.training.contrastive import FinetuneResult, FinetuneSettings, finetune
from cellshift.training.corpora import TrainingCells, open_corpora
from cellshift.training.masking import choose_positions, corrupt
from cellshift.training.pairs import PairBatch, PairBatches, contrastive_loss
from cellshift.training.pretraining import PretrainResult, PretrainSettings, pretrain
from cellshift.training.sampler import LengthGroupedBatchSampler

__all__ = [
    "ClassifierResult",
    "ClassifierSettings",
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
    "finetune_cell_classifier",
    "finetune_gene_classifier",
    "open_corpora",
    "pretrain",
]
