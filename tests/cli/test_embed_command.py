import anndata as ad
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from cellshift.cli import main
from cellshift.data import log_normalized
from cellshift.datasets import papalexi2021
from cellshift.embed import embed_hvg, embed_pca


@pytest.fixture(autouse=True)
def one_thread():
    """Small problems: two BLAS/OpenMP threads on a busy 2-core machine are several times slower than one."""
    import scipy.sparse.linalg  # noqa: F401  load every BLAS/OpenMP pool first, so the limit reaches them
    import sklearn.decomposition  # noqa: F401

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def papalexi300(tmp_path_factory):
    """300 random cells of the bundled Papalexi screen (299 genes), as an .h5ad of their own."""
    adata = papalexi2021()
    adata = adata[np.sort(np.random.default_rng(0).choice(adata.n_obs, 300, replace=False))].copy()
    path = tmp_path_factory.mktemp("papalexi") / "papalexi300.h5ad"
    adata.write_h5ad(path)
    return path


def test_embed_pca_and_hvg_write_the_same_values_as_the_python_api(kang_small, tmp_path, capsys):
    out = tmp_path / "embedded.h5ad"
    assert main(["embed", str(kang_small), "--method", "pca,hvg", "--out", str(out)]) == 0
    written, source = ad.read_h5ad(out), ad.read_h5ad(kang_small)
    assert written.obsm["X_pca"].shape == (300, 200)  # 200 components of 2,511 genes
    assert written.obsm["X_hvg"].shape == (300, 300)  # top-300 highly variable genes
    embed_pca(source)
    embed_hvg(source)
    np.testing.assert_array_equal(written.obsm["X_pca"], source.obsm["X_pca"])
    np.testing.assert_array_equal(written.obsm["X_hvg"], source.obsm["X_hvg"])
    assert list(written.uns["X_hvg"]["genes"]) == source.uns["X_hvg"]["genes"]
    assert (written.X != source.X).nnz == 0 and written.obs.equals(source.obs)
    assert [path.name for path in tmp_path.iterdir()] == ["embedded.h5ad"]  # no temporary file left
    assert "X_pca" in capsys.readouterr().out


def test_pca_components_are_capped_by_a_small_panel(papalexi300, tmp_path):
    out = tmp_path / "pca.h5ad"
    assert main(["embed", str(papalexi300), "--method", "pca", "--out", str(out)]) == 0
    assert ad.read_h5ad(out).obsm["X_pca"].shape == (300, 200)
    small = ad.read_h5ad(papalexi300)[:, :50].copy()
    small.write_h5ad(tmp_path / "small.h5ad")
    assert main(["embed", str(tmp_path / "small.h5ad"), "--method", "pca", "--out", str(tmp_path / "s.h5ad")]) == 0
    assert ad.read_h5ad(tmp_path / "s.h5ad").obsm["X_pca"].shape == (300, 49)  # n_genes - 1


def test_embed_refuses_to_replace_an_output_without_overwrite(papalexi300, tmp_path, capsys):
    out = tmp_path / "out.h5ad"
    out.write_text("keep me")
    assert main(["embed", str(papalexi300), "--method", "hvg", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "keep me"
    assert main(["embed", str(papalexi300), "--method", "hvg", "--out", str(out), "--overwrite"]) == 0
    assert ad.read_h5ad(out).obsm["X_hvg"].shape == (300, 299)  # fewer genes than 300: all of them
    capsys.readouterr()
    assert main(["embed", str(out), "--method", "hvg", "--out", str(tmp_path / "again.h5ad")]) == 0
    assert "replacing the input's" in capsys.readouterr().out  # an input's obsm entry is replaced, and said so


def test_embed_rejects_unknown_methods_and_a_model_method_without_a_model(papalexi300, tmp_path, capsys):
    assert main(["embed", str(papalexi300), "--method", "pca,umap", "--out", str(tmp_path / "x.h5ad")]) == 2
    error = capsys.readouterr().err
    assert "'umap'" in error and "pca, hvg, scvi-linear, scvi-5l, model" in error
    assert main(["embed", str(papalexi300), "--method", "model", "--out", str(tmp_path / "x.h5ad")]) == 2
    assert "--model MODEL_DIR" in capsys.readouterr().err and not (tmp_path / "x.h5ad").exists()


def test_embed_scvi_rejects_log_normalised_input(papalexi300, tmp_path, capsys):
    pytest.importorskip("scvi")
    lognorm = tmp_path / "lognorm.h5ad"
    log_normalized(ad.read_h5ad(papalexi300)).write_h5ad(lognorm)
    assert main(["embed", str(lognorm), "--method", "scvi-5l", "--out", str(tmp_path / "y.h5ad")]) == 2
    assert "log-normalised" in capsys.readouterr().err and not (tmp_path / "y.h5ad").exists()


def test_embed_scvi_linear_matches_the_python_api(papalexi300, tmp_path, capsys):
    pytest.importorskip("scvi")
    from cellshift.embed import embed_scvi

    out = tmp_path / "scvi.h5ad"
    command = ["embed", str(papalexi300), "--method", "scvi-linear", "--max-epochs", "2", "--seed", "3"]
    assert main([*command, "--out", str(out)]) == 0
    written, source = ad.read_h5ad(out), ad.read_h5ad(papalexi300)
    embed_scvi(source, variant="linear", max_epochs=2, seed=3)
    assert written.obsm["X_scvi_linear"].shape == (300, 29)
    np.testing.assert_array_equal(written.obsm["X_scvi_linear"], source.obsm["X_scvi_linear"])
    record = written.uns["scvi"]["X_scvi_linear"]
    assert record["seed"] == 3 and record["epochs_trained"] == 2 and record["model"] == "LinearSCVI"
    assert "_scvi_batch" not in written.obs
