import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from cellshift.data.gene_table import GeneTable
from cellshift.models import CellshiftForMaskedGeneModeling, CellshiftModel, config_from_preset
from cellshift.models.geneformer import load_geneformer


@pytest.fixture(scope="module")
def table():
    genes = [f"ENSG{i:011d}" for i in range(1, 57)]
    return GeneTable.from_medians(pd.Series(np.linspace(1, 3, len(genes)), index=genes), name="test")


def batch(table, seed=0, n=3, length=12):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, len(table), (n, length), generator=generator)
    ids[0, length - 4 :] = 0  # padding
    values = torch.rand(n, length, generator=generator)
    return ids, values


FULL = dict(use_values=True, prior_dims={"grn": 6, "family": 3}, species=["human", "mouse"])


def test_presets_follow_the_spec(table):
    v1 = config_from_preset("geneformer-v1", table)
    assert (v1.num_hidden_layers, v1.hidden_size, v1.num_attention_heads, v1.intermediate_size) == (6, 256, 4, 512)
    assert (v1.max_position_embeddings, v1.hidden_act, v1.hidden_dropout_prob) == (2048, "relu", 0.02)
    base = config_from_preset("base", table)
    assert (base.num_hidden_layers, base.hidden_size) == (12, 512)
    assert v1.vocab_size == len(table) and v1.mask_token_id == table.token_id("<mask>")
    with pytest.raises(ValueError, match="unknown model preset"):
        config_from_preset("huge", table)


def test_encoder_uses_sdpa_and_returns_every_layer(table):
    model = CellshiftModel(config_from_preset("tiny", table))
    assert model.config._attn_implementation == "sdpa"
    ids, _ = batch(table)
    out = model(ids, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 12, 32)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_running_the_first_layers_only_gives_that_layers_output(table):
    model = CellshiftModel(config_from_preset("tiny", table, species=["human", "mouse"])).eval()
    ids, _ = batch(table)
    species = torch.tensor([0, 1, 0])
    full = model(ids, species_ids=species, output_hidden_states=True)
    layers = model.config.num_hidden_layers
    for k in range(layers + 1):
        partial = model(ids, species_ids=species, num_layers=k)
        torch.testing.assert_close(partial.last_hidden_state, full.hidden_states[k], rtol=0, atol=1e-6)
    assert len(model.bert.encoder.layer) == layers  # the layer list is left as it was
    with pytest.raises(ValueError, match="num_layers must lie in"):
        model(ids, species_ids=species, num_layers=layers + 1)
    assert len(model.bert.encoder.layer) == layers


@pytest.mark.parametrize(
    "options", [{}, {"use_values": True}, {"prior_dims": {"grn": 6}}, {"species": ["human"]}, FULL]
)
def test_forward_with_every_input_option(table, options):
    torch.manual_seed(0)
    model = CellshiftForMaskedGeneModeling(config_from_preset("tiny", table, **options))
    ids, values = batch(table)
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    out = model(
        ids,
        values=values if model.config.use_values else None,
        species_ids=torch.zeros(3, dtype=torch.long) if model.config.species else None,
        labels=labels,
        value_labels=values,
    )
    assert out.gene_logits.shape == (3, len(table))  # masked positions only
    assert torch.isfinite(out.loss)
    if model.config.use_values:
        expected = 0.2 * out.gene_loss + 0.8 * out.value_loss
        assert torch.allclose(out.loss, expected)
    out.loss.backward()  # every trainable parameter that takes part gets a gradient
    assert model.cellshift.bert.embeddings.word_embeddings.weight.grad is not None


def test_masked_values_are_hidden_from_the_model(table):
    """Changing the value at a masked position must not change any prediction (no target leak)."""
    torch.manual_seed(0)
    model = CellshiftForMaskedGeneModeling(config_from_preset("tiny", table, use_values=True)).eval()
    ids, values = batch(table)
    labels = torch.full_like(ids, -100)
    labels[:, 2] = ids[:, 2]
    changed = values.clone()
    changed[:, 2] += 5.0
    first = model(ids, values=values, labels=labels, value_labels=values)
    second = model(ids, values=changed, labels=labels, value_labels=values)
    assert torch.equal(first.gene_logits, second.gene_logits)
    assert torch.equal(first.value_predictions, second.value_predictions)
    visible = values.clone()
    visible[:, 5] += 5.0  # an unmasked value does count
    third = model(ids, values=visible, labels=labels, value_labels=values)
    assert not torch.equal(first.gene_logits, third.gene_logits)


def test_species_embedding_changes_the_cell_and_is_stripped(table):
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, species=["human", "mouse"])).eval()
    ids, _ = batch(table)
    human = model(ids, species_ids=torch.tensor([0, 0, 0])).last_hidden_state
    mouse = model(ids, species_ids=torch.tensor([1, 1, 1])).last_hidden_state
    assert human.shape == (3, 12, 32)
    assert not torch.allclose(human, mouse)
    with pytest.raises(ValueError, match="species_ids"):
        model(ids)


