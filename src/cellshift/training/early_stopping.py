"""Early stopping on a validation score: keep the best weights, stop after ``patience`` evaluations without gain.

An evaluation improves on the run when its scores are greater than the best so far, compared in
order (e.g. macro-F1, then minus the validation loss to break ties: a classifier that is right on
every validation cell keeps improving while its loss falls); the first evaluation always improves.
Its weights are then copied (on the CPU) as the best. After
``patience`` evaluations in a row without improvement the run stops, and at its end the best
weights are put back into the model (the Hugging Face ``EarlyStoppingCallback`` with
``load_best_model_at_end``, as GeneCompass selects its annotation model on macro-F1).

The state (best score and step, evaluations since, whether the run stopped) and the best weights
are written into every checkpoint (``early_stopping.json``, ``best_model.safetensors``), so a
resumed run keeps counting where the stopped one was and ends with the same weights as a run that
never stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

STATE_FILE = "early_stopping.json"
BEST_WEIGHTS_FILE = "best_model.safetensors"


class EarlyStopping:
    """Tracks the best validation score of a run and its weights.

    Parameters
    ----------
    patience
        Stop after this many evaluations in a row without improvement; ``None`` never stops
        (the best weights are still restored at the end).
    """

    def __init__(self, patience: int | None):
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 (or None), got {patience}")
        self.patience = patience
        self.best_scores: tuple[float, ...] | None = None
        self.best_step: int | None = None
        self.evaluations_since_best = 0
        self.stopped = False
        self.best_weights: dict[str, torch.Tensor] | None = None

    @property
    def best_score(self) -> float | None:
        """The first score of the best evaluation (``None`` before one)."""
        return None if self.best_scores is None else self.best_scores[0]

    def update(self, scores: tuple[float, ...], step: int, model: nn.Module) -> None:
        """Record the evaluation of ``step``: keep ``model``'s weights when ``scores`` beat the best (in order)."""
        scores = tuple(float(score) for score in scores)
        if self.best_scores is None or scores > self.best_scores:
            self.best_scores, self.best_step, self.evaluations_since_best = scores, step, 0
            self.best_weights = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
            return
        self.evaluations_since_best += 1
        self.stopped = self.patience is not None and self.evaluations_since_best >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Put the best weights back into ``model`` (nothing happens before a first evaluation)."""
        if self.best_weights is not None:
            model.load_state_dict(self.best_weights)

    def save(self, folder: Path) -> None:
        """Write the state and the best weights into a checkpoint folder."""
        state = {
            "best_scores": self.best_scores,
            "best_step": self.best_step,
            "evaluations_since_best": self.evaluations_since_best,
            "stopped": self.stopped,
        }
        (folder / STATE_FILE).write_text(json.dumps(state, indent=2))
        if self.best_weights is not None:
            save_file(
                {name: tensor.contiguous() for name, tensor in self.best_weights.items()}, folder / BEST_WEIGHTS_FILE
            )

    @classmethod
    def load(cls, folder: Path, patience: int | None) -> EarlyStopping:
        """The state saved by :meth:`save` in a checkpoint folder."""
        stopping = cls(patience)
        state = json.loads((folder / STATE_FILE).read_text())
        stopping.best_step = state["best_step"]
        stopping.best_scores = None if state["best_scores"] is None else tuple(state["best_scores"])
        stopping.evaluations_since_best, stopping.stopped = state["evaluations_since_best"], state["stopped"]
        if (folder / BEST_WEIGHTS_FILE).exists():
            stopping.best_weights = load_file(folder / BEST_WEIGHTS_FILE)
        return stopping
