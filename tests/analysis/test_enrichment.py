import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cellshift.analysis import load_gene_set, zero_deg_enrichment


def make_tables(n_pool=40, in_set_ranks=(0, 1, 3, 10, 20, 30, 35, 39), seed=0):
    """A 0-DEG pool ranked G0 > G1 > ... by edistance_z; the genes at ``in_set_ranks`` are in the set.

    Two perturbations with DEGs rank above all of them and are in the set: they must be ignored.
    """
    rng = np.random.default_rng(seed)
    labels = [f"G{i}" for i in range(n_pool)] + ["STRONG1", "STRONG2"]
    z = np.concatenate([np.linspace(10, 0, n_pool), [50.0, 60.0]])
    order = rng.permutation(len(labels))  # the row order of the tables must not matter
    scores = pd.DataFrame(
        {
            "perturbation": np.array(labels)[order],
            "n_cells": 50,
            "edistance": z[order] / 10,
            "edistance_z": z[order],
            "edistance_pvalue": 0.5,
            "wasserstein_z": -z[order],  # the reverse ranking
        }
    )
    degs = pd.DataFrame({"perturbation": labels, "n_degs": [0] * n_pool + [30, 200]})
    gene_set = [f"g{i}" for i in in_set_ranks] + ["STRONG1", "STRONG2", "NOTSCREENED"]  # lower case on purpose
    return scores, degs, gene_set


def test_counts_ranks_and_columns_on_a_hand_made_pool():
    scores, degs, genes = make_tables()
    table = zero_deg_enrichment(scores, degs=degs, gene_sets={"toy": genes}, top=(5, 3, 10), n_permutations=999)
    assert list(table.columns) == [
        "gene_set",
        "metric",
        "top_n",
        "n_pool",
        "n_in_set_pool",
        "k",
        "expected",
        "p_value",
        "p_bonferroni",
        "top_perturbations",
        "hits",
    ]
    edistance = table[table["metric"] == "edistance"].set_index("top_n")
    assert list(edistance.index) == [3, 5, 10]
    assert list(edistance["k"]) == [2, 3, 3]  # G0, G1 | G3 | (G10 is 11th)
    assert (edistance["n_pool"] == 40).all() and (edistance["n_in_set_pool"] == 8).all()
    assert edistance.loc[3, "top_perturbations"] == "G0;G1;G2" and edistance.loc[5, "hits"] == "G0;G1;G3"
    np.testing.assert_allclose(edistance["expected"], [3 * 8 / 40, 5 * 8 / 40, 10 * 8 / 40])
    np.testing.assert_allclose(edistance["p_bonferroni"], np.minimum(1, 3 * edistance["p_value"]))
    wasserstein = table[table["metric"] == "wasserstein"].set_index("top_n")
    assert wasserstein.loc[3, "top_perturbations"] == "G39;G38;G37" and list(wasserstein["k"]) == [1, 2, 3]
    assert (table["p_value"] > 0).all() and (table["p_value"] <= 1).all()


def test_p_values_match_the_hypergeometric_tail():
    scores, degs, genes = make_tables()
    n_permutations = 20_000
    table = zero_deg_enrichment(
        scores,
        degs=degs,
        gene_sets={"toy": genes},
        metrics=["edistance"],
        top=(1, 3, 5, 10, 25),
        n_permutations=n_permutations,
    )
    for row in table.itertuples():
        exact = stats.hypergeom.sf(row.k - 1, 40, 8, row.top_n)
        expected = (exact * n_permutations + 1) / (n_permutations + 1)
        error = np.sqrt(exact * (1 - exact) / n_permutations)
        assert abs(row.p_value - expected) <= 4 * error + 1e-12, (row.top_n, row.k, row.p_value, exact)
    exact = (28 * 32 + 56) / 9880  # 2 of the top 3 in the set: (C(8,2) C(32,1) + C(8,3)) / C(40,3)
    assert table.set_index("top_n").loc[3, "p_value"] == pytest.approx(exact, abs=0.01)


