import argparse
import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

import cellshift.tasks.finetuned_classifier as finetuned_module
from cellshift.cli import annotate as command
from cellshift.data import human_to_mouse, log_normalized
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import baron2016_pancreas, kang2018_pbmc
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.tasks import AnnotationSettings, annotate, load_classifier
from cellshift.tasks.annotation_metrics import score_predictions
from cellshift.tasks.cell_splits import cell_folds, holdout_split
from cellshift.tasks.classifiers import CLASSIFIERS


@pytest.fixture(autouse=True)
def one_thread():
    """Small fits: several BLAS threads on a busy 2-core machine are slower than one."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def kang():
    """600 Kang PBMCs, 150 per type, from all 5 donors (raw counts)."""
    cells = kang2018_pbmc()
    rng = np.random.default_rng(0)
    rows = np.concatenate(
        [
            rng.choice(np.flatnonzero(cells.obs["cluster_id"] == t), 150, replace=False)
            for t in cells.obs["cluster_id"].unique()
        ]
    )
    return cells[np.sort(rows)].copy()


@pytest.fixture(scope="module")
def baron():
    cells = baron2016_pancreas()
    return cells[cells.obs["species"] == "human"].copy(), cells[cells.obs["species"] == "mouse"].copy()


def settings(**changes):
    return AnnotationSettings(**{"label_key": "cluster_id", "methods": ("logreg-pca",), **changes})


def test_donor_folds_never_share_a_donor_and_test_every_cell_once(kang):
    donors, tested = kang.obs["sample_id"], []
    for train, test in cell_folds(kang.obs["cluster_id"], donors=donors, n_folds=5, seed=0):
        assert not set(donors.iloc[train]) & set(donors.iloc[test])
        tested.extend(test)
    assert sorted(tested) == list(range(kang.n_obs))
    train, test = holdout_split(kang.obs["cluster_id"], donors=donors, test_fraction=0.2, seed=1)
    assert donors.iloc[test].nunique() == 1 and not set(donors.iloc[train]) & set(donors.iloc[test])


def test_kang_cell_types_are_learned_across_donors(kang):
    result = annotate(kang, settings=settings(methods=("logreg-pca", "logreg"), split_key="sample_id", n_folds=5))
    pooled = result.metrics[result.metrics["fold"] == "all"].set_index("method")
    assert (pooled["n_scored"] == kang.n_obs).all()
    assert (pooled["macro_f1"] > 0.9).all(), pooled
    rows = result.predictions[result.predictions["method"] == "logreg"]
    assert set(rows["cell"]) == set(kang.obs_names)
    expected = f1_score(rows["true"], rows["predicted"], average="macro")
    assert pooled.loc["logreg", "macro_f1"] == pytest.approx(expected)
    assert set(result.confusion) == {"logreg-pca", "logreg"}
    assert result.confusion["logreg"].to_numpy().sum() == kang.n_obs


def test_metrics_score_known_labels_only_and_count_the_others():
    true = pd.Series(["a", "a", "b", "b", "c", np.nan])
    predicted = pd.Series(["a", "b", "b", "b", "a", "a"])
    scores = score_predictions(true, predicted, classes=["a", "b"])
    assert scores["n_scored"] == 4 and scores["n_unknown_label"] == 1
    assert scores["accuracy"] == pytest.approx(3 / 4)
    f1_a, f1_b = 2 * 1 / (2 * 1 + 1), 2 * 2 / (2 * 2 + 1)  # a: tp 1, fn 1; b: tp 2, fp 1
    assert scores["macro_f1"] == pytest.approx((f1_a + f1_b) / 2)


def test_human_to_mouse_pancreas_through_orthologs(baron):
    human, mouse = baron
    upper = annotate(human, mouse.copy(), settings=settings(label_key="cell_type", methods=("logreg",)))
    # The same mouse cells with real mouse symbols (Gcg, not GCG) go through the ortholog table.
    symbols = human_to_mouse(list(mouse.var_names)).target
    keep = [i for i, s in enumerate(symbols) if s is not None]
    real_mouse = ad.AnnData(mouse.X[:, keep], obs=mouse.obs.copy(), var=pd.DataFrame(index=[symbols[i] for i in keep]))
    real_mouse.var_names_make_unique()
    crossed = annotate(human, real_mouse, settings=settings(label_key="cell_type", methods=("logreg",)))
    assert crossed.alignment.query_species == "mouse" and crossed.alignment.reference_species == "human"
    assert crossed.alignment.n_shared > 8000
    for result in (upper, crossed):
        scores = result.metrics.set_index("method").loc["logreg"]
        assert scores["macro_f1"] > 0.8 and scores["n_scored"] == mouse.n_obs
    assert list(real_mouse.obs["cellshift_annotation"].cat.categories) == sorted(human.obs["cell_type"].unique())
    assert real_mouse.obsm["cellshift_annotation_proba"].shape == (mouse.n_obs, 5)
    np.testing.assert_allclose(real_mouse.obsm["cellshift_annotation_proba"].sum(axis=1), 1, atol=1e-6)


def test_query_labels_the_reference_lacks_are_reported_not_scored(baron):
    human, mouse = baron
    reference = human[human.obs["cell_type"] != "macrophage"].copy()
    result = annotate(reference, mouse.copy(), settings=settings(label_key="cell_type"))
    assert dict(result.unknown_labels) == {"macrophage": 35}
    scores = result.metrics.iloc[0]
    assert scores["n_unknown_label"] == 35 and scores["n_scored"] == mouse.n_obs - 35


def test_label_map_renames_labels_in_both_data_sets(baron):
    human, mouse = baron
    merged = {"alpha": "endocrine", "beta": "endocrine", "delta": "endocrine"}
    result = annotate(human, mouse.copy(), settings=settings(label_key="cell_type"), label_map=merged)
    assert result.classifiers["logreg-pca"].classes == ["activated_stellate", "endocrine", "macrophage"]
    assert result.metrics.iloc[0]["n_scored"] == mouse.n_obs


def test_saved_classifier_labels_new_cells_the_same(baron, tmp_path):
    human, mouse = baron
    for method in ("logreg-pca", "logreg"):
        result = annotate(human, mouse.copy(), settings=settings(label_key="cell_type", methods=(method,)))
        result.classifiers[method].save(tmp_path / method)
        again = annotate(None, mouse.copy(), settings=settings(label_key="cell_type"), classifier=tmp_path / method)
        columns = [c for c in result.predictions.columns if c.startswith("proba_")]
        np.testing.assert_allclose(again.predictions[columns], result.predictions[columns], atol=1e-5)  # float32
        assert (again.predictions["predicted"] == result.predictions["predicted"]).all()
    assert load_classifier(tmp_path / "logreg").genes == list(human.var_names)


def untrained_model(cells, folder):
    """A tiny untrained model over the cells' genes: the plumbing only."""
    table = GeneTable.from_medians(pd.Series(np.linspace(0.5, 5, cells.n_vars), index=cells.var_names), name="kang")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table))
    model.gene_table = table
    model.save_pretrained(folder)
    return folder


