import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from threadpoolctl import threadpool_limits

import cellshift.training.classification_loop as loop_module
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import dosage_sensitive_tfs, kang2018_pbmc
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.models.classification import CellshiftClassifier, cell_probabilities, gene_probabilities
from cellshift.models.inputs import encode_cells
from cellshift.models.modeling import IGNORE_INDEX
from cellshift.training import ClassifierSettings, finetune_cell_classifier, finetune_gene_classifier
from cellshift.training.classification_data import ShuffledBatches, labelled_cells, labelled_gene_tokens
from cellshift.training.classification_loop import Validation
from cellshift.training.loop import LossLog

TYPES = ["B cells", "CD14+ Monocytes"]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: several threads on a busy 2-core machine are slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def kang():
    """130 B cells and 130 CD14+ monocytes of the bundled Kang PBMCs: the first 100 of each train, the rest test."""
    cells = kang2018_pbmc()
    rng = np.random.default_rng(0)
    chosen = [rng.choice(np.flatnonzero(cells.obs["cluster_id"] == kind), 130, replace=False) for kind in TYPES]
    cells = cells[np.concatenate(chosen)].copy()
    cells.obs["part"] = np.tile(np.repeat(["train", "test"], [100, 30]), 2)
    return cells[cells.obs["part"] == "train"].copy(), cells[cells.obs["part"] == "test"].copy()


def save_untrained(cells, folder, **options):
    """An untrained tiny model over the cells' genes (plumbing and learning from scratch only)."""
    table = GeneTable.from_medians(pd.Series(np.linspace(0.5, 5, cells.n_vars), index=cells.var_names), name="kang")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, **options))
    model.gene_table = table
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(kang, tmp_path_factory):
    return save_untrained(kang[0], tmp_path_factory.mktemp("tiny") / "model")


def train_cells(model_dir, cells, out, *, resume=False, **changes):
    base = dict(max_steps=8, learning_rate=1e-3, eval_every=2, save_every=2, log_every=1, validation_fraction=0.2)
    settings = ClassifierSettings(**{**base, **changes})
    return finetune_cell_classifier(
        model_dir, cells, "cluster_id", out, settings=settings, resume=resume, progress=False
    )


def weights(directory):
    """A saved classifier's weights: the encoder's and the head's."""
    head = {f"head.{name}": tensor for name, tensor in load_file(directory / "classification_head.safetensors").items()}
    return {**load_file(directory / "model.safetensors"), **head}


def same(first, second):
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_the_head_learns_two_cell_types_and_predicts_new_cells(model_dir, kang, tmp_path):
    train, test = kang
    result = train_cells(model_dir, train, tmp_path / "cls", max_steps=40, eval_every=15, patience=None)
    log = pd.read_csv(result.loss_log)
    assert list(log.columns) == loop_module.LOG_COLUMNS
    assert loop_module.LOG_COLUMNS[:5] == ["step", "epoch", "loss", "validation_loss", "validation_macro_f1"]
    assert log["step"].tolist() == list(range(1, 41)) and (log["learning_rate"] == 1e-3).all()
    assert log["loss"].iloc[-5:].mean() < 0.7 * log["loss"].iloc[:5].mean()
    evaluated = log.loc[log["validation_macro_f1"].notna(), "step"].tolist()
    assert evaluated == [10, 15, 20, 30, 40]  # every 15 steps, at each epoch's end (160 cells / 16) and the last
    classifier = CellshiftClassifier.load(result.model_dir)
    assert classifier.classes == TYPES and classifier.target == "cells"
    probabilities = cell_probabilities(classifier, encode_cells(test, classifier.encoder), batch_size=16)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    accuracy = np.mean(np.array(TYPES)[probabilities.argmax(axis=1)] == test.obs["cluster_id"].astype(str))
    assert accuracy > 0.8, accuracy  # 60 cells of 2 types no run saw: chance is 0.5


