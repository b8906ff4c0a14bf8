import numpy as np
import pandas as pd
import pytest
import torch

from cellshift.cli import main
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import kang2018_pbmc
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.tasks import InsilicoSettings, insilico_perturb
from cellshift.tasks.cell_tokens import load_cells
from cellshift.tasks.perturbation_ops import perturb_cell
from cellshift.tasks.perturbation_stats import draw_null_genes, summarise_shifts
from cellshift.tokenize import tokenize

CELL = np.array([2, 10, 11, 12, 13, 14, 15, 16, 17, 3])  # <cls> 8 genes <eos>
VALUES = np.array([0.0, 8, 7, 6, 5, 4, 3, 2, 1, 0])


@pytest.fixture(scope="module")
def kang():
    cells = kang2018_pbmc()
    chosen = np.concatenate(
        [np.flatnonzero(cells.obs["cluster_id"] == name)[:12] for name in ("CD14+ Monocytes", "B cells")]
    )
    return cells[chosen].copy()


@pytest.fixture(scope="module")
def tiny_model(kang):
    table = GeneTable.from_medians(pd.Series(np.linspace(0.5, 5, kang.n_vars), index=kang.var_names), name="kang")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, use_values=True))  # untrained: plumbing only
    model.gene_table = table
    return model


def test_deletion_removes_exactly_the_token_and_nothing_else():
    ids, values = perturb_cell(CELL, VALUES, (13,), "delete", special_tokens=True)
    assert ids.tolist() == [2, 10, 11, 12, 14, 15, 16, 17, 3]
    assert values.tolist() == [0, 8, 7, 6, 4, 3, 2, 1, 0]
    both, _ = perturb_cell(CELL, VALUES, (10, 17), "delete", special_tokens=True)
    assert both.tolist() == [2, 11, 12, 13, 14, 15, 16, 3]
    with pytest.raises(ValueError, match="not in the cell"):
        perturb_cell(CELL, VALUES, (99,), "delete", special_tokens=True)


def test_overexpression_puts_the_gene_first_with_the_largest_value():
    ids, values = perturb_cell(CELL, VALUES, (15,), "overexpress", special_tokens=True)
    assert ids.tolist() == [2, 15, 10, 11, 12, 13, 14, 16, 17, 3]
    assert values[1] == 8 and sorted(ids.tolist()) == sorted(CELL.tolist())
    inserted, inserted_values = perturb_cell(CELL[1:-1], VALUES[1:-1], (99,), "overexpress")
    assert inserted.tolist() == [99, 10, 11, 12, 13, 14, 15, 16, 17] and inserted_values[0] == 8


def test_inhibit_and_activate_move_by_a_quantile_of_the_ranks():
    genes, values = CELL[1:-1], VALUES[1:-1]  # 8 genes: shift 0.25 -> 2 positions
    down, _ = perturb_cell(genes, values, (11,), "inhibit", shift=0.25)
    up, up_values = perturb_cell(genes, values, (16,), "activate", shift=0.25)
    assert down.tolist() == [10, 12, 13, 11, 14, 15, 16, 17]
    assert up.tolist() == [10, 11, 12, 13, 16, 14, 15, 17] and up_values[4] == 4
    bottom, _ = perturb_cell(genes, values, (17,), "inhibit", shift=0.25)
    assert bottom.tolist() == genes.tolist()


def test_null_genes_are_drawn_near_the_rank_and_never_from_the_tested_genes():
    genes = np.arange(100, 200)
    rng = np.random.default_rng(0)
    draws = [draw_null_genes(genes, (150,), rng, excluded=np.array([150, 151]), absent_pool=genes) for _ in range(200)]
    drawn = np.array([d[0] for d in draws])
    assert set(drawn) <= set(range(145, 156)) - {150, 151}
    absent = draw_null_genes(genes, (7,), rng, excluded=np.array([7]), absent_pool=np.array([5, 7, 120]))
    assert absent == (5,)


def test_rank_sum_statistics_find_a_planted_effect():
    rng = np.random.default_rng(0)
    rows = []
    for perturbation, effect in ((0, 0.5), (1, 0.0), (2, 0.0)):
        rows += [
            {"perturbation": perturbation, "draw": 0, "cosine_shift": effect + rng.normal(0, 0.1)} for _ in range(40)
        ]
        rows += [{"perturbation": perturbation, "draw": 1, "cosine_shift": rng.normal(0, 0.1)} for _ in range(40)]
    table = summarise_shifts(pd.DataFrame(rows), ["cosine_shift"])
    assert table.loc[0, "cosine_shift_fdr"] < 1e-6
    assert (table.loc[[1, 2], "cosine_shift_fdr"] > 0.05).all()
    assert table["n_cells"].tolist() == [40, 40, 40]


