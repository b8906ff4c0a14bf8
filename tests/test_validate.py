"""One range per numeric option, checked alike by the API and the command line (cellshift._validate)."""

import argparse

import pytest

from cellshift._validate import FRACTION, NULL_DRAWS, POSITIVE, POSITIVE_INT, PROBABILITY, Bounds, check_options
from cellshift.analysis import degs, score_perturbations
from cellshift.data.genes import detect_species
from cellshift.pipelines.screen_run import ScreenSettings
from cellshift.training import FinetuneSettings, PretrainSettings


def test_bounds_describe_parse_and_check():
    assert POSITIVE_INT.describe() == "an integer >= 1"
    assert PROBABILITY.describe() == "a number in (0, 1]"
    assert FRACTION.describe() == "a number in [0, 1)"
    assert NULL_DRAWS.describe() == "an integer >= 2 (a null's spread needs at least 2 draws)"
    assert Bounds(integer=False).describe() == "a finite number"
    assert POSITIVE_INT.parse("3") == 3 and PROBABILITY.parse("1") == 1.0
    for bounds, text in [(POSITIVE_INT, "0"), (POSITIVE_INT, "2.5"), (PROBABILITY, "0"), (POSITIVE, "inf")]:
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            bounds.parse(text)
    for value in (True, "3", 2.0, float("nan")):
        assert not POSITIVE_INT.allows(value)
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1, got 0"):
        POSITIVE_INT.check(0, "max_steps")
    check_options({"max_steps": None, "lr": 1e-3}, {"max_steps": POSITIVE_INT, "lr": POSITIVE})  # None: unset


@pytest.mark.parametrize(
    ("settings", "changes", "name"),
    [
        (PretrainSettings, {"max_steps": 0}, "max_steps"),
        (PretrainSettings, {"max_steps": -3}, "max_steps"),
        (PretrainSettings, {"save_every": 0}, "save_every"),
        (PretrainSettings, {"heldout_fraction": 1.0}, "heldout_fraction"),
        (FinetuneSettings, {"learning_rate": 0.0}, "learning_rate"),
        (FinetuneSettings, {"validation_fraction": -0.1}, "validation_fraction"),
    ],
)
def test_settings_refuse_values_outside_their_range(settings, changes, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        settings(**changes)


def test_screen_settings_and_api_functions_refuse_the_same_values_as_the_cli():
    with pytest.raises(ValueError, match="n_null must be an integer >= 2"):
        ScreenSettings(perturbation_key="target_gene", control="non-targeting", n_null=1)
    with pytest.raises(ValueError, match="n_null must be an integer >= 2"):
        score_perturbations(None, embedding="X_pca", perturbation_key="p", control="c", n_null=0)
    with pytest.raises(ValueError, match=r"fdr must be a number in \(0, 1\]"):
        degs(None, perturbation_key="p", control="c", fdr=1.5)


def test_unknown_genes_are_explained_without_naming_an_option_some_commands_lack():
    with pytest.raises(ValueError, match="none is a known human or mouse") as error:
        detect_species(["gene_a", "gene_b"])
    assert "species='human'" not in str(error.value)
