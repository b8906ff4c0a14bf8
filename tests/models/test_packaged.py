import json

import pytest

from cellshift._io import check_model_dir
from cellshift._pretrained import PACKAGED_MODELS, PACKAGED_MODELS_DIR, resolve_model
from cellshift.datasets import bundled_corpora
from cellshift.models import load_pretrained
from cellshift.tokenize import tokenize
from cellshift.training.evaluation import evaluate_model_dir

NAME = PACKAGED_MODELS[0]


def test_a_packaged_model_is_found_by_name_and_a_folder_of_that_name_wins(tmp_path, monkeypatch):
    assert resolve_model(NAME) == PACKAGED_MODELS_DIR / NAME
    assert check_model_dir(NAME) == PACKAGED_MODELS_DIR / NAME
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()
    assert resolve_model(NAME) == tmp_path.joinpath(NAME).relative_to(tmp_path)


def test_the_packaged_model_loads_with_its_gene_table_and_card():
    model = load_pretrained(NAME)
    assert model.gene_table is not None and model.config.vocab_size == len(model.gene_table)
    folder = PACKAGED_MODELS_DIR / NAME
    assert "## Evaluation" in (folder / "MODEL_CARD.md").read_text()
    held_out = json.loads((folder / "training" / "heldout_cells.json").read_text())
    assert {entry["corpus"] for entry in held_out} >= {"kang2018_pbmc", "pancreas_mouse"}


@pytest.mark.slow
def test_the_packaged_model_beats_the_frequency_baseline_on_its_held_out_pbmcs(tmp_path):
    settings = json.loads((PACKAGED_MODELS_DIR / NAME / "training" / "settings.json").read_text())
    corpus = tokenize(
        bundled_corpora()["kang2018_pbmc"],
        tmp_path / "kang",
        gene_table=PACKAGED_MODELS_DIR / NAME / "gene_table.tsv.gz",
        max_length=settings["max_length"],
        min_genes=200,
        progress=False,
    )
    table = evaluate_model_dir(NAME, corpus.path, max_cells=300, progress=False)
    assert table.loc["model", "n_cells"] == 300  # the held-out cells were found by their IDs
    assert table.loc["model", "hits@10"] > table.loc["frequency", "hits@10"]
