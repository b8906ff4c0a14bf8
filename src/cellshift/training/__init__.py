"""Pre-training: masking, length-grouped batches, the training loop, checkpoints (DESIGN §2.3)."""

from cellshift.training.batches import CellBatch, CellCollator
from cellshift.training.corpora import TrainingCells, open_corpora
from cellshift.training.masking import choose_positions, corrupt
from cellshift.training.pretraining import PretrainResult, PretrainSettings, align_prior, pretrain
from cellshift.training.sampler import LengthGroupedBatchSampler

__all__ = [
    "CellBatch",
    "CellCollator",
    "LengthGroupedBatchSampler",
    "PretrainResult",
    "PretrainSettings",
    "TrainingCells",
    "align_prior",
    "choose_positions",
    "corrupt",
    "open_corpora",
    "pretrain",
]
