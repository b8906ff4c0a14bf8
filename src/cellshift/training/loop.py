"""The frame both training loops share: run directory, resume, loss log, checkpoints, final model.

A run writes into its model directory ``out``:

- ``training/settings.json``: the settings; a resumed run must bring the same ones (only
  ``max_steps`` and ``epochs`` may change, to train longer);
- ``training/loss.csv``: one row per logged step, with columns named by the objective;
- ``training/checkpoints/step-00000100/``: weights, optimizer, scheduler, position and random
  generator states (:mod:`cellshift.training.checkpoints`), plus any files of the objective's own
  state (e.g. early stopping's best weights), the newest ``keep_last`` kept;
- the final model (``save_pretrained``: config, weights, gene table) in ``out`` itself.

A run advances by optimizer steps through epochs of batches. Its :class:`Position` (steps taken,
epoch, batches of the epoch done, tokens and seconds so far) is what a checkpoint records, and
the batches of an epoch are a function of (seed, epoch), so a resumed run continues with the
very batch the stopped one would have trained on next. Under data parallelism (``accelerate``)
the main process writes the files and all processes wait for each other around them.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from accelerate import Accelerator

from cellshift._io import check_model_dir, check_writable
from cellshift.training.checkpoints import (
    list_checkpoints,
    load_checkpoint,
    publish_checkpoint,
    temporary_checkpoint_dir,
    write_checkpoint_parts,
)

TRAINING_DIR = "training"
SETTINGS_FILE = "settings.json"
LOSS_LOG = "loss.csv"
CHECKPOINTS_DIR = "checkpoints"
EXTENDABLE = ("max_steps", "epochs")  # settings a resumed run may change


def mixed_precision(choice: str) -> str:
    """``auto`` -> bf16 on a CUDA device that supports it, else no mixed precision."""
    if choice == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if choice not in ("bf16", "fp16", "no"):
        raise ValueError(f"mixed_precision must be auto, bf16, fp16 or no, got {choice!r}")
    return choice


def check_model_directories(model_dir: Path, out: Path) -> None:
    """The pre-trained model must be a saved model and must not be overwritten by the fine-tuned one."""
    if out.resolve() == model_dir.resolve():
        raise ValueError(f"--out {out} is the pre-trained model's directory; write the fine-tuned model elsewhere")
    check_model_dir(model_dir, option="pre-trained model")


def prepare_run_dir(out: Path, settings: dict, *, resume: bool, overwrite: bool) -> None:
    """Check that ``out`` can take this run and record its settings (call it on the main process).

    Parameters
    ----------
    out
        The model directory of the run.
    settings
        The run's settings as JSON-ready values, written to ``training/settings.json``.
    resume
        Continue a run: ``out`` must hold a checkpoint and the same settings (``max_steps`` and
        ``epochs`` aside).
    overwrite
        Start afresh in an ``out`` that holds a model or a run (its ``training/`` is deleted).
    """
    check_run_dir(out, settings, resume=resume, overwrite=overwrite)
    training_dir = out / TRAINING_DIR
    if resume:
        return
    shutil.rmtree(training_dir, ignore_errors=True)
    training_dir.mkdir(parents=True, exist_ok=True)
    (training_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))


def check_run_dir(out: Path, settings: dict, *, resume: bool, overwrite: bool) -> None:
    """Refuse an ``out`` that cannot take this run (see :func:`prepare_run_dir`), before any work; write nothing.

    With ``resume``, ``out`` must hold a checkpoint and the same settings (``max_steps`` and
    ``epochs`` aside); else it must hold no model or run unless ``overwrite``, and be a folder
    that can be written.
    """
    training_dir = out / TRAINING_DIR
    if resume:
        if not list_checkpoints(training_dir / CHECKPOINTS_DIR):
            raise FileNotFoundError(f"nothing to resume in {out}: it holds no checkpoint; start without --resume")
        saved = json.loads((training_dir / SETTINGS_FILE).read_text())
        changed = sorted(k for k in settings if k not in EXTENDABLE and saved.get(k) != settings[k])
        if changed:
            raise ValueError(f"cannot resume {out} with changed settings {changed}; use the original ones")
        return
    if (training_dir.exists() or (out / "config.json").exists()) and not overwrite:
        raise FileExistsError(f"{out} already holds a model or run; pass --resume to continue or --overwrite")
    check_writable(training_dir / SETTINGS_FILE, overwrite=True)


@dataclass
class Position:
    """Where a run stands: optimizer steps taken, the epoch, batches of that epoch trained on, and its totals.

    ``tokens_seen`` and ``seconds`` are the tokens trained on and the seconds spent since the run
    began, so that a resumed run's log continues from the checkpoint's totals.
    """

    step: int = 0
    epoch: int = 0
    batches_done: int = 0
    tokens_seen: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class StepBatches:
    """The batches of one optimizer step and their positions in the epoch's list of batches."""

    positions: range
    batches: list