def test_all_top_hits_give_the_smallest_p_value():
    scores, degs, genes = make_tables(in_set_ranks=(0, 1, 2))
    table = zero_deg_enrichment(scores, degs=degs, gene_sets={"toy": genes}, metrics=["edistance"], top=(3,))
    row = table.iloc[0]
    assert row["k"] == 3
    exact = 1 / 9880  # one of C(40, 3) subsets holds all three
    assert row["p_value"] == pytest.approx((exact * 10_000 + 1) / 10_001, abs=4 * np.sqrt(exact / 10_000))
    assert row["p_bonferroni"] == row["p_value"]  # one n tested


def test_seeded_and_independent_of_the_other_gene_sets():
    scores, degs, genes = make_tables()
    one = zero_deg_enrichment(scores, degs=degs, gene_sets={"toy": genes}, n_permutations=500, seed=1)
    both = zero_deg_enrichment(
        scores, degs=degs, gene_sets={"other": ["G5", "G6"], "toy": genes}, n_permutations=500, seed=1
    )
    pd.testing.assert_frame_equal(one, both[both["gene_set"] == "toy"].reset_index(drop=True))
    other_seed = zero_deg_enrichment(scores, degs=degs, gene_sets={"toy": genes}, n_permutations=500, seed=2)
    assert not np.array_equal(one["p_value"], other_seed["p_value"])
    assert (one["k"] == other_seed["k"]).all()


def test_n_degs_can_come_from_the_scores_table():
    scores, degs, genes = make_tables()
    merged = scores.merge(degs, on="perturbation")
    with_column = zero_deg_enrichment(merged, gene_sets={"toy": genes}, metrics=["edistance"], n_permutations=200)
    given = zero_deg_enrichment(scores, degs=degs, gene_sets={"toy": genes}, metrics=["edistance"], n_permutations=200)
    pd.testing.assert_frame_equal(with_column, given)


def test_gene_sets_from_bundled_names_and_files(tmp_path):
    name, essential = load_gene_set("essential")
    assert name == "essential" and {"POLR2B", "RPL3", "SF3B1", "PSMA1"} <= set(essential)
    name, cell_cycle = load_gene_set("cell_cycle")
    assert {"PCNA", "TOP2A", "MKI67"} <= set(cell_cycle) and "GAPDH" not in cell_cycle
    path = tmp_path / "mine.txt"
    path.write_text("# my genes\nSTAT1\n\n  JAK2 \n")
    assert load_gene_set(str(path)) == ("mine", ["STAT1", "JAK2"])
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="lists no gene"):
        load_gene_set(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="neither a bundled set"):
        load_gene_set("essentials")


def test_errors_name_the_problem():
    scores, degs, genes = make_tables(n_pool=6, in_set_ranks=(0,))
    sets = {"toy": genes}
    with pytest.raises(ValueError, match=r"pool size \(6\)"):
        zero_deg_enrichment(scores, degs=degs, gene_sets=sets, top=(3, 10))
    with pytest.raises(KeyError, match="available metrics"):
        zero_deg_enrichment(scores, degs=degs, gene_sets=sets, metrics=["cosine_edistance"], top=(3,))
    with pytest.raises(KeyError, match="no 'n_degs' column"):
        zero_deg_enrichment(scores, gene_sets=sets, top=(3,))
    with pytest.raises(ValueError, match="0-DEG pool is empty"):
        zero_deg_enrichment(scores, degs=degs.assign(n_degs=1), gene_sets=sets, top=(3,))
    nan_scores = scores.assign(edistance_z=np.where(scores["perturbation"] == "G2", np.nan, scores["edistance_z"]))
    with pytest.raises(ValueError, match=r"edistance_z is NaN for 0-DEG perturbation\(s\) \['G2'\]"):
        zero_deg_enrichment(nan_scores, degs=degs, gene_sets=sets, top=(3,))
    with pytest.raises(ValueError, match="is empty"):
        zero_deg_enrichment(scores, degs=degs, gene_sets={"none": []}, top=(3,))
    with pytest.raises(ValueError, match="n_permutations"):
        zero_deg_enrichment(scores, degs=degs, gene_sets=sets, top=(3,), n_permutations=0)
    extra = pd.concat([degs, pd.DataFrame({"perturbation": ["UNSCORED"], "n_degs": [0]})])
    with pytest.warns(UserWarning, match=r"1 perturbation\(s\) with 0 DEGs have no score.*UNSCORED"):
        table = zero_deg_enrichment(scores, degs=extra, gene_sets=sets, top=(3,), n_permutations=10)
    assert (table["n_pool"] == 6).all()
