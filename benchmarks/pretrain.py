"""Benchmark: cellshift's pre-training step against a plain ``BertForMaskedLM`` padded to ``max_length``.

What is measured
----------------
Non-padding tokens per second, cells per second and peak memory of masked-gene-modelling training
steps, two ways, on the same cells, the same number of AdamW steps and the same device:

* ``cellshift``: ``cellshift.training.LengthGroupedBatchSampler`` (random mega-batch -> sort by
  length -> mini-batches -> shuffled mini-batches), ``CellCollator`` (dynamic padding: each batch
  padded to its longest cell), 15% masking with ``cellshift.training.choose_positions`` /
  ``corrupt`` (80/10/10) and ``cellshift.models.CellshiftForMaskedGeneModeling``, whose head
  scores only the masked positions.
* ``plain``: the common Geneformer-style set-up: cells in random order, every batch padded to
  ``max_length``, masking as ``transformers.DataCollatorForLanguageModeling`` does it (Bernoulli
  15% of the non-special positions, then 80% ``<mask>``, 10% a random token of the whole
  vocabulary, 10% kept) and ``transformers.BertForMaskedLM`` with SDPA attention, which computes
  full-vocabulary logits at every position and the cross-entropy over the masked ones.

Both models have the same size: preset ``small`` by default (4 layers, 128 hidden, 4 heads, 256 FFN,
ReLU, hidden dropout 0.02, no attention dropout; ``--preset`` for another), untied output layer, the
same vocabulary, the same initial seed. A step is: read the batch's cells from the memory-mapped
corpus, pad, mask, move to the device, forward, backward, clip the gradient norm to 1.0, AdamW step
(lr 1e-3, weight decay 1e-3). Bf16 autocast on CUDA (and padding to a multiple of 8 for cellshift, as
``pretrain`` does).

Data: the bundled Kang PBMC (human, min_genes 200) and mouse pancreas (min_genes 500) corpora,
tokenised (no special tokens, at most 2,048 tokens per cell) with a gene-median table computed
from both; cached in ``benchmarks/_work/pretrain/``. From the concatenated corpora a seeded
random sample of ``steps x batch_size`` cells is drawn for the measured steps and a separate one
of ``warmup x batch_size`` cells for the unmeasured warm-up steps; each side batches both sets its
own way, so the measured steps of both sides see exactly the same cells and the same number of
non-padding tokens. Cells longer than ``max_length`` keep their first ``max_length`` tokens (both
sides).

Each (side, max_length, repeat) runs in a fresh subprocess (``pretrain.py --one ...``), so peak
memory is clean: on CPU the process's peak RSS (``getrusage`` ``ru_maxrss``; the driver stays
small so it does not inherit a larger one) and its RSS growth over the model and data already
loaded; on CUDA ``torch.cuda.max_memory_allocated``. Seconds are the sum of the measured steps'
wall times. On CPU both sides use ``torch.set_num_threads(threads)`` (default 1: the machine this
was written on has 2 shared cores). The two sides alternate (the order flips every repeat) and the
table gives the median over repeats; the JSON has every run, the load average before it and the
share of CPU time the virtual machine's host took (``steal``) during it.

MFU (with ``--peak-tflops``): ``6 * N * tokens/s / peak``, with N the parameters of the encoder
layers (the same for both sides; embeddings, attention scores and the output head are left out,
the usual approximation) and tokens the non-padding ones, so it is the useful-work MFU.

Run
---
``.venv/bin/python benchmarks/pretrain.py`` (max_length 2048; ~10.5 min on 2 cores at load average ~10),
``--max-lengths 2048,512`` to add 512, ``--quick`` for a smoke test (few steps, one repeat, written
to ``benchmarks/_work/``), ``--device cuda --peak-tflops 989`` on a GPU (H100 bf16 dense peak),
``--preset geneformer-v1`` for Geneformer V1's size. Results: ``benchmarks/results/pretrain.json`` and
``pretrain.md``, or ``pretrain.json`` and ``pretrain.md`` in ``--out``.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import git_state, machine_info

from cellshift._io import write_text_atomic

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "pretrain"
RESULTS = HERE / "results"
CORPORA = {"kang2018_pbmc": 200, "pancreas_mouse": 500}  # bundled corpus -> min_genes
TOKENIZE_MAX_LENGTH = 2048
DATA_VERSION = 1
PRESET = "small"
SIDES = ("cellshift", "plain")
BATCH_SIZE = 8
STEPS = 6  # a plain step at max_length 2048 takes ~30 s on the 2 loaded cores this was written on
WARMUP = 1
REPEATS = 2
MAX_LENGTHS = "2048"
QUICK = {"steps": 3, "warmup": 1, "repeats": 1, "max_lengths": "512"}
MASK_PROBABILITY = 0.15
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-3
MAX_GRAD_NORM = 1.0
SEED = 0
BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "initializer_range",
    "pad_token_id",
)


# --- data --------------------------------------------------------------------------------------
def corpus_dirs() -> list[Path]:
    return [WORK / "corpora" / name for name in CORPORA]


def prepare_corpora() -> dict:
    """Compute the gene table and tokenise the bundled corpora once; return facts about them."""
    from cellshift.data.gene_table import GeneTable
    from cellshift.datasets import bundled_corpora
    from cellshift.tokenize import compute_gene_medians, tokenize
    from cellshift.training import open_corpora

    marker = WORK / "ready.json"
    wanted = {"version": DATA_VERSION, "corpora": CORPORA, "max_length": TOKENIZE_MAX_LENGTH}
    if marker.exists() and json.loads(marker.read_text()).get("settings") == wanted:
        return {**json.loads(marker.read_text()), "cached": True}
    started = time.perf_counter()
    paths = bundled_corpora()
    medians = compute_gene_medians([paths[name] for name in CORPORA], min_genes=min(CORPORA.values()), progress=False)
    table = GeneTable.from_medians(medians, name="bundled-pbmc-pancreas")
    for name, out in zip(CORPORA, corpus_dirs(), strict=True):
        tokenize(
            paths[name],
            out,
            gene_table=table,
            max_length=TOKENIZE_MAX_LENGTH,
            min_genes=CORPORA[name],
            overwrite=True,
            progress=False,
        )
    lengths = open_corpora(corpus_dirs()).lengths
    facts = {
        "settings": wanted,
        "vocabulary": len(table),
        "cells": {name: int(n) for name, n in zip(CORPORA, np.bincount(corpus_of_rows(len(lengths))), strict=True)},
        "length_quantiles": {q: float(np.quantile(lengths, float(q))) for q in ("0.05", "0.25", "0.5", "0.75", "0.95")},
        "length_mean": float(lengths.mean()),
        "length_max": int(lengths.max()),
        "seconds": time.perf_counter() - started,
    }
    write_text_atomic(marker, json.dumps(facts, indent=2) + "\n")
    return {**facts, "cached": False}


def corpus_of_rows(n_rows: int) -> np.ndarray:
    """Index of the corpus of each row of the concatenated corpora."""
    from cellshift.tokenize import Corpus

    sizes = [Corpus.open(path).n_cells for path in corpus_dirs()]
    assert sum(sizes) == n_rows, (sizes, n_rows)
    return np.repeat(np.arange(len(sizes)), sizes)


def sample_cells(n_rows: int, warmup: int, steps: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint random rows: ``warmup * batch_size`` for warm-up, ``steps * batch_size`` measured."""
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(n_rows, (warmup + steps) * batch_size, replace=False)
    return chosen[: warmup * batch_size], chosen[warmup * batch_size :]


