"""Tests for the CELLxGENE Census loader with a fake cellxgene_census module."""

import json
import sys
import types

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from cellshift.datasets._census import cellxgene_census
from cellshift.datasets._remote import ChecksumError

STABLE_RELEASE = "2025-01-30"
B_CELLS = "cell_type == 'B cell' and tissue_general == 'blood'"


def small_census_slice() -> anndata.AnnData:
    return anndata.AnnData(
        X=scipy.sparse.csr_matrix(np.array([[0, 1, 2], [3, 0, 0]], dtype=np.float32)),
        obs=pd.DataFrame({"cell_type": ["B cell", "B cell"]}, index=["0", "1"]),
        var=pd.DataFrame({"feature_name": ["CD19", "MS4A1", "CD79A"]}, index=["0", "1", "2"]),
    )


class FakeCensus:
    """What open_soma returns: usable in a ``with`` statement."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


@pytest.fixture
def fake_census(monkeypatch):
    """Install a fake ``cellxgene_census`` module that records its calls."""
    module = types.ModuleType("cellxgene_census")
    module.calls = []

    def get_census_version_description(census_version):
        module.calls.append(("describe", census_version))
        return {"release_build": STABLE_RELEASE, "soma": {}, "h5ads": {}}

    def open_soma(census_version):
        module.calls.append(("open_soma", census_version))
        return FakeCensus()

    def get_anndata(census, **kwargs):
        assert isinstance(census, FakeCensus)
        module.calls.append(("get_anndata", kwargs))
        return small_census_slice()

    module.get_census_version_description = get_census_version_description
    module.open_soma = open_soma
    module.get_anndata = get_anndata
    monkeypatch.setitem(sys.modules, "cellxgene_census", module)
    return module


def calls_named(module, name):
    return [args for call, args in module.calls if call == name]


def cached_files(tmp_path, suffix):
    return sorted((tmp_path / "census").glob(f"*{suffix}"))


def test_query_is_sent_and_written_to_the_cache(fake_census, tmp_path):
    adata = cellxgene_census(
        obs_value_filter=B_CELLS,
        var_value_filter="feature_name in ['CD19', 'MS4A1', 'CD79A']",
        cache_dir=tmp_path,
        column_names={"obs": ["cell_type"], "var": ["feature_name"]},
    )

    assert calls_named(fake_census, "describe") == ["stable"]
    assert calls_named(fake_census, "open_soma") == [STABLE_RELEASE]
    assert calls_named(fake_census, "get_anndata") == [
        {
            "organism": "Homo sapiens",
            "obs_value_filter": B_CELLS,
            "var_value_filter": "feature_name in ['CD19', 'MS4A1', 'CD79A']",
            "obs_column_names": ["cell_type"],
            "var_column_names": ["feature_name"],
        }
    ]
    assert adata.shape == (2, 3)
    assert adata.uns["census_version"] == STABLE_RELEASE

    [h5ad_path] = cached_files(tmp_path, ".h5ad")
    [record_path] = cached_files(tmp_path, ".json")
    assert h5ad_path.stem == record_path.stem
    record = json.loads(record_path.read_text())
    assert record["query"] == {
        "organism": "Homo sapiens",
        "obs_value_filter": B_CELLS,
        "var_value_filter": "feature_name in ['CD19', 'MS4A1', 'CD79A']",
        "census_version": STABLE_RELEASE,
        "column_names": {"obs": ["cell_type"], "var": ["feature_name"]},
    }
    assert len(record["sha256"]) == 64
    assert not list((tmp_path / "census").glob("*.part"))


def test_second_identical_call_is_served_from_the_cache(fake_census, tmp_path):
    first = cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)
    fake_census.calls.clear()

    second = cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)

    assert calls_named(fake_census, "get_anndata") == []
    assert calls_named(fake_census, "open_soma") == []
    assert second.uns["census_version"] == STABLE_RELEASE
    np.testing.assert_array_equal(second.X.toarray(), first.X.toarray())
    pd.testing.assert_frame_equal(second.obs, first.obs)


def test_concrete_release_needs_no_version_lookup(fake_census, tmp_path):
    cellxgene_census(obs_value_filter=B_CELLS, census_version="2024-07-01", cache_dir=tmp_path)

    assert calls_named(fake_census, "describe") == []
    assert calls_named(fake_census, "open_soma") == ["2024-07-01"]


def test_alias_and_its_release_share_the_cache(fake_census, tmp_path):
    cellxgene_census(obs_value_filter=B_CELLS, census_version="stable", cache_dir=tmp_path)
    cellxgene_census(obs_value_filter=B_CELLS, census_version=STABLE_RELEASE, cache_dir=tmp_path)

    assert len(calls_named(fake_census, "get_anndata")) == 1
    assert len(cached_files(tmp_path, ".h5ad")) == 1


def test_different_queries_get_different_cache_entries(fake_census, tmp_path):
    cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)
    cellxgene_census(obs_value_filter=B_CELLS, organism="Mus musculus", cache_dir=tmp_path)
    cellxgene_census(obs_value_filter="cell_type == 'T cell'", cache_dir=tmp_path)

    assert len(calls_named(fake_census, "get_anndata")) == 3
    assert len(cached_files(tmp_path, ".h5ad")) == 3


def test_tampered_cache_is_detected(fake_census, tmp_path):
    cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)
    [h5ad_path] = cached_files(tmp_path, ".h5ad")
    with open(h5ad_path, "ab") as h5ad:
        h5ad.write(b"tampered")
    fake_census.calls.clear()

    with pytest.raises(ChecksumError, match=r"does not match the SHA-256 recorded") as info:
        cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)

    assert str(h5ad_path) in str(info.value)
    assert "Delete" in str(info.value)
    assert calls_named(fake_census, "get_anndata") == []


def test_h5ad_without_record_is_queried_again(fake_census, tmp_path):
    cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)
    [record_path] = cached_files(tmp_path, ".json")
    record_path.unlink()

    cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)

    assert len(calls_named(fake_census, "get_anndata")) == 2
    assert len(cached_files(tmp_path, ".json")) == 1


def test_default_cache_dir_is_used(fake_census, monkeypatch, tmp_path):
    monkeypatch.setenv("CELLSHIFT_CACHE", str(tmp_path))

    cellxgene_census(obs_value_filter=B_CELLS)

    assert len(cached_files(tmp_path, ".h5ad")) == 1


def test_missing_extra_explains_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cellxgene_census", None)  # makes the import fail

    with pytest.raises(ImportError, match=r"pip install 'cellshift\[census\]'"):
        cellxgene_census(obs_value_filter=B_CELLS, cache_dir=tmp_path)
