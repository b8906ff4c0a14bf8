"""Check cellshift's GPU path on one machine and write the results as JSON and a markdown table.

Five steps, each in its own subprocess with its own time limit (one failing does not stop the others):

1. ``tests``: the test suite's CUDA tests (``pytest -k cuda`` over the test files that mention CUDA;
   they skip on a machine without one).
2. ``pretrain``: ``benchmarks/pretrain.py`` (cellshift vs a plain ``BertForMaskedLM`` padded to
   ``max_length``): cells/s, non-padding tokens/s, MFU against ``--peak-tflops``, peak memory.
3. ``ddp``: a few pre-training steps under ``torchrun --nproc-per-node 2`` (NCCL on two GPUs, gloo
   when both processes share one GPU or run on the CPU), with the library's length-grouped sampler,
   collator and masking. Each rank writes the cells it trained on and its losses; the check is that
   the ranks saw disjoint cells and that the losses of every step equal those of one process that
   accumulates the same ranks' batches (dropout off, full precision).
4. ``scoring``: E-distances, exact permutation z-scores and control nulls of a synthetic screen
   (``benchmarks/distances.py``'s generator) with :mod:`cellshift.metrics` on the device vs the CPU.
5. ``embedding``: :func:`cellshift.embed.embed_model` of a freshly initialised model on the device
   (cells/s) vs the CPU path, on bundled Kang PBMC cells repeated to the wanted count.

``--device cuda`` runs the GPU sizes (the whole run takes a few minutes on one H100/H200);
``--device cpu`` is a dry run of every step with tiny sizes, to prove the script without a GPU.
Results: ``gpu_check.json``, ``gpu_check.md`` and ``gpu_check.log`` (every step's output) in ``--out``
(default ``$OUT``, else ``results/gpu_check``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
STEPS = ("tests", "pretrain", "ddp", "scoring", "embedding")
# Sizes and time limits (seconds) of every step, on a GPU and in the CPU dry run.
SIZES = {
    "cuda": {
        "tests": {"timeout": 120},
        "pretrain": {
            "timeout": 240,
            "preset": "geneformer-v1",
            "max_length": 2048,
            "batch_size": 16,
            "steps": 30,
            "warmup": 3,
        },
        "ddp": {"timeout": 150, "preset": "small", "max_length": 512, "batch_size": 8, "steps": 5, "rtol": 1e-3},
        "scoring": {"timeout": 150, "perturbations": 1000, "controls": 5000, "dims": 50, "n_null": 1000},
        "embedding": {"timeout": 150, "preset": "geneformer-v1", "cells": 20_000, "cpu_cells": 1000, "batch_size": 64},
    },
    "cpu": {
        "tests": {"timeout": 120},
        "pretrain": {"timeout": 300, "preset": "tiny", "max_length": 256, "batch_size": 4, "steps": 2, "warmup": 1},
        "ddp": {"timeout": 180, "preset": "tiny", "max_length": 128, "batch_size": 4, "steps": 3, "rtol": 1e-4},
        "scoring": {"timeout": 120, "perturbations": 20, "controls": 300, "dims": 16, "n_null": 50},
        "embedding": {"timeout": 120, "preset": "tiny", "cells": 300, "cpu_cells": 100, "batch_size": 32},
    },
}
SCORING_TOLERANCE = 1e-5  # largest relative difference between device and CPU scores
EMBEDDING_TOLERANCE = 1e-3  # largest absolute difference between device and CPU embeddings
NULL_SIZES = (50, 100, 200)


# --- helpers -----------------------------------------------------------------------------------
def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|``: the largest difference relative to the scale of ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def kang_corpus(work: Path, max_length: int) -> Path:
    """Tokenise the bundled Kang PBMC cells into ``work/kang`` with a gene table of their own medians."""
    from cellshift.data.gene_table import GeneTable
    from cellshift.datasets import bundled_corpora
    from cellshift.tokenize import compute_gene_medians, tokenize

    path = bundled_corpora()["kang2018_pbmc"]
    medians = compute_gene_medians([path], min_genes=200, progress=False)
    table = GeneTable.from_medians(medians, name="kang-pbmc")
    out = work / "kang"
    tokenize(path, out, gene_table=table, max_length=max_length, min_genes=200, overwrite=True, progress=False)
    return out


def ddp_model(gene_table, preset: str):
    """A freshly initialised masked-gene model without dropout, the same on every process."""
    import torch

    from cellshift.models import CellshiftForMaskedGeneModeling, config_from_preset

    config = config_from_preset(preset, gene_table, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(SEED)
    return CellshiftForMaskedGeneModeling(config)


def masked_loss(model, config, dataset, collate, rows: np.ndarray, index: int, rank: int, device):
    """Loss of one mini-batch, masked with a generator seeded by (seed, batch index, rank) as ``pretrain`` does."""
    import torch

    from cellshift.training.masking import mask_batch

    batch = collate(dataset, rows)
    seed = int(np.random.SeedSequence([SEED, 0, index, rank]).generate_state(1)[0])
    masked = mask_batch(batch, config, 0.15, torch.Generator().manual_seed(seed))
    return model(**masked.to(device).model_inputs()).loss


def ddp_batches(lengths: np.ndarray, batch_size: int, rank: int, world_size: int, steps: int) -> list[np.ndarray]:
    """The first ``steps`` mini-batches of process ``rank`` in epoch 0 of the length-grouped sampler."""
    from cellshift.training import LengthGroupedBatchSampler

    sampler = LengthGroupedBatchSampler(lengths, batch_size, seed=SEED, rank=rank, world_size=world_size)
    return sampler.batches(0)[:steps]


# --- steps (each runs in a subprocess and returns a JSON-ready dict with "passed") -------------
def step_tests(device: str, sizes: dict, work: Path) -> dict:
    """Run the CUDA-marked tests; on CUDA they must run and pass, in the dry run they must skip cleanly."""
    files = sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("test_*.py") if "cuda" in path.read_text()
    )
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "cuda", *files]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", done.stdout)}
    passed, skipped = counts.get("passed", 0), counts.get("skipped", 0)
    ran_as_expected = passed > 0 and skipped == 0 if device == "cuda" else skipped > 0
    return {"passed": done.returncode == 0 and ran_as_expected, "files": files, "counts": counts}


def step_pretrain(device: str, sizes: dict, work: Path, peak_tflops: float | None) -> dict:
    """Run ``benchmarks/pretrain.py`` once per side and return its summary rows."""
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "pretrain.py"),
        "--device",
        device,
        "--preset",
        sizes["preset"],
        "--max-lengths",
        str(sizes["max_length"]),
        "--batch-size",
        str(sizes["batch_size"]),
        "--steps",
        str(sizes["steps"]),
        "--warmup",
        str(sizes["warmup"]),
        "--repeats",
        "1",
        "--out",
        str(work),
    ]
    if peak_tflops is not None:
        command += ["--peak-tflops", str(peak_tflops)]
    if device == "cpu":
        command += ["--threads", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    print(done.stdout[-4000:], done.stderr[-3000:], sep="\n")
    if done.returncode != 0:
        return {"passed": False, "returncode": done.returncode}
    report = json.loads((work / "pretrain.json").read_text())
    keep = ("side", "max_length", "cells_per_s", "tokens_per_s", "mfu", "peak_memory_mib", "padding_fraction")
    rows = [{name: row[name] for name in keep} for row in report["summary"]]
    losses_finite = all(np.isfinite(step["loss"]) for run in report["runs"] for step in run["steps"])
    return {
        "passed": losses_finite,
        "summary": rows,
        "settings": report["settings"],
        "table": (work / "pretrain.md").read_text(),
    }


def step_ddp(device: str, sizes: dict, work: Path) -> dict:
    """Train a few steps under ``torchrun`` with 2 processes and compare with one process accumulating both ranks."""
    import torch

    from cellshift.models.inputs import CellCollator
    from cellshift.training import open_corpora

    world_size = 2
    corpus = kang_corpus(work, sizes["max_length"])
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(world_size),
        str(Path(__file__).resolve()),
        "--ddp-worker",
        json.dumps({"device": device, "corpus": str(corpus), "work": str(work), **sizes}),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
    if done.returncode != 0:
        return {"passed": False, "returncode": done.returncode}
    ranks = [json.loads((work / f"rank-{rank}.json").read_text()) for rank in range(world_size)]
    seen = [np.concatenate([np.asarray(rows) for rows in rank["rows"]]) for rank in ranks]
    all_rows = np.concatenate(seen)
    disjoint = len(np.unique(all_rows)) == len(all_rows)
    ddp_losses = np.mean([rank["losses"] for rank in ranks], axis=0)

    # one process, the same batches: gradients of the ranks' losses averaged, as DDP's all-reduce does
    cells = open_corpora([corpus])
    target = torch.device("cuda:0" if device == "cuda" else "cpu")
    model = ddp_model(cells.gene_table, sizes["preset"]).to(target).train()
    collate = CellCollator(model.config, max_length=sizes["max_length"])
    dataset = cells.dataset.select_columns(collate.columns())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    batches = [
        ddp_batches(cells.lengths, sizes["batch_size"], rank, world_size, sizes["steps"]) for rank in range(world_size)
    ]
    single_losses = []
    for index in range(sizes["steps"]):
        losses = []
        for rank in range(world_size):
            loss = masked_loss(model, model.config, dataset, collate, batches[rank][index], index, rank, target)
            (loss / world_size).backward()
            losses.append(loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        single_losses.append(float(np.mean(losses)))
    difference = relative_difference(ddp_losses, single_losses)
    recorded_match = all(
        np.array_equal(np.concatenate(rank["rows"]), np.concatenate(batches[r])) for r, rank in enumerate(ranks)
    )
    return {
        "passed": bool(disjoint and recorded_match and difference <= sizes["rtol"]),
        "world_size": world_size,
        "backend": ranks[0]["backend"],
        "devices": [rank["device"] for rank in ranks],
        "cells_per_rank": [len(rows) for rows in seen],
        "disjoint_cells": bool(disjoint),
        "rows_as_sampler": bool(recorded_match),
        "ddp_losses": ddp_losses.tolist(),
        "single_process_losses": single_losses,
        "max_relative_difference": difference,
        "rtol": sizes["rtol"],
    }


def ddp_worker(options: dict) -> None:
    """One ``torchrun`` process: train ``steps`` steps under DDP and write the cells and losses of this rank."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from cellshift.models.inputs import CellCollator
    from cellshift.training import open_corpora

    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if options["device"] == "cuda":
        n_gpus = torch.cuda.device_count()
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]) % n_gpus)
        torch.cuda.set_device(device)
        backend = "nccl" if n_gpus >= world_size else "gloo"  # NCCL refuses two ranks on one GPU
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend)
    cells = open_corpora([options["corpus"]])
    model = ddp_model(cells.gene_table, options["preset"]).to(device).train()
    config = model.config
    collate = CellCollator(config, max_length=options["max_length"])
    dataset = cells.dataset.select_columns(collate.columns())
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-3, weight_decay=1e-3)
    batches = ddp_batches(cells.lengths, options["batch_size"], rank, world_size, options["steps"])
    losses = []
    for index, rows in enumerate(batches):
        loss = masked_loss(ddp, config, dataset, collate, rows, index, rank, device)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ddp.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    record = {
        "rank": rank,
        "backend": backend,
        "device": str(device),
        "rows": [b.tolist() for b in batches],
        "losses": losses,
    }
    (Path(options["work"]) / f"rank-{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()


def edistance_scores(Z: np.ndarray, labels: np.ndarray, device: str, metric: str, n_null: int) -> dict:
    """E-distance and exact-permutation z of every perturbation vs all controls, and control nulls, on ``device``."""
    import torch

    from cellshift.analysis.scoring import l2_normalize
    from cellshift.metrics import ControlNull, ReferencePieces, group_distance_sums

    started = time.perf_counter()
    points = torch.from_numpy(l2_normalize(Z).astype(np.float64)).to(device)
    values = group_distance_sums(points, labels, "control", metric=metric).edistance()
    control = points[torch.from_numpy(labels == "control").to(device)]
    pieces = ReferencePieces(control, metric=metric)
    zs = [
        value / pieces.group_sd(points[torch.from_numpy(labels == group).to(device)]) for group, value in values.items()
    ]
    control_null = ControlNull(control, metric=metric)
    nulls = [
        control_null.sample(size, n_null, np.random.default_rng([SEED, size]), against="rest") for size in NULL_SIZES
    ]
    if device == "cuda":
        torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - started,
        "values": values.to_numpy(),
        "zs": np.asarray(zs),
        "nulls": np.concatenate(nulls),
    }