def test_priors_fill_frozen_buffers_and_change_the_output(table):
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, prior_dims={"grn": 6})).eval()
    ids, _ = batch(table)
    before = model(ids).last_hidden_state
    model.set_prior("grn", torch.randn(len(table), 6))
    assert not torch.allclose(before, model(ids).last_hidden_state)
    assert "inputs.priors.grn.matrix" in dict(model.named_buffers())
    assert not any("matrix" in name for name, _ in model.named_parameters())
    with pytest.raises(ValueError, match="vocabulary x dim"):
        model.set_prior("grn", torch.randn(5, 6))


def test_save_and_load_round_trip_is_exact(tmp_path, table):
    torch.manual_seed(0)
    model = CellshiftForMaskedGeneModeling(config_from_preset("tiny", table, **FULL)).eval()
    model.cellshift.set_prior("grn", torch.randn(len(table), 6))
    model.gene_table = table
    model.save_pretrained(tmp_path / "model")
    assert {"config.json", "model.safetensors", "gene_table.tsv.gz"} <= {p.name for p in (tmp_path / "model").iterdir()}
    loaded = CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "model").eval()
    assert loaded.gene_table.sha256 == table.sha256
    ids, values = batch(table)
    species = torch.tensor([0, 1, 0])
    assert torch.equal(
        model(ids, values=values, species_ids=species).gene_logits,
        loaded(ids, values=values, species_ids=species).gene_logits,
    )
    encoder = CellshiftModel.from_pretrained(tmp_path / "model").eval()  # the backbone alone
    assert torch.equal(
        encoder(ids, values=values, species_ids=species).last_hidden_state,
        model.cellshift(ids, values=values, species_ids=species).last_hidden_state,
    )
    with pytest.raises(FileExistsError):
        model.save_pretrained(tmp_path / "model")


def test_loading_rejects_a_gene_table_of_another_model(tmp_path, table):
    model = CellshiftForMaskedGeneModeling(config_from_preset("tiny", table))
    model.save_pretrained(tmp_path / "model")
    GeneTable.load("geneformer-gc30M").save(tmp_path / "model" / "gene_table.tsv.gz")
    with pytest.raises(ValueError, match="mixes files of two models"):
        CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "model")


def test_loading_names_the_genes_of_a_gene_table_of_the_same_size_but_other_genes(tmp_path, table):
    model = CellshiftForMaskedGeneModeling(config_from_preset("tiny", table))
    model.save_pretrained(tmp_path / "model")
    renamed = {table.tokens[10]: "ENSG99999999999", table.tokens[20]: "ENSG99999999998"}
    other = GeneTable(tuple(renamed.get(t, t) for t in table.tokens), table.medians, "other")
    other.save(tmp_path / "model" / "gene_table.tsv.gz")
    message = f"at 2 of {len(table)} token IDs \\(ID 10: ENSG99999999999 for {table.tokens[10]}, ID 20"
    with pytest.raises(ValueError, match=message):
        CellshiftForMaskedGeneModeling.from_pretrained(tmp_path / "model")
    model.gene_table = other
    with pytest.raises(ValueError, match="mixes files of two models"):
        model.save_pretrained(tmp_path / "again")  # a model refuses to save a gene table that is not its own


def geneformer_layout(folder, vocab_size, seed=0):
    """A small random BertForMaskedLM saved as Geneformer publishes its checkpoints."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_act="relu",
        hidden_dropout_prob=0.02,
        attention_probs_dropout_prob=0.02,
    )
    reference = BertForMaskedLM(config).eval()
    reference.save_pretrained(folder)
    return reference


def test_geneformer_checkpoint_gives_identical_outputs(tmp_path):
    table = GeneTable.load("geneformer-gc30M")
    reference = geneformer_layout(tmp_path / "gf", len(table))
    model = load_geneformer(tmp_path / "gf")
    assert model.gene_table.sha256 == table.sha256
    ids = torch.randint(2, len(table), (4, 40), generator=torch.Generator().manual_seed(1))
    ids[2, 25:] = 0
    mask = (ids != 0).long()
    expected = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    got = model(ids, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(got.gene_logits, expected.logits, atol=1e-5, rtol=0)
    for ours, theirs in zip(got.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_geneformer_pickles_and_vocabulary_checks(tmp_path):
    tokens = {"<pad>": 0, "<mask>": 1} | {f"ENSG{i:011d}": i + 2 for i in range(30)}
    medians = {token: 1.0 + i for i, token in enumerate(tokens) if token.startswith("ENSG")}
    (tmp_path / "token_dictionary.pkl").write_bytes(pickle.dumps(tokens))
    (tmp_path / "gene_median_dictionary.pkl").write_bytes(pickle.dumps(medians))
    geneformer_layout(tmp_path / "gf", len(tokens))
    model = load_geneformer(
        tmp_path / "gf",
        token_dictionary=tmp_path / "token_dictionary.pkl",
        gene_medians=tmp_path / "gene_median_dictionary.pkl",
    )
    assert model.gene_table.tokens[2] == "ENSG00000000000"
    assert model.gene_table.medians[3] == medians["ENSG00000000001"]
    with pytest.raises(ValueError, match="vocabulary has 32 tokens"):
        load_geneformer(tmp_path / "gf")  # gc30M does not fit this checkpoint
