import anndata as ad
import numpy as np
import pandas as pd
import torch
from scipy import sparse

from cellshift.data import GeneTable
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.models.inputs import CellCollator
from cellshift.models.pooling import mean_over_genes
from cellshift.models.priors import align_prior
from cellshift.tokenize import tokenize

TP53, GCG, SST = "ENSG00000141510", "ENSG00000115263", "ENSG00000157005"


def test_mouse_tokens_of_a_joint_vocabulary_take_their_human_orthologs_prior_rows():
    tokens = [TP53, GCG, "mouse:Trp53", "mouse:Gcg", "mouse:Xist"]
    table = GeneTable.from_medians(pd.Series(1.0, index=tokens), name="joint")
    frame = pd.DataFrame(np.arange(6.0).reshape(2, 3) + 1, index=["TP53", "GCG"])  # indexed by human symbols
    matrix = align_prior(frame, table)
    row = {token: matrix[table.token_id(token)] for token in tokens}
    np.testing.assert_array_equal(row["mouse:Trp53"], frame.loc["TP53"])
    np.testing.assert_array_equal(row["mouse:Gcg"], row[GCG])
    np.testing.assert_array_equal(row["mouse:Xist"], 0)  # no human ortholog
    assert not matrix[list(table.special_tokens.values())].any()


def test_two_cells_differing_only_in_species_reach_the_model_as_two_species(tmp_path):
    """obs species -> the corpus's species column -> the collator's species index -> the species embedding."""
    genes = ["GCG", "SST", "ACTB", "TTR", "SOX9", "PPY"]  # upper-case symbols, as Baron writes both species
    counts = np.array([[5, 3, 9, 7, 1, 2], [5, 3, 9, 7, 1, 2]], dtype=np.float32)
    adata = ad.AnnData(
        sparse.csr_matrix(counts),
        obs=pd.DataFrame({"species": ["human", "mouse"]}, index=["h", "m"]),
        var=pd.DataFrame(index=genes),
    )
    corpus = tokenize(adata, tmp_path / "c", species_key="species", min_genes=0, progress=False)
    rows = corpus.dataset()
    assert rows["species"] == ["human", "mouse"] and rows[0]["input_ids"] == rows[1]["input_ids"]
    table = corpus.gene_table()
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, species=["human", "mouse"])).eval()
    batch = CellCollator(model.config)(rows, [0, 1])
    assert batch.species_ids.tolist() == [0, 1]
    with torch.no_grad():
        states = model(**batch.model_inputs()).last_hidden_state
    cells = mean_over_genes(states, batch.input_ids, batch.attention_mask, model.config.special_token_ids)
    assert not torch.allclose(cells[0], cells[1], atol=1e-3)
