"""The ``model`` annotation method: the foundation model fine-tuned with a linear head on the reference's labels.

Fine-tuning (:func:`cellshift.training.finetune_cell_classifier`: the head on the mean over gene
tokens of the penultimate layer, cross-entropy, early stopping on a stratified validation share
by macro-F1) reads raw counts rather than per-cell features, so this classifier's features are the
cells themselves, an AnnData with their counts; cross-validation hands each fold its rows and a new
classifier fine-tunes on them. Each run trains in a temporary folder; the fitted classifier
(encoder, head, class names) is kept in memory and saved into the classifier's folder (``model/``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from cellshift.models.classification import CellshiftClassifier, cell_probabilities
from cellshift.models.inputs import encode_cells
from cellshift.tasks.cell_classifier import CellClassifier
from cellshift.training import ClassifierResult, ClassifierSettings, finetune_cell_classifier

FINETUNING_OPTIONS = (
    "freeze_layers",
    "epochs",
    "max_steps",
    "batch_size",
    "learning_rate",
    "validation_fraction",
    "patience",
    "max_length",
)
PREDICTION_BATCH = 64
MODEL_FOLDER = "model"


class ModelFinetuned(CellClassifier):
    """The foundation model fine-tuned to the reference's labels (a linear head, all or the upper layers trained).

    Options: ``model`` (pre-trained model directory, required); the fine-tuning settings
    ``freeze_layers``, ``epochs``, ``max_steps``, ``batch_size``, ``learning_rate``,
    ``validation_fraction``, ``patience``, ``max_length`` (defaults: :class:`cellshift.training.ClassifierSettings`);
    ``device`` (``"cpu"`` keeps training and prediction on the CPU; default: a GPU when one is
    visible); ``progress``. After :meth:`fit`, :attr:`training` says how the fine-tuning went
    (steps, best step and macro-F1, early stop); it is not saved.
    """

    name = "model"
    training: ClassifierResult | None = None

    def features(self, cells: ad.AnnData) -> ad.AnnData:
        """The cells' counts under their names and genes (fine-tuning tokenises them with the model's gene table)."""
        return ad.AnnData(X=cells.X, obs=pd.DataFrame(index=cells.obs_names), var=pd.DataFrame(index=cells.var_names))

    def settings(self) -> ClassifierSettings:
        """The fine-tuning settings: the given options over :class:`ClassifierSettings`' defaults, this seed."""
        given = {name: self.options[name] for name in FINETUNING_OPTIONS if self.options.get(name) is not None}
        return ClassifierSettings(**given, seed=self.seed)

    def _fit(self, features: ad.AnnData, labels: np.ndarray) -> None:
        if not self.options.get("model"):
            raise ValueError("method model needs a pre-trained model directory (--model)")
        with tempfile.TemporaryDirectory(prefix="cellshift-annotation-") as folder:
            run = Path(folder) / "classifier"
            self.training = finetune_cell_classifier(
                self.options["model"],
                features,
                labels,
                run,
                settings=self.settings(),
                cpu=self.options.get("device") == "cpu",
                progress=self.options.get("progress", False),
            )
            self.classifier = CellshiftClassifier.load(run)

    def _predict_proba(self, features: ad.AnnData) -> np.ndarray:
        cells = encode_cells(features, self.classifier.encoder, max_length=self.options.get("max_length"))
        device = self.options.get("device")
        probabilities = cell_probabilities(self.classifier, cells, batch_size=PREDICTION_BATCH, device=device)
        return probabilities[:, [self.classifier.classes.index(name) for name in self.classes]]

    def _save_weights(self, folder: Path) -> None:
        self.classifier.save(folder / MODEL_FOLDER)

    def _load_weights(self, folder: Path) -> None:
        self.classifier = CellshiftClassifier.load(folder / MODEL_FOLDER)
