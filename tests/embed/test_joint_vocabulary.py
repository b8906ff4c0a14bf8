"""The joint human + mouse vocabulary end to end: medians -> tokenise -> pre-train -> embed."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from cellshift.data import GeneTable, human_keys
from cellshift.embed.model_cells import embed_model
from cellshift.models.inputs import encode_cells
from cellshift.models.loading import load_encoder
from cellshift.tokenize import Corpus, compute_gene_medians, tokenize
from cellshift.training import PretrainSettings, pretrain
from cellshift.training.evaluation import evaluate_model_dir

MIN_GENES = 50


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, kang_small, pancreas_path):
    """A tiny model pre-trained 2 steps on 300 Kang PBMCs (human) and 60 pancreas cells (mouse), joint vocabulary."""
    folder = tmp_path_factory.mktemp("joint")
    pancreas = folder / "pancreas60.h5ad"
    ad.read_h5ad(pancreas_path)[:60].copy().write_h5ad(pancreas)
    medians = compute_gene_medians([kang_small, pancreas], vocabulary="joint", min_genes=MIN_GENES, progress=False)
    table = GeneTable.from_medians(medians, name="joint")
    options = dict(gene_table=table, max_length=64, min_genes=MIN_GENES, values=True, progress=False)
    corpora = [tokenize(kang_small, folder / "kang", **options), tokenize(pancreas, folder / "pancreas", **options)]
    keys = human_keys(table.tokens)
    linked = [(t, k) for t, k in zip(table.tokens, keys, strict=True) if t.startswith("mouse:") and k is not None]
    prior = pd.DataFrame(
        np.random.default_rng(0).normal(size=(20, 4)), index=list(dict.fromkeys(k for _, k in linked))[:20]
    )
    settings = PretrainSettings(preset="tiny", max_steps=2, batch_size=8, save_every=2, log_every=1, use_values=True)
    result = pretrain([c.path for c in corpora], folder / "model", settings, priors={"grn": prior}, progress=False)
    return dict(corpora=corpora, table=table, prior=prior, linked=linked, result=result, pancreas=pancreas)


def test_joint_corpora_keep_mouse_genes_without_a_human_ortholog(joint_run):
    kang, pancreas = joint_run["corpora"]
    assert kang.vocabulary == pancreas.vocabulary == "joint"
    genes = pancreas.metadata["inputs"][0]
    mouse = ad.read_h5ad(joint_run["pancreas"])
    n_expressed = int((np.asarray((mouse.X > 0).sum(axis=0)).ravel() > 0).sum())
    assert genes["n_unmapped_ids"] == 0 and genes["n_in_vocabulary"] == n_expressed  # every expressed mouse gene
    assert n_expressed > 6471  # more than the file's genes with a one-to-one human ortholog
    tokens = np.asarray(joint_run["table"].tokens)
    for corpus, species in ((kang, "human"), (pancreas, "mouse")):
        rows = Corpus.open(corpus.path).dataset()
        assert set(rows["species"]) == {species}
        is_mouse = np.char.startswith(tokens[np.concatenate(rows["input_ids"])].astype(str), "mouse:")
        assert is_mouse.all() if species == "mouse" else not is_mouse.any()


def test_pretraining_a_joint_vocabulary_adds_the_species_embedding_and_maps_mouse_priors(joint_run):
    model = load_encoder(joint_run["result"].model_dir)
    assert model.config.species == ["human", "mouse"] and model.gene_table.vocabulary == "joint"
    matrix = model.inputs.priors["grn"].matrix.numpy()
    table, prior = model.gene_table, joint_run["prior"]
    checked = 0
    for mouse, human in joint_run["linked"]:
        if human in prior.index:
            np.testing.assert_allclose(matrix[table.token_id(mouse)], prior.loc[human].to_numpy(), rtol=1e-6)
            checked += 1
    assert checked >= 20


def test_a_joint_model_embeds_human_and_mouse_cells(joint_run, kang_small, pancreas_path):
    model_dir = joint_run["result"].model_dir
    model = load_encoder(model_dir)
    for path, species in ((kang_small, "human"), (pancreas_path, "mouse")):
        adata = ad.read_h5ad(path)[:20].copy()
        cells = encode_cells(adata, model)
        assert cells.species == species
        tokens = np.asarray(model.gene_table.tokens)[cells.tokens.input_ids].astype(str)
        assert np.char.startswith(tokens, "mouse:").all() == (species == "mouse")
        embed_model(adata, model_dir, batch_size=8, device="cpu", progress=False)
        embedding = adata.obsm["X_cellshift"]
        assert embedding.shape == (20, model.config.hidden_size) and np.isfinite(embedding).all()


def test_a_joint_model_refuses_an_ortholog_corpus_naming_both_vocabularies(tmp_path, joint_run, kang_small):
    ortholog = tokenize(kang_small, tmp_path / "ortholog", min_genes=MIN_GENES, values=True, progress=False)
    with pytest.raises(ValueError, match="ortholog vocabulary; the model has the joint vocabulary"):
        evaluate_model_dir(joint_run["result"].model_dir, ortholog.path, progress=False)
