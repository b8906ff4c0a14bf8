"""What a model reads: cells -> padded batches of token IDs, values, species and attention mask.

One rule sets how many tokens of a cell a model reads (:func:`token_limit`):

    positions   = config.max_position_embeddings
    limit       = positions - 1 with a species embedding (it takes the first position), else positions
    tokens kept = min(max_length, limit)    (a user's max_length caps the tokens, never past the limit)

Tokens are counted with ``<cls>``/``<eos>`` when the model uses them. A longer cell keeps its first
(highest-ranked) tokens, and its ``<eos>`` stays last, exactly as if it had been tokenised with
``max_length`` tokens.

Two doors lead to the same batch: :class:`CellCollator` pads cells of a tokenised corpus
(pre-training, evaluation), :func:`encode_cells` tokenises an AnnData in memory with the model's
own gene table (fine-tuning, embedding). Either way a cell reaches the model as the same tokens,
values, species index and attention mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import anndata as ad
import numpy as np
import torch

from cellshift.models.config import CellshiftConfig
from cellshift.models.modeling import CellshiftModel
from cellshift.tokenize.in_memory import encode_anndata
from cellshift.tokenize.rank import EncodedCells


def token_limit(config: CellshiftConfig, max_length: int | None = None) -> int:
    """Tokens per cell a model reads: ``min(max_length, max_position_embeddings - [species])``.

    Parameters
    ----------
    config
        The model's configuration; with ``config.species`` one input position holds the species.
    max_length
        A user's cap on the tokens per cell; ``None`` for the model's whole input.

    Returns
    -------
    int
        The number of tokens (special tokens included) a cell may bring.
    """
    limit = config.max_position_embeddings - (1 if config.species else 0)
    if max_length is None:
        return limit
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, got {max_length}")
    return min(max_length, limit)


@dataclass
class CellBatch:
    """A padded batch of cells; optional inputs are ``None`` when the model does not use them.

    Attributes
    ----------
    input_ids
        ``(batch, length)`` token IDs, padded with the model's ``pad_token_id``.
    attention_mask
        ``(batch, length)``, 1 for real tokens, 0 for padding.
    values
        ``(batch, length)`` expression values (0 at padding), for a model that uses them.
    species_ids
        ``(batch,)`` index of each cell's species in ``config.species``, for a model with a species embedding.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    values: torch.Tensor | None = None
    species_ids: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> CellBatch:
        """The batch on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return CellBatch(**{name: None if t is None else t.to(device, non_blocking=True) for name, t in moved.items()})

    def model_inputs(self) -> dict[str, torch.Tensor | None]:
        """The batch as keyword arguments of a cellshift model's ``forward``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def n_tokens(self) -> int:
        """Number of real (non-padding) tokens."""
        return int(self.attention_mask.sum())


