import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

import cellshift.models.inputs as inputs_module
from cellshift.datasets import papalexi2021
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.models.inputs import encode_cells
from cellshift.models.pooling import cell_embedding
from cellshift.tokenize import Corpus
from cellshift.training import (
    FinetuneSettings,
    PairBatches,
    PretrainSettings,
    contrastive_loss,
    finetune,
    pretrain,
)
from cellshift.training.loop import LossLog

TRAIN, HELD_OUT = ["IFNGR2", "STAT1"], "JAK2"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tiny_corpora):
    """A tiny model pre-trained for a few steps on 300 Kang PBMCs and 60 pancreas cells."""
    out = tmp_path_factory.mktemp("pretrained") / "model"
    pretrain(tiny_corpora, out, PretrainSettings(preset="tiny", max_steps=3, batch_size=8), progress=False)
    return out


@pytest.fixture(scope="module")
def screen():
    """40 cells of each of IFNGR2, STAT1, JAK2 and 150 controls of the Papalexi screen.

    The tiny model's gene table (Kang PBMC + mouse pancreas) covers 136 of the screen's 299 genes,
    STAT1, JAK2 and IFNGR2 among them, about 50 per cell.
    """
    adata = papalexi2021()
    rng = np.random.default_rng(0)
    rows = [
        rng.choice(np.flatnonzero(adata.obs["target_gene"] == label), n, replace=False)
        for label, n in [("non-targeting", 150), *[(label, 40) for label in [*TRAIN, HELD_OUT]]]
    ]
    return adata[np.sort(np.concatenate(rows))].copy()


def controls(adata):
    return adata.obs_names[adata.obs["target_gene"] == "non-targeting"].tolist()


def run(pretrained, screen, out, *, resume=False, overwrite=False, validation=False, **changes):
    """Fine-tune on TRAIN; with ``validation``, the last 30 controls are validation controls."""
    base = dict(max_steps=6, batch_size=8, save_every=2, log_every=1)
    names = controls(screen)
    return finetune(
        pretrained,
        screen,
        out,
        perturbation_key="target_gene",
        perturbations=TRAIN,
        control_cells=names[:-30] if validation else names,
        validation_controls=names[-30:] if validation else (),
        settings=FinetuneSettings(**{**base, **changes}),
        resume=resume,
        overwrite=overwrite,
        progress=False,
    )


def embeddings(model, adata):
    """Penultimate-layer mean embeddings of all cells, in eval mode, one padded batch."""
    batch = encode_cells(adata, model).batch(range(adata.n_obs))
    with torch.no_grad():
        out = model.eval()(**batch.model_inputs(), output_hidden_states=True)
    return cell_embedding(out.hidden_states, batch.input_ids, batch.attention_mask, model.config.special_token_ids)


def test_loss_equals_the_formula_with_the_margin_clamp():
    d = np.array([0.0, 3.0, 19.5, 20.0, 25.0, 7.0, 0.5])
    y = np.array([1, 1, 0, 0, 0, 1, 0])
    for margin in (20.0, 5.0):
        expected = (y * d**2 + (1 - y) * np.maximum(0, margin - d) ** 2).sum() / (2 * len(d))
        got = contrastive_loss(torch.tensor(d), torch.tensor(y), margin=margin)
        assert got.item() == pytest.approx(expected, rel=1e-12)
    # dissimilar pairs at or beyond the margin cost nothing; similar pairs cost d^2 / 2 each
    assert contrastive_loss(torch.tensor([20.0, 30.0]), torch.tensor([0, 0])).item() == 0
    assert contrastive_loss(torch.tensor([2.0]), torch.tensor([1])).item() == 2.0
    with pytest.raises(ValueError, match="1-d"):
        contrastive_loss(torch.ones(3), torch.ones(2))


