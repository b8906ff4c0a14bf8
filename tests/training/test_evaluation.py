import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from cellshift.training import PretrainSettings, open_corpora, pretrain
from cellshift.training.evaluation import _rank_spearman, evaluate_masked_genes, evaluate_model_dir
from cellshift.training.gene_frequency import gene_frequency


class Oracle(torch.nn.Module):
    """Scores the true gene of every masked position highest: a perfect masked-gene model."""

    def __init__(self, vocab_size, special):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(
            pad_token_id=0,
            mask_token_id=1,
            special_token_ids=special,
            vocab_size=vocab_size,
            max_position_embeddings=256,
            species=None,
            use_values=False,
            cls_eos_tokens=False,
        )

    def forward(self, input_ids, labels, **_):
        truth = labels[labels != -100]
        return SimpleNamespace(gene_logits=torch.nn.functional.one_hot(truth, self.config.vocab_size).float())


def test_a_perfect_model_scores_one_and_beats_the_frequency_baseline(tiny_corpora):
    cells = open_corpora(tiny_corpora[:1])
    table = cells.gene_table
    rows = np.arange(40)
    frequency = gene_frequency(cells.dataset, np.arange(40, 300), len(table))
    oracle = Oracle(len(table), sorted(table.special_tokens.values()))
    result = evaluate_masked_genes(oracle, cells.dataset, rows, frequency, progress=False)
    assert result.loc["model", ["hits@1", "hits@10", "hits@100"]].tolist() == [1.0, 1.0, 1.0]
    assert result.loc["model", "spearman@100"] == pytest.approx(1.0)
    assert result.loc["frequency", "hits@1"] < 0.5
    n_tokens = np.asarray(cells.dataset["length"])[rows]
    assert result.loc["model", "n_masked"] == np.round(0.15 * n_tokens).sum()  # exactly 15% of each cell


def test_frequency_counts_tokens():
    data = {"input_ids": [[4, 5, 6], [5, 6], [6]]}

    class Rows:
        def select_columns(self, _):
            return self

        def __getitem__(self, rows):
            return {"input_ids": [data["input_ids"][r] for r in rows]}

    assert gene_frequency(Rows(), np.array([0, 1, 2]), 8).tolist() == [0, 0, 0, 0, 1, 2, 3, 0]


def test_rank_spearman_matches_scipy():
    true_top = np.array([10, 11, 12, 13, 14])
    predicted = np.array([11, 10, 12, 99, 14, 13])
    expected = stats.spearmanr(np.arange(5), [1, 0, 2, 5, 4]).statistic  # 13 first appears at 5 -> capped at k=5
    assert _rank_spearman(true_top, predicted, 5) == pytest.approx(expected)


def test_evaluate_a_saved_model_on_its_held_out_cells(tmp_path, tiny_corpora):
    settings = PretrainSettings(preset="tiny", max_steps=2, batch_size=8, heldout_fraction=0.1, log_every=1)
    pretrain(tiny_corpora, tmp_path / "model", settings, progress=False)
    table = evaluate_model_dir(tmp_path / "model", tiny_corpora[0], progress=False)
    assert table.loc["model", "n_cells"] == 30  # the held-out 10% of 300
    assert (
        ((table[["hits@1", "hits@10", "hits@100"]] >= 0) & (table[["hits@1", "hits@10", "hits@100"]] <= 1)).all().all()
    )
    assert (table["hits@1"] <= table["hits@10"]).all() and (table["hits@10"] <= table["hits@100"]).all()


def test_held_out_cells_are_found_by_cell_id_in_a_corpus_tokenised_elsewhere(tmp_path, tiny_corpora):
    settings = PretrainSettings(preset="tiny", max_steps=2, batch_size=8, heldout_fraction=0.1, log_every=1)
    pretrain(tiny_corpora, tmp_path / "model", settings, progress=False)
    by_path = evaluate_model_dir(tmp_path / "model", tiny_corpora[0], progress=False)
    split_file = tmp_path / "model" / "training" / "heldout_cells.json"
    entries = json.loads(split_file.read_text())
    for entry in entries:  # as a packaged model ships it: no local path, held-out cells by ID
        ids = list(open_corpora([entry["path"]]).dataset.select(entry["heldout"])["cell_id"])
        entry.update(path=None, heldout=[], heldout_cell_ids=ids)
    split_file.write_text(json.dumps(entries))
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_corpora[0], copy)
    by_id = evaluate_model_dir(tmp_path / "model", copy, progress=False)
    pd.testing.assert_frame_equal(by_path, by_id)
