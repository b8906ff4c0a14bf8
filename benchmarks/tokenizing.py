"""Benchmark: cellshift's streaming tokenizer against a plain per-cell, in-memory tokenizer.

What is measured
----------------
Rank-value encoding of raw-count ``.h5ad`` files into token-ID lists, gene table
``geneformer-gc30M``, at most 2,048 tokens per cell, ``min_genes=0``, these ways:

* ``plain``: what Geneformer's tokenizer does, written here in full. ``anndata.read_h5ad`` loads
  the whole file; a dictionary (built once) gives each input gene its token and median; then,
  one cell at a time: take the cell's row, keep vocabulary genes, value = count / cell total *
  10,000 / median, sort by descending value, keep the first 2,048 token IDs and append them to a
  list. At the end the lists go through ``datasets.Dataset.from_dict(...).save_to_disk(...)``.
  Nothing is vectorised across cells. Sorting is Geneformer's ``np.argsort(-value)``; in the
  rare cells where two values are equal, the cell is sorted again with ties in ascending token ID
  (``np.lexsort``), as cellshift does, so that both outputs can be compared exactly.
* ``cellshift-w1`` / ``cellshift-w2`` / ``cellshift-auto``: ``cellshift.tokenize.tokenize(...,
  workers=1, 2 or "auto")``, which streams the file in blocks of rows; each worker writes its own
  Arrow shards (token IDs only, like ``plain``); ``kernel="auto"`` (numba from 20,000 cells on).
* ``numpy-w1``: one worker with ``kernel="numpy"``, the pure-numpy fallback.
* ``previous-w1``: the cellshift of an earlier commit (``--previous-src``, a ``src`` folder, e.g.
  from ``git archive``), one process; it always wrote a ``values`` column too.

Inputs: three bundled corpora (Kang PBMC, mouse pancreas, Papalexi) and generated files shaped
like real data: 20,000 genes (the first 20,000 gene tokens of gc30M, Ensembl IDs), 1,000-3,000
expressed genes per cell, negative-binomial counts (per-gene mean from a log-normal, dispersion
0.5, every stored count >= 1), CSR float32. They are written in chunks with h5py and cached in
``benchmarks/_work/`` (seeded; chunk i of every size holds the same cells, so the 10k file is the
start of the 100k file).

Each measurement runs in a fresh subprocess (``tokenizing.py --one CASE METHOD``). Reported:
wall seconds of the tokenising call (reading, encoding and writing; not the interpreter start),
cells/s (input cells / seconds) and peak RSS of the process tree: the driver sums the RSS of the
process and all its children every 0.05 s (spawned workers share little, so the sum is close to
what the machine has to hold); ``getrusage`` maxima of the process and of its waited-for children
are recorded too, with the CPU seconds of the process tree and of the whole machine (this may be a
shared virtual machine: its ``steal`` time shows how much the host took away; a run that lost more
than 10% of the CPU time that way is repeated, up to three extra times). Cases of <= 20,000 cells
are run three times, larger ones twice; the table gives the best time (other load only ever adds
time) and the JSON every run.

After each case the outputs are checked (in another subprocess): a few hundred cells re-encoded
cell by cell from the file must give exactly cellshift's tokens, and when ``plain`` ran its whole
output must equal cellshift's (so must ``cellshift-w2``'s). If ``plain`` would take more than
``--plain-limit-min`` minutes (estimated from the smaller generated sizes) or has more cells than
``--skip-plain-above``, its time and memory are extrapolated linearly from the two largest
measured sizes and marked as such.

Run
---
``.venv/bin/python benchmarks/tokenizing.py`` (all cases; ~15 min on 2 cores, ~5 GB of scratch files),
``--quick`` for a smoke test on small generated files, ``--cells 10000,100000,200000`` to choose
the generated sizes, ``--previous-src DIR`` to add the earlier cellshift, ``--extrapolate-above
N`` to run only cellshift's streaming methods on larger generated files (the README's run:
``--cells 10000,50000,200000,1000000 --skip-plain-above 50000 --extrapolate-above 200000``,
~40 min with ~20 GB of scratch files, the 1M-cell file 15 GB). The numba kernel is
compiled once before the measurements (its on-disk cache is then loaded by every run). Results:
``benchmarks/results/tokenize.json`` and ``tokenize.md`` (``--quick`` writes to
``benchmarks/_work/`` instead, leaving the real results alone).
"""

