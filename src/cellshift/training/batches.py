"""Cells of a tokenised corpus -> padded tensors (dynamic padding: to the longest cell of the batch)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch


@dataclass
class CellBatch:
    """A padded batch of cells; optional inputs are ``None`` when the model does not use them."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    values: torch.Tensor | None = None
    species_ids: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> CellBatch:
        """The batch on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return CellBatch(**{name: None if t is None else t.to(device, non_blocking=True) for name, t in moved.items()})

    @property
    def n_tokens(self) -> int:
        """Number of real (non-padding) tokens."""
        return int(self.attention_mask.sum())


class CellCollator:
    """Reads cells from a ``datasets.Dataset`` and pads them into a :class:`CellBatch`.

    Parameters
    ----------
    pad_token_id
        Token written into padding positions.
    max_length
        Cells longer than this keep their first (highest-ranked) ``max_length`` tokens.
    species
        Species names of the model's species embedding (``config.species``), or ``None``.
    with_values
        Also read the ``values`` column.
    pad_to_multiple_of
        Round the padded length up (8 helps tensor cores on GPUs).
    """

    def __init__(
        self,
        pad_token_id: int,
        *,
        max_length: int | None = None,
        species: list[str] | None = None,
        with_values: bool = False,
        pad_to_multiple_of: int | None = None,
    ):
        self.pad_token_id = pad_token_id
        self.max_length = max_length
        self.species_index = {name: i for i, name in enumerate(species)} if species else None
        self.with_values = with_values
        self.pad_to_multiple_of = pad_to_multiple_of

    def columns(self) -> list[str]:
        """Dataset columns this collator reads."""
        return ["input_ids"] + (["values"] if self.with_values else []) + (["species"] if self.species_index else [])

    def __call__(self, dataset, indices: list[int] | np.ndarray) -> CellBatch:
        """Pad the cells ``indices`` of ``dataset`` (a ``datasets.Dataset`` or a dict of columns)."""
        rows = dataset[list(map(int, indices))] if not isinstance(dataset, dict) else dataset
        token_lists = rows["input_ids"]
        lengths = np.array([len(tokens) for tokens in token_lists])
        if self.max_length is not None:
            lengths = np.minimum(lengths, self.max_length)
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(lengths), width), self.pad_token_id, dtype=np.int64)
        values = np.zeros((len(lengths), width), dtype=np.float32) if self.with_values else None
        for i, n in enumerate(lengths):
            input_ids[i, :n] = token_lists[i][:n]
            if values is not None:
                values[i, :n] = rows["values"][i][:n]
        attention_mask = np.arange(width)[None, :] < lengths[:, None]
        species_ids = None
        if self.species_index is not None:
            unknown = set(rows["species"]) - set(self.species_index)
            if unknown:
                raise ValueError(f"cells of species {sorted(unknown)} but the model knows {list(self.species_index)}")
            species_ids = torch.tensor([self.species_index[name] for name in rows["species"]])
        return CellBatch(
            torch.from_numpy(input_ids),
            torch.from_numpy(attention_mask.astype(np.int64)),
            None if values is None else torch.from_numpy(values),
            species_ids,
        )
