"""Download public data sets into a local cache and verify them.

Large public data sets are fetched once, checked against the size and
checksum published by the source, and kept in a cache folder (see
:func:`default_cache_dir`). Later calls reuse the cached copy.

Every function that goes to the network takes an ``opener``: a callable
that receives a URL and returns a file-like response (with ``read(n)``,
``headers`` and support for the ``with`` statement), exactly like
:func:`urllib.request.urlopen`. Tests pass a fake opener so that they
run without network access.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import anndata
from tqdm import tqdm

from cellshift._io import write_text_atomic

Opener = Callable[[str], Any]

CHUNK_SIZE = 1024 * 1024  # read and write 1 MiB at a time: memory use stays bounded
TIMEOUT_S = 60  # give up when the server sends nothing for this many seconds
USER_AGENT = "cellshift (Python urllib)"  # some servers refuse the bare urllib default

FIGSHARE_API = "https://api.figshare.com/v2"
FIGSHARE_LISTING = "files.json"

REPLOGLE2022_ARTICLE_ID = 20029387
REPLOGLE2022_K562_ESSENTIAL_FILE = "K562_essential_raw_singlecell_01.h5ad"


class ChecksumError(ValueError):
    """A file's size or checksum differs from the published value."""


def default_cache_dir() -> Path:
    """Return the folder where downloaded data sets are kept.

    Returns
    -------
    Path
        ``$CELLSHIFT_CACHE`` when that environment variable is set,
        otherwise ``~/.cache/cellshift``. The folder is not created here.
    """
    cache = os.environ.get("CELLSHIFT_CACHE")
    if cache:
        return Path(cache).expanduser()
    return Path.home() / ".cache" / "cellshift"


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    expected_size: int | None = None,
    force: bool = False,
    opener: Opener | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and verify its size and checksums.

    The data are streamed in chunks of 1 MiB to a temporary file in the
    folder of ``dest``, so memory use stays small even for files of many
    gigabytes. Only when the size and every checksum given match is the
    temporary file renamed to ``dest`` (an atomic :func:`os.replace`), so
    ``dest`` never holds a partial download.

    Parameters
    ----------
    url
        Address of the file: ``https://``, ``http://`` or ``file://``.
    dest
        Where to store the file. Missing parent folders are created.
    md5, sha256
        Expected checksums as hexadecimal strings. Any left as ``None``
        is not checked.
    expected_size
        Expected size in bytes, or ``None`` to skip the check.
    force
        Download again even when ``dest`` already exists.
    opener
        Callable that opens a URL and returns a file-like response. The
        default opener is :func:`urllib.request.urlopen` with a
        cellshift User-Agent and a 60 s timeout.
    progress
        Show a progress bar.

    Returns
    -------
    Path
        ``dest``. When ``dest`` already exists and matches the expected
        size and checksums it is returned without downloading anything.

    Raises
    ------
    ChecksumError
        When the downloaded data, or an existing ``dest``, does not match
        the expected size or checksums. A failed download leaves no file.
    """
    dest = Path(dest)
    expected = _expected_values(md5=md5, sha256=sha256, size=expected_size)
    if dest.exists() and not force:
        mismatch = _describe_mismatch(expected, _measure_file(dest, _algorithms(expected)))
        if mismatch is None:
            return dest
        raise ChecksumError(
            f"The file {dest} already exists but does not match the source ({mismatch}). "
            "It is probably an incomplete or corrupted download. Delete the file, "
            "or call download(..., force=True), to download it again."
        )

    dest.parent.mkdir(parents=True, exist_ok=True)
    open_url = _urlopen if opener is None else opener
    handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out, open_url(url) as response:
            total = expected_size if expected_size is not None else _content_length(response)
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=dest.name,
                disable=not progress,
            ) as bar:
                actual = _read_and_measure(response, algorithms=_algorithms(expected), out=out, bar=bar)
        mismatch = _describe_mismatch(expected, actual)
        if mismatch is not None:
            raise ChecksumError(
                f"The download of {url} does not match the source ({mismatch}). "
                "Nothing was saved; try again. If the error persists, the file at "
                "the source may have changed."
            )
        os.replace(temp_path, dest)
    except BaseException:
        # Also on Ctrl-C: never leave a partial file behind.
        temp_path.unlink(missing_ok=True)
        raise
    return dest


def figshare_file(
    article_id: int,
    filename: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    opener: Opener | None = None,
) -> Path:
    """Download one file of a public figshare article into the cache.

    The article's file list is read from the figshare API
    (``https://api.figshare.com/v2/articles/{article_id}/files``) and
    saved as ``files.json`` next to the data, so a second call does not
    need the network. The file is verified against the size and MD5
    published in that list.

    Parameters
    ----------
    article_id
        Numeric figshare article id (the number at the end of the
        article's web address). Articles on figshare+ use the same API.
    filename
        Name of the file within the article.
    cache_dir
        Cache folder; defaults to :func:`default_cache_dir`. Files go to
        ``{cache_dir}/figshare/{article_id}/``.
    opener
        Callable that opens a URL, see :func:`download`.

    Returns
    -------
    Path
        Path of the verified local copy.

    Raises
    ------
    ValueError
        When the article has no file called ``filename``; the message
        lists the available names.
    ChecksumError
        When the file does not match the size or MD5 listed by figshare.
    """
    folder = Path(cache_dir if cache_dir is not None else default_cache_dir())
    folder = folder / "figshare" / str(article_id)
    files = _figshare_file_list(article_id, folder, opener)
    by_name = {entry["name"]: entry for entry in files}
    if filename not in by_name:
        available = ", ".join(sorted(by_name)) or "(none)"
        raise ValueError(f"Figshare article {article_id} has no file named {filename!r}. Available files: {available}.")
    entry = by_name[filename]
    return download(
        entry["download_url"],
        folder / filename,
        # figshare leaves computed_md5 empty while it is still computing it.
        md5=entry["computed_md5"] or None,
        expected_size=entry["size"],
        opener=opener,
    )


def replogle2022_k562_essential(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    opener: Opener | None = None,
    backed: bool = True,
) -> anndata.AnnData:
    """Load the Replogle et al. 2022 K562 essential-scale Perturb-seq screen.

    Raw UMI counts of single K562 cells after CRISPRi knock-down of the
    common essential genes (about 310,000 cells), one of the data sets of
    the genome-wide Perturb-seq paper. The target gene of each cell is in
    ``obs["gene"]``; control cells are labelled ``"non-targeting"``.

    The file ``K562_essential_raw_singlecell_01.h5ad`` (about 10 GB) is
    downloaded once from the authors' figshare+ article 20029387 into the
    cache and checked against the MD5 that figshare publishes.

    Parameters
    ----------
    cache_dir
        Cache folder; defaults to :func:`default_cache_dir`.
    opener
        Callable that opens a URL, see :func:`download`.
    backed
        Open the file in backed (read-only, on-disk) mode, so that the
        count matrix is not loaded into memory. Use ``backed=False`` to
        read everything into memory.

    Returns
    -------
    anndata.AnnData
        The single-cell data set.

    References
    ----------
    Replogle JM, Saunders RA, Pogson AN, et al. Mapping information-rich
    genotype-phenotype landscapes with genome-scale Perturb-seq. Cell
    185(14):2559-2575.e28 (2022). https://doi.org/10.1016/j.cell.2022.05.013

    Data: "Replogle et al. 2022 processed Perturb-seq datasets", figshare+
    article 20029387, https://plus.figshare.com/articles/dataset/20029387
    """
    path = figshare_file(
        REPLOGLE2022_ARTICLE_ID,
        REPLOGLE2022_K562_ESSENTIAL_FILE,
        cache_dir=cache_dir,
        opener=opener,
    )
    return anndata.read_h5ad(path, backed="r" if backed else None)


def _urlopen(url: str) -> Any:
    """Open ``url`` with :func:`urllib.request.urlopen`, a User-Agent and a timeout."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(request, timeout=TIMEOUT_S)


def _figshare_file_list(article_id: int, folder: Path, opener: Opener | None) -> list[dict[str, Any]]:
    """Return the file list of a figshare article, from the cache if saved before."""
    listing = folder / FIGSHARE_LISTING
    if listing.exists():
        return json.loads(listing.read_text())
    # The API returns 10 files per page unless asked for more.
    url = f"{FIGSHARE_API}/articles/{article_id}/files?page_size=1000"
    open_url = _urlopen if opener is None else opener
    with open_url(url) as response:
        files = json.loads(response.read())
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(listing, json.dumps(files, indent=2))
    return files


def _file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file as a hexadecimal string."""
    return str(_measure_file(path, ["sha256"])["sha256"])


def _measure_file(path: Path, algorithms: list[str]) -> dict[str, str | int]:
    """Size and checksums of a file; the file is read only when checksums are asked for."""
    if not algorithms:
        return {"size": path.stat().st_size}
    with open(path, "rb") as source:
        return _read_and_measure(source, algorithms=algorithms)


def _expected_values(*, md5: str | None, sha256: str | None, size: int | None) -> dict[str, str | int]:
    """Collect the expected size and checksums that were given, size first."""
    expected: dict[str, str | int] = {}
    if size is not None:
        expected["size"] = int(size)
    if md5 is not None:
        expected["md5"] = md5.lower()
    if sha256 is not None:
        expected["sha256"] = sha256.lower()
    return expected


def _algorithms(expected: dict[str, str | int]) -> list[str]:
    """Names of the checksum algorithms needed to check ``expected``."""
    return [name for name in expected if name != "size"]


def _read_and_measure(
    source: BinaryIO,
    *,
    algorithms: list[str],
    out: BinaryIO | None = None,
    bar: tqdm | None = None,
) -> dict[str, str | int]:
    """Read ``source`` to the end, chunk by chunk, and measure what was read.

    Each chunk is also written to ``out`` and counted on ``bar`` when they
    are given. Returns the number of bytes (``"size"``) and the hex digest
    for each algorithm in ``algorithms``.
    """
    # MD5 only detects damaged files here; it is not used for security.
    hashers = {name: hashlib.new(name, usedforsecurity=False) for name in algorithms}
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        size += len(chunk)
        for hasher in hashers.values():
            hasher.update(chunk)
        if out is not None:
            out.write(chunk)
        if bar is not None:
            bar.update(len(chunk))
    measured: dict[str, str | int] = {"size": size}
    for name, hasher in hashers.items():
        measured[name] = hasher.hexdigest()
    return measured


def _describe_mismatch(expected: dict[str, str | int], actual: dict[str, str | int]) -> str | None:
    """Describe the first value in ``expected`` that ``actual`` does not match."""
    for name, value in expected.items():
        if actual[name] != value:
            unit = " bytes" if name == "size" else ""
            return f"{name}: expected {value}{unit}, got {actual[name]}{unit}"
    return None


def _content_length(response: Any) -> int | None:
    """Size announced by the server in the Content-Length header, if any."""
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None
