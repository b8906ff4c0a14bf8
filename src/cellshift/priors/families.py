"""The gene-family prior's graph: gene x group membership (HGNC gene groups, or a user's table).

``hgnc`` is the bundled HGNC gene-group table (29,847 gene-group links over 1,498 groups, joined
to Ensembl IDs through the bundled HGNC ID table, :func:`cellshift.datasets.gene_families`);
GeneCompass links genes of one HGNC family too. A file is a CSV/TSV with columns ``gene``
(symbols or Ensembl IDs) and ``family`` (any label). The graph is bipartite: genes on one side,
groups on the other; only the genes get prior vectors.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cellshift.datasets import gene_families
from cellshift.datasets._bundled import FILES
from cellshift.priors._genes import file_sha256, human_ensembl_lookup
from cellshift.priors.graph import GeneGraph

HGNC_FILES = (
    FILES / "genes" / "families" / "gene_has_family.csv",
    FILES / "genes" / "families" / "family.csv",
    FILES / "genes" / "ids" / "hgnc_biomart_2023_ids_symbols_aliases.tsv",
)


def family_graph(source: str | os.PathLike = "hgnc") -> tuple[GeneGraph, list[dict]]:
    """The bipartite gene -> group graph (genes as human Ensembl IDs) and where it came from.

    Parameters
    ----------
    source
        ``"hgnc"`` (bundled) or a CSV/TSV file with ``gene`` and ``family`` columns.

    Returns
    -------
    tuple of (GeneGraph, list of dict)
        The graph and one provenance record per file read (``name, file, sha256``) with the
        links read and kept.
    """
    name = str(source)
    if name == "hgnc":
        links = gene_families().dropna(subset=["ensembl_id"])
        edges = pd.DataFrame({"source": links["ensembl_id"], "target": "hgnc:" + links["family_id"]})
        files, n_read = HGNC_FILES, len(gene_families())
    elif Path(name).is_file():
        table = pd.read_csv(name, sep=None, engine="python", dtype=str)
        table = table.rename(columns={column: column.lower() for column in table.columns})
        if not {"gene", "family"} <= set(table.columns):
            raise ValueError(f"gene-family table {name} needs columns gene and family; it has {list(table.columns)}")
        lookup = human_ensembl_lookup(table["gene"].astype(str))
        edges = pd.DataFrame({"source": table["gene"].astype(str).map(lookup), "target": table["family"]}).dropna()
        files, n_read = (Path(name),), len(table)
    else:
        raise ValueError(f"--families {name!r}: give 'hgnc' (bundled) or a file with gene and family columns")
    if edges.empty:
        raise ValueError(f"no gene-family link of {name} has a gene that maps to a human Ensembl ID")
    records = [
        {"name": name if name == "hgnc" else Path(name).name, "file": path.name, "sha256": file_sha256(path)}
        for path in files
    ]
    records[0].update(links_read=n_read, links_kept=len(edges.drop_duplicates()))
    return GeneGraph(edges, "bipartite"), records
