import argparse

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

import cellshift.tasks.gene_finetuning as gene_finetuning
from cellshift.cli import classify_genes as command
from cellshift.data.gene_table import GeneTable
from cellshift.datasets import dosage_sensitive_tfs, kang2018_pbmc
from cellshift.embed.gene_embeddings import GENE_EMBEDDINGS, grn_gene_embedding
from cellshift.models import CellshiftModel, config_from_preset
from cellshift.tasks import GeneLabels, classify_genes, gene_labels
from cellshift.tasks.gene_classification import cross_validate, t_interval
from cellshift.tasks.gene_label_table import MIN_GENES_PER_CLASS
from cellshift.training import ClassifierSettings


@pytest.fixture(autouse=True)
def one_thread():
    """Small fits: several BLAS threads on a busy 2-core machine are slower than one."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def dosage():
    return gene_labels()


def label_embedding(noise):
    """An embedding whose first dimension is the dosage label plus Gaussian noise, keyed by Ensembl ID."""

    def embed(genes, inputs):
        table = dosage_sensitive_tfs()
        rng = np.random.default_rng(inputs.seed)
        signal = (table["label"] == "sensitive").to_numpy(dtype=float)
        values = np.column_stack([signal + noise * rng.standard_normal(len(table)), rng.standard_normal(len(table))])
        return pd.DataFrame(values, index=table["gene"])

    return embed


def one_hot_embedding(genes, inputs):
    """One dimension per labelled gene: a classifier learns nothing about a gene it did not train on."""
    ids = dosage_sensitive_tfs()["gene"]
    return pd.DataFrame(np.eye(len(ids)), index=ids)


def test_bundled_dosage_labels_are_tidy_and_complete(dosage):
    table = dosage_sensitive_tfs()
    assert list(table.columns) == ["gene", "symbol", "label"]
    assert table["label"].value_counts().to_dict() == {"insensitive": 368, "sensitive": 122}
    assert table["gene"].is_unique and table["gene"].str.startswith("ENSG").all()
    assert isinstance(dosage, GeneLabels) and len(dosage.table) == 490
    assert dosage.positive == "sensitive" and dosage.n_duplicates == 0 and dosage.unknown == ()


def test_symbols_are_mapped_to_the_same_genes_and_duplicates_merged(tmp_path):
    table = dosage_sensitive_tfs()
    approved = table.loc[table["symbol"].isin(["NFIX", "HIVEP2", "DPF1", "IKZF2", "TFAP2D", "ZNF200", "ZBTB32"])]
    extra = pd.DataFrame({"symbol": ["AHRR", "ZNF275", "DMRT3", "NOT_A_GENE"], "label": ["insensitive"] * 4})
    rows = pd.concat([approved[["symbol", "label"]], extra, approved[["symbol", "label"]].iloc[:2]])
    path = tmp_path / "labels.csv"
    rows.rename(columns={"symbol": "gene"}).to_csv(path, index=False)
    assert gene_labels(path).positive == "insensitive"  # a tie: the first label in sorted order
    labels = gene_labels(path, positive="sensitive")
    assert labels.n_duplicates == 2 and labels.unknown == ("NOT_A_GENE",)
    assert len(labels.table) == 10 and labels.positive == "sensitive"
    expected = table.set_index("symbol").loc[labels.table["symbol"], "gene"]
    assert list(labels.table["gene"]) == list(expected)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"gene": ["STAT1", "IRF1", "TP53", "MYC", "JUN"], "label": ["a"] * 5}, "exactly two classes"),
        ({"gene": ["STAT1", "IRF1", "TP53", "MYC", "JUN", "FOS"], "label": ["a"] * 5 + ["b"]}, "at least 5"),
        ({"gene": ["STAT1", "STAT1", "TP53"], "label": ["a", "b", "a"]}, "conflicting labels.*STAT1"),
        ({"gene": ["NOPE1", "NOPE2"], "label": ["a", "b"]}, "none of the 2 labelled genes is a known"),
        ({"gene": ["STAT1", None], "label": ["a", "b"]}, "lack a gene or a label"),
        ({"symbol": ["STAT1"], "label": ["a"]}, "lacks the column"),
    ],
)
def test_bad_labels_are_refused_with_a_clear_message(rows, message):
    with pytest.raises(ValueError, match=message):
        gene_labels(pd.DataFrame(rows))


def test_missing_or_empty_labels_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gene_labels(tmp_path / "absent.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        gene_labels(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("gene,label\n")
    with pytest.raises(ValueError, match="has no rows"):
        gene_labels(tmp_path / "header.csv")
    assert MIN_GENES_PER_CLASS == 5


def test_unknown_method_and_missing_inputs_are_refused(dosage):
    with pytest.raises(ValueError, match="unknown gene embedding.*choose from pca, grn, family, random, model"):
        classify_genes(dosage, methods=["grn", "geneformer"])
    with pytest.raises(ValueError, match="need raw-count cells"):
        classify_genes(dosage, methods=["pca"])
    ten_genes = dosage.table.groupby("label").head(5)
    with pytest.raises(ValueError, match="6-fold cross-validation needs at least 6 of each"):
        classify_genes(ten_genes, methods=["random"], n_folds=6)


def test_a_gene_is_never_in_the_training_and_test_part_of_one_fold(dosage, monkeypatch):
    monkeypatch.setitem(GENE_EMBEDDINGS, "one_hot", one_hot_embedding)
    result = classify_genes(dosage, methods=["one_hot"])
    predictions = result.predictions
    assert predictions["gene"].is_unique and len(predictions) == 490  # each gene tested in exactly one fold
    positives_per_fold = predictions.groupby("fold")["is_positive"].sum()
    assert positives_per_fold.max() - positives_per_fold.min() <= 1  # stratified
    # A one-hot dimension of a test gene is zero in every training gene, so its weight stays zero:
    # all test genes of a fold get the same probability (up to rounding). One leaked gene would stand out.
    spread = predictions.groupby("fold")["probability"].agg(lambda p: p.max() - p.min())
    assert (spread < 1e-9).all()
    assert (result.scores["n_train"] + result.scores["n_test"] == 490).all()


def test_an_embedding_that_encodes_the_label_scores_about_one(dosage, monkeypatch):
    monkeypatch.setitem(GENE_EMBEDDINGS, "label", label_embedding(noise=0.1))
    summary = classify_genes(dosage, methods=["label"]).summary.iloc[0]
    assert summary["auroc_mean"] > 0.99 and summary["auprc_mean"] > 0.97
    assert summary["n_embedded"] == 490 and summary["coverage"] == 1.0


def test_a_random_embedding_scores_about_one_half_over_seeds(dosage):
    aurocs = [classify_genes(dosage, methods=["random"], seed=seed).summary["auroc_mean"][0] for seed in range(8)]
    assert abs(np.mean(aurocs) - 0.5) < 0.06


def test_fold_metrics_and_interval_equal_sklearn_and_scipy(dosage):
    result = classify_genes(dosage, methods=["grn", "random"], seed=3)
    for (method, fold), genes in result.predictions.groupby(["method", "fold"]):
        row = result.scores.set_index(["method", "fold"]).loc[(method, fold)]
        assert row["auroc"] == pytest.approx(roc_auc_score(genes["label"] == "sensitive", genes["probability"]))
        assert row["auprc"] == pytest.approx(average_precision_score(genes["is_positive"], genes["probability"]))
        assert row["n_test"] == len(genes)
    for method, folds in result.scores.groupby("method"):
        low, high = stats.t.interval(0.95, len(folds) - 1, loc=folds["auroc"].mean(), scale=stats.sem(folds["auroc"]))
        summary = result.summary.set_index("method").loc[method]
        assert summary[["auroc_ci_low", "auroc_ci_high"]].tolist() == pytest.approx([low, high])
        assert summary["auprc_mean"] == pytest.approx(folds["auprc"].mean())
    assert t_interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_coverage_counts_the_labelled_genes_an_embedding_has(dosage):
    result = classify_genes(dosage, methods=["grn"])
    names = set(grn_gene_embedding().index)
    covered = dosage.table["gene"].isin(names) | dosage.table["symbol"].isin(names)
    summary = result.summary.iloc[0]
    assert summary["n_labelled"] == 490 and summary["n_embedded"] == covered.sum() < 490
    assert set(result.predictions["gene"]) == set(dosage.table.loc[covered, "gene"])


def test_same_seed_same_numbers(dosage):
    first = classify_genes(dosage, methods=["grn", "random"], seed=1)
    again = classify_genes(dosage, methods=["grn", "random"], seed=1)
    pd.testing.assert_frame_equal(first.scores, again.scores)
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    other = classify_genes(dosage, methods=["grn"], seed=2)
    assert not np.array_equal(first.predictions.query("method == 'grn'")["fold"], other.predictions["fold"])


def test_cross_validate_tests_every_gene_once():
    rng = np.random.default_rng(0)
    is_positive = np.arange(40) < 12
    vectors = rng.standard_normal((40, 3)) + is_positive[:, None]
    scores, folds, probabilities = cross_validate(vectors, is_positive, n_folds=4, seed=0)
    assert sorted(np.bincount(folds)) == [10, 10, 10, 10]
    assert list(scores["n_test_positive"]) == [3, 3, 3, 3]
    assert np.isfinite(probabilities).all() and scores["auroc"].mean() > 0.7


def untrained_model(cells, folder, **options):
    """A tiny untrained model over the cells' genes: plumbing only."""
    table = GeneTable.from_medians(pd.Series(np.linspace(0.5, 5, cells.n_vars), index=cells.var_names), name="kang")
    torch.manual_seed(0)
    model = CellshiftModel(config_from_preset("tiny", table, **options))
    model.gene_table = table
    model.save_pretrained(folder)
    return folder


