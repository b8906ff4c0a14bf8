"""The promoter prior: a user's table of promoter vectors, or k-mer profiles of promoter sequences.

GeneCompass embeds each gene's promoter (-500..+2000 bp around the TSS) with DNABERT. No DNA
language model ships with cellshift, so a promoter prior comes from either

- a table (CSV/TSV, genes in the first column, one column per dimension), e.g. vectors the user
  computed with a sequence model; a table wider than ``dim`` is reduced to ``dim`` by PCA, a
  narrower one is kept as it is; or
- a FASTA file of promoter sequences (optionally gzipped), one per gene, whose header names the
  gene (a human Ensembl ID, or a human or mouse symbol, anywhere among the header's words split
  at spaces and ``| ; : , =``; an Ensembl ID wins over a symbol, an earlier word over a later one).
  Each sequence becomes its k-mer composition: for every ``k`` in ``kmer_sizes`` (4, 5, 6), the
  counts of the ``4^k`` k-mers over A/C/G/T (windows with any other letter skipped), divided by
  the number of counted windows; the ``4^4 + 4^5 + 4^6 = 5,376`` frequencies of all genes are
  then reduced to ``dim`` principal components (centred; scikit-learn PCA, seeded). Identical
  sequences give identical vectors. Sequences are read in their given (gene) orientation.

Genes are mapped to human Ensembl IDs; a gene named twice is refused.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from cellshift.data import mouse_to_human, symbols_to_ensembl
from cellshift.data.genes import HUMAN_ENSEMBL, strip_version
from cellshift.priors._frames import vector_frame
from cellshift.priors._genes import file_sha256, human_ensembl_lookup
from cellshift.priors.store import check_prior_table, read_prior_table

FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
HEADER_SEPARATORS = re.compile(r"[\s|;:,=]+")
BASES = np.full(256, -1, dtype=np.int64)
for _code, _letter in enumerate("ACGT"):
    BASES[ord(_letter)] = BASES[ord(_letter.lower())] = _code


def is_fasta(path: str | os.PathLike) -> bool:
    """Whether a file is FASTA: a FASTA suffix (before ``.gz``) or a first line starting with ``>``."""
    path = Path(path)
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if suffixes and suffixes[-1].lower() in FASTA_SUFFIXES:
        return True
    with _open_text(path) as handle:
        return handle.readline().startswith(">")


def read_fasta(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(header without '>', sequence)`` records of a FASTA file (sequence lines joined)."""
    records, header, lines = [], None, []
    with _open_text(path) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if header is not None:
                    records.append((header, "".join(lines)))
                header, lines = line[1:], []
            elif line:
                lines.append(line)
    if header is not None:
        records.append((header, "".join(lines)))
    return records


def header_genes(headers: list[str]) -> list[str | None]:
    """The human Ensembl ID each FASTA header names (see the module docstring), ``None`` where none."""
    words = [[word for word in HEADER_SEPARATORS.split(header) if word] for header in headers]
    symbols = list(dict.fromkeys(word for ws in words for word in ws if not HUMAN_ENSEMBL.match(word)))
    human = dict(zip(symbols, symbols_to_ensembl(symbols).target, strict=True))
    orthologs = mouse_to_human(symbols)
    found = [target for target in orthologs.target if target is not None]
    mouse = dict(zip(symbols, orthologs.then(symbols_to_ensembl(found)).target, strict=True))
    genes = []
    for ws in words:
        ensembl = [strip_version(word) for word in ws if HUMAN_ENSEMBL.match(word)]
        named = [human.get(word) or mouse.get(word) for word in ws]
        genes.append(next(iter(ensembl + [gene for gene in named if gene is not None]), None))
    return genes