# --- the two sides -----------------------------------------------------------------------------
def build_models(table, max_length: int, preset: str):
    """cellshift's model and a ``BertForMaskedLM`` of the same size (``preset``), both freshly initialised."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from cellshift.models import CellshiftForMaskedGeneModeling, config_from_preset

    config = config_from_preset(preset, table)
    if max_length > config.max_position_embeddings:
        raise ValueError(f"max_length {max_length} exceeds the {preset} preset's {config.max_position_embeddings}")
    torch.manual_seed(SEED)
    cellshift = CellshiftForMaskedGeneModeling(config)
    bert_config = BertConfig(**{name: getattr(config, name) for name in BERT_FIELDS}, tie_word_embeddings=False)
    bert_config._attn_implementation = "sdpa"
    torch.manual_seed(SEED)
    plain = BertForMaskedLM(bert_config)
    assert encoder_parameters(cellshift) == encoder_parameters(plain), "the two models differ in size"
    return config, cellshift, plain


def encoder_parameters(model) -> int:
    """Parameters of the transformer layers (the N of 6 N FLOPs per token)."""
    return sum(p.numel() for name, p in model.named_parameters() if ".encoder.layer." in f".{name}")


def cellshift_batches(rows: np.ndarray, lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Rows in the order of one epoch of the length-grouped sampler over ``rows``."""
    from cellshift.training import LengthGroupedBatchSampler

    sampler = LengthGroupedBatchSampler(lengths[rows], batch_size, seed=SEED)
    return [rows[batch] for batch in sampler.batches(0)]