import argparse
import datetime
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import git_state, machine_info

from cellshift._io import write_text_atomic

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
RESULTS = HERE / "results"
GENE_TABLE = "geneformer-gc30M"
MAX_LENGTH = 2048
TARGET_SUM = 10_000.0
MIN_GENES = 0
CHUNK_SIZE = 2048
METHODS = ("plain", "previous-w1", "numpy-w1", "cellshift-w1", "cellshift-w2", "cellshift-auto")
BUNDLED = ("kang2018_pbmc", "pancreas_mouse", "papalexi2021")
SMALL_CASE = 20_000  # cases with at most this many cells are measured REPEATS_SMALL times, others REPEATS_LARGE
REPEATS_SMALL = 3
REPEATS_LARGE = 2
POLL_SECONDS = 0.05
MAX_STEAL = 0.10  # a run during which the host took more than this share of the CPUs is repeated...
MAX_RETRIES = 3  # ...but at most this many times per case and method
CHECK_CELLS = 300

# Generated data
N_GENES = 20_000
GENES_PER_CELL = (1_000, 3_000)
DISPERSION = 0.5
GENERATION_CHUNK = 1_000
SEED = 20240601
DATA_VERSION = 1


# --- generated data ----------------------------------------------------------------------------
def synthetic_path(n_cells: int) -> Path:
    return WORK / f"synthetic_{n_cells}cells_{N_GENES}genes_v{DATA_VERSION}.h5ad"


def synthetic_genes() -> np.ndarray:
    from cellshift.data import GeneTable

    table = GeneTable.load(GENE_TABLE)
    return np.asarray(table.tokens)[table.gene_ids[:N_GENES]]


def generate_synthetic(n_cells: int) -> dict:
    """Write (once) a CSR float32 .h5ad of ``n_cells`` generated cells; return facts about it."""
    import anndata as ad
    import h5py
    import pandas as pd

    path = synthetic_path(n_cells)
    if path.exists():
        return {"path": str(path), "cached": True, "file_mib": path.stat().st_size / 2**20}
    WORK.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    genes = synthetic_genes()
    gene_rng = np.random.default_rng(SEED)
    level = gene_rng.lognormal(mean=0.0, sigma=1.0, size=N_GENES)
    detection = (level / level.sum()).astype(np.float32)  # share of a cell's expressed genes
    nb_n = 1.0 / DISPERSION

    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with h5py.File(temporary, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        X = f.create_group("X")
        X.attrs["encoding-type"] = "csr_matrix"
        X.attrs["encoding-version"] = "0.1.0"
        X.attrs["shape"] = np.array([n_cells, N_GENES], dtype=np.int64)
        data = X.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(2**20,))
        indices = X.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(2**20,))
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        for chunk, start in enumerate(range(0, n_cells, GENERATION_CHUNK)):
            n = min(GENERATION_CHUNK, n_cells - start)
            rng = np.random.default_rng([SEED, chunk])
            wanted = rng.integers(GENES_PER_CELL[0], GENES_PER_CELL[1] + 1, size=n).astype(np.float32)
            probability = np.minimum(1.0, wanted[:, None] * detection[None, :])
            rows, cols = np.nonzero(rng.random((n, N_GENES), dtype=np.float32) < probability)
            mean = level[cols]
            counts = 1 + rng.negative_binomial(nb_n, nb_n / (nb_n + mean))
            end = indptr[start] + len(cols)
            data.resize((end,))
            indices.resize((end,))
            data[indptr[start] : end] = counts.astype(np.float32)
            indices[indptr[start] : end] = cols.astype(np.int32)
            indptr[start + 1 : start + n + 1] = indptr[start] + np.cumsum(np.bincount(rows, minlength=n))
        X.create_dataset("indptr", data=indptr)
        cell_ids = pd.Index([f"cell{i:07d}" for i in range(n_cells)])
        ad.io.write_elem(f, "obs", pd.DataFrame(index=cell_ids))
        ad.io.write_elem(f, "var", pd.DataFrame(index=pd.Index(genes)))

    backed = ad.read_h5ad(temporary, backed="r")
    assert backed.shape == (n_cells, N_GENES), backed.shape
    first = backed.X[:5]
    assert first.shape == (5, N_GENES) and first.nnz == indptr[5] and (first.data >= 1).all()
    assert list(backed.var_names[:3]) == list(genes[:3])
    backed.file.close()
    os.replace(temporary, path)
    genes_per_cell = np.diff(indptr)
    return {
        "path": str(path),
        "cached": False,
        "seconds": time.perf_counter() - started,
        "file_mib": path.stat().st_size / 2**20,
        "nnz": int(indptr[-1]),
        "genes_per_cell_mean": float(genes_per_cell.mean()),
        "genes_per_cell_min": int(genes_per_cell.min()),
        "genes_per_cell_max": int(genes_per_cell.max()),
    }