def test_model_frozen_and_celltypist_run_on_the_same_reference(kang, tmp_path):
    pytest.importorskip("celltypist")
    cells = kang[::3].copy()
    untrained_model(cells, tmp_path / "model")
    result = annotate(
        cells,
        settings=settings(methods=("model-frozen", "celltypist")),
        method_options={"model": str(tmp_path / "model")},
    )
    pooled = result.metrics[result.metrics["fold"] == "all"].set_index("method")
    assert set(pooled.index) == {"model-frozen", "celltypist"}
    assert pooled.loc["celltypist", "macro_f1"] > 0.8
    assert pooled.loc["model-frozen", "n_scored"] > 0


def test_same_seed_same_predictions(kang):
    first = annotate(kang, settings=settings(seed=3))
    second = annotate(kang, settings=settings(seed=3))
    pd.testing.assert_frame_equal(first.predictions, second.predictions)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda a: a.obs.drop(columns="cluster_id", inplace=True), KeyError, "no obs column 'cluster_id'"),
        (lambda a: a.obs.__setitem__("cluster_id", np.nan), ValueError, "holds no labels"),
        (lambda a: a.obs.__setitem__("cluster_id", "T"), ValueError, "one class"),
        (lambda a: a.obs.__setitem__("cluster_id", ["rare"] * 3 + ["T"] * (a.n_obs - 3)), ValueError, "fewer than 5"),
        (lambda a: a.obs.__setitem__("cluster_id", [np.nan, *a.obs["cluster_id"][1:]]), ValueError, "have no label"),
    ],
)
def test_bad_labels_are_refused(kang, change, error, message):
    cells = kang.copy()
    cells.obs["cluster_id"] = cells.obs["cluster_id"].astype(object)
    change(cells)
    with pytest.raises(error, match=message):
        annotate(cells, settings=settings())