def plain_batches(rows: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Rows in random order, cut into batches."""
    order = np.random.default_rng([SEED, 1]).permutation(rows)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def cellshift_inputs(dataset, rows, collate, config, gene_token_ids, generator) -> tuple[dict, int, int]:
    """Dynamically padded, masked inputs of cellshift's model; also (real tokens, padded positions)."""
    from cellshift.training import choose_positions, corrupt
    from cellshift.training.masking import special_token_mask

    batch = collate(dataset, rows)
    eligible = ~special_token_mask(batch.input_ids, config.special_token_ids) & batch.attention_mask.bool()
    chosen = choose_positions(eligible, MASK_PROBABILITY, generator)
    input_ids, labels = corrupt(
        batch.input_ids, chosen, mask_token_id=config.mask_token_id, gene_token_ids=gene_token_ids, generator=generator
    )
    inputs = {"input_ids": input_ids, "attention_mask": batch.attention_mask, "labels": labels}
    return inputs, batch.n_tokens, batch.input_ids.numel()


def plain_inputs(dataset, rows, max_length: int, config, generator) -> tuple[dict, int, int]:
    """Inputs padded to ``max_length`` and masked as ``DataCollatorForLanguageModeling`` does."""
    import torch

    token_lists = dataset[list(map(int, rows))]["input_ids"]
    input_ids = torch.full((len(token_lists), max_length), config.pad_token_id, dtype=torch.long)
    for i, tokens in enumerate(token_lists):
        tokens = tokens[:max_length]
        input_ids[i, : len(tokens)] = torch.as_tensor(tokens)
    attention_mask = (input_ids != config.pad_token_id).long()
    special = torch.isin(input_ids, torch.as_tensor(config.special_token_ids))
    probability = torch.full(input_ids.shape, MASK_PROBABILITY).masked_fill(special, 0.0)
    chosen = torch.bernoulli(probability, generator=generator).bool()
    labels = input_ids.masked_fill(~chosen, -100)
    to_mask = chosen & torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool()
    to_random = chosen & ~to_mask & torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool()
    random_tokens = torch.randint(config.vocab_size, input_ids.shape, generator=generator)
    input_ids = input_ids.masked_fill(to_mask, config.mask_token_id)
    input_ids = torch.where(to_random, random_tokens, input_ids)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    return inputs, int(attention_mask.sum()), input_ids.numel()


def run_one(side: str, max_length: int, options: dict) -> None:
    """Train one side for warm-up + measured steps and print a ``RESULT {json}`` line."""
    import torch

    torch.set_num_threads(options["threads"])
    torch.set_num_interop_threads(1)
    import psutil

    from cellshift.models.inputs import CellCollator
    from cellshift.training import open_corpora

    device = torch.device(options["device"])
    cuda = device.type == "cuda"
    cells = open_corpora(corpus_dirs())
    lengths = cells.lengths
    dataset = cells.dataset.select_columns(["input_ids"])
    warmup_rows, measured_rows = sample_cells(len(lengths), options["warmup"], options["steps"], options["batch_size"])
    config, cellshift, plain = build_models(cells.gene_table, max_length, options["preset"])
    model = cellshift if side == "cellshift" else plain
    del cellshift, plain
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    gene_token_ids = torch.as_tensor(cells.gene_table.gene_ids)
    collate = CellCollator(config, max_length=max_length, pad_to_multiple_of=8 if cuda else None)
    if side == "cellshift":
        batches = cellshift_batches(warmup_rows, lengths, options["batch_size"])
        batches += cellshift_batches(measured_rows, lengths, options["batch_size"])
    else:
        batches = plain_batches(warmup_rows, options["batch_size"])
        batches += plain_batches(measured_rows, options["batch_size"])
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False)

    rss_before = psutil.Process().memory_info().rss
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        torch.cuda.synchronize(device)
    steps = []
    for step, rows in enumerate(batches):
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(SEED * 1_000_003 + step)
        if side == "cellshift":
            inputs, n_tokens, n_positions = cellshift_inputs(dataset, rows, collate, config, gene_token_ids, generator)
        else:
            inputs, n_tokens, n_positions = plain_inputs(dataset, rows, max_length, config, generator)
        inputs = {name: tensor.to(device, non_blocking=True) for name, tensor in inputs.items()}
        with autocast:
            output = model(**inputs)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss = output.loss.item()  # also waits for the device
        if cuda:
            torch.cuda.synchronize(device)
        steps.append(
            {
                "seconds": time.perf_counter() - started,
                "tokens": n_tokens,
                "positions": n_positions,
                "cells": len(rows),
                "width": n_positions // len(rows),
                "loss": loss,
                "warmup": step < options["warmup"],
            }
        )
    measured = [s for s in steps if not s["warmup"]]
    seconds = sum(s["seconds"] for s in measured)
    tokens = sum(s["tokens"] for s in measured)
    positions = sum(s["positions"] for s in measured)
    result = {
        "seconds": seconds,
        "tokens": tokens,
        "cells": sum(s["cells"] for s in measured),
        "tokens_per_s": tokens / seconds,
        "cells_per_s": sum(s["cells"] for s in measured) / seconds,
        "padding_fraction": 1 - tokens / positions,
        "parameters": sum(p.numel() for p in model.parameters()),
        "encoder_parameters": encoder_parameters(model),
        "rss_before_steps_mib": rss_before / 2**20,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "cuda_max_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None,
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "steps": steps,
    }
    print("RESULT " + json.dumps(result), flush=True)


