import anndata as ad
import numpy as np
import pytest

from cellshift.cli import main
from cellshift.data import GeneTable, human_keys, resolve_to_human_ensembl
from cellshift.datasets import bundled_corpora
from cellshift.tokenize import Corpus, compute_gene_medians, load_corpus, tokenize
from cellshift.training import open_corpora

MIN_GENES = 100
# a few dozen cells express about half of a file's genes: the tokenizer's warning about the others is expected
pytestmark = pytest.mark.filterwarnings("ignore:.*are not in gene table")


@pytest.fixture(scope="module")
def pancreas60(tmp_path_factory, pancreas_path):
    """The first 60 Bastidas-Ponce mouse pancreas cells (7,192 mouse symbols), as a file of their own."""
    path = tmp_path_factory.mktemp("pancreas") / "pancreas60.h5ad"
    ad.read_h5ad(pancreas_path)[:60].copy().write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def baron(tmp_path_factory):
    """12 human and 12 mouse Baron cells in shuffled order (one file), and each species in a file of its own."""
    adata = ad.read_h5ad(bundled_corpora()["baron2016_pancreas"])
    rows = np.concatenate([np.flatnonzero(adata.obs["species"] == name)[:12] for name in ("human", "mouse")])
    folder = tmp_path_factory.mktemp("baron")
    paths = {"mixed": folder / "mixed.h5ad"}
    adata[np.random.default_rng(0).permutation(rows)].copy().write_h5ad(paths["mixed"])
    for name in ("human", "mouse"):
        paths[name] = folder / f"{name}.h5ad"
        adata[rows[adata.obs["species"].iloc[rows] == name]].copy().write_h5ad(paths[name])
    return paths


@pytest.fixture(scope="module")
def baron_corpora(tmp_path_factory, baron):
    """The mixed Baron file tokenised per cell species in each vocabulary, with tables from its own medians."""
    folder = tmp_path_factory.mktemp("baron_corpora")
    corpora = {}
    for vocabulary in ("ortholog", "joint"):
        medians = compute_gene_medians(
            baron["mixed"], species_key="species", vocabulary=vocabulary, min_genes=MIN_GENES, progress=False
        )
        table = GeneTable.from_medians(medians, name=vocabulary)
        corpora[vocabulary] = tokenize(
            baron["mixed"],
            folder / vocabulary,
            gene_table=table,
            species_key="species",
            min_genes=MIN_GENES,
            values=True,
            progress=False,
        )
    return corpora


@pytest.mark.parametrize("vocabulary", ["ortholog", "joint"])
def test_per_species_medians_of_a_mouse_file_make_a_table_that_tokenises_it(tmp_path, pancreas60, vocabulary):
    table_path = tmp_path / "table.tsv"
    common = ["--species", "mouse", "--min-genes", str(MIN_GENES), "--quiet"]
    assert main(["medians", str(pancreas60), "--vocabulary", vocabulary, "--out", str(table_path), *common]) == 0
    table = GeneTable.load(table_path)
    adata = ad.read_h5ad(pancreas60)
    expressed = adata.var_names[np.asarray((adata.X > 0).sum(axis=0)).ravel() > 0]
    if vocabulary == "joint":  # every expressed mouse gene keeps a token of its own (PISD is written Pisd by MGI)
        expected = {"mouse:" + ("Pisd" if gene == "PISD" else gene) for gene in expressed}
    else:  # mouse genes with a one-to-one human ortholog, under its Ensembl ID
        expected = set(resolve_to_human_ensembl(list(expressed), species="mouse")[0].target) - {None}
    assert set(table.tokens[4:]) == expected and table.vocabulary == vocabulary
    out = tmp_path / "corpus"
    assert main(["tokenize", str(pancreas60), "--gene-table", str(table_path), "--out", str(out), *common]) == 0
    corpus = Corpus.open(out)
    assert corpus.vocabulary == vocabulary and corpus.n_cells == 60


