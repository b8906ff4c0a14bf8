import numpy as np
import pandas as pd
import pytest

from cellshift import datasets
from cellshift.cli import main


@pytest.fixture(scope="module")
def small_screen(tmp_path_factory):
    """Papalexi control cells and three targets (two strong, one weak), 150 cells each at most."""
    adata = datasets.papalexi2021()
    rng = np.random.default_rng(0)
    keep = []
    for label, n in [("non-targeting", 800), ("STAT1", 150), ("JAK2", 150), ("CAV1", 150)]:
        cells = np.flatnonzero(adata.obs["target_gene"] == label)
        keep.extend(rng.choice(cells, size=min(n, len(cells)), replace=False))
    path = tmp_path_factory.mktemp("screen") / "screen.h5ad"
    adata[np.sort(keep)].copy().write_h5ad(path)
    return path


def test_degs_then_score_from_the_command_line(tmp_path, small_screen, capsys):
    screen = ["--perturbation-key", "target_gene", "--control", "non-targeting"]
    assert main(["degs", str(small_screen), *screen, "--out", str(tmp_path / "degs.csv")]) == 0
    summary = pd.read_csv(tmp_path / "degs.csv").set_index("perturbation")
    assert list(summary.columns) == ["n_cells", "n_degs", "knockdown", "status"]
    assert summary.loc["STAT1", "n_degs"] > summary.loc["CAV1", "n_degs"]
    assert summary.loc["STAT1", "knockdown"] < 0.6
    assert (tmp_path / "degs.genes.csv").exists()

    args = [
        "score",
        str(small_screen),
        *screen,
        "--embedding",
        "pca",
        "--metrics",
        "edistance,cosine_edistance",
        "--n-null",
        "30",
        "--degs",
        str(tmp_path / "degs.csv"),
        "--out",
        str(tmp_path / "scores.csv"),
    ]
    assert main(args) == 0
    scores = pd.read_csv(tmp_path / "scores.csv").set_index("perturbation")
    for column in ["n_cells", "edistance", "edistance_z", "edistance_pvalue", "cosine_edistance_z", "n_degs"]:
        assert column in scores.columns
    assert scores.loc["STAT1", "edistance_z"] > scores.loc["CAV1", "edistance_z"]
    assert main(args) == 2  # the output exists: never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err

    extras = ["--nulls", str(tmp_path / "nulls.csv"), "--pairs", str(tmp_path / "pairs.csv"), "--overwrite"]
    assert main([*args, *extras, "--pair-perturbations", "STAT1,JAK2,CAV1"]) == 0
    nulls = pd.read_csv(tmp_path / "nulls.csv")
    assert set(nulls["metric"]) == {"edistance", "cosine_edistance"}
    assert len(nulls) == 30 * nulls.groupby("metric")["null_size"].nunique().sum()
    pairs = pd.read_csv(tmp_path / "pairs.csv").set_index(["perturbation_1", "perturbation_2"])
    assert len(pairs) == 3 and {"edistance_z", "cosine_edistance_z"} <= set(pairs.columns)
    # STAT1 and JAK2 act in one pathway: nearer each other than either is to CAV1
    assert pairs.loc[("JAK2", "STAT1"), "edistance_z"] < pairs.loc[("CAV1", "STAT1"), "edistance_z"]


def test_score_per_cell_calls_responders_and_adds_their_fraction(tmp_path, small_screen):
    cells = tmp_path / "cells.csv"
    args = ["score", str(small_screen), "--perturbation-key", "target_gene", "--control", "non-targeting"]
    args += ["--embedding", "pca", "--metrics", "edistance", "--n-null", "20", "--per-cell", str(cells)]
    assert main([*args, "--out", str(tmp_path / "scores.csv")]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv").set_index("perturbation")
    assert scores.loc["STAT1", "fraction_responders"] > scores.loc["CAV1", "fraction_responders"]
    table = pd.read_csv(cells)
    assert list(table.columns) == ["cell", "perturbation", "score", "pvalue", "fdr", "response"]
    assert len(table) == 450 and set(table["response"]) <= {"responder", "non-responder"}
    counts = table.groupby("perturbation")["response"].apply(lambda r: int((r == "responder").sum()))
    assert (counts == scores["n_responders"].reindex(counts.index)).all()


def test_screen_errors_name_the_problem(tmp_path, small_screen, capsys):
    code = main(
        [
            "score",
            str(small_screen),
            "--perturbation-key",
            "guide",
            "--control",
            "non-targeting",
            "--embedding",
            "pca",
            "--out",
            str(tmp_path / "s.csv"),
        ]
    )
    assert code == 2 and "guide" in capsys.readouterr().err
