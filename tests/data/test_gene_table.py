import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellshift.data import GeneTable

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "geneformer"


@pytest.mark.parametrize("corpus", ["gc30M", "gc95M"])
def test_bundled_tables_equal_geneformer_dictionaries(corpus):
    if not SHARED.exists():
        pytest.skip("Geneformer's original pickles are not on this machine")
    tokens = pickle.loads((SHARED / corpus / f"token_dictionary_{corpus}.pkl").read_bytes())
    medians = pickle.loads((SHARED / corpus / f"gene_median_dictionary_{corpus}.pkl").read_bytes())
    table = GeneTable.load(f"geneformer-{corpus}")
    assert {t: i for i, t in enumerate(table.tokens)} == {t: int(i) for t, i in tokens.items()}
    for i in table.gene_ids[:: max(1, len(table.gene_ids) // 2000)]:
        assert table.medians[i] == medians[table.tokens[i]]


def test_bundled_table_shapes():
    gc30 = GeneTable.load("geneformer-gc30M")
    assert len(gc30) == 25426 and gc30.special_tokens == {"<pad>": 0, "<mask>": 1}
    gc95 = GeneTable.load("geneformer-gc95M")
    assert gc95.special_tokens == {"<pad>": 0, "<mask>": 1, "<cls>": 2, "<eos>": 3}


def test_from_medians_save_load_round_trip_and_hash(tmp_path):
    medians = pd.Series({"ENSG00000141510": 2.5, "ENSG00000012048": 1.25, "ENSG00000000003": 0.0})
    table = GeneTable.from_medians(medians, name="mine")
    assert table.tokens == ("<pad>", "<mask>", "<cls>", "<eos>", "ENSG00000012048", "ENSG00000141510")
    loaded = GeneTable.load(table.save(tmp_path / "t.tsv.gz"))
    assert loaded.tokens == table.tokens
    np.testing.assert_array_equal(loaded.medians, table.medians)
    assert loaded.sha256 == table.sha256
    changed = GeneTable.from_medians(medians * 2, name="mine")
    assert changed.sha256 != table.sha256


def test_bad_tables_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="cellshift medians"):
        GeneTable.load("no-such-table")
    bad = tmp_path / "bad.tsv"
    bad.write_text("token\ttoken_id\tmedian\n<pad>\t0\t\nENSG1\t2\t1.0\n")
    with pytest.raises(ValueError, match="token_id must be"):
        GeneTable.load(bad)
    bad.write_text("token\ttoken_id\tmedian\n<pad>\t0\t\nENSG1\t1\t\n")
    with pytest.raises(ValueError, match="median > 0"):
        GeneTable.load(bad)
