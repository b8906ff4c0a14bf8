"""Gene names of prior tables mapped to the human Ensembl IDs that key every prior matrix."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cellshift.data import resolve_to_human_ensembl


def human_ensembl_lookup(names: Sequence[str], *, species: str | None = None) -> dict[str, str]:
    """``{name: human Ensembl ID}`` for the names that map (symbols, Ensembl IDs, mouse symbols via orthologs).

    Parameters
    ----------
    names
        Gene names of one table (one species).
    species
        ``human`` or ``mouse``; ``None`` detects it from the names.

    Returns
    -------
    dict
        Mapped names only.
    """
    unique = list(dict.fromkeys(map(str, names)))
    mapping, _ = resolve_to_human_ensembl(unique, species=species)
    return {name: gene for name, gene in zip(mapping.source, mapping.target, strict=True) if gene is not None}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
