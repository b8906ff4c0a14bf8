"""Gene identifiers: symbol <-> Ensembl for human and mouse, orthologs, species detection.

Every mapping returns a :class:`GeneMapping` that keeps the input order, holds ``None`` where
a gene could not be mapped and says how many were lost, so no gene disappears silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from cellshift.data import _tables

HUMAN_ENSEMBL = re.compile(r"^ENSG\d{11}(\.\d+)?$")
MOUSE_ENSEMBL = re.compile(r"^ENSMUSG\d{11}(\.\d+)?$")
SPECIES = ("human", "mouse")


@dataclass(frozen=True)
class GeneMapping:
    """The result of mapping a list of gene identifiers to another namespace.

    Attributes
    ----------
    source
        The input identifiers, in input order.
    target
        The mapped identifier of each input, ``None`` where none was found.
    description
        What was mapped to what, e.g. ``"human symbol -> Ensembl"``.
    """

    source: tuple[str, ...]
    target: tuple[str | None, ...]
    description: str

    @property
    def n_mapped(self) -> int:
        """Number of inputs with a target."""
        return sum(t is not None for t in self.target)

    @property
    def n_unmapped(self) -> int:
        """Number of inputs without a target."""
        return len(self.source) - self.n_mapped

    @property
    def unmapped(self) -> list[str]:
        """The inputs without a target, in input order."""
        return [s for s, t in zip(self.source, self.target, strict=True) if t is None]

    def as_series(self) -> pd.Series:
        """The mapping as a Series indexed by the input identifiers."""
        return pd.Series(list(self.target), index=list(self.source), dtype=object)

    def summary(self) -> str:
        """One line: how many genes mapped and how many did not."""
        return f"{self.description}: {self.n_mapped} of {len(self.source)} mapped, {self.n_unmapped} unmapped"

    def then(self, other: GeneMapping) -> GeneMapping:
        """Compose two mappings: ``self`` first, then ``other`` (whose sources are ``self``'s targets)."""
        lookup = dict(zip(other.source, other.target, strict=True))
        target = tuple(None if t is None else lookup.get(t) for t in self.target)
        return GeneMapping(self.source, target, f"{self.description}, then {other.description}")


def strip_version(gene_id: str) -> str:
    """Drop an Ensembl version suffix: ``ENSG00000141510.18`` -> ``ENSG00000141510``."""
    return gene_id.split(".", 1)[0] if gene_id.startswith("ENS") else gene_id


def detect_id_type(genes: Iterable[str]) -> str:
    """Say whether identifiers are Ensembl gene IDs or symbols (``"ensembl"`` / ``"symbol"``).

    Ensembl when at least half of them match ``ENSG...`` or ``ENSMUSG...``.
    """
    genes = [str(g) for g in genes]
    if not genes:
        raise ValueError("no gene identifiers given: the input has 0 genes")
    n_ensembl = sum(bool(HUMAN_ENSEMBL.match(g) or MOUSE_ENSEMBL.match(g)) for g in genes)
    return "ensembl" if n_ensembl >= len(genes) / 2 else "symbol"


def detect_species(genes: Iterable[str]) -> str:
    """Guess the species (``"human"`` or ``"mouse"``) of gene identifiers.

    Ensembl IDs: ``ENSG`` is human, ``ENSMUSG`` mouse. Symbols: the species whose bundled
    symbol list contains more of them exactly (case-sensitive: mouse symbols are capitalised,
    ``Actb``; human ones upper case, ``ACTB``).
    """
    genes = [str(g) for g in genes]
    if detect_id_type(genes) == "ensembl":
        n_mouse = sum(bool(MOUSE_ENSEMBL.match(g)) for g in genes)
        n_human = sum(bool(HUMAN_ENSEMBL.match(g)) for g in genes)
    else:
        n_mouse = len(set(genes) & _tables.mouse_symbols())
        n_human = len(set(genes) & _tables.human_symbols())
    if n_mouse == 0 and n_human == 0:
        raise ValueError(
            f"cannot tell the species of these genes (e.g. {genes[:3]}): none is a known human or "
            "mouse symbol or Ensembl ID; name the genes by human or mouse symbols or Ensembl IDs "
            "(or give the species, where the step takes one)"
        )
    return "mouse" if n_mouse > n_human else "human"


def symbols_to_ensembl(symbols: Sequence[str], *, species: str = "human") -> GeneMapping:
    """Map gene symbols to Ensembl gene IDs.

    Human: GENCODE v44 first (a symbol with several IDs takes the first in GENCODE order, the
    primary-assembly gene), then HGNC approved symbols and aliases for renamed genes. Mouse
    symbols have no bundled Ensembl table; map them to human first with :func:`mouse_to_human`.
    """
    _check_species(species)
    if species == "mouse":
        raise ValueError(
            "no mouse symbol -> Ensembl table is bundled; map mouse symbols to human orthologs "
            "with cellshift.data.mouse_to_human(symbols) first"
        )
    gencode = _tables.gencode_human().drop_duplicates("symbol")
    primary = dict(zip(gencode["symbol"], gencode["ensembl_id"], strict=True))
    aliases = _tables.hgnc_aliases()
    unique_alias = aliases[~aliases["alias"].duplicated(keep=False)]
    fallback = dict(zip(unique_alias["alias"], unique_alias["ensembl_id"], strict=True))
    target = tuple(primary.get(s, fallback.get(s)) for s in map(str, symbols))
    return GeneMapping(tuple(map(str, symbols)), target, "human symbol -> Ensembl")


def ensembl_to_symbols(gene_ids: Sequence[str]) -> GeneMapping:
    """Map human Ensembl gene IDs (version suffixes allowed) to GENCODE v44 symbols."""
    gencode = _tables.gencode_human().drop_duplicates("ensembl_id")
    lookup = dict(zip(gencode["ensembl_id"], gencode["symbol"], strict=True))
    target = tuple(lookup.get(strip_version(str(g))) for g in gene_ids)
    return GeneMapping(tuple(map(str, gene_ids)), target, "Ensembl -> human symbol")


def canonical_mouse_symbols(symbols: Sequence[str]) -> list[str]:
    """Mouse symbols in the case the bundled tables write them (MGI: ``Gcg``, ``mt-Co1``).

    A symbol the tables know as written stays; one they know only in another case (data sets
    that upper-case mouse symbols, ``GCG``) takes the tables' case when that is unambiguous; any
    other symbol stays as written.
    """
    known = _tables.mouse_symbols()
    case = _tables.mouse_symbol_case()
    return [s if s in known else case.get(s.upper(), s) for s in map(str, symbols)]


def mouse_to_human(symbols: Sequence[str]) -> GeneMapping:
    """Map mouse symbols to their one-to-one human ortholog symbols (Ensembl 105).

    Symbols are matched in the tables' case (:func:`canonical_mouse_symbols`), so upper-cased
    mouse symbols (``GCG``) find their orthologs too.
    """
    pairs = _tables.one_to_one_orthologs()
    lookup = dict(zip(pairs["mouse"], pairs["human"], strict=True))
    target = tuple(lookup.get(s) for s in canonical_mouse_symbols(symbols))
    return GeneMapping(tuple(map(str, symbols)), target, "mouse symbol -> human ortholog")


def human_to_mouse(symbols: Sequence[str]) -> GeneMapping:
    """Map human symbols to their one-to-one mouse ortholog symbols (Ensembl 105)."""
    pairs = _tables.one_to_one_orthologs()
    lookup = dict(zip(pairs["human"], pairs["mouse"], strict=True))
    target = tuple(lookup.get(str(s)) for s in symbols)
    return GeneMapping(tuple(map(str, symbols)), target, "human symbol -> mouse ortholog")


def resolve_to_human_ensembl(genes: Sequence[str], *, species: str | None = None) -> tuple[GeneMapping, str]:
    """Map any input gene identifiers to human Ensembl IDs, the namespace of the gene tables.

    Human Ensembl IDs lose their version; human symbols go through :func:`symbols_to_ensembl`;
    mouse symbols go through one-to-one orthologs first. Mouse Ensembl IDs need a symbol column.

    Returns
    -------
    The mapping and the species (given or detected).
    """
    genes = [str(g) for g in genes]
    species = species or detect_species(genes)
    _check_species(species)
    id_type = detect_id_type(genes)
    if id_type == "ensembl":
        if species == "mouse":
            raise ValueError(
                "mouse Ensembl IDs cannot be mapped to the human gene tables (no mouse Ensembl "
                "table is bundled); pass the var column of mouse symbols as gene_key"
            )
        target = tuple(strip_version(g) if HUMAN_ENSEMBL.match(g) else None for g in genes)
        return GeneMapping(tuple(genes), target, "human Ensembl (version stripped)"), species
    if species == "human":
        return symbols_to_ensembl(genes, species="human"), species
    orthologs = mouse_to_human(genes)
    return orthologs.then(symbols_to_ensembl(_present(orthologs.target))), species


def _present(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v is not None))


def _check_species(species: str) -> None:
    if species not in SPECIES:
        raise ValueError(f"unknown species {species!r}; use one of {SPECIES}")