# --- the plain baseline ------------------------------------------------------------------------
def vocabulary_columns(var_names, table) -> tuple[np.ndarray, np.ndarray]:
    """Token ID (-1 when not in the vocabulary) and median of every input gene, from a dict."""
    from cellshift.data import resolve_to_human_ensembl

    targets = resolve_to_human_ensembl(var_names)[0].target
    vocabulary = {token: token_id for token_id, token in enumerate(table.tokens)}
    token_of_gene = np.array([vocabulary.get(t, -1) if t is not None else -1 for t in targets], dtype=np.int64)
    in_vocabulary = token_of_gene[token_of_gene >= 0]
    if len(np.unique(in_vocabulary)) != len(in_vocabulary):
        raise NotImplementedError("several input genes map to one token; the plain baseline does not sum them")
    median_of_gene = np.where(token_of_gene >= 0, table.medians[np.maximum(token_of_gene, 0)], np.nan)
    return token_of_gene, median_of_gene


def plain_encode_cell(columns, counts, token_of_gene, median_of_gene, min_genes=MIN_GENES):
    """Token IDs of one cell (its CSR row: gene columns and counts), or None when it is dropped."""
    counts = np.asarray(counts, dtype=np.float64)
    expressed = counts != 0
    total = counts.sum()
    if np.count_nonzero(expressed) < min_genes or not total > 0:
        return None
    tokens = token_of_gene[columns]
    keep = expressed & (tokens >= 0)
    if not keep.any():
        return None
    tokens = tokens[keep]
    value = counts[keep] / total * TARGET_SUM / median_of_gene[columns[keep]]
    order = np.argsort(-value)  # as Geneformer: descending value
    ranked = value[order]
    if (ranked[1:] == ranked[:-1]).any():  # equal values (rare): order them by token ID, as cellshift does
        order = np.lexsort((tokens, -value))
    return tokens[order[:MAX_LENGTH]]


def plain_tokenize(path: Path, out_dir: Path, phases: dict) -> int:
    """Geneformer-style tokenising: whole file in memory, one cell at a time. Returns cells kept.

    Seconds spent reading, encoding and saving are put in ``phases``.
    """
    import anndata as ad
    import datasets

    from cellshift.data import GeneTable

    datasets.disable_progress_bars()
    clock = time.perf_counter()
    table = GeneTable.load(GENE_TABLE)
    adata = ad.read_h5ad(path)
    X = adata.X.tocsr()
    token_of_gene, median_of_gene = vocabulary_columns(adata.var_names, table)
    names = adata.obs_names.tolist()
    phases["read"], clock = time.perf_counter() - clock, time.perf_counter()
    cell_ids, input_ids, lengths = [], [], []
    for i in range(X.shape[0]):
        row = slice(X.indptr[i], X.indptr[i + 1])
        tokens = plain_encode_cell(X.indices[row], X.data[row], token_of_gene, median_of_gene)
        if tokens is None:
            continue
        cell_ids.append(names[i])
        input_ids.append(tokens)
        lengths.append(len(tokens))
    phases["encode"], clock = time.perf_counter() - clock, time.perf_counter()
    dataset = datasets.Dataset.from_dict({"cell_id": cell_ids, "input_ids": input_ids, "length": lengths})
    dataset.save_to_disk(str(out_dir))
    phases["save"] = time.perf_counter() - clock
    return len(cell_ids)


