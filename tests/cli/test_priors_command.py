import json

import numpy as np
import pandas as pd
import pytest

from cellshift.cli import main
from cellshift.priors import load_priors
from cellshift.priors.vocabulary import vocabulary_rows


@pytest.fixture
def families_file(tmp_path):
    table = pd.DataFrame({"gene": ["STAT1", "STAT2", "STAT3", "IRF1", "IRF2", "CD14"], "family": list("SSSIIC")})
    table.to_csv(tmp_path / "families.csv", index=False)
    return tmp_path / "families.csv"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_build_then_pretrain_with_the_priors_directory(tmp_path, tiny_corpora, kang_small, families_file, capsys):
    priors = tmp_path / "priors"
    build = ["priors", "build", "--grn", "trrust", "--families", str(families_file), "--coexpression", str(kang_small)]
    code = main(
        [*build, "--min-correlation", "0.6", "--min-cells", "20", "--dim", "8", "--out", str(priors), "--quiet"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "grn:" in printed and "family: 6 genes x" in printed and "manifest sha256" in printed
    built = load_priors(priors)
    model = tmp_path / "model"
    pretrain = ["pretrain", str(tiny_corpora[0]), "--out", str(model), "--preset", "tiny", "--values"]
    assert main([*pretrain, "--priors", str(priors), "--max-steps", "3", "--batch-size", "8", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "pre-trained 3 steps" in printed
    assert "prior grn: " in printed and "prior coexpression: " in printed
    config = json.loads((model / "config.json").read_text())
    assert config["prior_manifest"] == built.sha256
    assert config["prior_dims"] == {name: table.shape[1] for name, table in built.tables.items()}

    from cellshift.models import CellshiftForMaskedGeneModeling

    loaded = CellshiftForMaskedGeneModeling.from_pretrained(model)
    matrix = loaded.cellshift.inputs.priors["family"].matrix.numpy()
    rows, positions = vocabulary_rows(built.tables["family"].index, loaded.gene_table)
    np.testing.assert_allclose(matrix[positions], built.tables["family"].to_numpy()[rows], rtol=1e-6)
    assert np.count_nonzero(np.abs(matrix).sum(axis=1)) == len(positions) >= 4
    assert f"prior family: {len(positions)} of " in printed


def test_bad_priors_input_is_one_line_and_writes_nothing(tmp_path, tiny_corpora, families_file, capsys):
    (tmp_path / "anonymous.fa").write_text(">seq1\nACGTACGTAC\n>seq2\nTTTTGGGGCC\n")
    out = tmp_path / "priors"
    assert main(["priors", "build", "--promoter", str(tmp_path / "anonymous.fa"), "--out", str(out)]) == 2
    assert "recognisable gene ID" in one_error_line(capsys) and not out.exists()
    assert main(["priors", "build", "--families", str(families_file), "--dim", "4", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["priors", "build", "--families", str(families_file), "--out", str(out)]) == 2
    assert "--overwrite" in one_error_line(capsys)

    model = tmp_path / "model"
    pretrain = ["pretrain", str(tiny_corpora[0]), "--out", str(model), "--preset", "tiny", "--quiet", "--priors"]
    tables = {
        "nowhere": pd.DataFrame(np.ones((2, 3)), index=["not_a_gene", "ENSG99999999999"]),
        "holes": pd.DataFrame([[1.0, np.nan], [2.0, 3.0]], index=["STAT1", "IRF1"]),
        "twice": pd.DataFrame(np.ones((2, 2)), index=["STAT1", "STAT1"]),
    }
    expected = {"nowhere": "is in the vocabulary", "holes": "NaN", "twice": "twice"}
    for name, table in tables.items():
        table.to_csv(tmp_path / f"{name}.tsv", sep="\t")
        assert main([*pretrain, f"{name}={tmp_path / f'{name}.tsv'}"]) == 2
        assert expected[name] in one_error_line(capsys) and not model.exists()
    assert main([*pretrain, str(tmp_path)]) == 2
    assert "not a priors directory" in one_error_line(capsys)