class CellCollator:
    """Pads cells into a :class:`CellBatch` for the model of ``config``.

    Parameters
    ----------
    config
        The model's configuration: padding token, input size, species, values, ``<cls>``/``<eos>``.
    max_length
        A user's cap on the tokens per cell (see :func:`token_limit`).
    pad_to_multiple_of
        Round the padded length up (8 helps tensor cores on GPUs).
    """

    def __init__(
        self, config: CellshiftConfig, *, max_length: int | None = None, pad_to_multiple_of: int | None = None
    ):
        self.pad_token_id = config.pad_token_id
        self.max_tokens = token_limit(config, max_length)
        self.keeps_eos = config.cls_eos_tokens
        self.species_index = {name: i for i, name in enumerate(config.species)} if config.species else None
        self.with_values = config.use_values
        self.pad_to_multiple_of = pad_to_multiple_of

    def columns(self) -> list[str]:
        """Corpus columns this collator reads."""
        return ["input_ids"] + (["values"] if self.with_values else []) + (["species"] if self.species_index else [])

    def select_columns(self, dataset):
        """The columns of a corpus's ``datasets.Dataset`` this collator reads.

        Raises
        ------
        ValueError
            When a model with values meets a corpus tokenised without them.
        """
        if self.with_values and "values" not in dataset.column_names:
            raise ValueError(
                "this model uses expression values, but the corpus has no values column: tokenise it with "
                "`cellshift tokenize --values` (tokenize(..., values=True)), or use a model without values"
            )
        return dataset.select_columns(self.columns())

    def __call__(self, dataset, rows: Sequence[int] | np.ndarray) -> CellBatch:
        """Pad the cells ``rows`` of a corpus's ``datasets.Dataset``."""
        cells = dataset[list(map(int, rows))]
        return self.pad(cells["input_ids"], cells.get("values"), cells.get("species"))

    def pad(
        self, token_lists: Sequence, value_lists: Sequence | None = None, species: Sequence[str] | None = None
    ) -> CellBatch:
        """Cut every cell to :attr:`max_tokens` and pad them to the longest.

        Parameters
        ----------
        token_lists
            Each cell's token IDs, in rank order.
        value_lists
            Each cell's values (read when the model uses values).
        species
            Each cell's species (read when the model has a species embedding).

        Returns
        -------
        CellBatch
            The padded batch, on the CPU.
        """
        tokens = [self._cut(np.asarray(cell)) for cell in token_lists]
        lengths = np.array([len(cell) for cell in tokens])
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(tokens), width), self.pad_token_id, dtype=np.int64)
        for i, cell in enumerate(tokens):
            input_ids[i, : len(cell)] = cell
        values = None
        if self.with_values:
            values = np.zeros((len(tokens), width), dtype=np.float32)
            for i, cell in enumerate(value_lists):
                values[i, : lengths[i]] = self._cut(np.asarray(cell))
        attention_mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        return CellBatch(
            torch.from_numpy(input_ids),
            torch.from_numpy(attention_mask),
            None if values is None else torch.from_numpy(values),
            self._species_ids(species),
        )

    def _cut(self, cell: np.ndarray) -> np.ndarray:
        """A cell's first :attr:`max_tokens` entries; with ``<cls>``/``<eos>`` its last entry (``<eos>``) stays last."""
        if len(cell) <= self.max_tokens:
            return cell
        if self.keeps_eos:
            return np.concatenate([cell[: self.max_tokens - 1], cell[-1:]])
        return cell[: self.max_tokens]

    def _species_ids(self, species: Sequence[str] | None) -> torch.Tensor | None:
        """Index of each cell's species in the model's species list; ``None`` for a model without species."""
        if self.species_index is None:
            return None
        unknown = set(species) - set(self.species_index)
        if unknown:
            raise ValueError(f"cells of species {sorted(unknown)} but the model knows {list(self.species_index)}")
        return torch.tensor([self.species_index[name] for name in species])


@dataclass(frozen=True)
class ModelCells:
    """The cells of an AnnData tokenised for one model (:func:`encode_cells`).

    Attributes
    ----------
    tokens
        Every cell's tokens and values, in the AnnData's order.
    species
        The species of the cells.
    collate
        Pads cells for the model.
    """

    tokens: EncodedCells
    species: str
    collate: CellCollator

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per cell."""
        return self.tokens.lengths

    def batch(self, rows: Sequence[int] | np.ndarray) -> CellBatch:
        """The cells ``rows`` (positions in the AnnData) as one padded batch."""
        cells = [self.tokens.cell(i) for i in rows]
        return self.collate.pad([ids for ids, _ in cells], [values for _, values in cells], [self.species] * len(cells))


def encode_cells(
    adata: ad.AnnData,
    model: CellshiftModel,
    *,
    layer: str | None = None,
    gene_key: str | None = None,
    species: str | None = None,
    max_length: int | None = None,
    pad_to_multiple_of: int | None = None,
) -> ModelCells:
    """Tokenise every cell of ``adata`` for ``model``, as the model's corpora were tokenised.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X`` or ``layer``.
    model
        A model with its gene table (``model.gene_table``); its config sets the tokens kept
        (:func:`token_limit`) and whether cells get ``<cls>``/``<eos>``.
    layer, gene_key, species
        Where the counts are, the var column of gene IDs or symbols (default: var index), and
        the species (default: detected from the genes).
    max_length
        A user's cap on the tokens per cell.
    pad_to_multiple_of
        Round the padded length of every batch up to a multiple of this.

    Returns
    -------
    ModelCells
        The tokenised cells; ``.batch(rows)`` pads any of them for the model.
    """
    config = model.config
    collate = CellCollator(config, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of)
    tokens, cell_species = encode_anndata(
        adata,
        model.gene_table,
        layer=layer,
        gene_key=gene_key,
        species=species,
        max_length=collate.max_tokens,
        cls_eos_tokens=config.cls_eos_tokens,
    )
    if config.species and cell_species not in config.species:
        raise ValueError(f"the model knows species {config.species}, these cells are {cell_species}")
    return ModelCells(tokens, cell_species, collate)
