"""Gene tables: the token vocabulary and the per-gene non-zero medians used to tokenise cells.

A gene table is a TSV (optionally gzipped) with columns ``token, token_id, median``: special
tokens (``<pad>``, ``<mask>``, ``<cls>``, ``<eos>``) have no median; every gene token is a human
Ensembl ID (or, in a joint human + mouse vocabulary, a mouse token ``mouse:<symbol>``, see
:mod:`cellshift.data.vocabulary`) with the non-zero median of its normalised expression over a
reference corpus.
Token IDs are the row numbers 0..n-1. Bundled tables: ``geneformer-gc30M`` (Geneformer V1,
25,426 tokens, no ``<cls>``/``<eos>``) and ``geneformer-gc95M`` (Geneformer V2, 20,275 tokens).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cellshift._io import atomic_path
from cellshift.data._tables import FILES
from cellshift.data.vocabulary import MOUSE_TOKEN_PREFIX

BUNDLED_TABLES = {
    "geneformer-gc30M": FILES / "gene_tables" / "geneformer-gc30M.tsv.gz",
    "geneformer-gc95M": FILES / "gene_tables" / "geneformer-gc95M.tsv.gz",
}
SPECIAL_TOKENS = ("<pad>", "<mask>", "<cls>", "<eos>")


@dataclass(frozen=True, eq=False)
class GeneTable:
    """A token vocabulary with gene medians.

    Attributes
    ----------
    tokens
        Token strings; the token ID is the position.
    medians
        Non-zero median per token (NaN for special tokens), float64.
    name
        Bundled name or file path it was read from.
    """

    tokens: tuple[str, ...]
    medians: np.ndarray
    name: str
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.medians):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.medians)} medians")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError(f"gene table {self.name!r} lists some tokens twice")
        genes = ~np.isin(np.asarray(self.tokens), SPECIAL_TOKENS)
        bad = genes & ~(np.asarray(self.medians) > 0)
        if bad.any():
            example = np.asarray(self.tokens)[bad][:3].tolist()
            raise ValueError(
                f"gene table {self.name!r}: {int(bad.sum())} genes have a missing or non-positive "
                f"median (e.g. {example}); every gene needs a median > 0"
            )
        object.__setattr__(self, "_index", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def load(cls, name_or_path: str | os.PathLike) -> GeneTable:
        """Read a bundled table by name (``geneformer-gc30M``, ``geneformer-gc95M``) or a TSV file."""
        key = str(name_or_path)
        path = BUNDLED_TABLES.get(key, Path(key))
        if not path.exists():
            raise FileNotFoundError(
                f"gene table {key!r} is neither a bundled table ({', '.join(BUNDLED_TABLES)}) nor an "
                "existing file; make one from your corpus with `cellshift medians`"
            )
        table = pd.read_csv(
            path, sep="\t", dtype={"token": str}, keep_default_na=False, na_values=[""], float_precision="round_trip"
        )
        missing = {"token", "token_id", "median"} - set(table.columns)
        if missing:
            raise ValueError(f"gene table {key!r} lacks columns {sorted(missing)}; expected token, token_id, median")
        if not np.array_equal(table["token_id"].to_numpy(), np.arange(len(table))):
            raise ValueError(f"gene table {key!r}: token_id must be 0..{len(table) - 1} in row order")
        return cls(tuple(table["token"]), table["median"].to_numpy(np.float64), key)

    @classmethod
    def from_medians(cls, medians: pd.Series, *, name: str = "custom") -> GeneTable:
        """Build a table from gene medians: the four special tokens, then genes sorted by ID.

        Raises
        ------
        ValueError
            When no gene has a median > 0: a table without genes cannot tokenise any cell.
        """
        medians = medians[medians > 0].sort_index()
        if medians.empty:
            raise ValueError(f"no gene has a median > 0, so gene table {name!r} would hold no gene")
        tokens = SPECIAL_TOKENS + tuple(map(str, medians.index))
        values = np.concatenate([np.full(len(SPECIAL_TOKENS), np.nan), medians.to_numpy(np.float64)])
        return cls(tokens, values, name)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as TSV (gzipped when the name ends in ``.gz``), atomically."""
        path = Path(path)
        frame = pd.DataFrame({"token": self.tokens, "token_id": np.arange(len(self)), "median": self.medians})
        with atomic_path(path) as temporary:
            compression = "gzip" if path.suffix == ".gz" else None
            frame.to_csv(temporary, sep="\t", index=False, float_format="%.17g", compression=compression)
        return path

    def __len__(self) -> int:
        return len(self.tokens)

    def token_id(self, token: str) -> int | None:
        """The ID of a token, or ``None`` when it is not in the vocabulary."""
        return self._index.get(token)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special tokens present in this table and their IDs."""
        return {t: self._index[t] for t in SPECIAL_TOKENS if t in self._index}

    @property
    def vocabulary(self) -> str:
        """``joint`` when the table holds mouse tokens (``mouse:<symbol>``), else ``ortholog``."""
        return "joint" if any(t.startswith(MOUSE_TOKEN_PREFIX) for t in self.tokens) else "ortholog"

    @property
    def gene_ids(self) -> np.ndarray:
        """Token IDs of the gene (non-special) tokens, ascending."""
        return np.flatnonzero(~np.isin(np.asarray(self.tokens), SPECIAL_TOKENS))

    @property
    def sha256(self) -> str:
        """Hash of the table's content (tokens and medians), independent of file format."""
        buffer = io.StringIO()
        for token, median in zip(self.tokens, self.medians, strict=True):
            buffer.write(f"{token}\t{'' if np.isnan(median) else repr(float(median))}\n")
        return hashlib.sha256(buffer.getvalue().encode()).hexdigest()