def test_saved_classifier_loads_to_the_same_probabilities_in_any_batches(model_dir, kang, tmp_path):
    train, test = kang
    result = train_cells(model_dir, train, tmp_path / "cls", max_steps=4)
    classifier = CellshiftClassifier.load(result.model_dir)
    classifier.save(tmp_path / "again")
    reloaded = CellshiftClassifier.load(tmp_path / "again")
    cells = encode_cells(test, classifier.encoder)
    first = cell_probabilities(classifier, cells, batch_size=64)
    np.testing.assert_array_equal(first, cell_probabilities(reloaded, cells, batch_size=64))
    np.testing.assert_allclose(first, cell_probabilities(reloaded, cells, batch_size=7), atol=1e-5)  # padding only
    batch = cells.batch(range(len(test)))
    with torch.no_grad():
        by_hand = torch.softmax(reloaded(**batch.model_inputs()), dim=-1).numpy()
    np.testing.assert_allclose(first, by_hand, atol=1e-5)


def test_same_seed_same_weights_and_another_seed_differs(model_dir, kang, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_cells(model_dir, kang[0], tmp_path / name, max_steps=3, seed=seed)
    a, b, c = (weights(tmp_path / name) for name in "abc")
    assert same(a, b) and not same(a, c)


def test_frozen_layers_and_embeddings_keep_their_weights(kang, tmp_path):
    train = kang[0]
    model_dir = save_untrained(train, tmp_path / "three", num_hidden_layers=3)
    before = CellshiftModel.from_pretrained(model_dir).state_dict()
    for frozen in (0, 1):
        result = train_cells(model_dir, train, tmp_path / f"frozen{frozen}", max_steps=3, freeze_layers=frozen)
        after = CellshiftModel.from_pretrained(result.model_dir).state_dict()
        unchanged = {name for name in before if torch.equal(before[name], after[name])}
        embeddings = {name for name in before if name.startswith(("bert.embeddings.", "inputs."))}
        layers = [{name for name in before if name.startswith(f"bert.encoder.layer.{i}.")} for i in range(3)]
        # cells read the penultimate layer: the last layer never trains; frozen layers and embeddings stay exact
        expected = layers[2] | (embeddings | layers[0] if frozen else set())
        changed_tensors = set(before) - expected
        assert expected <= unchanged and not unchanged & changed_tensors, sorted(unchanged & changed_tensors)
    with pytest.raises(ValueError, match=r"freeze_layers must lie in \[0, 3\]"):
        train_cells(model_dir, train, tmp_path / "bad", freeze_layers=4)


def scripted_validation(monkeypatch, macro_f1s):
    """Replace the validation by a list of macro-F1s, one per evaluation (loss 0)."""
    scores = iter(macro_f1s)
    monkeypatch.setattr(loop_module, "evaluate", lambda *args: Validation(0.0, next(scores)))


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights(model_dir, kang, tmp_path, monkeypatch):
    scripted_validation(monkeypatch, [0.5, 0.7, 0.6, 0.7, 0.65, 0.9])
    options = dict(max_steps=20, eval_every=1, save_every=1, keep_last=20, patience=3)
    result = train_cells(model_dir, kang[0], tmp_path / "cls", **options)
    assert result.stopped_early and result.steps == 5 and result.best_step == 2 and result.best_macro_f1 == 0.7
    log = pd.read_csv(result.loss_log)
    assert log["validation_macro_f1"].tolist() == [0.5, 0.7, 0.6, 0.7, 0.65]  # a tie is no improvement
    at_best = load_file(tmp_path / "cls" / "training" / "checkpoints" / "step-00000002" / "model.safetensors")
    at_stop = load_file(tmp_path / "cls" / "training" / "checkpoints" / "step-00000005" / "model.safetensors")
    saved = {
        name if name.startswith("head.") else f"encoder.{name}": t for name, t in weights(result.model_dir).items()
    }
    assert same(saved, at_best) and not same(saved, at_stop)


def test_a_killed_run_resumes_to_the_same_weights(model_dir, kang, tmp_path, monkeypatch):
    """Killed after the step-4 checkpoint, resumed: ends exactly as an uninterrupted run (dropout included)."""
    straight = train_cells(model_dir, kang[0], tmp_path / "straight")
    real_append = LossLog.append

    def dies_after_logging_step_5(log, row):
        real_append(log, row)
        if row["step"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(LossLog, "append", dies_after_logging_step_5)
    with pytest.raises(KeyboardInterrupt):
        train_cells(model_dir, kang[0], tmp_path / "resumed")
    monkeypatch.setattr(LossLog, "append", real_append)
    resumed = train_cells(model_dir, kang[0], tmp_path / "resumed", resume=True)
    assert resumed.steps == straight.steps == 8 and resumed.best_step == straight.best_step
    assert same(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))
    logs = [pd.read_csv(run.loss_log) for run in (straight, resumed)]
    assert logs[1]["step"].tolist() == list(range(1, 9))
    columns = ["loss", "validation_loss", "validation_macro_f1"]
    pd.testing.assert_frame_equal(logs[0][columns], logs[1][columns])
    other = kang[0].copy()
    other.obs["cluster_id"] = other.obs["cluster_id"].astype(str).str.upper()
    with pytest.raises(ValueError, match=r"changed settings \['classes'\]"):
        train_cells(model_dir, other, tmp_path / "resumed", resume=True)


def test_early_stopping_state_is_resumed(model_dir, kang, tmp_path, monkeypatch):
    """Best step 2, no gain at 4 and 6: patience 2 stops at 6 whether or not the run was killed at step 5."""
    options = dict(max_steps=8, patience=2)
    scripted_validation(monkeypatch, [0.9, 0.5, 0.6])
    straight = train_cells(model_dir, kang[0], tmp_path / "straight", **options)
    real_append = LossLog.append

    def dies_after_logging_step_5(log, row):
        real_append(log, row)
        if row["step"] == 5:
            raise KeyboardInterrupt

    scripted_validation(monkeypatch, [0.9, 0.5])
    monkeypatch.setattr(LossLog, "append", dies_after_logging_step_5)
    with pytest.raises(KeyboardInterrupt):
        train_cells(model_dir, kang[0], tmp_path / "resumed", **options)
    monkeypatch.setattr(LossLog, "append", real_append)
    checkpoint = tmp_path / "resumed" / "training" / "checkpoints" / "step-00000004"
    assert json.loads((checkpoint / "early_stopping.json").read_text())["evaluations_since_best"] == 1
    scripted_validation(monkeypatch, [0.6])
    resumed = train_cells(model_dir, kang[0], tmp_path / "resumed", resume=True, **options)
    for result in (straight, resumed):
        assert result.stopped_early and result.steps == 6 and result.best_step == 2
    assert same(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))