# --- one measurement (runs in its own process) -------------------------------------------------
def input_path(case: str) -> Path:
    if case.startswith("synthetic_"):
        return synthetic_path(int(case.removeprefix("synthetic_")))
    from cellshift.datasets import bundled_corpora

    return Path(bundled_corpora()[case])


def output_dir(case: str, method: str) -> Path:
    return WORK / "out" / f"{case}-{method}"


def run_one(case: str, method: str) -> None:
    """Tokenise one case with one method and print a ``RESULT {json}`` line."""
    import psutil

    from cellshift.tokenize import tokenize

    path, out_dir = input_path(case), output_dir(case, method)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    import anndata  # noqa: F401  (imported before the clock starts, as cellshift is)
    import datasets  # noqa: F401

    rss_before = psutil.Process().memory_info().rss
    phases: dict[str, float] = {}
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    if method == "plain":
        kept = plain_tokenize(path, out_dir, phases)
    else:
        corpus = tokenize(
            path,
            out_dir,
            gene_table=GENE_TABLE,
            max_length=MAX_LENGTH,
            min_genes=MIN_GENES,
            chunk_size=CHUNK_SIZE,
            overwrite=True,
            progress=False,
            **method_options(method),
        )
        kept = corpus.n_cells
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        # user + system CPU of this process and its (joined) workers; less sensitive than wall
        # time to other load on the machine
        "cpu_seconds": cpu_seconds() - cpu_before,
        "phases": phases,
        "cells_kept": kept,
        "rss_before_mib": rss_before / 2**20,
        # ru_maxrss is in KiB on Linux
        "maxrss_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "maxrss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    print("RESULT " + json.dumps(result), flush=True)


def method_options(method: str) -> dict:
    """tokenize() options of a cellshift method name (``previous-w1`` knows only ``workers``)."""
    kind, workers = method.rsplit("-", 1)
    options = {"workers": "auto" if workers == "auto" else int(workers.removeprefix("w"))}
    if kind == "numpy":
        options["kernel"] = "numpy"
    return options


