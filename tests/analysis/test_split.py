import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.analysis import PerturbationSplit, split_perturbations

N_DEGS = {f"G{i}": n for i, n in enumerate([0, 0, 0, 3, 19, 20, 25, 40, 80, 120, 200, 500, 0, 7])}


def make_screen(n_control=101):
    labels = ["ctrl"] * n_control + [label for label in N_DEGS for _ in range(5)] + ["multi"] * 4
    obs = pd.DataFrame({"guide": labels}, index=[f"cell{i}" for i in range(len(labels))])
    return ad.AnnData(obs=obs)


def summary():
    return pd.DataFrame({"perturbation": list(N_DEGS), "n_cells": 5, "n_degs": list(N_DEGS.values())})


def split(**kwargs):
    kwargs = {"degs": summary(), "perturbation_key": "guide", "control": "ctrl", "test_fraction": 0.25} | kwargs
    return split_perturbations(make_screen(), **kwargs)


def test_perturbations_are_split_by_their_degs_and_never_shared():
    result = split()
    eligible = {label for label, n in N_DEGS.items() if n >= 20}
    assert set(result.train) | set(result.test) == eligible
    assert not set(result.train) & set(result.test)
    assert len(result.test) == 2  # round(0.25 * 7) = 2
    assert result.zero_deg == ("G0", "G1", "G12", "G2")
    assert result.few_degs == ("G13", "G3", "G4")  # 7, 3 and 19 DEGs: below min_degs, above 0
    assert result.n_degs == N_DEGS
    assert "multi" not in {*result.train, *result.test, *result.zero_deg, *result.few_degs}

    none_held_out = split(test_fraction=0)
    assert set(none_held_out.train) == eligible and none_held_out.test == ()
    stricter = split(min_degs=100)
    assert set(stricter.train) | set(stricter.test) == {"G9", "G10", "G11"}
    assert len(stricter.test) == 1  # round(0.75) = 1


def test_control_cells_are_disjoint_and_cover_all_controls():
    adata = make_screen()
    result = split_perturbations(adata, degs=summary(), perturbation_key="guide", control="ctrl")
    shares = [set(result.control_train), set(result.control_validation), set(result.control_test)]
    assert not (shares[0] & shares[1] or shares[0] & shares[2] or shares[1] & shares[2])
    assert set().union(*shares) == set(adata.obs_names[adata.obs["guide"] == "ctrl"])
    assert [len(s) for s in shares] == [81, 10, 10]  # 101 controls, 0.1 * 101 rounds to 10
    assert list(result.control_train) == sorted(result.control_train, key=lambda name: int(name[4:]))  # obs order


def test_same_seed_same_split_other_seed_other_split():
    first, again = split(seed=3), split(seed=3)
    assert first == again
    shuffled = split(degs=summary().sample(frac=1, random_state=1), seed=3)
    assert shuffled == first  # the row order of the summary does not matter
    others = [split(seed=seed) for seed in range(4, 12)]
    assert any(other.test != first.test for other in others)
    assert any(other.control_test != first.control_test for other in others)


def test_save_load_round_trip(tmp_path):
    result = split(seed=5)
    path = result.save(tmp_path / "run" / "split.json")
    assert PerturbationSplit.load(path) == result
    assert json.loads(path.read_text())["min_degs"] == 20
    with pytest.raises(FileExistsError, match="already exists"):
        result.save(path)
    split(seed=6).save(path, overwrite=True)
    assert PerturbationSplit.load(path) == split(seed=6)
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # no temporary file left behind


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match=r"the most is 500 \('G11'\); lower --min-degs"):
        split(min_degs=501)
    with pytest.raises(ValueError, match="too few for 1 test"):
        split(min_degs=201)  # only G11 reaches it
    with pytest.raises(ValueError, match="summing to 1"):
        split(control_fractions=(0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="test_fraction"):
        split(test_fraction=1.0)
    with pytest.raises(ValueError, match=r"not perturbations of obs\['guide'\].*'ctrl'"):
        split(degs=pd.concat([summary(), pd.DataFrame({"perturbation": ["ctrl"], "n_degs": [0]})]))
    with pytest.raises(ValueError, match="more than once"):
        split(degs=pd.concat([summary(), summary().head(1)]))
    with pytest.raises(ValueError, match="non-negative integers"):
        split(degs=summary().assign(n_degs=np.where(np.arange(len(N_DEGS)) == 2, 1.5, summary()["n_degs"])))
    with pytest.raises(KeyError, match="lacks column"):
        split(degs=summary().drop(columns="n_degs"))
    adata = make_screen()
    adata.obs_names = ["same"] * adata.n_obs
    with pytest.raises(ValueError, match="obs_names_make_unique"):
        split_perturbations(adata, degs=summary(), perturbation_key="guide", control="ctrl")
