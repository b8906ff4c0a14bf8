import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import get_embedding, validate_screen


def make_screen():
    labels = ["ctrl"] * 30 + ["A"] * 25 + ["B"] * 5 + ["multi"] * 22
    adata = ad.AnnData(X=np.ones((len(labels), 3)), obs=pd.DataFrame({"guide": labels, "batch": "b1"}))
    adata.obsm["X_emb"] = np.random.default_rng(0).normal(size=(len(labels), 4))
    return adata


def test_groups_are_sorted_into_scored_too_small_and_excluded():
    screen = validate_screen(make_screen(), perturbation_key="guide", control="ctrl", min_cells=20, exclude=["multi"])
    assert screen.groups == ("A",) and screen.sizes == (25,)
    assert screen.too_small == {"B": 5}
    assert screen.excluded == ("multi",)
    assert screen.n_control == 30
    assert screen.scored_mask().sum() == 55


def test_excluded_labels_are_never_controls():
    with pytest.raises(ValueError, match="is excluded"):
        validate_screen(make_screen(), perturbation_key="guide", control="ctrl", exclude=["ctrl"])


def test_missing_key_lists_columns():
    with pytest.raises(KeyError, match="available columns: guide, batch"):
        validate_screen(make_screen(), perturbation_key="target", control="ctrl")


def test_absent_control_lists_common_labels():
    with pytest.raises(ValueError, match=r"'non-targeting' does not occur.*'ctrl' \(30\)"):
        validate_screen(make_screen(), perturbation_key="guide", control="non-targeting")


def test_too_few_controls_says_how_many_are_needed():
    screen = validate_screen(make_screen(), perturbation_key="guide", control="ctrl")
    with pytest.raises(ValueError, match="needs at least 50 control cells.*has 30"):
        screen.require_controls(50, "the null")


def test_embedding_checks():
    adata = make_screen()
    assert get_embedding(adata, "X_emb").dtype == np.float64
    with pytest.raises(KeyError, match="available keys: X_emb"):
        get_embedding(adata, "X_pca")
    adata.obsm["X_emb"][[3, 7], 0] = [np.nan, np.inf]
    with pytest.raises(ValueError, match="NaN or infinite values in 2 of 82 cells"):
        get_embedding(adata, "X_emb")
