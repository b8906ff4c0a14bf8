"""Vocabulary keys of genes: the ortholog-mapped vocabulary (Geneformer) or the joint human + mouse one (GeneCompass).

Two vocabularies turn a cell's genes into gene-table tokens:

- ``ortholog`` (the default, Geneformer-compatible): every gene is keyed by a human Ensembl ID;
  a mouse gene takes the ID of its one-to-one human ortholog, and a mouse gene without one is lost.
- ``joint`` (GeneCompass): human genes are keyed by human Ensembl ID as above, and mouse genes keep
  tokens of their own, ``mouse:<symbol>`` (e.g. ``mouse:Gcg``). No mouse Ensembl table is bundled,
  so the key is the mouse symbol, in the case the bundled ortholog tables write it (MGI case;
  an upper-cased ``GCG`` becomes ``mouse:Gcg``, see :func:`~cellshift.data.genes.canonical_mouse_symbols`),
  behind the prefix ``mouse:``, which no Ensembl ID contains. Keys are case-sensitive, and a
  symbol the tables do not know stays as written, so data sets with older or re-cased symbols
  share only the tokens of the symbols they write alike.

A mouse token is linked to its one-to-one human ortholog (:func:`human_keys`): it reads that
gene's prior-knowledge rows. A gene table's vocabulary is ``joint`` when it holds mouse tokens
(:attr:`cellshift.data.GeneTable.vocabulary`), otherwise ``ortholog``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cellshift.data.genes import (
    GeneMapping,
    canonical_mouse_symbols,
    detect_id_type,
    detect_species,
    mouse_to_human,
    resolve_to_human_ensembl,
    symbols_to_ensembl,
)

VOCABULARIES = ("ortholog", "joint")
MOUSE_TOKEN_PREFIX = "mouse:"


def check_vocabulary(vocabulary: str) -> None:
    """Refuse a vocabulary name other than ``ortholog`` and ``joint``."""
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"unknown vocabulary {vocabulary!r}; use one of {VOCABULARIES}")


def vocabulary_keys(
    genes: Sequence[str], *, species: str | None = None, vocabulary: str = "ortholog"
) -> tuple[GeneMapping, str]:
    """Map input gene identifiers to their keys in ``vocabulary`` (the gene tables' tokens).

    Parameters
    ----------
    genes
        Gene identifiers of one species: Ensembl IDs or symbols.
    species
        ``human`` or ``mouse``; detected from the identifiers when ``None``.
    vocabulary
        ``ortholog``: human Ensembl IDs for both species
        (:func:`~cellshift.data.genes.resolve_to_human_ensembl`); ``joint``: human Ensembl IDs for
        human genes, ``mouse:<symbol>`` for mouse genes.

    Returns
    -------
    The mapping (``None`` where a gene has no key) and the species (given or detected).

    Raises
    ------
    ValueError
        For mouse Ensembl IDs in the joint vocabulary: its mouse keys are symbols.
    """
    check_vocabulary(vocabulary)
    genes = [str(g) for g in genes]
    species = species or detect_species(genes)
    if vocabulary == "ortholog" or species == "human":
        return resolve_to_human_ensembl(genes, species=species)
    if detect_id_type(genes) == "ensembl":
        raise ValueError(
            "the joint vocabulary keys mouse genes by symbol and no mouse Ensembl table is bundled; pass the "
            "var column of mouse symbols as gene_key (--gene-key)"
        )
    target = tuple(MOUSE_TOKEN_PREFIX + symbol for symbol in canonical_mouse_symbols(genes))
    return GeneMapping(tuple(genes), target, "mouse symbol -> joint-vocabulary mouse token"), species


def human_keys(tokens: Sequence[str]) -> list[str | None]:
    """The human gene key of each vocabulary token: its human Ensembl ID.

    A human token (an Ensembl ID) is its own key; a mouse token ``mouse:<symbol>`` takes the
    Ensembl ID of its one-to-one human ortholog, ``None`` without one. Special tokens keep their
    name (no gene table indexes a gene by it).
    """
    mouse = [t.removeprefix(MOUSE_TOKEN_PREFIX) for t in tokens if t.startswith(MOUSE_TOKEN_PREFIX)]
    orthologs = mouse_to_human(mouse)
    ensembl = orthologs.then(symbols_to_ensembl([t for t in orthologs.target if t is not None]))
    of_mouse = dict(zip(ensembl.source, ensembl.target, strict=True))
    return [of_mouse[t.removeprefix(MOUSE_TOKEN_PREFIX)] if t.startswith(MOUSE_TOKEN_PREFIX) else t for t in tokens]