def tree_rss(process) -> int:
    """Summed RSS (bytes) of a process and all its descendants; processes that just ended count 0."""
    import psutil

    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(case: str, method: str, run: int, previous_src: str | None = None) -> dict:
    """Run ``--one case method`` in a fresh process, polling the RSS of its process tree."""
    import psutil

    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stdout_path, stderr_path = logs / f"{case}-{method}-{run}.out", logs / f"{case}-{method}-{run}.err"
    command = [sys.executable, str(Path(__file__).resolve()), "--one", case, method]
    machine_before, load_before = psutil.cpu_times(), os.getloadavg()[0]
    started = time.perf_counter()
    with open(stdout_path, "w") as stdout, open(stderr_path, "w") as stderr:
        env = dict(os.environ)
        if method.startswith("previous"):
            env["PYTHONPATH"] = previous_src
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        tree = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(tree))
            time.sleep(POLL_SECONDS)
    process_seconds = time.perf_counter() - started
    machine = {
        field: getattr(psutil.cpu_times(), field) - getattr(machine_before, field)
        for field in ("user", "system", "steal", "idle")
    }
    if process.returncode != 0:
        raise RuntimeError(
            f"{case} {method} failed ({process.returncode}); see {stderr_path}:\n" + stderr_path.read_text()[-3000:]
        )
    lines = [line for line in stdout_path.read_text().splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return {
        **result,
        "process_seconds": process_seconds,
        "peak_rss_mib": peak / 2**20,
        "machine_cpu_seconds": machine,
        "load_average_before": load_before,
    }


# --- checks ------------------------------------------------------------------------------------
def flat_tokens(table, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Lengths and concatenated token IDs of rows ``start:stop`` of an Arrow table."""
    import pyarrow.compute as pc

    column = table.slice(start, stop - start).column("input_ids")
    return pc.list_value_length(column).to_numpy(), pc.list_flatten(column).to_numpy().astype(np.int64)


def check_case(case: str, methods_run: list[str]) -> dict:
    """Assert that the methods agree, on sampled cells re-encoded from the file and on whole outputs."""
    import anndata as ad
    import datasets

    from cellshift.data import GeneTable
    from cellshift.tokenize import load_corpus

    corpus = load_corpus(output_dir(case, "cellshift-w1"))
    n = len(corpus)
    rng = np.random.default_rng(0)
    rows = np.unique(np.concatenate([np.arange(min(n, CHECK_CELLS // 2)), rng.choice(n, min(n, CHECK_CELLS // 2))]))
    sample = corpus.select(rows)
    adata = ad.read_h5ad(input_path(case), backed="r")
    token_of_gene, median_of_gene = vocabulary_columns(adata.var_names, GeneTable.load(GENE_TABLE))
    sampled_ids, sampled_tokens = list(sample["cell_id"]), list(sample["input_ids"])
    positions = adata.obs_names.get_indexer(sampled_ids)
    for cell_id, position, expected in zip(sampled_ids, positions, sampled_tokens, strict=True):
        row = adata.X[int(position)]
        tokens = plain_encode_cell(row.indices, row.data, token_of_gene, median_of_gene)
        assert tokens is not None and tokens.tolist() == expected, f"{case}: cell {cell_id} differs"
    adata.file.close()
    report = {"case": case, "cells_sampled": len(rows), "compared_in_full": []}

    reference = corpus.data.table
    for method in methods_run:
        if method == "cellshift-w1":
            continue
        if method == "plain":
            other = datasets.load_from_disk(str(output_dir(case, method))).data.table
        else:
            other = load_corpus(output_dir(case, method)).data.table
        assert other.num_rows == n, f"{case}: {method} kept {other.num_rows} cells, cellshift-w1 {n}"
        assert other.column("cell_id").to_pylist() == reference.column("cell_id").to_pylist()
        for start in range(0, n, 20_000):
            stop = min(n, start + 20_000)
            ours, theirs = flat_tokens(reference, start, stop), flat_tokens(other, start, stop)
            assert np.array_equal(ours[0], theirs[0]) and np.array_equal(ours[1], theirs[1]), f"{case}: {method}"
        report["compared_in_full"].append(method)
    return report


def check_in_subprocess(case: str, methods_run: list[str]) -> dict:
    """Run :func:`check_case` in its own process, so that the driver stays small.

    A child's ``ru_maxrss`` starts at its parent's RSS (Linux carries it over fork and exec), so
    a driver that had loaded whole outputs would inflate the ``maxrss`` of later measurements.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--check", case, ",".join(methods_run)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"check of {case} failed:\n{done.stderr[-3000:]}")
    line = [line for line in done.stdout.splitlines() if line.startswith("CHECK ")][-1]
    return json.loads(line.removeprefix("CHECK "))


# --- driver ------------------------------------------------------------------------------------
def source_state() -> dict:
    """Git commit, uncommitted files under src/, and a hash of the benchmarked code (tokenize/, data/)."""
    import hashlib

    code = hashlib.sha256()
    for folder in ("tokenize", "data"):
        for file in sorted((HERE.parent / "src" / "cellshift" / folder).glob("*.py")):
            code.update(file.name.encode() + file.read_bytes())
    return {**git_state(), "tokenizer_code_sha256": code.hexdigest()}


def extrapolated_here(method: str, cells: int, points: list[tuple[int, dict]], args) -> bool:
    """Whether ``method`` is extrapolated instead of run on a generated file of ``cells`` cells.

    The plain loop: above ``--skip-plain-above`` or when it would take over ``--plain-limit-min``;
    every method but cellshift-w1/w2/auto: above ``--extrapolate-above``.
    """
    if args.extrapolate_above is not None and cells > args.extrapolate_above and not method.startswith("cellshift"):
        return True
    if method != "plain":
        return False
    estimate = (max(points)[1]["seconds"] / max(points)[0] * cells) if points else 0
    too_many = args.skip_plain_above is not None and cells > args.skip_plain_above
    return too_many or estimate > args.plain_limit_min * 60


def linear_fit(points: list[tuple[int, float]], x: int) -> float:
    """Value at ``x`` of the line through the two largest-x points."""
    (x0, y0), (x1, y1) = sorted(points)[-2:]
    return y1 + (y1 - y0) / (x1 - x0) * (x - x1)


def summarise(case: str, cells: int, method: str, runs: list[dict]) -> dict:
    """Best (shortest) time of the runs: other load on a shared machine only ever adds time."""
    seconds = min(r["seconds"] for r in runs)
    return {
        "case": case,
        "cells": cells,
        "method": method,
        "runs": len(runs),
        "seconds": seconds,
        "median_seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": min(r["cpu_seconds"] for r in runs),
        "cells_per_s": cells / seconds,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "max_steal_fraction": max(r["steal_fraction"] for r in runs),
        "extrapolated": False,
    }


def add_speedups(summary: list[dict]) -> None:
    plain = {s["case"]: s for s in summary if s["method"] == "plain"}
    previous = {s["case"]: s for s in summary if s["method"] == "previous-w1"}
    for s in summary:
        base = plain.get(s["case"])
        s["speedup_vs_plain"] = s["cells_per_s"] / base["cells_per_s"] if base else None
        s["speedup_vs_extrapolated_plain"] = bool(base and base["extrapolated"])
        before = previous.get(s["case"])
        s["speedup_vs_previous"] = s["cells_per_s"] / before["cells_per_s"] if before else None
        s["speedup_vs_extrapolated_previous"] = bool(before and before["extrapolated"])


def case_label(case: str) -> str:
    if case.startswith("synthetic_"):
        return "generated, 20,000 genes"
    return {
        "kang2018_pbmc": "Kang PBMC (2,511 genes)",
        "pancreas_mouse": "mouse pancreas (7,192 symbols)",
        "papalexi2021": "Papalexi (299 genes)",
    }[case]


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "| case | cells | method | seconds | CPU s | cells/s | peak RSS MiB | vs plain | vs previous |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report["summary"]:
        mark = "~" if s["extrapolated"] else ""
        speedup = s["speedup_vs_plain"]
        speed_text = "" if speedup is None else f"{'~' if s['speedup_vs_extrapolated_plain'] else ''}{speedup:.1f}x"
        previous = s.get("speedup_vs_previous")
        previous_mark = "~" if s.get("speedup_vs_extrapolated_previous") else ""
        previous_text = "" if previous is None else f"{previous_mark}{previous:.1f}x"
        lines.append(
            f"| {case_label(s['case'])} | {s['cells']:,} | {s['method']}{' (extrapolated)' if mark else ''} "
            f"| {mark}{s['seconds']:.2f} | {'' if mark else format(s['cpu_seconds'], '.2f')} "
            f"| {mark}{s['cells_per_s']:,.0f} | {mark}{s['peak_rss_mib']:,.0f} "
            f"| {speed_text} | {previous_text} |"
        )
    synthetic = [s for s in report["summary"] if s["case"].startswith("synthetic_")]
    if synthetic:
        sizes = sorted({s["cells"] for s in synthetic})
        by = {(s["cells"], s["method"]): s for s in synthetic}
        lines += [
            "",
            "Peak RSS (MiB) against the number of cells (generated data):",
            "",
            "| cells | " + " | ".join(report["settings"]["methods"]) + " |",
            "|---:|" + "---:|" * len(report["settings"]["methods"]),
        ]
        for n in sizes:
            cells = [by.get((n, m)) for m in report["settings"]["methods"]]
            text = ["" if s is None else f"{'~' if s['extrapolated'] else ''}{s['peak_rss_mib']:,.0f}" for s in cells]
            lines.append(f"| {n:,} | " + " | ".join(text) + " |")
    lines += [
        "",
        f"{machine['cpu_count']} CPU cores ({machine['cpu_model']}), {machine['memory_gib']:.0f} GiB RAM, "
        f"Python {machine['python']}, numpy {machine['numpy']}, cellshift {machine['cellshift']}; "
        f"{report['date']}. Gene table {GENE_TABLE}, max_length {MAX_LENGTH}, min_genes {MIN_GENES}, "
        f"chunk_size {CHUNK_SIZE}. Seconds: the tokenising call (read, encode, write), best of "
        f"{report['settings']['repeats'][0]} runs for cases of <= {SMALL_CASE:,} cells, of "
        f"{report['settings']['repeats'][1]} above (runs during which the virtual machine's host took "
        f"more than {MAX_STEAL:.0%} of the CPU time, `steal`, are repeated); peak RSS: process and its "
        "workers, summed. "
        "plain = Geneformer-style per-cell loop over an in-memory AnnData, saved with `datasets`. "
        "~ = extrapolated linearly from the two largest measured sizes, not measured.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="10000,100000,200000", help="generated sizes, comma-separated")
    parser.add_argument(
        "--skip-plain-above",
        type=int,
        default=None,
        help="extrapolate (do not run) the plain baseline for generated files with more cells",
    )
    parser.add_argument(
        "--plain-limit-min",
        type=float,
        default=25.0,
        help="extrapolate the plain baseline when it is estimated to take longer (minutes)",
    )
    parser.add_argument(
        "--extrapolate-above",
        type=int,
        default=None,
        help="for generated files with more cells, run only cellshift-w1/w2/auto; extrapolate the others",
    )
    parser.add_argument("--previous-src", default=None, help="src folder of an earlier cellshift (adds previous-w1)")
    parser.add_argument("--methods", default=",".join(METHODS), help="methods to run, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke test: 2,000 and 5,000 generated cells, one run")
    parser.add_argument("--one", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--check", nargs=2, metavar=("CASE", "METHODS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(*args.one)
        return
    if args.check:
        print("CHECK " + json.dumps(check_case(args.check[0], args.check[1].split(","))), flush=True)
        return

    began = time.perf_counter()
    sizes = [2_000, 5_000] if args.quick else sorted({int(n) for n in args.cells.split(",")})
    repeats = (1, 1) if args.quick else (REPEATS_SMALL, REPEATS_LARGE)
    out_json, out_md = (
        (WORK / "tokenize-quick.json", WORK / "tokenize-quick.md")
        if args.quick
        else (RESULTS / "tokenize.json", RESULTS / "tokenize.md")
    )
    report = {
        "machine": machine_info(("numpy", "scipy", "anndata", "h5py", "pyarrow", "datasets", "cellshift")),
        "source": source_state(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": {
            "gene_table": GENE_TABLE,
            "max_length": MAX_LENGTH,
            "min_genes": MIN_GENES,
            "chunk_size": CHUNK_SIZE,
            "generated_sizes": sizes,
            "quick": args.quick,
            "skip_plain_above": args.skip_plain_above,
            "plain_limit_min": args.plain_limit_min,
            "repeats": repeats,
            "small_case_cells": SMALL_CASE,
            "generated": {
                "genes": N_GENES,
                "genes_per_cell": GENES_PER_CELL,
                "dispersion": DISPERSION,
                "seed": SEED,
                "version": DATA_VERSION,
            },
        },
        "generated_data": {},
        "measurements": [],
        "summary": [],
        "checks": [],
    }
    for n in sizes:
        print(f"generating {n:,} cells (cached when present)...", flush=True)
        report["generated_data"][str(n)] = generate_synthetic(n)

    methods = [m for m in args.methods.split(",") if m in METHODS]
    if args.previous_src is None and "previous-w1" in methods:
        methods.remove("previous-w1")
    report["settings"]["methods"] = methods
    warm_up = [sys.executable, str(Path(__file__).resolve()), "--one", "papalexi2021", "cellshift-w1"]
    subprocess.run(warm_up, check=True, capture_output=True)  # compiles the numba kernel into its cache
    import anndata as ad

    cases = [(case, ad.read_h5ad(input_path(case), backed="r").n_obs) for case in BUNDLED]
    cases += [(f"synthetic_{n}", n) for n in sorted(sizes)]
    measured: dict[str, list[tuple[int, dict]]] = {m: [] for m in methods}  # (cells, summary), generated data
    for case, cells in cases:
        methods_run = []
        for method in methods:
            points = measured[method]
            if case.startswith("synthetic_") and extrapolated_here(method, cells, points, args):
                if len(points) < 2:
                    print(f"{case} {method}: skipped, too few measured sizes to extrapolate", flush=True)
                    continue
                seconds = linear_fit([(c, s["seconds"]) for c, s in points], cells)
                peak = linear_fit([(c, s["peak_rss_mib"]) for c, s in points], cells)
                row = {
                    "case": case,
                    "cells": cells,
                    "method": method,
                    "runs": 0,
                    "seconds": seconds,
                    "cells_per_s": cells / seconds,
                    "peak_rss_mib": peak,
                    "extrapolated": True,
                }
                report["summary"].append(row)
                print(f"{case} {method}: extrapolated {seconds:.0f} s, {peak:.0f} MiB", flush=True)
                continue
            runs, wanted, run, retries = [], repeats[0] if cells <= SMALL_CASE else repeats[1], 0, 0
            while len(runs) < wanted:
                result = measure(case, method, run, args.previous_src)
                run += 1
                steal = result["machine_cpu_seconds"]["steal"] / (result["process_seconds"] * os.cpu_count())
                discarded = steal > MAX_STEAL and retries < MAX_RETRIES
                retries += discarded
                report["measurements"].append(
                    {
                        "case": case,
                        "cells": cells,
                        "method": method,
                        "run": run - 1,
                        "cells_per_s": cells / result["seconds"],
                        "steal_fraction": steal,
                        "discarded_for_steal": discarded,
                        **result,
                    }
                )
                print(
                    f"{case} {method} run {run - 1}: {result['seconds']:.2f} s, "
                    f"{cells / result['seconds']:,.0f} cells/s, peak RSS {result['peak_rss_mib']:,.0f} MiB, "
                    f"steal {steal:.0%}{' (discarded, repeating)' if discarded else ''}",
                    flush=True,
                )
                if not discarded:
                    runs.append({**result, "steal_fraction": steal})
            row = summarise(case, cells, method, runs)
            report["summary"].append(row)
            methods_run.append(method)
            if case.startswith("synthetic_"):
                measured[method].append((cells, row))
        report["checks"].append(check_in_subprocess(case, methods_run))
        print(f"{case}: outputs agree ({report['checks'][-1]})", flush=True)
        for method in methods_run:
            shutil.rmtree(output_dir(case, method), ignore_errors=True)
        add_speedups(report["summary"])
        report["total_seconds"] = time.perf_counter() - began
        now = source_state()
        if now["tokenizer_code_sha256"] != report["source"]["tokenizer_code_sha256"]:
            report["source_changed_during_run"] = now
            print("warning: the tokenizer code changed during the run; see source_changed_during_run", flush=True)
        write_text_atomic(out_json, json.dumps(report, indent=2) + "\n")
        write_text_atomic(out_md, markdown(report))
    print(markdown(report))
    print(f"total {report['total_seconds'] / 60:.1f} min; wrote {out_json} and {out_md}")


if __name__ == "__main__":
    main()