def test_model_and_pca_embeddings_cover_the_labelled_genes_of_the_cells(dosage, tmp_path):
    cells = kang2018_pbmc()[:300].copy()
    untrained_model(cells, tmp_path / "model", use_values=True)
    result = classify_genes(dosage, methods=["model", "pca"], cells=cells, model_dir=tmp_path / "model", n_folds=3)
    in_cells = dosage.table["gene"].isin(cells.var_names).sum()
    summary = result.summary.set_index("method")
    assert 0 < summary.loc["model", "n_embedded"] <= in_cells and summary.loc["pca", "n_embedded"] == in_cells
    assert ((summary["auroc_ci_low"] >= 0) & (summary["auroc_ci_high"] <= 1)).all()


def test_finetuned_model_is_scored_per_fold_and_never_trains_on_a_test_gene(dosage, tmp_path, monkeypatch):
    cells = kang2018_pbmc()[:300].copy()
    model_dir = untrained_model(cells, tmp_path / "model")
    trained = []
    real_finetune = gene_finetuning.finetune_gene_classifier

    def spy(model, adata, gene_labels, out, **options):
        trained.append((dict(gene_labels), options["settings"]))
        return real_finetune(model, adata, gene_labels, out, **options)

    monkeypatch.setattr(gene_finetuning, "finetune_gene_classifier", spy)
    settings = ClassifierSettings(max_steps=3, learning_rate=1e-3, validation_fraction=0.25, seed=5)
    result = classify_genes(
        dosage,
        methods=["random"],
        cells=cells,
        model_dir=model_dir,
        n_folds=3,
        finetune=True,
        finetune_settings=settings,
    )
    rows = result.predictions[result.predictions["method"] == "model-finetuned"]
    in_cells = dosage.table["gene"].isin(cells.var_names).sum()
    assert 6 <= len(rows) <= in_cells and rows["probability"].between(0, 1).all()
    assert len(trained) == 3 and all(options.seed == 0 for _, options in trained)  # the run's seed
    for fold, (genes, _) in enumerate(trained):
        tested = set(rows.loc[rows["fold"] == fold, "gene"])
        assert not tested & set(genes) and tested | set(genes) == set(rows["gene"])  # no test gene trains
        assert all(
            genes[gene] == label for gene, label in zip(rows["gene"], rows["label"], strict=True) if gene in genes
        )
    summary = result.summary.set_index("method")
    assert summary.loc["model-finetuned", "n_embedded"] == len(rows)
    assert result.scores.query("method == 'model-finetuned'")["n_test"].sum() == len(rows)
    with pytest.raises(ValueError, match="fine-tuning needs raw-count cells"):
        classify_genes(dosage, methods=["random"], model_dir=model_dir, finetune=True)