def test_a_mouse_gene_has_the_same_median_in_both_vocabularies(pancreas60):
    ortholog = compute_gene_medians(pancreas60, species="mouse", min_genes=MIN_GENES, progress=False)
    joint = compute_gene_medians(pancreas60, species="mouse", vocabulary="joint", min_genes=MIN_GENES, progress=False)
    assert len(joint) > len(ortholog) > 5000
    human = human_keys(list(joint.index))
    linked = [(token, key) for token, key in zip(joint.index, human, strict=True) if key is not None]
    assert len(linked) == len(ortholog)
    np.testing.assert_array_equal(joint[[t for t, _ in linked]].to_numpy(), ortholog[[k for _, k in linked]].to_numpy())


def test_medians_that_would_keep_no_gene_fail_in_one_line_and_write_nothing(tmp_path, pancreas60, capsys):
    out = tmp_path / "table.tsv"
    options = ["--species", "mouse", "--min-genes", "100000", "--quiet"]
    assert main(["medians", str(pancreas60), *options, "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "min_genes=100000" in error
    assert not out.exists()


@pytest.mark.parametrize("vocabulary", ["ortholog", "joint"])
def test_mixed_species_cells_are_tokenised_as_each_species_alone(tmp_path, baron, baron_corpora, vocabulary):
    corpus = baron_corpora[vocabulary]
    rows = corpus.dataset()
    mixed = ad.read_h5ad(baron["mixed"])
    assert rows["cell_id"] == list(mixed.obs_names) and rows["species"] == list(mixed.obs["species"])
    for name in ("human", "mouse"):
        alone = tokenize(
            baron[name],
            tmp_path / name,
            gene_table=corpus.gene_table(),
            species=name,
            min_genes=MIN_GENES,
            values=True,
            progress=False,
        ).dataset()
        index = {cell: i for i, cell in enumerate(rows["cell_id"])}
        for cell, tokens, values in zip(alone["cell_id"], alone["input_ids"], alone["values"], strict=True):
            assert rows[index[cell]]["input_ids"] == tokens and rows[index[cell]]["values"] == values
    report = corpus.metadata["inputs"][0]
    assert report["species_key"] == "species" and set(report["by_species"]) == {"human", "mouse"}


def test_joint_vocabulary_gives_mouse_cells_mouse_tokens_and_human_cells_human_tokens(baron_corpora):
    corpus = baron_corpora["joint"]
    tokens = np.asarray(corpus.gene_table().tokens)
    for row in corpus.dataset():
        is_mouse = np.char.startswith(tokens[row["input_ids"]].astype(str), "mouse:")
        assert is_mouse.all() if row["species"] == "mouse" else not is_mouse.any()


def test_mixing_vocabularies_is_refused_naming_both(baron_corpora):
    paths = [baron_corpora["joint"].path, baron_corpora["ortholog"].path]
    for load in (load_corpus, open_corpora):
        with pytest.raises(ValueError, match="ortholog vocabulary but .* joint vocabulary"):
            load(paths)
    assert len(load_corpus([paths[0], paths[0]])) == 2 * baron_corpora["joint"].n_cells


def test_vocabulary_and_species_options_are_checked(tmp_path, baron, baron_corpora):
    ortholog_table = baron_corpora["ortholog"].gene_table()
    with pytest.raises(ValueError, match="'joint' was asked for, but gene table .* ortholog vocabulary"):
        tokenize(baron["mouse"], tmp_path / "a", gene_table=ortholog_table, vocabulary="joint", progress=False)
    with pytest.raises(ValueError, match="not both"):
        tokenize(baron["mixed"], tmp_path / "b", species="human", species_key="species", progress=False)
    with pytest.raises(KeyError, match="not an obs column"):
        compute_gene_medians(baron["mixed"], species_key="organism", progress=False)
    adata = ad.read_h5ad(baron["mixed"])
    adata.obs["species"] = adata.obs["species"].astype(str).str.replace("mouse", "Mus musculus")
    with pytest.raises(ValueError, match="Mus musculus"):
        tokenize(adata, tmp_path / "c", species_key="species", progress=False)
