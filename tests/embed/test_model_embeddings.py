import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from cellshift.data.gene_table import GeneTable
from cellshift.embed.model_cells import embed_model
from cellshift.embed.model_genes import model_gene_embeddings
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.tokenize.in_memory import encode_anndata


@pytest.fixture(scope="module")
def cells_and_model(kang_small):
    adata = ad.read_h5ad(kang_small)[:40].copy()
    medians = pd.Series(np.linspace(0.5, 5, adata.n_vars), index=adata.var_names)
    table = GeneTable.from_medians(medians, name="kang-genes")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, use_values=True)).eval()
    model.gene_table = table
    return adata, model


def one_cell_at_a_time(model, adata):
    """Hidden states of each cell alone (no padding, no batching), computed directly."""
    cells, _ = encode_anndata(
        adata,
        model.gene_table,
        max_length=model.config.max_position_embeddings,
        cls_eos_tokens=model.config.cls_eos_tokens,
    )
    for i in range(adata.n_obs):
        ids, values = cells.cell(i)
        ids = torch.as_tensor(ids, dtype=torch.long)[None]
        with torch.no_grad():
            out = model(ids, values=torch.as_tensor(values)[None], output_hidden_states=True)
        yield ids[0], out.hidden_states


def test_cell_embedding_is_the_mean_of_the_penultimate_layer(cells_and_model):
    adata, model = cells_and_model
    embed_model(adata, model, batch_size=7, progress=False, device="cpu")
    expected = np.stack([states[-2][0].mean(0).numpy() for _, states in one_cell_at_a_time(model, adata)])
    np.testing.assert_allclose(adata.obsm["X_cellshift"], expected, atol=2e-5)
    assert adata.uns["X_cellshift"]["hidden_layer"] == -2


def test_cls_and_eos_tokens_are_added_as_in_training_and_left_out_of_the_mean(cells_and_model):
    adata, model = cells_and_model
    adata = adata[:6].copy()
    model.config.cls_eos_tokens = True
    try:
        embed_model(adata, model, batch_size=4, progress=False, device="cpu")
        pieces = list(one_cell_at_a_time(model, adata))
    finally:
        model.config.cls_eos_tokens = False
    special = model.gene_table.special_tokens
    assert all(ids[0] == special["<cls>"] and ids[-1] == special["<eos>"] for ids, _ in pieces)
    expected = np.stack([states[-2][0, 1:-1].mean(0).numpy() for _, states in pieces])
    np.testing.assert_allclose(adata.obsm["X_cellshift"], expected, atol=2e-5)


def test_cell_embedding_does_not_depend_on_the_batch(cells_and_model):
    adata, model = cells_and_model
    first, second = adata.copy(), adata.copy()
    embed_model(first, model, batch_size=40, progress=False, device="cpu")
    embed_model(second, model, batch_size=3, progress=False, device="cpu")
    np.testing.assert_allclose(first.obsm["X_cellshift"], second.obsm["X_cellshift"], atol=2e-5)


def test_gene_embedding_averages_each_gene_over_the_cells_it_occurs_in(cells_and_model):
    adata, model = cells_and_model
    table = model_gene_embeddings(model, adata, layer=-1, batch_size=9, progress=False, device="cpu")
    sums, counts = {}, {}
    for ids, states in one_cell_at_a_time(model, adata):
        for position, token in enumerate(ids.tolist()):
            sums[token] = sums.get(token, 0) + states[-1][0, position].numpy()
            counts[token] = counts.get(token, 0) + 1
    tokens = [model.gene_table.tokens[t] for t in sorted(sums)]
    assert sorted(table.index) == sorted(tokens)
    for token_id in list(sums)[:25]:
        gene = model.gene_table.tokens[token_id]
        np.testing.assert_allclose(table.loc[gene].to_numpy(), sums[token_id] / counts[token_id], atol=2e-5)


def test_cells_without_vocabulary_genes_are_an_error(cells_and_model):
    adata, model = cells_and_model
    empty = adata[:3].copy()
    empty.X = empty.X * 0
    with pytest.raises(ValueError, match="3 cells"):
        embed_model(empty, model, progress=False, device="cpu")