# --- driver ------------------------------------------------------------------------------------
def cpu_times() -> dict:
    """Machine-wide CPU seconds by kind (user, system, steal, idle)."""
    import psutil

    times = psutil.cpu_times()
    return {field: getattr(times, field) for field in ("user", "system", "steal", "idle")}


def measure(side: str, max_length: int, repeat: int, options: dict) -> dict:
    """Run ``--one side max_length`` in a fresh process and collect its result."""
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stem = f"{side}-{max_length}-{repeat}"
    command = [sys.executable, str(Path(__file__).resolve()), "--one", side, str(max_length), json.dumps(options)]
    load_before, machine_before = os.getloadavg()[0], cpu_times()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    process_seconds = time.perf_counter() - started
    (logs / f"{stem}.out").write_text(done.stdout)
    (logs / f"{stem}.err").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{stem} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    machine = {k: v - machine_before[k] for k, v in cpu_times().items()}
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    steal = machine["steal"] / (process_seconds * os.cpu_count())
    return {
        "side": side,
        "max_length": max_length,
        "repeat": repeat,
        **result,
        "process_seconds": process_seconds,
        "load_average_before": load_before,
        "steal_fraction": steal,
    }


def peak_memory_mib(run: dict) -> float:
    return run["cuda_max_allocated_mib"] if run["cuda_max_allocated_mib"] is not None else run["maxrss_mib"]