def step_scoring(device: str, sizes: dict, work: Path) -> dict:
    """Score a synthetic screen on the device and on the CPU; the values must agree."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from distances import make_screen

    adata = make_screen(sizes["perturbations"], sizes["controls"], sizes["dims"], seed=SEED)
    Z, labels = adata.obsm["X_emb"], adata.obs["perturbation"].to_numpy().astype(str)
    result = {"cells": int(adata.n_obs), **{k: sizes[k] for k in ("perturbations", "controls", "dims", "n_null")}}
    if device == "cuda":
        edistance_scores(Z, labels, device, "edistance", 2)  # not timed: CUDA context and library start-up
    passed = True
    for metric in ("edistance", "cosine_edistance"):
        on_device = edistance_scores(Z, labels, device, metric, sizes["n_null"])
        on_cpu = edistance_scores(Z, labels, "cpu", metric, sizes["n_null"])
        differences = {part: relative_difference(on_device[part], on_cpu[part]) for part in ("values", "zs", "nulls")}
        passed &= max(differences.values()) <= SCORING_TOLERANCE
        result[metric] = {
            "device_seconds": on_device["seconds"],
            "cpu_seconds": on_cpu["seconds"],
            "max_relative_difference": differences,
        }
    return {"passed": bool(passed), "tolerance": SCORING_TOLERANCE, **result}


def step_embedding(device: str, sizes: dict, work: Path) -> dict:
    """Embed cells with a freshly initialised model on the device and a subset on the CPU; compare and time."""
    import anndata as ad
    import pandas as pd
    import torch

    from cellshift.data.gene_table import GeneTable
    from cellshift.datasets import kang2018_pbmc
    from cellshift.embed import embed_model
    from cellshift.models import CellshiftModel, config_from_preset

    kang = kang2018_pbmc()
    repeats = -(-sizes["cells"] // kang.n_obs)
    adata = ad.concat([kang] * repeats)[: sizes["cells"]].copy()
    adata.obs_names_make_unique()
    medians = pd.Series(np.linspace(0.5, 5.0, adata.n_vars), index=adata.var_names)
    table = GeneTable.from_medians(medians, name="kang-genes")
    torch.manual_seed(SEED)
    model = CellshiftModel(config_from_preset(sizes["preset"], table)).eval()
    model.gene_table = table

    timings = {}
    for name, target, cells in (("device", device, adata), ("cpu", "cpu", adata[: sizes["cpu_cells"]].copy())):
        embed_model(
            cells[: sizes["batch_size"]].copy(), model, device=target, batch_size=sizes["batch_size"], progress=False
        )
        started = time.perf_counter()
        embed_model(cells, model, device=target, batch_size=sizes["batch_size"], progress=False)
        if target == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        timings[name] = {"cells": int(cells.n_obs), "seconds": seconds, "cells_per_s": cells.n_obs / seconds}
        if name == "cpu":
            cpu_embedding = cells.obsm["X_cellshift"]
    difference = float(np.max(np.abs(adata.obsm["X_cellshift"][: sizes["cpu_cells"]] - cpu_embedding)))
    return {
        "passed": bool(np.isfinite(adata.obsm["X_cellshift"]).all() and difference <= EMBEDDING_TOLERANCE),
        "preset": sizes["preset"],
        "max_length": int(model.config.max_position_embeddings),
        "timings": timings,
        "max_abs_difference": difference,
        "tolerance": EMBEDDING_TOLERANCE,
    }


def run_step(name: str, device: str, peak_tflops: float | None) -> dict:
    """Run one step in this process (called in the step's subprocess)."""
    sizes = SIZES[device][name]
    with tempfile.TemporaryDirectory(prefix=f"gpu_check_{name}_") as folder:
        work = Path(folder)
        if name == "pretrain":
            return step_pretrain(device, sizes, work, peak_tflops)
        return {"tests": step_tests, "ddp": step_ddp, "scoring": step_scoring, "embedding": step_embedding}[name](
            device, sizes, work
        )


# --- driver ------------------------------------------------------------------------------------
def environment() -> dict:
    """Machine, GPU, torch and CUDA versions."""
    from importlib.metadata import version

    import torch

    cuda = torch.cuda.is_available()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "transformers": version("transformers"),
        "accelerate": version("accelerate"),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
    }


