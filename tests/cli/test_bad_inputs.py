"""What cellshift refuses: a table of bad inputs and options, one row each, across every command.

Each row is a command line and a fragment of the one error line it must print. Every row must
end with exit code 2, one line on stderr (``cellshift CMD: error: ...``, no traceback), and no
file created, changed or left behind (hidden temporary folders included), in the inputs' folder
or the outputs' folder. ``{d}`` is the folder of the inputs, ``{o}`` the case's output folder;
``$S`` stands for ``--perturbation-key target_gene --control non-targeting``.
"""

import shlex

import numpy as np
import pytest
from scipy import sparse

from cellshift import datasets
from cellshift.cli import main

EXIT_CODE = 2
SCREEN = "--perturbation-key target_gene --control non-targeting"

CASES = [
    # raw counts: every command that normalises or tokenises counts itself checks them, naming the file
    ("score {d}/log.h5ad $S --embedding pca --out {o}/s.csv", "log.h5ad holds non-integer values"),
    ("score {d}/neg.h5ad $S --embedding hvg --out {o}/s.csv", "holds negative values"),
    ("score {d}/nan.h5ad $S --embedding pca --out {o}/s.csv", "holds 1 NaN or infinite values"),
    ("embed {d}/log.h5ad --method pca,hvg --out {o}/e.h5ad", "looks log-normalised"),
    ("predict-benchmark {d}/log.h5ad $S --out {o}/bench", "looks log-normalised"),
    ("degs {d}/log.h5ad $S --out {o}/degs.csv", "looks log-normalised"),
    ("degs {d}/screen.h5ad $S --layer counts --out {o}/degs.csv", "has no layer 'counts'"),
    ("screen {d}/neg.h5ad $S --out {o}/new", "holds negative values"),
    ("finetune {d}/model {d}/log.h5ad $S --out {o}/tuned", "looks log-normalised"),
    ("annotate --reference {d}/log.h5ad --label-key target_gene --out {o}/ann", "looks log-normalised"),
    ("tokenize {d}/log.h5ad --out {o}/corpus --min-genes 1", "looks log-normalised"),
    ("medians {d}/neg.h5ad --out {o}/medians.tsv --min-genes 1", "holds negative values"),
    # missing perturbation labels are refused with their count and the key, never made a group "nan"
    (
        "score {d}/nanlabel.h5ad $S --embedding pca --out {o}/s.csv",
        "7 of 88 cells have no label (NaN) in obs['target_gene']",
    ),
    ("degs {d}/nanlabel.h5ad $S --out {o}/degs.csv", "7 of 88 cells have no label"),
    ("split {d}/degs.csv {d}/nanlabel.h5ad $S --out {o}/split.json", "7 of 88 cells have no label"),
    ("predict-benchmark {d}/nanlabel.h5ad $S --out {o}/bench", "7 of 88 cells have no label"),
    ("screen {d}/nanlabel.h5ad $S --out {o}/new", "7 of 88 cells have no label"),
    # nothing to compare: only controls, or every group below --min-cells
    ("score {d}/controls.h5ad $S --embedding pca --out {o}/s.csv", "no perturbation besides the control"),
    ("degs {d}/screen.h5ad $S --min-cells 500 --out {o}/degs.csv", "no perturbation has at least 500 cells"),
    (
        "score {d}/screen.h5ad --perturbation-key guide --control non-targeting --embedding pca --out {o}/s.csv",
        "'guide' is not a column",
    ),
    (
        "score {d}/screen.h5ad --perturbation-key target_gene --control NT --embedding pca --out {o}/s.csv",
        "control label 'NT' does not occur",
    ),
    (
        "degs {d}/screen.h5ad $S --exclude multi --out {o}/degs.csv",
        "excluded label(s) ['multi'] (--exclude) do not occur",
    ),
    ("degs {d}/screen.h5ad $S --target-gene-key gene --out {o}/degs.csv", "target gene key 'gene' is not a column"),
    # numeric options outside their meaning are refused when parsed
    ("score {d}/screen.h5ad $S --embedding pca --n-null 1 --out {o}/s.csv", "--n-null: must be an integer >= 2"),
    ("score {d}/screen.h5ad $S --embedding pca --null-size 0 --out {o}/s.csv", "--null-size: must be an integer >= 2"),
    (
        "score {d}/screen.h5ad $S --embedding pca --seed abc --out {o}/s.csv",
        "--seed: must be an integer >= 0, got 'abc'",
    ),
    ("degs {d}/screen.h5ad $S --fdr 1.5 --out {o}/degs.csv", "--fdr: must be a number in (0, 1]"),
    ("score {d}/screen.h5ad $S --embedding pca --per-cell {o}/c.csv --fdr 1 --out {o}/s.csv", "--fdr: must be"),
    ("screen {d}/screen.h5ad $S --fdr 0 --out {o}/new", "--fdr: must be"),
    ("degs {d}/screen.h5ad $S --min-cells 1 --out {o}/degs.csv", "--min-cells: must be an integer >= 2"),
    (
        "split {d}/degs.csv {d}/screen.h5ad $S --test-fraction 1 --out {o}/split.json",
        "--test-fraction: must be a number in [0, 1)",
    ),
    (
        "enrich {d}/degs.csv --gene-set essential --permutations 0 --out {o}/en.csv",
        "--permutations: must be an integer >= 1",
    ),
    ("enrich {d}/degs.csv --gene-set essential --top 3,0 --out {o}/en.csv", "--top: must be an integer >= 1"),
    ("pretrain {d}/corpus --out {o}/model --max-steps 0", "--max-steps: must be an integer >= 1, got 0"),
    ("pretrain {d}/corpus --out {o}/model --max-steps -3", "--max-steps: must be an integer >= 1"),
    ("pretrain {d}/corpus --out {o}/model --save-every 0", "--save-every: must be an integer >= 1"),
    ("pretrain {d}/corpus --out {o}/model --heldout-fraction 1", "--heldout-fraction: must be a number in [0, 1)"),
    ("pretrain {d}/corpus --out {o}/model --lr nan", "--lr: must be a number > 0"),
    ("finetune {d}/model {d}/screen.h5ad $S --out {o}/tuned --margin -1", "--margin: must be a number > 0"),
    ("evaluate {d}/model {d}/corpus --max-cells 0", "--max-cells: must be an integer >= 1"),
    ("embed {d}/screen.h5ad --method pca --seed -1 --out {o}/e.h5ad", "--seed: must be an integer >= 0"),
    ("predict-benchmark {d}/screen.h5ad $S --splits 0 --out {o}/bench", "--splits: must be an integer >= 1"),
    (
        "annotate --reference {d}/screen.h5ad --label-key target_gene --folds 1 --out {o}/ann",
        "--folds: must be an integer >= 2",
    ),
    (
        "annotate --reference {d}/screen.h5ad --label-key target_gene --test-fraction 0 --out {o}/ann",
        "--test-fraction: must be a number in (0, 1)",
    ),
    ("classify-genes --folds 1 --out {o}/genes", "--folds: must be an integer >= 2"),
    (
        "insilico {d}/screen.h5ad --model {d}/model --genes STAT1 --shift 1.5 --out {o}/ins",
        "--shift: must be a number in (0, 1]",
    ),
    ("grn {d}/screen.h5ad --model {d}/model --top-edges 0 --out {o}/grn", "--top-edges: must be an integer >= 1"),
    ("tokenize {d}/screen.h5ad --out {o}/corpus --max-length 0", "--max-length: must be an integer >= 1"),
    ("medians {d}/screen.h5ad --out {o}/medians.tsv --chunk-size 0", "--chunk-size: must be an integer >= 1"),
    ("screen {d}/screen.h5ad $S --out {o}/run --n-null 0", "--n-null: must be an integer >= 2"),
    ("demo --workers 0 --out {o}/demo", "--workers: must be an integer >= 1"),
    # inputs that cannot be read: named, before any work
    ("score {d}/truncated.h5ad $S --embedding pca --out {o}/s.csv", "cannot read {d}/truncated.h5ad as .h5ad"),
    ("embed {d}/table.csv --method pca --out {o}/e.h5ad", "cannot read {d}/table.csv as .h5ad"),
    ("tokenize {d}/truncated.h5ad --out {o}/corpus", "cannot read {d}/truncated.h5ad as .h5ad"),
    ("medians {d}/table.csv --out {o}/medians.tsv", "cannot read {d}/table.csv as .h5ad"),
    ("grn {d}/table.csv --model {d}/model --out {o}/grn", "cannot read {d}/table.csv as .h5ad"),
    ("degs {d}/missing.h5ad $S --out {o}/degs.csv", "missing.h5ad does not exist"),
    ("split {d}/table.csv {d}/screen.h5ad $S --out {o}/split.json", "lacks column(s) ['perturbation', 'n_degs']"),
    (
        "split {d}/screen.h5ad {d}/screen.h5ad $S --out {o}/split.json",
        "cannot read DEGS {d}/screen.h5ad as a CSV table",
    ),
    ("enrich {d}/table.csv --gene-set essential --out {o}/en.csv", "lacks column(s) ['perturbation']"),
    (
        "score {d}/screen.h5ad $S --embedding pca --degs {d}/table.csv --out {o}/s.csv",
        "--degs {d}/table.csv lacks column(s)",
    ),
    (
        "finetune {d}/model {d}/screen.h5ad $S --degs {d}/missing.csv --out {o}/tuned",
        "--degs {d}/missing.csv does not exist",
    ),
    ("pretrain {d}/missing --out {o}/model", "is not a cellshift corpus"),
    ("evaluate {d}/model {d}/missing", "is not a cellshift corpus"),
    # model directories that are not saved models
    ("evaluate {d}/missing {d}/corpus", "MODEL {d}/missing does not exist"),
    ("finetune {d}/missing {d}/screen.h5ad $S --out {o}/tuned", "pre-trained model {d}/missing does not exist"),
    (
        "embed {d}/screen.h5ad --method model --model {d}/corpus --out {o}/e.h5ad",
        "--model {d}/corpus holds no saved model",
    ),
    ("insilico {d}/screen.h5ad --model {d}/missing --genes STAT1 --out {o}/ins", "--model {d}/missing does not exist"),
    (
        "annotate --reference {d}/screen.h5ad --label-key cell --methods model --model {d}/missing --out {o}/ann",
        "--model {d}/missing does not exist",
    ),
    ("classify-genes --model {d}/missing --out {o}/genes", "--model {d}/missing does not exist"),
    ("screen {d}/screen.h5ad $S --model {d}/missing --out {o}/new", "--model {d}/missing does not exist"),
    ("predict-benchmark {d}/screen.h5ad $S --model {d}/missing --out {o}/bench", "--model {d}/missing does not exist"),
    # outputs that cannot be written, or exist: refused before any work, the existing file untouched
    ("score {d}/screen.h5ad $S --embedding pca --out {d}/table.csv/s.csv", "{d}/table.csv is not a writable folder"),
    ("degs {d}/screen.h5ad $S --out {o}/old.csv", "{o}/old.csv already exists"),
    ("score {d}/screen.h5ad $S --embedding pca --nulls {o}/old.csv --out {o}/s.csv", "{o}/old.csv already exists"),
    ("score {d}/screen.h5ad $S --embedding pca --per-cell {o}/old.csv --out {o}/s.csv", "{o}/old.csv already exists"),
    (
        "embed {d}/screen.h5ad --method pca --out {o}/old.csv",
        "already exists; choose another --out or pass --overwrite",
    ),
    ("predict-benchmark {d}/screen.h5ad $S --out {d}/table.csv", "{d}/table.csv is not a writable folder"),
    ("tokenize {d}/screen.h5ad --out {d}/table.csv/corpus --min-genes 1", "{d}/table.csv is not a writable folder"),
    ("pretrain {d}/corpus --out {d}/table.csv/model", "{d}/table.csv is not a writable folder"),
    ("evaluate {d}/model {d}/corpus --out {o}/old.csv", "{o}/old.csv already exists"),
    (
        "insilico {d}/screen.h5ad --model {d}/model --genes STAT1 --out {d}/table.csv",
        "{d}/table.csv is not a writable folder",
    ),
    ("screen {d}/screen.h5ad $S --out {d}/table.csv", "{d}/table.csv is not a writable folder"),
    ("screen {d}/screen.h5ad $S --out {o} --overwrite", "holds other files and no earlier run"),
    ("screen {d}/screen.h5ad $S --out {o}/run --finetuned {o}/run/model --overwrite", "lies in --out"),
    ("demo --out {d}/table.csv/demo", "{d}/table.csv is not a writable folder"),
    ("screen {d}/screen.h5ad $S --out {o}/new --umap MYC", "UMAP perturbation(s) ['MYC'] (--umap) are not scored"),
    ("screen {d}/screen.h5ad $S --out {o}/new --gene-sets nonsense", "nonsense"),
    ("score {d}/screen.h5ad $S --embedding pca --metrics edistance,cosine --out {o}/s.csv", "cosine"),
    # priors: nothing to build, unknown or unreadable sources, sizes outside their meaning
    ("priors build --out {o}/priors", "no prior source given"),
    ("priors build --grn nosuch --out {o}/priors", "neither a bundled network"),
    ("priors build --grn dorothea --dim 0 --out {o}/priors", "--dim: must be an integer >= 1"),
    ("priors build --families hgnc --min-correlation 1.5 --out {o}/priors", "--min-correlation: must be"),
    ("priors build --promoter {d}/promoters.fa --out {o}/priors", "holds a recognisable gene ID"),
    ("priors build --families hgnc --out {o}/old.csv", "{o}/old.csv already exists"),
    # options that do not fit together
    ("embed {d}/screen.h5ad --method model --out {o}/e.h5ad", "--method model needs --model"),
    ("embed {d}/screen.h5ad --method umap --out {o}/e.h5ad", "umap"),
    ("predict-benchmark --out {o}/bench", "give either IN.h5ad"),
    ("annotate --label-key target_gene --out {o}/ann", "give --reference"),
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A small Papalexi screen (60 controls, 3 targets x 25 cells, 3 cells of IRF1) and broken copies of it."""
    adata = datasets.papalexi2021()
    rng = np.random.default_rng(0)
    keep = []
    for label, n in [("non-targeting", 60), ("STAT1", 25), ("JAK2", 25), ("CAV1", 25), ("IRF1", 3)]:
        keep.extend(rng.choice(np.flatnonzero(adata.obs["target_gene"] == label), n, replace=False))
    screen = adata[np.sort(keep)].copy()
    screen.X = sparse.csr_matrix(screen.X, dtype=np.float32)
    folder = tmp_path_factory.mktemp("bad_inputs")
    screen.write_h5ad(folder / "screen.h5ad")
    _variant(screen, lambda x: np.log1p(x)).write_h5ad(folder / "log.h5ad")
    _variant(screen, lambda x: _set_first(x, -1.0)).write_h5ad(folder / "neg.h5ad")
    _variant(screen, lambda x: _set_first(x, np.nan)).write_h5ad(folder / "nan.h5ad")
    unlabelled = screen[:88].copy()
    unlabelled.obs["target_gene"] = unlabelled.obs["target_gene"].astype(object)
    unlabelled.obs.iloc[:7, unlabelled.obs.columns.get_loc("target_gene")] = np.nan
    unlabelled.write_h5ad(folder / "nanlabel.h5ad")
    screen[screen.obs["target_gene"] == "non-targeting"].copy().write_h5ad(folder / "controls.h5ad")
    whole = (folder / "screen.h5ad").read_bytes()
    (folder / "truncated.h5ad").write_bytes(whole[: len(whole) // 2])
    (folder / "table.csv").write_text("a,b\n1,2\n")
    (folder / "degs.csv").write_text("perturbation,n_cells,n_degs,knockdown\nSTAT1,25,30,0.2\nJAK2,25,25,0.3\n")
    (folder / "model").mkdir()
    (folder / "model" / "config.json").write_text("{}")  # passes the check that a model is saved; never loaded
    (folder / "corpus").mkdir()
    (folder / "promoters.fa").write_text(">promoter_1 chr1\nACGTACGTAAAACCCGGGTT\n")  # no gene ID in the header
    return folder


def _variant(adata, change):
    """A copy of ``adata`` whose dense ``X`` went through ``change``."""
    copy = adata.copy()
    copy.X = sparse.csr_matrix(change(copy.X.toarray()))
    return copy


def _set_first(values: np.ndarray, value: float) -> np.ndarray:
    values[0, 0] = value
    return values


def snapshot(folder):
    """Every file and folder under ``folder`` (hidden ones too) with its size and modification time."""
    return {path: (path.stat().st_size, path.stat().st_mtime_ns) for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    ("line", "fragment"), CASES, ids=[f"{i:02d}-{line.split()[0]}" for i, (line, _) in enumerate(CASES)]
)
def test_bad_input_fails_with_one_line_and_writes_nothing(line, fragment, inputs, tmp_path, capsys):
    (tmp_path / "old.csv").write_text("an earlier output\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.html").write_text("an earlier run\n")
    (tmp_path / "run" / "model").mkdir()
    places = {"d": inputs, "o": tmp_path}
    argv = shlex.split(line.replace("$S", SCREEN).format(**places))
    before = snapshot(inputs), snapshot(tmp_path)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refuses options as it parses them
        code = stop.code
    err = capsys.readouterr().err
    assert code == EXIT_CODE, err
    assert err.count("\n") == 1 and err.startswith(f"cellshift {argv[0]}: error: "), err
    assert fragment.format(**places) in err
    assert (snapshot(inputs), snapshot(tmp_path)) == before


def test_the_table_covers_every_command():
    from cellshift.cli import COMMANDS

    covered = {line.split()[0] for line, _ in CASES}
    assert covered == set(COMMANDS)
    assert len(CASES) >= 40


def test_debug_shows_the_traceback(inputs, tmp_path):
    with pytest.raises(ValueError, match="looks log-normalised"):
        main(["degs", str(inputs / "log.h5ad"), *SCREEN.split(), "--out", str(tmp_path / "d.csv"), "--debug"])