def summarise(runs: list[dict], peak_tflops: float | None) -> list[dict]:
    """Median over repeats per (max_length, side), with ratios cellshift / plain."""
    rows = []
    for max_length in sorted({r["max_length"] for r in runs}, reverse=True):
        by_side = {}
        for side in SIDES:
            mine = [r for r in runs if r["max_length"] == max_length and r["side"] == side]
            tokens_per_s = statistics.median(r["tokens_per_s"] for r in mine)
            row = {
                "max_length": max_length,
                "side": side,
                "repeats": len(mine),
                "tokens_per_s": tokens_per_s,
                "tokens_per_s_runs": [r["tokens_per_s"] for r in mine],
                "cells_per_s": statistics.median(r["cells_per_s"] for r in mine),
                "seconds": statistics.median(r["seconds"] for r in mine),
                "peak_memory_mib": statistics.median(peak_memory_mib(r) for r in mine),
                "rss_growth_mib": statistics.median(r["maxrss_mib"] - r["rss_before_steps_mib"] for r in mine),
                "padding_fraction": mine[0]["padding_fraction"],
                "tokens": mine[0]["tokens"],
                "cells": mine[0]["cells"],
                "mfu": (
                    6 * mine[0]["encoder_parameters"] * tokens_per_s / (peak_tflops * 1e12) if peak_tflops else None
                ),
            }
            by_side[side] = row
            rows.append(row)
        base = by_side["plain"]
        for row in by_side.values():
            row["tokens_per_s_ratio"] = row["tokens_per_s"] / base["tokens_per_s"]
            row["peak_memory_ratio"] = row["peak_memory_mib"] / base["peak_memory_mib"]
    return rows


def markdown(report: dict) -> str:
    from cellshift.models import PRESETS

    settings, machine = report["settings"], report["machine"]
    cuda = settings["device"].startswith("cuda")
    memory = "peak GPU memory MiB" if cuda else "peak RSS MiB"
    mfu = settings["peak_tflops"] is not None
    growth = "" if cuda else " RSS growth in steps MiB |"
    lines = [
        f"| max_length | side | non-padding tokens/s | cells/s | {memory} |{growth} padding | tokens/s vs plain "
        f"| memory vs plain |{' MFU |' if mfu else ''}",
        "|---:|---|---:|---:|---:|---:|---:|---:|" + ("" if cuda else "---:|") + ("---:|" if mfu else ""),
    ]
    for row in report["summary"]:
        lines.append(
            f"| {row['max_length']:,} | {row['side']} | {row['tokens_per_s']:,.0f} | {row['cells_per_s']:.2f} "
            f"| {row['peak_memory_mib']:,.0f} |"
            + ("" if cuda else f" {row['rss_growth_mib']:,.0f} |")
            + f" {row['padding_fraction']:.0%} | {row['tokens_per_s_ratio']:.1f}x "
            f"| {row['peak_memory_ratio']:.2f}x |" + (f" {row['mfu']:.1%} |" if mfu else "")
        )
    data = report["data"]
    per_cell = ", ".join(
        f"{row['tokens'] / row['cells']:.0f} at max_length {row['max_length']:,}"
        for row in report["summary"]
        if row["side"] == "plain"
    )
    device = report["runs"][0]["device_name"] if cuda else f"{machine['cpu_count']} CPU cores ({machine['cpu_model']})"
    preset = settings["preset"]
    size = PRESETS[preset]
    lines += [
        "",
        f"Preset `{preset}` ({size['num_hidden_layers']} layers, {size['hidden_size']} hidden, "
        f"{size['num_attention_heads']} heads, {size['intermediate_size']} FFN), vocabulary {data['vocabulary']:,}, "
        f"batch size {settings['batch_size']}, {settings['steps']} measured AdamW steps after {settings['warmup']} "
        f"warm-up step(s), the same {settings['steps'] * settings['batch_size']} cells on both sides (a random sample "
        f"of the bundled Kang PBMC + mouse pancreas corpora: mean tokens per cell {per_cell}; corpus mean "
        f"{data['length_mean']:.0f}, median {data['length_quantiles']['0.5']:.0f}); median of {settings['repeats']} "
        "alternating runs, each in a fresh process. "
        f"{device}{', ' + str(settings['threads']) + ' torch thread(s) per side' if not cuda else ', bf16 autocast'}; "
        f"torch {machine['torch']}, transformers {machine['transformers']}; {report['date']}. "
        "cellshift = length-grouped sampler + dynamic padding + head on masked positions only; plain = "
        "`BertForMaskedLM` (SDPA), random order, padded to max_length, logits at every position. "
        + (
            "Peak memory: `torch.cuda.max_memory_allocated`. "
            if cuda
            else "Peak memory: peak RSS of the process (libraries, model and memory-mapped corpus included); RSS "
            "growth in steps: that peak less the RSS just before the first step. "
        )
        + ("MFU = 6 N tokens/s / peak, N = encoder-layer parameters, non-padding tokens. " if mfu else ""),
        "",
    ]
    return "\n".join(lines)


