import json

import numpy as np
import pandas as pd
import pytest

from cellshift.priors import PriorSettings, build_priors, load_priors, read_prior_table
from cellshift.priors._genes import file_sha256

SMALL = PriorSettings(dim=8, min_correlation=0.6, min_cells=20)


@pytest.fixture
def inputs(tmp_path, kang_small):
    """A small GRN (one edge below the confidence kept), a family table and a promoter FASTA."""
    grn = pd.DataFrame(
        {
            "TF": ["STAT1", "STAT1", "IRF1", "IRF1", "SPI1", "SPI1"],
            "Target": ["IRF1", "GBP1", "GBP1", "CXCL10", "CD14", "LYZ"],
            "confidence": ["A", "A", "B", "A", "C", "E"],
        }
    )
    grn.to_csv(tmp_path / "grn.tsv", sep="\t", index=False)
    families = pd.DataFrame({"gene": ["STAT1", "STAT2", "STAT3", "IRF1", "IRF2"], "family": list("SSSII")})
    families.to_csv(tmp_path / "families.csv", index=False)
    rng = np.random.default_rng(0)
    fasta = "".join(f">{gene}\n{''.join(rng.choice(list('ACGT'), 200))}\n" for gene in ["TP53", "MYC", "GATA1"])
    (tmp_path / "promoters.fa").write_text(fasta)
    return {
        "grn": ["trrust", str(tmp_path / "grn.tsv")],
        "families": str(tmp_path / "families.csv"),
        "coexpression": kang_small,
        "promoter": tmp_path / "promoters.fa",
    }


def test_build_writes_one_table_per_source_and_a_manifest(tmp_path, inputs):
    built = build_priors(tmp_path / "priors", settings=SMALL, progress=False, **inputs)
    manifest = json.loads((tmp_path / "priors" / "manifest.json").read_text())
    assert manifest == built.manifest and built.sha256 == file_sha256(tmp_path / "priors" / "manifest.json")
    assert sorted(manifest["sources"]) == ["coexpression", "family", "grn", "promoter"]
    assert manifest["settings"]["dim"] == 8 and manifest["settings"]["method"] == "walk"
    for name, source in manifest["sources"].items():
        table = read_prior_table(tmp_path / "priors" / source["file"])
        assert table.shape == (source["n_genes"], source["dim"]) and table.index.str.startswith("ENSG").all(), name
        assert source["sha256"] == file_sha256(tmp_path / "priors" / source["file"])
    grn_inputs = manifest["sources"]["grn"]["inputs"]
    assert [record["name"] for record in grn_inputs] == ["trrust", "grn.tsv"]
    assert grn_inputs[1]["edges_read"] == 5 and grn_inputs[1]["sha256"] == file_sha256(inputs["grn"][1])
    assert manifest["sources"]["family"]["n_genes"] == 5
    assert manifest["sources"]["promoter"]["n_genes"] == 3
    assert manifest["sources"]["coexpression"]["cells"] == 300
    loaded = load_priors(tmp_path / "priors")
    assert loaded.sha256 == built.sha256 and sorted(loaded.tables) == sorted(manifest["sources"])
    family = loaded.tables["family"].to_numpy()
    family = pd.DataFrame(family / np.linalg.norm(family, axis=1, keepdims=True), index=loaded.tables["family"].index)
    stat1, stat2, irf1 = (family.loc[g].to_numpy() for g in ["ENSG00000115415", "ENSG00000170581", "ENSG00000125347"])
    assert stat1 @ stat2 > 0.9 and abs(stat1 @ irf1) < 0.1


def test_build_depends_only_on_inputs_and_seed(tmp_path, inputs):
    first = build_priors(tmp_path / "a", settings=SMALL, progress=False, **inputs)
    second = build_priors(tmp_path / "b", settings=SMALL, progress=False, **inputs)
    assert first.sha256 == second.sha256
    assert (tmp_path / "a" / "grn.tsv.gz").read_bytes() == (tmp_path / "b" / "grn.tsv.gz").read_bytes()
    other = build_priors(tmp_path / "c", grn=inputs["grn"], settings=PriorSettings(dim=8, seed=1), progress=False)
    assert other.manifest["sources"]["grn"]["sha256"] != first.manifest["sources"]["grn"]["sha256"]


def test_bad_requests_write_nothing(tmp_path, inputs):
    with pytest.raises(ValueError, match="no prior source"):
        build_priors(tmp_path / "none")
    with pytest.raises(ValueError, match="walk, spectral"):
        build_priors(tmp_path / "none", grn=["trrust"], settings=PriorSettings(method="node2vec"))
    (tmp_path / "anonymous.fa").write_text(">seq1\nACGTACGTAC\n>seq2\nTTTTGGGGCC\n")
    with pytest.raises(ValueError, match="recognisable gene ID"):
        build_priors(tmp_path / "bad", grn=["trrust"], promoter=tmp_path / "anonymous.fa", progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_priors(tmp_path / "bad", coexpression=tmp_path / "missing.h5ad")
    with pytest.raises(ValueError, match="neither a bundled network"):
        build_priors(tmp_path / "bad", grn=["dorothea", "nonsense"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".bad", "bad", ".none", "none"))]
    build_priors(tmp_path / "done", grn=["trrust"], settings=SMALL, progress=False)
    before = file_sha256(tmp_path / "done" / "manifest.json")
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_priors(tmp_path / "done", families=inputs["families"], settings=SMALL)
    assert file_sha256(tmp_path / "done" / "manifest.json") == before
    replaced = build_priors(tmp_path / "done", families=inputs["families"], settings=SMALL, overwrite=True)
    assert sorted(replaced.manifest["sources"]) == ["family"] and not (tmp_path / "done" / "grn.tsv.gz").exists()


def test_load_refuses_a_table_that_differs_from_the_manifest(tmp_path, inputs):
    build_priors(tmp_path / "priors", families=inputs["families"], settings=SMALL, progress=False)
    table = read_prior_table(tmp_path / "priors" / "family.tsv.gz")
    (table * 2).to_csv(tmp_path / "priors" / "family.tsv.gz", sep="\t")
    with pytest.raises(ValueError, match="differs"):
        load_priors(tmp_path / "priors")
    with pytest.raises(FileNotFoundError, match="not a priors directory"):
        load_priors(tmp_path)


@pytest.mark.slow
def test_bundled_tables_cover_thousands_of_genes(tmp_path):
    built = build_priors(tmp_path / "p", grn=["dorothea", "trrust"], families="hgnc", settings=SMALL, progress=False)
    sources = built.manifest["sources"]
    assert sources["grn"]["n_genes"] > 6000 and sources["family"]["n_genes"] > 20_000
    assert sources["grn"]["graph"]["edges"] > 18_000
