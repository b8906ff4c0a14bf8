import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import PerturbationSplit
from cellshift.cli import main


@pytest.fixture
def tables(tmp_path):
    """Scores of 12 perturbations, 10 with 0 DEGs; essential genes (PSMA1, RPL3) rank first among them."""
    labels = ["PSMA1", "rpl3", "CD86", "ATF2", "ETV7", "CAV1", "PDCD1LG2", "NFKBIA", "MYC2X", "OR1A1", "STAT1", "JAK2"]
    z = [9.0, 8.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0, -1.0, 40.0, 30.0]
    scores = pd.DataFrame({"perturbation": labels, "n_cells": 60, "edistance_z": z, "cosine_edistance_z": z[::-1]})
    degs = pd.DataFrame({"perturbation": labels, "n_cells": 60, "n_degs": [0] * 10 + [150, 90], "knockdown": 0.5})
    scores.to_csv(tmp_path / "scores.csv", index=False)
    degs.to_csv(tmp_path / "degs.csv", index=False)
    (tmp_path / "mine.txt").write_text("CD86\nATF2\n")
    return tmp_path


def test_enrich_from_the_command_line(tables, capsys):
    args = [
        "enrich",
        str(tables / "scores.csv"),
        "--degs",
        str(tables / "degs.csv"),
        "--gene-set",
        f"essential,{tables / 'mine.txt'}",
        "--top",
        "2,5",
        "--permutations",
        "2000",
        "--metrics",
        "edistance",
        "--out",
        str(tables / "enrichment.csv"),
    ]
    assert main(args) == 0
    assert "0-DEG pool of 10" in capsys.readouterr().out
    table = pd.read_csv(tables / "enrichment.csv").set_index(["gene_set", "top_n"])
    assert list(table["metric"].unique()) == ["edistance"]
    essential = table.loc["essential"]
    assert list(essential["k"]) == [2, 2] and (essential["n_in_set_pool"] == 2).all()
    assert essential.loc[2, "hits"] == "PSMA1;rpl3"  # case-insensitive match, labels as given
    # 2 of 2 from a pool of 10 with 2 in the set: p = 1 / C(10, 2) = 0.022, Bonferroni over 2 n values
    assert essential.loc[2, "p_value"] == pytest.approx(1 / 45, abs=0.015)
    assert essential.loc[2, "p_bonferroni"] == pytest.approx(2 * essential.loc[2, "p_value"])
    assert table.loc[("mine", 5), "k"] == 2 and table.loc[("mine", 2), "k"] == 0
    assert main(args) == 2  # never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--seed", "1"]) == 0


def test_enrich_errors_are_one_line(tables, capsys):
    base = ["enrich", str(tables / "scores.csv"), "--degs", str(tables / "degs.csv"), "--out", str(tables / "e.csv")]
    assert main([*base, "--gene-set", "essentials"]) == 2
    assert "neither a bundled set" in capsys.readouterr().err
    assert main([*base, "--gene-set", "essential", "--top", "3,20"]) == 2
    assert "pool size (10)" in capsys.readouterr().err
    assert main(["enrich", str(tables / "scores.csv"), "--gene-set", "essential", "--out", str(tables / "e.csv")]) == 2
    assert "--degs" in capsys.readouterr().err
    assert not (tables / "e.csv").exists()


def test_split_from_the_command_line(tables, capsys):
    labels = ["non-targeting"] * 50 + [
        label for label in pd.read_csv(tables / "degs.csv")["perturbation"] for _ in (1, 2)
    ]
    obs = pd.DataFrame({"gene": labels}, index=[f"c{i}" for i in range(len(labels))])
    ad.AnnData(X=np.ones((len(labels), 2), dtype=np.float32), obs=obs).write_h5ad(tables / "screen.h5ad")
    args = ["split", str(tables / "degs.csv"), str(tables / "screen.h5ad"), "--perturbation-key", "gene"]
    out = ["--control", "non-targeting", "--out", str(tables / "split.json")]
    assert main([*args, *out, "--min-degs", "100"]) == 2
    assert "too few for 1 test" in capsys.readouterr().err
    assert main([*args, *out, "--min-degs", "50", "--test-fraction", "0.5", "--control-fractions", "0.6,0.2,0.2"]) == 0
    split = PerturbationSplit.load(tables / "split.json")
    assert {*split.train, *split.test} == {"STAT1", "JAK2"} and len(split.test) == 1
    assert len(split.zero_deg) == 10 and split.few_degs == ()
    assert [len(split.control_train), len(split.control_validation), len(split.control_test)] == [30, 10, 10]
    assert "1 train and 1 test perturbations" in capsys.readouterr().out
