import numpy as np
import pytest

from cellshift.data import check_raw_counts


def test_raw_counts_pass():
    check_raw_counts(np.array([1.0, 2.0, 30.0]), where="X")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([1.0, np.nan]), "NaN or infinite"),
        (np.array([1.0, np.inf]), "NaN or infinite"),
        (np.array([1.0, -0.5]), "looks scaled"),
        (np.array([0.69, 1.1]), "looks log-normalised"),
    ],
)
def test_non_counts_are_rejected_with_the_layer_to_use(values, message):
    with pytest.raises(ValueError, match=message) as info:
        check_raw_counts(values, where="X of a.h5ad", layers=["spliced", "counts"])
    assert "layer='counts'" in str(info.value)