def test_cell_validation_share_is_stratified_and_batches_are_balanced(model_dir, kang):
    cells = encode_cells(kang[0], CellshiftModel.from_pretrained(model_dir))
    labels = np.repeat(["a", "b", "c"], [150, 40, 10])
    data = labelled_cells(cells, labels, validation_fraction=0.1, seed=0)
    assert np.bincount(data.cell_labels[data.validation_rows]).tolist() == [15, 4, 1]
    assert not np.intersect1d(data.train_rows, data.validation_rows).size
    assert len(data.train_rows) + len(data.validation_rows) == 200
    batches = ShuffledBatches(data.train_rows, batch_size=16, seed=0)
    epoch = batches.epoch(0)
    assert len(epoch) == len(batches) == 12 and {len(b) for b in epoch} == {15}  # 180 cells, no runt batch of 4
    assert sorted(np.concatenate(epoch)) == sorted(data.train_rows)
    assert not np.array_equal(np.concatenate(epoch), np.concatenate(batches.epoch(1)))
    uneven = ShuffledBatches(np.arange(37), batch_size=16, seed=0)
    assert [len(b) for b in uneven.epoch(0)] == [13, 12, 12] and uneven.smallest_batch == 12
    with pytest.raises(ValueError, match="holds out no cells"):
        labelled_cells(cells, np.arange(200).astype(str), validation_fraction=0.1, seed=0)  # one cell per class
    tiny_share = labelled_cells(cells, np.repeat(["a", "b"], 100), validation_fraction=0.001, seed=0)
    assert len(tiny_share.validation_rows) == 2  # every class is validated on


