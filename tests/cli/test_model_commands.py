import pandas as pd

from cellshift.cli import main


def test_pretrain_then_evaluate_from_the_command_line(tmp_path, tiny_corpora, capsys):
    model = tmp_path / "model"
    code = main(
        [
            "pretrain",
            *map(str, tiny_corpora),
            "--out",
            str(model),
            "--preset",
            "tiny",
            "--max-steps",
            "3",
            "--batch-size",
            "8",
            "--quiet",
        ]
    )
    assert code == 0
    assert "pre-trained 3 steps" in capsys.readouterr().out
    assert (model / "training" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["evaluate", str(model), str(tiny_corpora[1]), "--out", str(tmp_path / "eval.csv"), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "frequency" in printed and "hits@10" in printed
    table = pd.read_csv(tmp_path / "eval.csv")
    assert table["method"].tolist() == ["model", "frequency"]


def test_pretrain_reports_bad_input_in_one_line(tmp_path, tiny_corpora, capsys):
    code = main(["pretrain", str(tmp_path / "missing"), "--out", str(tmp_path / "m"), "--quiet"])
    assert code == 2
    assert "is not a cellshift corpus" in capsys.readouterr().err
    code = main(["pretrain", str(tiny_corpora[0]), "--out", str(tmp_path / "m"), "--priors", "nonsense", "--quiet"])
    assert code == 2
    assert "NAME=PATH" in capsys.readouterr().err


def test_embed_cells_with_a_pretrained_model(tmp_path, tiny_corpora, kang_small):
    import anndata as ad

    model = tmp_path / "model"
    assert main(["pretrain", str(tiny_corpora[0]), "--out", str(model), "--preset", "tiny", "--max-steps", "1"]) == 0
    out = tmp_path / "embedded.h5ad"
    assert (
        main(["embed", str(kang_small), "--method", "model", "--model", str(model), "--out", str(out), "--quiet"]) == 0
    )
    embedded = ad.read_h5ad(out)
    assert embedded.obsm["X_cellshift"].shape == (embedded.n_obs, 32)
    assert main(["embed", str(kang_small), "--method", "model", "--out", str(tmp_path / "x.h5ad")]) == 2