def kmer_profile(sequence: str, kmer_sizes: tuple[int, ...] = (4, 5, 6)) -> np.ndarray:
    """Concatenated k-mer frequencies of one sequence (see the module docstring), float64.

    Parameters
    ----------
    sequence
        DNA letters; anything but A/C/G/T (either case) breaks the windows that contain it.
    kmer_sizes
        The ``k`` values, in order.

    Returns
    -------
    numpy.ndarray
        ``sum(4^k)`` frequencies; each ``k``'s block sums to 1 (0 when no window counted).
    """
    bases = BASES[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
    invalid = np.concatenate([[0], np.cumsum(bases < 0)])
    blocks = []
    for k in kmer_sizes:
        n_windows = max(len(bases) - k + 1, 0)
        codes = np.zeros(n_windows, dtype=np.int64)
        for offset in range(k):
            codes = codes * 4 + bases[offset : offset + n_windows]
        valid = invalid[k : k + n_windows] - invalid[:n_windows] == 0
        counts = np.bincount(codes[valid], minlength=4**k).astype(np.float64)
        blocks.append(counts / max(counts.sum(), 1.0))
    return np.concatenate(blocks)


def promoter_prior(
    path: str | os.PathLike, *, dim: int = 128, seed: int = 0, kmer_sizes: tuple[int, ...] = (4, 5, 6)
) -> tuple[pd.DataFrame, dict]:
    """Promoter vectors (human Ensembl ID x dims) from a table or a FASTA file, and a provenance record.

    Parameters
    ----------
    path
        A CSV/TSV table of vectors or a FASTA file of promoter sequences.
    dim
        Dimension of the PCA (fewer when there are fewer genes or features; a narrower table is kept).
    seed
        Seed of the PCA's randomised solver.
    kmer_sizes
        ``k`` values of the FASTA k-mer profiles.

    Returns
    -------
    tuple of (pandas.DataFrame, dict)
        The vectors and ``{name, file, sha256, format, records, genes_unrecognised}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--promoter {path} does not exist")
    record = {"name": path.name, "file": path.name, "sha256": file_sha256(path)}
    if is_fasta(path):
        features, genes, n_records = _fasta_features(path, kmer_sizes)
        record.update(format="fasta", kmer_sizes=list(kmer_sizes))
    else:
        table = read_prior_table(path, "promoter")
        lookup = human_ensembl_lookup(table.index)
        mapped = table.index.map(lambda name: lookup.get(name))
        keep = ~pd.isna(mapped) & ~pd.Index(mapped).duplicated()
        features, genes, n_records = table.to_numpy()[keep], list(mapped[keep]), len(table)
        record.update(format="table")
        if not len(genes):
            raise ValueError(f"no gene of the promoter table {path} (e.g. {list(table.index[:3])}) is a known gene")
    record.update(records=n_records, genes_unrecognised=n_records - len(genes))
    n_components = min(dim, features.shape[0], features.shape[1])
    if record["format"] == "fasta" or features.shape[1] > dim:
        pca = PCA(n_components=n_components, random_state=seed).fit(features)
        # project each distinct profile once, so identical sequences get bit-identical vectors
        distinct, which = np.unique(features, axis=0, return_inverse=True)
        features = pca.transform(distinct)[which.ravel()]
    frame = vector_frame(features, genes)
    check_prior_table(frame, "promoter")
    return frame, record


def _fasta_features(path: Path, kmer_sizes: tuple[int, ...]) -> tuple[np.ndarray, list[str], int]:
    """k-mer profiles of the FASTA records whose header names a gene; refuse a file where none does."""
    records = read_fasta(path)
    genes = header_genes([header for header, _ in records])
    named = [(gene, sequence) for gene, (_, sequence) in zip(genes, records, strict=True) if gene is not None]
    if not named:
        example = records[0][0] if records else "(no records)"
        raise ValueError(
            f"no FASTA header of {path} holds a recognisable gene ID (human Ensembl ID, human or mouse "
            f"symbol), e.g. '>{example}'; put the gene in each header, e.g. '>ENSG00000141510|TP53'"
        )
    seen = pd.Index([gene for gene, _ in named])
    if seen.duplicated().any():
        raise ValueError(
            f"{path} has several sequences for {int(seen.duplicated().sum())} genes "
            f"(e.g. {list(seen[seen.duplicated()][:3])}); keep one promoter per gene"
        )
    features = np.vstack([kmer_profile(sequence, kmer_sizes) for _, sequence in named])
    return features, [gene for gene, _ in named], len(records)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else path.open()