def launch(name: str, device: str, peak_tflops: float | None, log) -> dict:
    """Run a step in a fresh subprocess under its time limit; its output goes to ``log``."""
    timeout = SIZES[device][name]["timeout"]
    command = [sys.executable, str(Path(__file__).resolve()), "--device", device, "--step", name]
    if peak_tflops is not None:
        command += ["--peak-tflops", str(peak_tflops)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, returncode = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode(errors="replace") + (expired.stderr or b"").decode(errors="replace")
        returncode = None
    seconds = time.perf_counter() - started
    log.write(f"\n===== {name} ({seconds:.1f} s, return code {returncode}) =====\n{output}\n")
    log.flush()
    results = [line[7:] for line in output.splitlines() if line.startswith("RESULT ")]
    if returncode is None:
        return {"passed": False, "error": f"timed out after {timeout} s", "seconds": seconds, "timeout": timeout}
    if returncode != 0 or not results:
        return {"passed": False, "error": output.strip().splitlines()[-1:] or ["no output"], "seconds": seconds}
    return {**json.loads(results[-1]), "seconds": seconds, "timeout": timeout}


def headline(name: str, result: dict) -> str:
    """The one-line figure of a step for the markdown table."""
    if "error" in result:
        return str(result["error"])
    if name == "tests":
        return ", ".join(f"{n} {word}" for word, n in result["counts"].items())
    if name == "pretrain":
        return "; ".join(
            f"{row['side']}: {row['cells_per_s']:,.1f} cells/s, {row['tokens_per_s']:,.0f} tokens/s, "
            f"peak {row['peak_memory_mib']:,.0f} MiB" + (f", MFU {row['mfu']:.1%}" if row["mfu"] is not None else "")
            for row in result["summary"]
        )
    if name == "ddp":
        return (
            f"{result['backend']} on {', '.join(result['devices'])}; disjoint cells {result['disjoint_cells']}; "
            f"loss vs one process: max relative difference {result['max_relative_difference']:.1e}"
        )
    if name == "scoring":
        return "; ".join(
            f"{metric}: {result[metric]['device_seconds']:.1f} s vs CPU {result[metric]['cpu_seconds']:.1f} s, "
            f"max relative difference {max(result[metric]['max_relative_difference'].values()):.1e}"
            for metric in ("edistance", "cosine_edistance")
        )
    timings = result["timings"]
    return (
        f"{timings['device']['cells']:,} cells at {timings['device']['cells_per_s']:,.0f} cells/s vs CPU "
        f"{timings['cpu']['cells_per_s']:,.0f} cells/s; max abs difference {result['max_abs_difference']:.1e}"
    )


def markdown(report: dict) -> str:
    """A short table: one row per step."""
    env = report["environment"]
    lines = [
        f"GPU check, `--device {report['device']}`: {', '.join(env['gpus']) or 'no GPU'}; torch {env['torch']}, "
        f"CUDA {env['cuda']}; {env['date']}; commit {env['git_commit'][:10]}.",
        "",
        "| step | result | seconds | figures |",
        "|---|---|---:|---|",
    ]
    for name, result in report["steps"].items():
        figures = headline(name, result).replace("|", "/")
        lines.append(f"| {name} | {'pass' if result['passed'] else 'FAIL'} | {result['seconds']:.1f} | {figures} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the steps (or, internally, one step or one DDP process); 0 when every step passed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cuda, or cpu for a dry run")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 dense peak of the card for MFU (989)")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default $OUT, else results/gpu_check)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-worker", metavar="OPTIONS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ddp_worker:
        ddp_worker(json.loads(args.ddp_worker))
        return 0
    if args.step:
        print("RESULT " + json.dumps(run_step(args.step, args.device, args.peak_tflops)), flush=True)
        return 0

    steps = args.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {unknown}; choose from {', '.join(STEPS)}")
    out = args.out or Path(os.environ.get("OUT") or ROOT / "results" / "gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    report = {"device": args.device, "peak_tflops": args.peak_tflops, "environment": environment(), "steps": {}}
    with (out / "gpu_check.log").open("w") as log:
        for name in steps:
            result = launch(name, args.device, args.peak_tflops, log)
            report["steps"][name] = result
            print(f"{name}: {'pass' if result['passed'] else 'FAIL'} ({result['seconds']:.1f} s)", flush=True)
    report["passed"] = all(result["passed"] for result in report["steps"].values())
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {out / 'gpu_check.json'}, {out / 'gpu_check.md'} and {out / 'gpu_check.log'}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
