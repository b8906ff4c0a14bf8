import random
import sys

import numpy as np
import pytest
from scipy import sparse

pytest.importorskip("scvi")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from cellshift.data import log_normalized  # noqa: E402
from cellshift.datasets import papalexi2021  # noqa: E402
from cellshift.embed import embed_pca, embed_scvi  # noqa: E402
from cellshift.embed.scvi import default_max_epochs, default_n_latent, scvi_model  # noqa: E402
from cellshift.metrics import edistance  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: two OpenMP threads on a busy 2-core machine are ~10x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def papalexi():
    return papalexi2021()


@pytest.fixture
def cells300(papalexi):
    rng = np.random.default_rng(0)
    return papalexi[np.sort(rng.choice(papalexi.n_obs, 300, replace=False))].copy()


def test_defaults_scale_latent_and_epochs_with_the_data():
    assert default_n_latent(299) == 29  # Papalexi panel: one latent dimension per ten genes
    assert default_n_latent(20_000) == 300  # DESIGN's 300 on a whole transcriptome
    assert default_n_latent(8) == 2
    assert default_max_epochs(20_729) == 48
    assert default_max_epochs(1_000_000) == 10
    assert default_max_epochs(300) == 400


def test_embed_scvi_writes_finite_latents_and_leaves_the_input_alone(cells300):
    counts, columns = cells300.X.copy(), list(cells300.obs.columns)
    np.random.seed(123)
    random.seed(123)
    torch.manual_seed(123)
    numpy_state, python_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()

    assert embed_scvi(cells300, variant="linear", max_epochs=2) is None

    latent = cells300.obsm["X_scvi_linear"]
    assert latent.shape == (300, 29) and latent.dtype == np.float32
    assert np.isfinite(latent).all() and latent.std(axis=0).max() > 0
    assert (cells300.X != counts).nnz == 0 and list(cells300.obs.columns) == columns
    record = cells300.uns["scvi"]["X_scvi_linear"]
    assert record["model"] == "LinearSCVI" and record["gene_likelihood"] == "zinb" and record["n_latent"] == 29
    assert record["epochs_trained"] == 2 and record["max_epochs"] == 2 and record["seed"] == 0
    assert np.isfinite(record["elbo_validation"])
    # the caller's global random streams continue where they were
    assert np.array_equal(np.random.get_state()[1], numpy_state[1]) and random.getstate() == python_state
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_same_seed_gives_identical_latents_and_another_seed_does_not(cells300):
    first, second, other = cells300.copy(), cells300.copy(), cells300.copy()
    for adata, seed in [(first, 0), (second, 0), (other, 1)]:
        embed_scvi(adata, variant="5l", n_latent=8, max_epochs=2, seed=seed, key_added="X_test")
    np.testing.assert_array_equal(first.obsm["X_test"], second.obsm["X_test"])
    assert not np.allclose(first.obsm["X_test"], other.obsm["X_test"])
    # both variants go side by side under their own keys
    embed_scvi(first, variant="linear", n_latent=4, max_epochs=1)
    assert set(first.uns["scvi"]) == {"X_test", "X_scvi_linear"} and first.obsm["X_scvi_linear"].shape == (300, 4)


def _count(module, kind):
    return sum(isinstance(part, kind) for part in module.modules())


def test_variants_have_their_architectures(cells300):
    linear = scvi_model(cells300, variant="linear", n_latent=12).module
    deep = scvi_model(cells300, variant="5l", n_latent=12, batch_key="bio_rep")
    assert _count(linear.z_encoder.encoder, nn.Linear) == 1  # one hidden encoder layer
    assert _count(linear.decoder, nn.ReLU) == 0  # linear decoder: latent -> genes in one step
    shapes = {(part.in_features, part.out_features) for part in linear.decoder.modules() if isinstance(part, nn.Linear)}
    assert shapes == {(12, 299)}
    assert _count(deep.module.z_encoder.encoder, nn.Linear) == 5
    assert _count(deep.module.decoder, nn.ReLU) == 5
    for module in (linear, deep.module):
        assert module.gene_likelihood == "zinb"
        assert {part.p for part in module.z_encoder.modules() if isinstance(part, nn.Dropout)} == {0.1}
    assert deep.summary_stats.n_batch == 3  # three biological replicates
    assert "_scvi_batch" not in cells300.obs  # scvi-tools registered its own copy


@pytest.mark.parametrize(
    "change, options, error, match",
    [
        ("lognorm", {}, ValueError, "log-normalised"),
        ("empty_cell", {}, ValueError, "no counts"),
        (None, {"layer": "counts"}, KeyError, "layer 'counts' not found"),
        (None, {"variant": "3l"}, ValueError, "unknown scVI variant"),
        (None, {"batch_key": "lane"}, KeyError, "not an obs column"),
        (None, {"max_epochs": 0}, ValueError, "max_epochs must be >= 1"),
    ],
)
def test_bad_input_raises_a_clear_error(cells300, change, options, error, match):
    if change == "lognorm":
        cells300 = log_normalized(cells300)
    elif change == "empty_cell":
        dense = cells300.X.toarray()
        dense[5] = 0
        cells300.X = sparse.csr_matrix(dense)
    with pytest.raises(error, match=match):
        embed_scvi(cells300, **options)
    assert "X_scvi_linear" not in cells300.obsm


def test_missing_scvi_tools_says_how_to_install(cells300, monkeypatch):
    monkeypatch.setitem(sys.modules, "scvi", None)
    with pytest.raises(ImportError, match=r"pip install 'cellshift\[scvi\]'"):
        embed_scvi(cells300)


@pytest.mark.slow
def test_ifngr1_knockout_separates_from_control_beyond_a_permutation_null(papalexi):
    """IFNGR1 knock-out cells lose the IFN-gamma response (Papalexi 2021): a clear shift in scVI space."""
    rng = np.random.default_rng(0)
    labels = papalexi.obs["target_gene"].to_numpy()
    groups = [np.flatnonzero(labels == name) for name in ("non-targeting", "IFNGR1")]
    picked = np.concatenate([rng.choice(group, 300, replace=False) for group in groups])
    cells = papalexi[np.sort(picked)].copy()
    embed_scvi(cells, variant="linear", max_epochs=15)
    embed_pca(cells, n_comps=20)
    knockout = (cells.obs["target_gene"] == "IFNGR1").to_numpy()
    for key in ("X_scvi_linear", "X_pca"):
        points = cells.obsm[key] / np.linalg.norm(cells.obsm[key], axis=1, keepdims=True)
        observed = edistance(points[knockout], points[~knockout])
        shuffles = [rng.permutation(knockout) for _ in range(30)]
        null = [edistance(points[shuffled], points[~shuffled]) for shuffled in shuffles]
        assert observed > 3 * max(null), (key, observed, max(null))