def test_gene_tokens_are_labelled_only_for_training_genes(model_dir, kang):
    encoder = CellshiftModel.from_pretrained(model_dir)
    cells = encode_cells(kang[0], encoder)
    tfs = dosage_sensitive_tfs()
    tfs = tfs[tfs["gene"].isin(kang[0].var_names)]
    genes = dict(zip(tfs["gene"], tfs["label"], strict=True))
    data = labelled_gene_tokens(cells, genes, encoder.gene_table.tokens, validation_fraction=0.25, seed=0)
    tokens = np.array(encoder.gene_table.tokens)
    trained = set(tokens[data.train_token_labels != IGNORE_INDEX])
    validated = set(tokens[data.validation_token_labels != IGNORE_INDEX])
    assert trained | validated == set(genes) and not trained & validated and len(validated) >= 2
    assert not np.intersect1d(data.train_rows, data.validation_rows).size
    rows = data.train_rows[:8]
    batch = cells.batch(rows)
    labels = data.labels(rows, batch)
    labelled = labels != IGNORE_INDEX
    assert labelled.any() and set(tokens[batch.input_ids[labelled].numpy()]) <= trained
    expected = [data.classes.index(genes[token]) for token in tokens[batch.input_ids[labelled].numpy()]]
    assert labels[labelled].tolist() == expected
    assert (labels[batch.attention_mask == 0] == IGNORE_INDEX).all()


def test_gene_classifier_trains_the_last_layer_and_averages_over_cells(model_dir, kang, tmp_path):
    train = kang[0]
    tfs = dosage_sensitive_tfs()
    tfs = tfs[tfs["gene"].isin(train.var_names)]
    genes = dict(zip(tfs["gene"], tfs["label"], strict=True))
    settings = ClassifierSettings(max_steps=4, learning_rate=1e-3, eval_every=2, validation_fraction=0.25)
    result = finetune_gene_classifier(model_dir, train, genes, tmp_path / "genes", settings=settings, progress=False)
    assert pd.read_csv(result.loss_log)["validation_macro_f1"].notna().any()
    classifier = CellshiftClassifier.load(result.model_dir)
    assert classifier.target == "genes" and classifier.classes == ["insensitive", "sensitive"]
    before, after = CellshiftModel.from_pretrained(model_dir).state_dict(), classifier.encoder.state_dict()
    last = f"bert.encoder.layer.{classifier.config.num_hidden_layers - 1}.attention.self.query.weight"
    assert not torch.equal(before[last], after[last])  # genes read the last layer: it trains
    cells = encode_cells(train, classifier.encoder)
    probabilities = gene_probabilities(classifier, cells, batch_size=32)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)
    table = classifier.encoder.gene_table
    gene = max(tfs["gene"], key=lambda g: np.sum(cells.tokens.input_ids == table.token_id(g)))  # in most cells
    token = table.token_id(gene)
    per_cell = []
    for i in range(train.n_obs):
        batch = cells.batch([i])
        position = torch.nonzero(batch.input_ids[0] == token)
        if len(position):
            with torch.no_grad():
                logits = classifier(**batch.model_inputs())[0, position[0, 0]]
            per_cell.append(torch.softmax(logits, dim=-1).numpy())
    assert len(per_cell) > 10
    np.testing.assert_allclose(probabilities.loc[gene].to_numpy(), np.mean(per_cell, axis=0), atol=1e-5)


def test_labels_must_cover_every_cell_and_the_output_must_not_be_the_model(model_dir, kang, tmp_path):
    train = kang[0]
    for labels in ([None, *train.obs["cluster_id"][1:]], list(train.obs["cluster_id"][1:])):
        with pytest.raises(ValueError, match="one label per cell"):
            finetune_cell_classifier(model_dir, train, labels, tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="pre-trained model's directory"):
        finetune_cell_classifier(model_dir, train, "cluster_id", model_dir, progress=False)