def test_normalised_input_and_foreign_genes_are_refused(kang):
    with pytest.raises(ValueError, match="log-normalised"):
        annotate(log_normalized(kang), settings=settings())
    stranger = ad.AnnData(np.ones((5, 3), dtype=np.float32), var=pd.DataFrame(index=["GCG", "INS", "SST"]))
    with pytest.raises(ValueError, match="no query gene matches"):
        annotate(kang, stranger, settings=settings())
    with pytest.raises(ValueError, match="choose from"):
        annotate(kang, settings=settings(methods=("nonsense",)))


def test_cli_trains_saves_and_reuses_a_classifier(baron, tmp_path):
    human, mouse = baron
    human.write_h5ad(tmp_path / "human.h5ad")
    mouse.write_h5ad(tmp_path / "mouse.h5ad")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    common = ["--query", str(tmp_path / "mouse.h5ad"), "--label-key", "cell_type", "--quiet"]
    first = ["--reference", str(tmp_path / "human.h5ad"), "--methods", "logreg", "--out", str(tmp_path / "run")]
    assert command.run(parser.parse_args(common + first)) == 0
    for name in (
        "predictions.csv",
        "metrics.csv",
        "per_class.csv",
        "confusion.png",
        "classifiers/logreg/settings.json",
    ):
        assert (tmp_path / "run" / name).exists(), name
    with pytest.raises(FileExistsError):
        command.run(parser.parse_args(common + first))
    reuse = ["--classifier", str(tmp_path / "run" / "classifiers" / "logreg"), "--out", str(tmp_path / "reuse")]
    assert command.run(parser.parse_args(common + reuse)) == 0
    before, after = (pd.read_csv(tmp_path / d / "predictions.csv") for d in ("run", "reuse"))
    assert (before["predicted"] == after["predicted"]).all()


def test_model_method_fine_tunes_each_fold_on_its_training_cells_only(kang, tmp_path, monkeypatch):
    cells = kang[::3].copy()
    runs = []
    real_finetune = finetuned_module.finetune_cell_classifier

    def spy(model, adata, labels, out, **options):
        runs.append((list(adata.obs_names), options["settings"]))
        return real_finetune(model, adata, labels, out, **options)

    monkeypatch.setattr(finetuned_module, "finetune_cell_classifier", spy)
    options = {"model": str(untrained_model(cells, tmp_path / "model")), "max_steps": 6, "freeze_layers": 1}
    result = annotate(cells, settings=settings(methods=("model",), split_key="sample_id"), method_options=options)
    train, test = holdout_split(cells.obs["cluster_id"], donors=cells.obs["sample_id"], test_fraction=0.2, seed=0)
    # the held-out donor's cells never reach fine-tuning; the classifier kept for new files learns every cell
    assert [names for names, _ in runs] == [list(cells.obs_names[train]), list(cells.obs_names)]
    assert runs[0][1].freeze_layers == 1 and runs[0][1].max_steps == 6 and runs[0][1].learning_rate == 5e-5
    rows = result.predictions
    assert sorted(rows["cell"]) == sorted(cells.obs_names[test]) and set(rows["method"]) == {"model"}
    np.testing.assert_allclose(rows.filter(like="proba_").sum(axis=1), 1, atol=1e-5)
    classifier = result.classifiers["model"]
    classifier.save(tmp_path / "saved")
    again = load_classifier(tmp_path / "saved")
    assert again.classes == classifier.classes == sorted(cells.obs["cluster_id"].unique())
    pd.testing.assert_frame_equal(again.predict_proba(cells[:30]), classifier.predict_proba(cells[:30]))


def test_cli_passes_the_fine_tuning_options_to_method_model(kang, tmp_path):
    cells = kang[::6].copy()
    cells.write_h5ad(tmp_path / "reference.h5ad")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    model = untrained_model(cells, tmp_path / "model")
    arguments = ["--reference", str(tmp_path / "reference.h5ad"), "--label-key", "cluster_id", "--quiet"]
    arguments += ["--methods", "model", "--model", str(model), "--max-steps", "3", "--freeze-layers", "2"]
    assert command.run(parser.parse_args([*arguments, "--out", str(tmp_path / "run")])) == 0
    saved = json.loads((tmp_path / "run" / "classifiers" / "model" / "settings.json").read_text())
    assert saved["options"]["freeze_layers"] == 2 and saved["options"]["max_steps"] == 3
    assert (tmp_path / "run" / "classifiers" / "model" / "model" / "classification.json").exists()


def test_every_method_is_registered():
    assert set(CLASSIFIERS) == {"logreg-pca", "logreg", "model-frozen", "model", "celltypist"}