def test_batches_alternate_and_each_dissimilar_batch_holds_one_perturbation():
    perturbed = {"A": np.arange(10), "B": np.arange(10, 35), "C": np.arange(35, 38)}
    control = np.arange(100, 121)
    pairs = PairBatches(perturbed, control, batch_size=4, seed=3)
    epoch = pairs.epoch(0)
    assert len(epoch) == len(pairs) == 2 * (3 + 7 + 1)
    assert [b.similar for b in epoch] == [True, False] * (len(epoch) // 2)
    seen = []
    for similar, dissimilar in zip(epoch[::2], epoch[1::2], strict=True):
        assert len(similar.first) == len(dissimilar.first) <= 4  # a similar batch as large as its dissimilar one
        assert similar.perturbation is None and np.isin(similar.first, control).all()
        assert np.isin(similar.second, control).all() and (similar.first != similar.second).all()
        assert set(dissimilar.first) <= set(perturbed[dissimilar.perturbation])  # one perturbation per batch
        assert np.isin(dissimilar.second, control).all()
        assert similar.labels.tolist() == [1.0] * len(similar.first) and not dissimilar.labels.any()
        seen.extend(dissimilar.first)
    assert sorted(seen) == list(range(38))  # every perturbed cell exactly once per epoch
    sizes = sorted(len(b.first) for b in epoch[1::2] if b.perturbation == "A")
    assert sizes == [3, 3, 4]  # balanced, no runt batch
    assert pairs.pairs_per_epoch == 2 * 38
    assert pairs.smallest_batch == min(len(b.first) for b in epoch) == 3
    again = PairBatches(perturbed, control, batch_size=4, seed=3).epoch(0)
    assert all(np.array_equal(a.first, b.first) and np.array_equal(a.second, b.second) for a, b in zip(epoch, again))
    assert not all(np.array_equal(a.first, b.first) for a, b in zip(epoch, pairs.epoch(1)))


def test_pair_batches_refuse_bad_input():
    with pytest.raises(ValueError, match="2 distinct control"):
        PairBatches({"A": [0, 1]}, [5, 5], batch_size=2)
    with pytest.raises(ValueError, match="both perturbed and control"):
        PairBatches({"A": [0, 1]}, [1, 2, 3], batch_size=2)
    with pytest.raises(ValueError, match="no cells"):
        PairBatches({"A": []}, [1, 2, 3], batch_size=2)


def test_cell_embedding_is_a_hand_mean_over_gene_tokens_of_the_penultimate_layer(tiny_corpora):
    table = Corpus.open(tiny_corpora[0]).gene_table()
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table)).eval()
    special = table.special_tokens
    pad, cls, eos = special["<pad>"], special["<cls>"], special["<eos>"]
    genes = table.gene_ids
    input_ids = torch.tensor(
        [
            [cls, genes[5], genes[9], genes[2], eos, pad, pad],
            [cls, genes[7], genes[1], genes[3], genes[8], genes[4], eos],
            [genes[6], genes[11], pad, pad, pad, pad, pad],
        ]
    )
    mask = (input_ids != pad).long()
    with torch.no_grad():
        states = model(input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(states) == model.config.num_hidden_layers + 1
    pooled = cell_embedding(states, input_ids, mask, model.config.special_token_ids)
    penultimate = states[-2].numpy()
    hand = [
        penultimate[0, [1, 2, 3]].mean(0),  # <cls>, <eos> and padding left out
        penultimate[1, [1, 2, 3, 4, 5]].mean(0),
        penultimate[2, [0, 1]].mean(0),
    ]
    np.testing.assert_allclose(pooled.numpy(), np.stack(hand), rtol=1e-6, atol=1e-6)
    last = cell_embedding(states, input_ids, mask, model.config.special_token_ids, layer=-1)
    assert not np.allclose(pooled.numpy(), last.numpy(), atol=1e-3)  # the penultimate layer, not the last


def test_run_trains_every_parameter_and_pushes_perturbed_cells_away(tmp_path, pretrained, screen, monkeypatch):
    encoded = []
    real_encode = inputs_module.encode_anndata

    def spy(adata, *args, **kwargs):
        encoded.append((adata.obs.copy(), kwargs))
        return real_encode(adata, *args, **kwargs)

    monkeypatch.setattr(inputs_module, "encode_anndata", spy)
    result = run(pretrained, screen, tmp_path / "ft", max_steps=20, learning_rate=1e-3, max_grad_norm=None)
    assert result.steps == 20
    # only training perturbations and the given controls were ever tokenised: the held-out perturbation never
    ((obs, options),) = encoded
    assert set(obs["target_gene"]) == {*TRAIN, "non-targeting"} and HELD_OUT not in set(obs["target_gene"])
    before = CellshiftModel.from_pretrained(pretrained)
    assert options["cls_eos_tokens"] == before.config.cls_eos_tokens  # tokenised as in pre-training
    record = json.loads((tmp_path / "ft" / "training" / "training_cells.json").read_text())
    assert record["perturbations"] == {"IFNGR2": 40, "STAT1": 40} and len(record["control_cells"]) == 150

    log = pd.read_csv(result.loss_log)
    assert log["step"].tolist() == list(range(1, 21))
    assert log["similar_loss"].notna().tolist() == [True, False] * 10  # similar batches first, then alternating
    assert (log["learning_rate"] == 1e-3).all()

    after = CellshiftModel.from_pretrained(tmp_path / "ft")
    old, new = before.state_dict(), after.state_dict()
    assert old.keys() == new.keys()
    # every layer up to the penultimate is trained; the last one cannot be: the loss reads the penultimate layer
    last = f"bert.encoder.layer.{before.config.num_hidden_layers - 1}."
    assert all(torch.equal(old[k], new[k]) == k.startswith(last) for k in old)
    # the training objective on fixed pairs (perturbed training cells vs controls, controls vs controls)
    labels = screen.obs["target_gene"].to_numpy()
    control_rows, perturbed_rows = np.flatnonzero(labels == "non-targeting"), np.flatnonzero(np.isin(labels, TRAIN))

    def objective(model):
        e = embeddings(model, screen)
        d_dissimilar = torch.linalg.vector_norm(e[perturbed_rows] - e[control_rows[: len(perturbed_rows)]], dim=-1)
        d_similar = torch.linalg.vector_norm(e[control_rows[:75]] - e[control_rows[75:150]], dim=-1)
        d = torch.cat([d_similar, d_dissimilar])
        y = torch.cat([torch.ones_like(d_similar), torch.zeros_like(d_dissimilar)])
        return contrastive_loss(d, y).item(), d_dissimilar.mean().item()

    (loss_before, far_before), (loss_after, far_after) = objective(before), objective(after)
    assert loss_after < loss_before and far_after > far_before


def test_same_seed_same_weights_and_another_seed_differs(tmp_path, pretrained, screen):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run(pretrained, screen, tmp_path / name, max_steps=3, seed=seed)
    a, b, c = (load_file(tmp_path / name / "model.safetensors") for name in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_saved_model_loads_as_a_cellshift_model_with_identical_embeddings(tmp_path, pretrained, screen):
    run(pretrained, screen, tmp_path / "ft", max_steps=2)
    model = CellshiftModel.from_pretrained(tmp_path / "ft")
    assert model.gene_table.tokens == CellshiftModel.from_pretrained(pretrained).gene_table.tokens
    checkpoint = load_file(tmp_path / "ft" / "training" / "checkpoints" / "step-00000002" / "model.safetensors")
    weights = model.state_dict()
    assert weights.keys() == checkpoint.keys()  # the encoder alone: the masked-gene head is dropped
    assert all(torch.equal(weights[k], checkpoint[k]) for k in checkpoint)  # the trained state
    model.save_pretrained(tmp_path / "again")
    reloaded = CellshiftModel.from_pretrained(tmp_path / "again")
    assert torch.equal(embeddings(model, screen), embeddings(reloaded, screen))


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, pretrained, screen, monkeypatch):
    """Killed after the step-4 checkpoint, resumed: ends exactly as an uninterrupted run (dropout included)."""
    run(pretrained, screen, tmp_path / "straight")
    real_append = LossLog.append

    def dies_after_logging_step_5(log, row):
        real_append(log, row)
        if row["step"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(LossLog, "append", dies_after_logging_step_5)
    with pytest.raises(KeyboardInterrupt):
        run(pretrained, screen, tmp_path / "resumed")
    monkeypatch.setattr(LossLog, "append", real_append)
    result = run(pretrained, screen, tmp_path / "resumed", resume=True)
    assert result.steps == 6
    straight, resumed = (
        load_file(tmp_path / "straight" / "model.safetensors"),
        load_file(result.model_dir / "model.safetensors"),
    )
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    logs = [pd.read_csv(p / "training" / "loss.csv") for p in (tmp_path / "straight", tmp_path / "resumed")]
    assert logs[1]["step"].tolist() == list(range(1, 7))
    pd.testing.assert_series_equal(logs[0]["loss"], logs[1]["loss"])
    assert logs[0]["pairs"].tolist() == logs[1]["pairs"].tolist()


def test_validation_holds_out_cells_and_logs_the_loss_on_fixed_pairs(tmp_path, pretrained, screen):
    options = dict(max_steps=12, learning_rate=1e-3, max_grad_norm=None, validation_fraction=0.25, log_every=4)
    result = run(pretrained, screen, tmp_path / "ft", validation=True, **options)
    record = json.loads((tmp_path / "ft" / "training" / "training_cells.json").read_text())
    assert record["perturbations"] == {"IFNGR2": 30, "STAT1": 30}  # 10 of each 40 held out
    assert len(record["validation_perturbed_cells"]) == 20 and len(record["validation_controls"]) == 30
    assert not set(record["validation_controls"]) & set(record["control_cells"])
    log = pd.read_csv(result.loss_log)
    assert log["validation_loss"].notna().all() and (log["validation_similar_distance"] > 0).all()
    # the held-out perturbed cells move away from the held-out controls as training goes on
    assert log["validation_dissimilar_distance"].iloc[-1] > log["validation_dissimilar_distance"].iloc[0]
    # the loss follows the formula over 15 similar and 20 dissimilar pairs: d^2 and (m - d)^2, halved, averaged
    # (evaluated here at the mean distances: the spread of d is tiny next to the margin of 20)
    first = log.iloc[0]
    similar, dissimilar = first["validation_similar_distance"], first["validation_dissimilar_distance"]
    at_means = 15 * similar**2 + 20 * (20 - dissimilar) ** 2
    assert first["validation_loss"] == pytest.approx(at_means / (2 * 35), rel=1e-2)
    again = run(pretrained, screen, tmp_path / "again", validation=True, **options)
    pd.testing.assert_series_equal(log["validation_loss"], pd.read_csv(again.loss_log)["validation_loss"])
    assert pd.read_csv(run(pretrained, screen, tmp_path / "none", max_steps=2).loss_log)["validation_loss"].isna().all()
    with pytest.raises(ValueError, match="validation_fraction must be a number in"):
        run(pretrained, screen, tmp_path / "bad", validation=True, validation_fraction=1.0)


def test_resume_overwrite_and_input_rules(tmp_path, pretrained, screen):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        run(pretrained, screen, tmp_path / "none", resume=True)
    run(pretrained, screen, tmp_path / "run", max_steps=2)
    with pytest.raises(FileExistsError, match="--resume"):
        run(pretrained, screen, tmp_path / "run", max_steps=2)
    with pytest.raises(ValueError, match="batch_size"):
        run(pretrained, screen, tmp_path / "run", max_steps=4, batch_size=4, resume=True)
    with pytest.raises(ValueError, match="control cells differ"):
        finetune(
            pretrained,
            screen,
            tmp_path / "run",
            perturbation_key="target_gene",
            perturbations=TRAIN,
            control_cells=controls(screen)[:100],
            settings=FinetuneSettings(max_steps=4, batch_size=8, save_every=2, log_every=1),
            resume=True,
            progress=False,
        )
    run(pretrained, screen, tmp_path / "run", max_steps=2, overwrite=True)
    with pytest.raises(ValueError, match="pre-trained model's directory"):
        run(pretrained, screen, pretrained)
    common = dict(control_cells=controls(screen), progress=False)
    with pytest.raises(KeyError, match="no column"):
        finetune(pretrained, screen, tmp_path / "x", perturbation_key="guide", perturbations=TRAIN, **common)
    with pytest.raises(ValueError, match="'KLF1' has no cells"):
        finetune(pretrained, screen, tmp_path / "x", perturbation_key="target_gene", perturbations=["KLF1"], **common)
    with pytest.raises(KeyError, match="not in adata.obs_names"):
        finetune(
            pretrained,
            screen,
            tmp_path / "x",
            perturbation_key="target_gene",
            perturbations=TRAIN,
            control_cells=["nowhere"],
            progress=False,
        )
