import numpy as np
import pandas as pd
import pytest

from cellshift.plotting.training import plot_loss_curve


def pretraining_log():
    steps = np.arange(10, 60, 10)
    return pd.DataFrame(
        {"step": steps, "loss": 5.0 / steps, "gene_loss": 1.0 / steps, "value_loss": 4.0 / steps, "learning_rate": 1e-3}
    )


def finetuning_log():
    steps = np.arange(10, 60, 10)
    return pd.DataFrame(
        {
            "step": steps,
            "loss": 90.0 - steps / 10,
            "similar_loss": 0.8,
            "dissimilar_loss": 180.0 - steps / 5,
            "similar_distance": 1.3,
            "dissimilar_distance": 1.3 + steps / 100,
            "learning_rate": 1e-4,
        }
    )


def test_pretraining_curve_has_losses_and_schedule(tmp_path):
    figure = plot_loss_curve(pretraining_log(), tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG")
    losses, rate = figure.axes
    assert [line.get_label() for line in losses.lines] == ["total", "masked gene (CE)", "masked value (MSE)"]
    assert losses.get_title() == "pre-training loss"


def test_finetuning_curve_shows_pair_distances_against_the_margin(tmp_path):
    log = finetuning_log()
    log.to_csv(tmp_path / "loss.csv", index=False)
    figure = plot_loss_curve(tmp_path / "loss.csv", margin=20.0)
    losses, distances, rate = figure.axes
    assert losses.get_title() == "contrastive fine-tuning loss"
    labels = [line.get_label() for line in distances.lines]
    assert labels == ["similar pairs", "dissimilar pairs", "margin 20"]
    np.testing.assert_allclose(distances.lines[1].get_ydata(), log["dissimilar_distance"])
    assert distances.lines[2].get_ydata()[0] == 20.0
    log["validation_loss"] = log["loss"] + 1.0
    log["validation_similar_distance"], log["validation_dissimilar_distance"] = 1.2, 1.4
    losses, distances, _ = plot_loss_curve(log, margin=20.0).axes
    assert [line.get_label() for line in losses.lines][-1] == "validation"
    assert "dissimilar pairs (validation)" in [line.get_label() for line in distances.lines]


def test_other_tables_are_refused():
    with pytest.raises(KeyError, match="not a cellshift loss log"):
        plot_loss_curve(pd.DataFrame({"step": [1], "loss": [1.0]}))
