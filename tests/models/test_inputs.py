from collections import defaultdict

import anndata as ad
import pytest
import torch

from cellshift.embed.model_cells import embed_model
from cellshift.models import CellshiftForMaskedGeneModeling, CellshiftModel, config_from_preset
from cellshift.models.inputs import CellCollator, token_limit
from cellshift.tokenize import Corpus, tokenize
from cellshift.training import FinetuneSettings, PretrainSettings, finetune, pretrain
from cellshift.training.evaluation import evaluate_model_dir

POSITIONS = 48  # the model's input size in these tests; the corpus keeps 64 tokens per cell, so cells are cut


def test_token_limit_leaves_one_position_to_the_species_and_caps_at_max_length(tiny_corpora):
    table = Corpus.open(tiny_corpora[0]).gene_table()
    plain = config_from_preset("tiny", table, max_position_embeddings=POSITIONS)
    with_species = config_from_preset("tiny", table, max_position_embeddings=POSITIONS, species=["human", "mouse"])
    assert token_limit(plain) == 48 and token_limit(with_species) == 47
    assert token_limit(with_species, 40) == 40 and token_limit(plain, 40) == 40  # a cap is a cap, species or not
    assert token_limit(with_species, 100) == 47  # never past what fits
    with pytest.raises(ValueError, match="at least 1"):
        token_limit(plain, 0)


def test_a_cut_cell_keeps_its_eos_token_last(tiny_corpora):
    table = Corpus.open(tiny_corpora[0]).gene_table()
    config = config_from_preset("tiny", table, cls_eos_tokens=True, use_values=True)
    cls, eos = table.token_id("<cls>"), table.token_id("<eos>")
    genes = table.gene_ids[:8].tolist()
    cells = [[cls, *genes, eos], [cls, genes[0], eos]]
    batch = CellCollator(config, max_length=5).pad(cells, [[0, *range(1, 9), 0], [0, 1, 0]])
    assert batch.input_ids.tolist() == [[cls, *genes[:3], eos], [cls, genes[0], eos, 0, 0]]
    assert batch.values[0].tolist() == [0, 1, 2, 3, 0]  # the values follow their tokens
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


@pytest.mark.parametrize(
    ("max_length", "special_tokens", "tokens_read"),
    [(None, False, POSITIONS - 1), (40, True, 40)],
    ids=["whole-input", "max-length-cap-with-cls-eos"],
)
def test_every_path_feeds_a_cell_to_the_model_identically(
    tmp_path, monkeypatch, kang_small, tiny_corpora, max_length, special_tokens, tokens_read
):
    """Pre-training, evaluation, fine-tuning and embedding give one cell the same tokens, values, species and mask."""
    adata = ad.read_h5ad(kang_small)[:80].copy()
    adata.obs["perturbation"] = ["A"] * 15 + ["B"] * 15 + ["control"] * 50
    table = Corpus.open(tiny_corpora[0]).gene_table()
    corpus = tokenize(
        adata,
        tmp_path / "corpus",
        gene_table=table,
        max_length=64,
        special_tokens=special_tokens,
        values=True,
        min_genes=50,
    )
    seen = defaultdict(list)  # path -> (tokens, values, species) of every cell that reached the model
    phase = {"now": None}
    real_masked, real_encoder = CellshiftForMaskedGeneModeling.forward, CellshiftModel.forward

    def record(input_ids, attention_mask, values, species_ids, labels=None):
        original = input_ids if labels is None else torch.where(labels != -100, labels, input_ids)
        for i in range(len(original)):
            n = int(attention_mask[i].sum())
            assert attention_mask[i, :n].all()  # real tokens first, then padding
            seen[phase["now"]].append(
                (tuple(original[i, :n].tolist()), tuple(values[i, :n].tolist()), int(species_ids[i]))
            )

    def masked_spy(self, input_ids, attention_mask=None, values=None, species_ids=None, labels=None, **options):
        record(input_ids, attention_mask, values, species_ids, labels)
        return real_masked(self, input_ids, attention_mask, values, species_ids, labels, **options)

    def encoder_spy(self, input_ids, attention_mask=None, values=None, species_ids=None, **options):
        if phase["now"] in ("finetune", "embed"):  # pre-training and evaluation were recorded with their labels
            record(input_ids, attention_mask, values, species_ids)
        return real_encoder(self, input_ids, attention_mask, values, species_ids, **options)

    monkeypatch.setattr(CellshiftForMaskedGeneModeling, "forward", masked_spy)
    monkeypatch.setattr(CellshiftModel, "forward", encoder_spy)
    model_options = {"max_position_embeddings": POSITIONS}
    settings = PretrainSettings(
        preset="tiny",
        use_values=True,
        use_species=True,
        max_steps=2,
        batch_size=8,
        max_length=max_length,
        model_options=model_options,
    )
    phase["now"] = "pretrain"
    pretrain([corpus.path], tmp_path / "model", settings, progress=False)
    phase["now"] = "evaluate"
    evaluate_model_dir(tmp_path / "model", corpus.path, progress=False)  # reads max_length from the run's settings
    phase["now"] = "finetune"
    controls = adata.obs_names[adata.obs["perturbation"] == "control"]
    tuned = FinetuneSettings(max_steps=2, batch_size=4, max_length=max_length)
    finetune(
        tmp_path / "model",
        adata,
        tmp_path / "tuned",
        perturbation_key="perturbation",
        perturbations=["A", "B"],
        control_cells=controls,
        settings=tuned,
        progress=False,
    )
    phase["now"] = "embed"
    embed_model(adata, tmp_path / "model", max_length=max_length, device="cpu", progress=False)

    embedded = {tokens: rest for tokens, *rest in seen["embed"]}
    assert len(embedded) == adata.n_obs  # every cell once, and no two cells alike: tokens name a cell
    assert max(len(tokens) for tokens in embedded) == tokens_read  # the limit bites
    if special_tokens:
        assert all(tokens[-1] == table.token_id("<eos>") for tokens in embedded)
    for path in ("pretrain", "evaluate", "finetune"):
        assert seen[path], path
        for tokens, *rest in seen[path]:
            assert tokens in embedded, f"{path} fed a cell that embedding never saw ({len(tokens)} tokens)"
            assert embedded[tokens] == rest, path  # the same values and species