def optimizer_steps(
    position: Position, total_steps: int, epoch_batches: Callable[[int], Sequence], batches_per_step: int = 1
) -> Iterator[StepBatches]:
    """The batches of every optimizer step from ``position`` until ``total_steps``, epoch after epoch.

    Each step takes the next ``batches_per_step`` batches of the epoch (fewer at its end: steps
    never span two epochs). ``position`` is advanced before a step is handed out, so a checkpoint
    written during the step records the step as done.

    Parameters
    ----------
    position
        Where the run stands; updated in place.
    total_steps
        Step count at which the run ends.
    epoch_batches
        The list of batches of an epoch, given its number (seeded, so it is the same after a resume).
    batches_per_step
        Batches whose gradients add up to one optimizer step (gradient accumulation).
    """
    while position.step < total_steps:
        batches = epoch_batches(position.epoch)
        while position.batches_done < len(batches) and position.step < total_steps:
            positions = range(position.batches_done, min(position.batches_done + batches_per_step, len(batches)))
            position.batches_done = positions.stop
            position.step += 1
            yield StepBatches(positions, [batches[i] for i in positions])
        if position.batches_done >= len(batches):
            position.epoch, position.batches_done = position.epoch + 1, 0


def is_due(step: int, every: int, total_steps: int) -> bool:
    """Whether ``step`` is a multiple of ``every`` or the run's last step."""
    return step % every == 0 or step == total_steps


class LossLog:
    """The CSV loss log: one row per logged step, under a header of named columns.

    Parameters
    ----------
    path
        The CSV file (``training/loss.csv``).
    columns
        Column names, in order; a row may leave some out (written empty).
    write
        Whether this process writes (the main process); elsewhere every call does nothing.
    """

    def __init__(self, path: Path, columns: Sequence[str], *, write: bool):
        self.path = path
        self.columns = list(columns)
        self.write = write

    def append(self, row: dict[str, object]) -> None:
        """Append one row, ``{column: value}``."""
        if not self.write:
            return
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"loss log columns {sorted(unknown)} are not among {self.columns}")
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def drop_after(self, step: int) -> None:
        """Drop the rows of steps after ``step`` (written after the checkpoint a run resumes from)."""
        if self.write and self.path.exists():
            log = pd.read_csv(self.path)
            log[log["step"] <= step].to_csv(self.path, index=False)


def resume_run(training_dir: Path, accelerator: Accelerator, model, optimizer, scheduler, log: LossLog) -> Position:
    """Load the newest checkpoint into the model, optimizer, scheduler (or ``None``) and random generators.

    Rows the stopped run logged after that checkpoint are dropped from ``log``.

    Returns
    -------
    Position
        Where the checkpoint was written.
    """
    newest = newest_checkpoint(training_dir)
    state = load_checkpoint(
        newest,
        model=accelerator.unwrap_model(model),
        optimizer=optimizer,
        scheduler=scheduler,
        rank=accelerator.process_index,
    )
    position = Position(**state)
    log.drop_after(position.step)
    return position


def newest_checkpoint(training_dir: Path) -> Path:
    """The newest complete checkpoint of a run (the one :func:`resume_run` loads)."""
    return list_checkpoints(training_dir / CHECKPOINTS_DIR)[-1]


def save_checkpoint(
    training_dir: Path,
    position: Position,
    model,
    optimizer,
    scheduler,
    keep_last: int,
    accelerator: Accelerator,
    write_extra: Callable[[Path], None] | None = None,
) -> None:
    """Write a checkpoint from every process (each its random generators), then publish it from the main process.

    ``write_extra(folder)``, when given, writes the objective's own state into the checkpoint folder
    from the main process before it is published (read back from :func:`newest_checkpoint`).
    """
    temporary = temporary_checkpoint_dir(training_dir / CHECKPOINTS_DIR, position.step)
    accelerator.wait_for_everyone()
    write_checkpoint_parts(
        temporary,
        model=accelerator.unwrap_model(model),
        optimizer=optimizer,
        scheduler=scheduler,
        state=asdict(position),
        rank=accelerator.process_index,
        is_main=accelerator.is_main_process,
    )
    if accelerator.is_main_process and write_extra is not None:
        write_extra(temporary)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_checkpoint(temporary, keep_last)
    accelerator.wait_for_everyone()


def save_final_model(accelerator: Accelerator, model, out: Path) -> None:
    """Save the trained model with its gene table into ``out`` from the main process, all processes in step."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(out, overwrite=True)
    accelerator.wait_for_everyone()