def default_device() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return "cuda" if done.stdout.strip() == "True" else "cpu"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-lengths", default=None, help=f"comma-separated (default {MAX_LENGTHS})")
    parser.add_argument("--steps", type=int, default=None, help=f"measured optimizer steps (default {STEPS})")
    parser.add_argument("--warmup", type=int, default=None, help=f"unmeasured steps first (default {WARMUP})")
    parser.add_argument("--repeats", type=int, default=None, help=f"alternating runs per side (default {REPEATS})")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per side on CPU")
    parser.add_argument("--preset", default=PRESET, help=f"model size of both sides (default {PRESET})")
    parser.add_argument("--out", type=Path, default=None, help="folder for pretrain.json and pretrain.md")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak (e.g. 989 for H100 bf16) for MFU")
    parser.add_argument("--quick", action="store_true", help="smoke test: max_length 512, 3 steps, one run")
    parser.add_argument("--one", nargs=3, metavar=("SIDE", "MAX_LENGTH", "OPTIONS"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one[0], int(args.one[1]), json.loads(args.one[2]))
        return
    if args.prepare:
        print("PREPARED " + json.dumps(prepare_corpora()), flush=True)
        return

    began = time.perf_counter()
    defaults = (
        QUICK if args.quick else {"steps": STEPS, "warmup": WARMUP, "repeats": REPEATS, "max_lengths": MAX_LENGTHS}
    )
    max_lengths = [int(n) for n in (args.max_lengths or defaults["max_lengths"]).split(",")]
    options = {
        "steps": args.steps or defaults["steps"],
        "warmup": defaults["warmup"] if args.warmup is None else args.warmup,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "device": args.device or default_device(),
        "preset": args.preset,
    }
    repeats = args.repeats or defaults["repeats"]
    if args.out is not None:
        out_json, out_md = args.out / "pretrain.json", args.out / "pretrain.md"
    elif args.quick:
        out_json, out_md = WORK / "pretrain-quick.json", WORK / "pretrain-quick.md"
    else:
        out_json, out_md = RESULTS / "pretrain.json", RESULTS / "pretrain.md"

    # tokenising runs in its own process, so the driver stays small (children inherit its peak RSS)
    print("preparing the corpora (cached when present)...", flush=True)
    prepared = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--prepare"], capture_output=True, text=True
    )
    if prepared.returncode != 0:
        raise RuntimeError(f"preparing the corpora failed:\n{prepared.stderr[-3000:]}")
    data = json.loads([line for line in prepared.stdout.splitlines() if line.startswith("PREPARED ")][-1][9:])
    report = {
        "machine": machine_info(("numpy", "torch", "transformers", "datasets", "cellshift"), device=options["device"]),
        "source": git_state(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": {
            **options,
            "repeats": repeats,
            "max_lengths": max_lengths,
            "mask_probability": MASK_PROBABILITY,
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_GRAD_NORM,
            "seed": SEED,
            "peak_tflops": args.peak_tflops,
            "quick": args.quick,
        },
        "data": data,
        "runs": [],
    }
    for repeat in range(repeats):
        for max_length in max_lengths:
            for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
                run = measure(side, max_length, repeat, options)
                report["runs"].append(run)
                print(
                    f"max_length {max_length} {side} run {repeat}: {run['tokens_per_s']:,.0f} tokens/s, "
                    f"{run['seconds']:.1f} s, peak {peak_memory_mib(run):,.0f} MiB, "
                    f"padding {run['padding_fraction']:.0%}, steal {run['steal_fraction']:.0%}",
                    flush=True,
                )
    report["summary"] = summarise(report["runs"], args.peak_tflops)
    report["total_seconds"] = time.perf_counter() - began
    write_text_atomic(out_json, json.dumps(report, indent=2) + "\n")
    write_text_atomic(out_md, markdown(report))
    print(markdown(report))
    print(f"total {report['total_seconds'] / 60:.1f} min; wrote {out_json} and {out_md}")


if __name__ == "__main__":
    main()
