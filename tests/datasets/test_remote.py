"""Tests for the download cache, figshare and Replogle loaders (no network)."""

import hashlib
import io
import json
from pathlib import Path

import anndata
import numpy as np
import pandas as pd
import pytest

from cellshift.datasets._remote import (
    FIGSHARE_LISTING,
    REPLOGLE2022_ARTICLE_ID,
    REPLOGLE2022_K562_ESSENTIAL_FILE,
    ChecksumError,
    default_cache_dir,
    download,
    figshare_file,
    replogle2022_k562_essential,
)

DATA = b"cellshift test payload\n" * 1000
DATA_MD5 = hashlib.md5(DATA).hexdigest()
DATA_SHA256 = hashlib.sha256(DATA).hexdigest()


class FakeResponse(io.BytesIO):
    """Stands in for the object returned by urllib.request.urlopen."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


class FakeOpener:
    """Serves fixed bytes per URL and records which URLs were opened."""

    def __init__(self, pages: dict[str, bytes]):
        self.pages = pages
        self.calls: list[str] = []

    def __call__(self, url: str) -> FakeResponse:
        self.calls.append(url)
        return FakeResponse(self.pages[url])


class BrokenResponse(FakeResponse):
    """A response whose connection drops after the first chunk."""

    def read(self, size: int = -1) -> bytes:
        if self.tell() > 0:
            raise ConnectionResetError("connection dropped")
        return super().read(size)


def leftover_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_default_cache_dir_uses_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLSHIFT_CACHE", str(tmp_path / "my cache"))
    assert default_cache_dir() == tmp_path / "my cache"


def test_default_cache_dir_falls_back_to_home(monkeypatch, tmp_path):
    monkeypatch.delenv("CELLSHIFT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "cellshift"


def test_checksum_error_is_a_value_error():
    assert issubclass(ChecksumError, ValueError)


def test_download_file_url_with_default_opener(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    dest = tmp_path / "cache" / "sub" / "copy.bin"

    result = download(
        source.as_uri(),
        dest,
        md5=DATA_MD5,
        sha256=DATA_SHA256,
        expected_size=len(DATA),
        progress=False,
    )

    assert result == dest
    assert dest.read_bytes() == DATA
    assert leftover_files(dest.parent) == ["copy.bin"]


def test_download_with_fake_opener(tmp_path):
    url = "https://example.org/data.bin"
    opener = FakeOpener({url: DATA})
    dest = tmp_path / "data.bin"

    download(url, dest, md5=DATA_MD5.upper(), expected_size=len(DATA), opener=opener)

    assert opener.calls == [url]
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_raises_and_leaves_no_file(tmp_path):
    url = "https://example.org/data.bin"
    opener = FakeOpener({url: DATA})
    dest = tmp_path / "data.bin"
    wrong_md5 = "0" * 32

    with pytest.raises(ChecksumError, match=f"md5: expected {wrong_md5}, got {DATA_MD5}"):
        download(url, dest, md5=wrong_md5, opener=opener, progress=False)

    assert leftover_files(tmp_path) == []


def test_sha256_mismatch_raises(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"

    with pytest.raises(ChecksumError, match=f"sha256: expected {'f' * 64}, got {DATA_SHA256}"):
        download(url, dest, sha256="f" * 64, opener=FakeOpener({url: DATA}), progress=False)

    assert leftover_files(tmp_path) == []


def test_size_mismatch_raises_and_leaves_no_file(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"

    with pytest.raises(ChecksumError, match=f"size: expected 10 bytes, got {len(DATA)} bytes"):
        download(url, dest, expected_size=10, opener=FakeOpener({url: DATA}), progress=False)

    assert leftover_files(tmp_path) == []


def test_interrupted_download_leaves_no_file(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"

    def opener(url):
        return BrokenResponse(DATA * 2000)  # more than one chunk

    with pytest.raises(ConnectionResetError, match="connection dropped"):
        download(url, dest, md5=DATA_MD5, opener=opener, progress=False)

    assert leftover_files(tmp_path) == []


def test_cached_file_is_reused_without_opening_the_url(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"
    download(url, dest, md5=DATA_MD5, opener=FakeOpener({url: DATA}), progress=False)

    opener = FakeOpener({url: DATA})
    result = download(url, dest, md5=DATA_MD5, expected_size=len(DATA), opener=opener)

    assert result == dest
    assert opener.calls == []


def test_corrupted_cached_file_is_detected(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA[:-1] + b"X")
    opener = FakeOpener({url: DATA})

    with pytest.raises(ChecksumError, match=r"data\.bin already exists but does not match") as info:
        download(url, dest, md5=DATA_MD5, opener=opener, progress=False)

    message = str(info.value)
    assert f"expected {DATA_MD5}" in message
    assert "Delete the file" in message
    assert "force=True" in message
    assert opener.calls == []
    assert dest.exists()  # the user's file is reported, not silently deleted


def test_truncated_cached_file_is_detected_by_size(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"
    dest.write_bytes(DATA[:100])

    with pytest.raises(ChecksumError, match=f"size: expected {len(DATA)} bytes, got 100 bytes"):
        download(url, dest, expected_size=len(DATA), opener=FakeOpener({url: DATA}))


def test_force_downloads_again(tmp_path):
    url = "https://example.org/data.bin"
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"stale")
    opener = FakeOpener({url: DATA})

    download(url, dest, md5=DATA_MD5, force=True, opener=opener, progress=False)

    assert opener.calls == [url]
    assert dest.read_bytes() == DATA


# --- figshare ---------------------------------------------------------------

ARTICLE_ID = 123
LISTING_URL = f"https://api.figshare.com/v2/articles/{ARTICLE_ID}/files?page_size=1000"
FILE_URL = "https://ndownloader.figshare.com/files/1"


def figshare_listing(name: str, data: bytes, url: str = FILE_URL) -> bytes:
    files = [
        {
            "id": 1,
            "name": name,
            "size": len(data),
            "computed_md5": hashlib.md5(data).hexdigest(),
            "download_url": url,
        },
        {
            "id": 2,
            "name": "readme.txt",
            "size": 5,
            "computed_md5": hashlib.md5(b"hello").hexdigest(),
            "download_url": "https://ndownloader.figshare.com/files/2",
        },
    ]
    return json.dumps(files).encode()


def test_figshare_file_downloads_and_caches_the_listing(tmp_path):
    opener = FakeOpener({LISTING_URL: figshare_listing("counts.h5ad", DATA), FILE_URL: DATA})

    path = figshare_file(ARTICLE_ID, "counts.h5ad", cache_dir=tmp_path, opener=opener)

    folder = tmp_path / "figshare" / str(ARTICLE_ID)
    assert path == folder / "counts.h5ad"
    assert path.read_bytes() == DATA
    assert opener.calls == [LISTING_URL, FILE_URL]
    listing = json.loads((folder / FIGSHARE_LISTING).read_text())
    assert [entry["name"] for entry in listing] == ["counts.h5ad", "readme.txt"]

    offline = FakeOpener({})
    assert figshare_file(ARTICLE_ID, "counts.h5ad", cache_dir=tmp_path, opener=offline) == path
    assert offline.calls == []


def test_figshare_file_uses_the_cache_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("CELLSHIFT_CACHE", str(tmp_path))
    opener = FakeOpener({LISTING_URL: figshare_listing("counts.h5ad", DATA), FILE_URL: DATA})

    path = figshare_file(ARTICLE_ID, "counts.h5ad", opener=opener)

    assert path == tmp_path / "figshare" / str(ARTICLE_ID) / "counts.h5ad"


def test_figshare_missing_file_lists_available_names(tmp_path):
    opener = FakeOpener({LISTING_URL: figshare_listing("counts.h5ad", DATA)})

    with pytest.raises(
        ValueError,
        match=r"no file named 'other\.h5ad'\. Available files: counts\.h5ad, readme\.txt",
    ):
        figshare_file(ARTICLE_ID, "other.h5ad", cache_dir=tmp_path, opener=opener)


def test_figshare_checksum_mismatch_raises(tmp_path):
    listing = figshare_listing("counts.h5ad", DATA)
    opener = FakeOpener({LISTING_URL: listing, FILE_URL: DATA[:-1] + b"X"})

    with pytest.raises(ChecksumError, match=f"md5: expected {DATA_MD5}"):
        figshare_file(ARTICLE_ID, "counts.h5ad", cache_dir=tmp_path, opener=opener)

    folder = tmp_path / "figshare" / str(ARTICLE_ID)
    assert leftover_files(folder) == [FIGSHARE_LISTING]


# --- Replogle et al. 2022 -----------------------------------------------------


def small_h5ad_bytes(tmp_path: Path) -> bytes:
    adata = anndata.AnnData(
        X=np.arange(12, dtype=np.float32).reshape(4, 3),
        obs=pd.DataFrame(
            {"gene": ["non-targeting", "POLR2A", "POLR2A", "RPL3"]},
            index=[f"cell{i}" for i in range(4)],
        ),
        var=pd.DataFrame(index=["GENE1", "GENE2", "GENE3"]),
    )
    path = tmp_path / "small.h5ad"
    adata.write_h5ad(path)
    return path.read_bytes()


def replogle_opener(tmp_path: Path) -> FakeOpener:
    data = small_h5ad_bytes(tmp_path)
    listing_url = f"https://api.figshare.com/v2/articles/{REPLOGLE2022_ARTICLE_ID}/files?page_size=1000"
    listing = figshare_listing(REPLOGLE2022_K562_ESSENTIAL_FILE, data)
    return FakeOpener({listing_url: listing, FILE_URL: data})


def test_replogle2022_k562_essential_opens_backed(tmp_path):
    opener = replogle_opener(tmp_path)

    adata = replogle2022_k562_essential(cache_dir=tmp_path / "cache", opener=opener)

    try:
        assert adata.isbacked
        assert adata.shape == (4, 3)
        assert adata.filename.name == REPLOGLE2022_K562_ESSENTIAL_FILE
        assert list(adata.obs["gene"]) == ["non-targeting", "POLR2A", "POLR2A", "RPL3"]
    finally:
        adata.file.close()


def test_replogle2022_k562_essential_in_memory(tmp_path):
    opener = replogle_opener(tmp_path)

    adata = replogle2022_k562_essential(cache_dir=tmp_path / "cache", opener=opener, backed=False)

    assert not adata.isbacked
    np.testing.assert_array_equal(adata.X, np.arange(12, dtype=np.float32).reshape(4, 3))
