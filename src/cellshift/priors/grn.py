"""The GRN prior's graph: TF -> target edges from the bundled networks or a user's table, keyed by Ensembl ID.

Sources (any mix, unioned): ``dorothea`` (= ``dorothea_hs``, DoRothEA human, edges of the chosen
confidence levels, A-C by default as DoRothEA recommends), ``dorothea_mm`` (mouse; its genes
reach the human rows through one-to-one orthologs), ``trrust`` (TRRUST v2 human, literature
curated, no confidence levels) and files: CSV/TSV with columns ``tf`` and ``target`` (symbols or
Ensembl IDs, any case of the column names; a ``confidence`` column is filtered like DoRothEA's).

Genes are mapped to human Ensembl IDs (:func:`cellshift.data.resolve_to_human_ensembl`); edges
with an unmapped gene are dropped and counted. The mode of regulation (activation / repression)
is not used: a gene's prior vector places it among the programs it belongs to, and a target is in
its TF's program whichever way the TF acts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cellshift.datasets import grn
from cellshift.datasets._bundled import FILES
from cellshift.priors._genes import file_sha256, human_ensembl_lookup
from cellshift.priors.graph import GeneGraph

BUNDLED_NETWORKS = {
    "dorothea": "dorothea_hs",
    "dorothea_hs": "dorothea_hs",
    "dorothea_mm": "dorothea_mm",
    "trrust": "trrust",
}
NETWORK_FILES = {
    "dorothea_hs": FILES / "genes" / "grn" / "dorothea_hs.csv.gz",
    "dorothea_mm": FILES / "genes" / "grn" / "dorothea_mm.csv.gz",
    "trrust": FILES / "genes" / "grn" / "trrust_v2_human.tsv",
}


def read_network(source: str | os.PathLike, *, confidence: str = "ABC") -> tuple[pd.DataFrame, dict]:
    """One network's TF -> target edges in human Ensembl IDs, and a record of where they came from.

    Parameters
    ----------
    source
        A bundled name (see :data:`BUNDLED_NETWORKS`) or a CSV/TSV file with ``tf`` and ``target`` columns.
    confidence
        Confidence levels kept where the network has them (DoRothEA: A most, E least confident).

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        Edges (columns ``source`` = TF, ``target``) and ``{name, file, sha256, edges_read,
        edges_kept, genes_unmapped}``.
    """
    name = str(source)
    if name in BUNDLED_NETWORKS:
        table, path = grn(BUNDLED_NETWORKS[name]), NETWORK_FILES[BUNDLED_NETWORKS[name]]
    elif Path(name).is_file():
        path = Path(name)
        table = pd.read_csv(path, sep=None, engine="python", dtype=str)
        table = table.rename(columns={column: column.lower() for column in table.columns})
        if not {"tf", "target"} <= set(table.columns):
            raise ValueError(f"GRN table {path} needs columns tf and target; it has {list(table.columns)}")
    else:
        raise ValueError(f"--grn {name!r}: neither a bundled network ({', '.join(BUNDLED_NETWORKS)}) nor a file")
    if "confidence" in table.columns:
        table = table[table["confidence"].isin(list(confidence))]
    species = "mouse" if BUNDLED_NETWORKS.get(name) == "dorothea_mm" else None
    lookup = human_ensembl_lookup(pd.concat([table["tf"], table["target"]]).astype(str), species=species)
    edges = pd.DataFrame(
        {"source": table["tf"].astype(str).map(lookup), "target": table["target"].astype(str).map(lookup)}
    )
    edges = edges.dropna().drop_duplicates().reset_index(drop=True)
    n_genes = len(set(table["tf"].astype(str)) | set(table["target"].astype(str)))
    record = {
        "name": name if name in BUNDLED_NETWORKS else path.name,
        "file": path.name,
        "sha256": file_sha256(path),
        "edges_read": len(table),
        "edges_kept": len(edges),
        "genes_unmapped": n_genes - len(lookup),
    }
    return edges, record


def grn_graph(sources: list[str], *, confidence: str = "ABC") -> tuple[GeneGraph, list[dict]]:
    """The directed union graph of several networks (TF -> target, human Ensembl IDs).

    Parameters
    ----------
    sources
        Bundled names or files (see :func:`read_network`).
    confidence
        DoRothEA confidence levels kept.

    Returns
    -------
    tuple of (GeneGraph, list of dict)
        The graph and one provenance record per source.
    """
    tables, records = [], []
    for source in sources:
        edges, record = read_network(source, confidence=confidence)
        tables.append(edges)
        records.append(record)
    edges = pd.concat(tables, ignore_index=True)
    if edges.empty:
        raise ValueError(f"no GRN edge left from {sources} (confidence {confidence}, genes mapped to Ensembl IDs)")
    return GeneGraph(edges, "directed"), records