def parse(argv):
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


def test_command_writes_the_tables_and_figure_and_refuses_to_overwrite(dosage, tmp_path, capsys):
    out = tmp_path / "classified"
    args = parse(["--methods", "grn,random", "--seed", "1", "--out", str(out)])
    assert command.run(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "roc.png", "scores.csv", "summary.csv"]
    expected = classify_genes(dosage, methods=["grn", "random"], seed=1)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), expected.summary)
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), expected.scores)
    written = pd.read_csv(out / "predictions.csv")
    assert list(written.columns) == ["gene", "symbol", "method", "fold", "label", "is_positive", "probability"]
    assert "490 labelled genes" in capsys.readouterr().out
    with pytest.raises(FileExistsError, match="--overwrite"):
        command.run(args)
    assert command.run(parse(["--methods", "random", "--out", str(out), "--overwrite"])) == 0
    assert set(pd.read_csv(out / "summary.csv")["method"]) == {"random"}


def test_command_reads_a_labels_file(tmp_path):
    labels = dosage_sensitive_tfs()[["symbol", "label"]].rename(columns={"symbol": "gene"})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    args = parse(["--labels", str(tmp_path / "labels.csv"), "--methods", "grn", "--out", str(tmp_path / "out")])
    assert command.run(args) == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["n_labelled"][0] >= 480  # a few source symbols are old names without a unique Ensembl ID


def test_command_fine_tunes_with_finetune(tmp_path):
    cells = kang2018_pbmc()[:300].copy()
    cells.write_h5ad(tmp_path / "cells.h5ad")
    model_dir = untrained_model(cells, tmp_path / "model")
    options = [
        "--methods",
        "random",
        "--model",
        str(model_dir),
        "--cells",
        str(tmp_path / "cells.h5ad"),
        "--folds",
        "3",
    ]
    args = parse([*options, "--finetune", "--max-steps", "2", "--freeze-layers", "1", "--out", str(tmp_path / "out")])
    assert command.run(args) == 0
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["method"].tolist() == ["random", "model-finetuned"]
