"""Slices of the CZ CELLxGENE Discover Census, cached as h5ad files.

Needs the optional package ``cellxgene-census``
(``pip install 'cellshift[census]'``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import anndata

from cellshift._io import atomic_path, write_text_atomic
from cellshift.datasets._remote import (
    ChecksumError,
    _file_sha256,
    default_cache_dir,
)

RELEASE_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")  # concrete census releases are named by date


def cellxgene_census(
    *,
    organism: str = "Homo sapiens",
    obs_value_filter: str,
    var_value_filter: str | None = None,
    census_version: str = "stable",
    cache_dir: str | os.PathLike[str] | None = None,
    column_names: dict[str, list[str]] | None = None,
) -> anndata.AnnData:
    """Query cells from the CELLxGENE Census and cache the result.

    The query is sent with :func:`cellxgene_census.get_anndata` (raw
    counts in ``X``). The result is saved as an h5ad file in
    ``{cache_dir}/census/``, named by a hash of the query, together with a
    JSON file that holds the query, the concrete census release and the
    SHA-256 of the h5ad. A later call with the same query loads the h5ad
    after checking its SHA-256, without contacting the census.

    Parameters
    ----------
    organism
        ``"Homo sapiens"`` or ``"Mus musculus"``.
    obs_value_filter
        Which cells to fetch, in SOMA filter syntax, for example
        ``"cell_type == 'B cell' and tissue_general == 'blood'"``. Keep it
        narrow: the whole census holds tens of millions of cells.
    var_value_filter
        Which genes to fetch, for example
        ``"feature_name in ['CD19', 'MS4A1']"``; ``None`` keeps all genes.
    census_version
        Census release, such as ``"2025-01-30"``, or an alias such as
        ``"stable"``. An alias is resolved to the release it points to
        (this needs the network), so the cache never mixes releases. Give
        a concrete release to reuse the cache without network access.
    cache_dir
        Cache folder; defaults to :func:`default_cache_dir`.
    column_names
        Metadata columns to fetch, as ``{"obs": [...], "var": [...]}``;
        ``None``, or a missing key, fetches all columns of that axis.

    Returns
    -------
    anndata.AnnData
        The cells that match the query, in memory. The concrete census
        release is stored in ``uns["census_version"]``.

    Raises
    ------
    ImportError
        When ``cellxgene-census`` is not installed.
    ChecksumError
        When the cached h5ad does not match the SHA-256 recorded when it
        was written.
    """
    census_api = _import_cellxgene_census()
    release = _resolve_census_version(census_api, census_version)
    query = {
        "organism": organism,
        "obs_value_filter": obs_value_filter,
        "var_value_filter": var_value_filter,
        "census_version": release,
        "column_names": column_names,
    }
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir()) / "census"
    key = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]
    h5ad_path = folder / f"{key}.h5ad"
    record_path = folder / f"{key}.json"
    if h5ad_path.exists() and record_path.exists():
        return _read_cached(h5ad_path, record_path)

    obs_columns = column_names.get("obs") if column_names else None
    var_columns = column_names.get("var") if column_names else None
    with census_api.open_soma(census_version=release) as census:
        adata = census_api.get_anndata(
            census,
            organism=organism,
            obs_value_filter=obs_value_filter,
            var_value_filter=var_value_filter,
            obs_column_names=obs_columns,
            var_column_names=var_columns,
        )
    adata.uns["census_version"] = release

    folder.mkdir(parents=True, exist_ok=True)
    sha256 = _write_h5ad_atomic(adata, h5ad_path)
    # The record is written last: an h5ad without its record is queried again.
    record = {"query": query, "sha256": sha256}
    write_text_atomic(record_path, json.dumps(record, indent=2, sort_keys=True))
    return adata


def _import_cellxgene_census() -> ModuleType:
    """Import the optional ``cellxgene_census`` package, or explain how to install it."""
    try:
        import cellxgene_census
    except ImportError as error:
        raise ImportError(
            "Loading data from the CELLxGENE Census needs the optional package "
            "'cellxgene-census'. Install it with: pip install 'cellshift[census]'"
        ) from error
    return cellxgene_census


def _resolve_census_version(census_api: ModuleType, census_version: str) -> str:
    """Turn an alias such as ``"stable"`` into the date-named release it points to."""
    if RELEASE_NAME.fullmatch(census_version):
        return census_version
    description: dict[str, Any] = census_api.get_census_version_description(census_version)
    return str(description["release_build"])


def _write_h5ad_atomic(adata: anndata.AnnData, path: Path) -> str:
    """Write ``adata`` to ``path`` through a temporary file; return the file's SHA-256."""
    with atomic_path(path) as temporary:
        adata.write_h5ad(temporary)
        sha256 = _file_sha256(temporary)
    return sha256


def _read_cached(h5ad_path: Path, record_path: Path) -> anndata.AnnData:
    """Load a cached census slice after checking it against its recorded SHA-256."""
    expected = json.loads(record_path.read_text())["sha256"]
    actual = _file_sha256(h5ad_path)
    if actual != expected:
        raise ChecksumError(
            f"The cached census slice {h5ad_path} does not match the SHA-256 recorded "
            f"when it was written (expected {expected}, got {actual}); the file was "
            f"changed or damaged. Delete {h5ad_path} and {record_path} to query the "
            "census again."
        )
    return anndata.read_h5ad(h5ad_path)
