"""Pieces shared by the training loops (pre-training, contrastive fine-tuning)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from cellshift.training.checkpoints import publish_checkpoint, temporary_checkpoint_dir, write_checkpoint_parts


def mixed_precision(choice: str) -> str:
    """``auto`` -> bf16 on a CUDA device that supports it, else no mixed precision."""
    if choice == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    if choice not in ("bf16", "fp16", "no"):
        raise ValueError(f"mixed_precision must be auto, bf16, fp16 or no, got {choice!r}")
    return choice


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from."""
    if path.exists():
        log = pd.read_csv(path)
        log[log["step"] <= step].to_csv(path, index=False)


def save_checkpoint(
    training_dir, step, epoch, batches_done, model, optimizer, scheduler, settings, accelerator
) -> None:
    """Write a checkpoint from every process, then publish it from the main process."""
    temporary = temporary_checkpoint_dir(training_dir / "checkpoints", step)
    accelerator.wait_for_everyone()
    write_checkpoint_parts(
        temporary,
        model=accelerator.unwrap_model(model),
        optimizer=optimizer,
        scheduler=scheduler,
        state={"step": step, "epoch": epoch, "batches_done": batches_done},
        rank=accelerator.process_index,
        is_main=accelerator.is_main_process,
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        publish_checkpoint(temporary, settings.keep_last)
    accelerator.wait_for_everyone()


def save_final_model(accelerator, model, gene_table, out: Path) -> None:
    """Save the trained model with its gene table into ``out`` from the main process, all processes in step."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = accelerator.unwrap_model(model)
        final.gene_table = gene_table
        final.save_pretrained(out, overwrite=True)
    accelerator.wait_for_everyone()