def test_insilico_run_tables_skips_and_reproducibility(kang, tiny_model, tmp_path):
    settings = InsilicoSettings(operation="delete", n_null=2, affected=True, batch_size=16, chunk_size=2)
    genes = ["LYZ", "CD74", "CD79A", "NOT_A_GENE", "ENSG00000000003"]
    run = dict(genes=genes, start_state="cluster_id=CD14+ Monocytes", goal_state="cluster_id=B cells", progress=False)
    result = insilico_perturb(kang, tiny_model, settings=settings, checkpoint_dir=tmp_path / "parts", **run)
    assert set(result.skipped["gene"]) >= {"NOT_A_GENE", "ENSG00000000003"}
    assert {"cosine_shift_mean", "cosine_shift_fdr", "shift_to_goal_mean", "shift_to_goal_pvalue"} <= set(result.shifts)
    assert (result.shifts["n_cells"] <= 12).all() and result.shifts["shift_to_goal_mean"].is_monotonic_decreasing
    assert set(result.per_cell["draw"]) == {0, 1, 2} and not result.affected.empty
    assert result.n_sequences >= len(result.per_cell)
    again = insilico_perturb(kang, tiny_model, settings=settings, **run)
    pd.testing.assert_frame_equal(result.shifts, again.shifts)
    resumed = insilico_perturb(kang, tiny_model, settings=settings, checkpoint_dir=tmp_path / "parts", **run)
    pd.testing.assert_frame_equal(result.shifts, resumed.shifts)


def test_overexpression_of_absent_genes_and_combinations(kang, tiny_model):
    settings = InsilicoSettings(operation="overexpress", combos=2, n_null=1, max_cells=4)
    result = insilico_perturb(
        kang,
        tiny_model,
        genes=["CD79A", "MS4A1", "LYZ"],
        cells="cluster_id=CD14+ Monocytes",
        settings=settings,
        progress=False,
    )
    assert sorted(result.shifts["gene"]) == ["CD79A+LYZ", "CD79A+MS4A1", "MS4A1+LYZ"]
    assert (result.shifts["n_cells"] == 4).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(goal_state="cluster_id=Platelets"), "no cell has cluster_id"),
        (dict(goal_state="cluster_id"), "obs_key=value"),
        (dict(cells="donor=1"), "no obs column"),
        (dict(settings=InsilicoSettings(combos=2, max_passes=50)), "max_passes"),
        (dict(settings=InsilicoSettings(operation="knockdown")), "unknown perturbation"),
        (dict(genes=["NOT_A_GENE"]), "no gene can be perturbed"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(kang, tiny_model, options, message):
    options = {"genes": ["LYZ", "CD74", "S100A8", "FTL"], "progress": False, **options}
    with pytest.raises((ValueError, KeyError), match=message):
        insilico_perturb(kang, tiny_model, **options)


def test_a_corpus_of_another_vocabulary_is_refused(kang, tiny_model, tmp_path):
    table = GeneTable.from_medians(pd.Series(1.0, index=kang.var_names[:500]), name="other")
    tokenize(kang, tmp_path / "corpus", gene_table=table, min_genes=1, progress=False)
    with pytest.raises(ValueError, match="vocabulary"):
        load_cells(tmp_path / "corpus", tiny_model)


def test_command_line_writes_the_tables_and_figure(kang, tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "model")
    kang.write_h5ad(tmp_path / "cells.h5ad")
    argv = ["insilico", str(tmp_path / "cells.h5ad"), "--model", str(tmp_path / "model"), "--genes", "LYZ,CD74,XYZ1"]
    argv += ["--start-state", "cluster_id=CD14+ Monocytes", "--goal-state", "cluster_id=B cells", "--max-cells", "5"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"shifts.csv", "per_cell.csv", "directions.csv", "skipped.csv", "shifts.png", "parts"} <= written
    assert pd.read_csv(tmp_path / "out" / "skipped.csv")["gene"].tolist() == ["XYZ1"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--quiet"]) == 2  # outputs exist: refused
