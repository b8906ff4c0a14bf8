import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from cellshift.models import CellshiftForMaskedGeneModeling
from cellshift.tokenize import Corpus, tokenize
from cellshift.training import PretrainSettings, open_corpora, pretrain
from cellshift.training.loop import LossLog


def settings(**changes):
    base = dict(preset="tiny", max_steps=6, batch_size=8, save_every=2, keep_last=2, log_every=1, heldout_fraction=0.1)
    return PretrainSettings(**{**base, **changes})


def weights(folder):
    return load_file(folder / "model.safetensors")


def test_run_writes_a_loadable_model_log_and_split(tmp_path, tiny_corpora):
    result = pretrain(tiny_corpora, tmp_path / "model", settings(), progress=False)
    assert result.steps == 6
    model = CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "model")
    assert model.gene_table is not None and model.config.num_hidden_layers == 2
    log = pd.read_csv(result.loss_log)
    assert log["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert log["loss"].notna().all() and (log["tokens"].diff().dropna() > 0).all()
    split = json.loads((tmp_path / "model" / "training" / "heldout_cells.json").read_text())
    assert [len(c["heldout"]) for c in split] == [30, 6]  # 10% of 300 Kang and 60 pancreas cells
    checkpoints = sorted(p.name for p in (tmp_path / "model" / "training" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000004", "step-00000006"]  # the last two, the final step included


def test_same_seed_same_weights_and_another_seed_differs(tmp_path, tiny_corpora):
    pretrain(tiny_corpora, tmp_path / "a", settings(max_steps=3), progress=False)
    pretrain(tiny_corpora, tmp_path / "b", settings(max_steps=3), progress=False)
    pretrain(tiny_corpora, tmp_path / "c", settings(max_steps=3, seed=1), progress=False)
    a, b, c = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_killed_run_resumes_to_the_same_weights(tmp_path, tiny_corpora, monkeypatch):
    """Killed mid-epoch after the step-4 checkpoint, resumed: ends exactly as an uninterrupted run."""
    pretrain(tiny_corpora, tmp_path / "straight", settings(), progress=False)

    real_append = LossLog.append

    def dies_after_logging_step_5(log, row):
        real_append(log, row)
        if row["step"] == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(LossLog, "append", dies_after_logging_step_5)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_corpora, tmp_path / "resumed", settings(), progress=False)
    monkeypatch.setattr(LossLog, "append", real_append)
    result = pretrain(tiny_corpora, tmp_path / "resumed", settings(), resume=True, progress=False)
    assert result.steps == 6
    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    log = pd.read_csv(result.loss_log)
    assert log["step"].tolist() == [1, 2, 3, 4, 5, 6]  # the step logged after the checkpoint is not doubled
    straight_log = pd.read_csv(tmp_path / "straight" / "training" / "loss.csv")
    assert log["tokens"].tolist() == straight_log["tokens"].tolist()  # totals continue from the checkpoint's
    assert log["seconds"].is_monotonic_increasing and result.tokens_seen == straight_log["tokens"].iloc[-1]


def test_resume_and_overwrite_rules(tmp_path, tiny_corpora):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        pretrain(tiny_corpora, tmp_path / "none", settings(), resume=True, progress=False)
    (tmp_path / "none").mkdir(exist_ok=True)
    pretrain(tiny_corpora, tmp_path / "run", settings(max_steps=2), progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(tiny_corpora, tmp_path / "run", settings(max_steps=2), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        pretrain(tiny_corpora, tmp_path / "run", settings(max_steps=4, batch_size=4), resume=True, progress=False)


def test_values_species_and_priors_train_together(tmp_path, tiny_corpora):
    genes = ["CD3E", "LYZ", "MS4A1", "NKG7", "Ins1"]
    prior = pd.DataFrame(torch.randn(len(genes), 4, generator=torch.Generator().manual_seed(0)).numpy(), index=genes)
    result = pretrain(
        tiny_corpora,
        tmp_path / "full",
        settings(max_steps=2, use_values=True, use_species=True),
        priors={"custom": prior},
        progress=False,
    )
    model = CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "full")
    assert model.config.use_values and model.config.species == ["human", "mouse"]
    matrix = model.cellshift.inputs.priors["custom"].matrix
    assert (matrix.abs().sum(1) > 0).sum() == 4  # four of the five symbols are in the vocabulary (Ins1 is mouse)
    log = pd.read_csv(result.loss_log)
    assert log["value_loss"].notna().all()


def test_corpora_with_different_gene_tables_are_refused(tmp_path, tiny_corpora, kang_small):
    other = tokenize(kang_small, tmp_path / "gc30M", max_length=64, min_genes=50, progress=False)
    with pytest.raises(ValueError, match="same --gene-table"):
        pretrain([tiny_corpora[0], other.path], tmp_path / "m", settings(), progress=False)


def test_a_values_model_needs_a_corpus_with_values(tmp_path, tiny_corpora, kang_small):
    table = Corpus.open(tiny_corpora[0]).gene_table()
    plain = tokenize(kang_small, tmp_path / "plain", gene_table=table, max_length=64, min_genes=50, progress=False)
    assert "values" not in plain.metadata["columns"]
    with pytest.raises(ValueError, match="tokenize --values"):
        pretrain([plain.path], tmp_path / "m", settings(max_steps=1, use_values=True), progress=False)


def test_gene_head_starts_from_the_log_frequency_of_genes(tmp_path, tiny_corpora):
    pretrain(tiny_corpora, tmp_path / "m", settings(max_steps=1, learning_rate=1e-12), progress=False)
    model = CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "m")
    split = json.loads((tmp_path / "m" / "training" / "heldout_cells.json").read_text())
    cells = open_corpora(tiny_corpora)
    counts = np.zeros(model.config.vocab_size)
    for corpus, record in zip(cells.corpora, split, strict=True):
        for row in set(range(corpus["n_cells"])) - set(record["heldout"]):
            np.add.at(counts, np.asarray(cells.dataset[corpus["offset"] + row]["input_ids"]), 1)
    counts[model.config.special_token_ids] = 0
    expected = np.log((counts + 1) / (counts.sum() + len(counts)))
    np.testing.assert_allclose(model.gene_head.decoder.bias.detach().numpy(), expected, rtol=1e-5)
