import gzip
from itertools import product

import numpy as np
import pandas as pd
import pytest

from cellshift.priors import promoter_prior
from cellshift.priors.promoter import header_genes, kmer_profile, read_fasta

# Real gene IDs in headers; the sequences are random: only the structure is tested.
HEADERS = [
    "ENSG00000141510.18|TP53|chr17",
    "MYC promoter -500..+2000",
    "Gata1 mouse",
    "ENSG00000012048 BRCA1",
    "chr1:100-2600 unknown_region",
    "STAT1",
]


def write_fasta(path, headers, sequences, width=60):
    lines = []
    for header, sequence in zip(headers, sequences):
        lines.append(f">{header}")
        lines += [sequence[i : i + width] for i in range(0, len(sequence), width)]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def random_sequences(n, length=300, seed=0):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]


def test_headers_name_genes_by_ensembl_id_or_human_or_mouse_symbol():
    genes = header_genes(HEADERS)
    assert genes[0] == "ENSG00000141510"  # Ensembl ID (version dropped) wins
    assert genes[1] == "ENSG00000136997"  # MYC
    assert genes[2] == "ENSG00000102145"  # mouse Gata1 -> human GATA1
    assert genes[3] == "ENSG00000012048"
    assert genes[4] is None
    assert genes[5] == "ENSG00000115415"  # STAT1


def test_kmer_profile_counts_windows_of_acgt_only():
    sequence = "ACGTNacgtA"
    profile = kmer_profile(sequence, kmer_sizes=(2,))
    words = ["".join(p) for p in product("ACGT", repeat=2)]
    upper = sequence.upper()
    windows = [upper[i : i + 2] for i in range(len(upper) - 1) if "N" not in upper[i : i + 2]]
    expected = np.array([windows.count(w) for w in words]) / len(windows)
    np.testing.assert_allclose(profile, expected)
    assert kmer_profile("ACG", kmer_sizes=(4,)).sum() == 0
    assert kmer_profile("A" * 10).shape == (4**4 + 4**5 + 4**6,)


def test_fasta_gives_one_vector_per_named_gene_and_identical_sequences_identical_vectors(tmp_path):
    sequences = random_sequences(len(HEADERS))
    sequences[3] = sequences[1]  # BRCA1's promoter is MYC's
    path = write_fasta(tmp_path / "promoters.fa.gz", HEADERS, sequences)
    assert [h for h, _ in read_fasta(path)] == HEADERS and read_fasta(path)[0][1] == sequences[0]
    table, record = promoter_prior(path, dim=3, seed=0)
    assert table.shape == (5, 3) and "ENSG00000141510" in table.index
    np.testing.assert_array_equal(table.loc["ENSG00000012048"], table.loc["ENSG00000136997"])
    assert record["format"] == "fasta" and record["records"] == 6 and record["genes_unrecognised"] == 1
    again, _ = promoter_prior(path, dim=3, seed=0)
    pd.testing.assert_frame_equal(table, again)


def test_a_fasta_without_gene_ids_or_with_a_gene_twice_is_refused(tmp_path):
    anonymous = write_fasta(tmp_path / "anonymous.fasta", ["seq1", "chr2:5-900"], random_sequences(2))
    with pytest.raises(ValueError, match="recognisable gene ID"):
        promoter_prior(anonymous)
    twice = write_fasta(tmp_path / "twice.fa", ["TP53", "ENSG00000141510"], random_sequences(2))
    with pytest.raises(ValueError, match="one promoter per gene"):
        promoter_prior(twice)


def test_a_table_of_vectors_is_keyed_by_ensembl_id_and_checked(tmp_path):
    table = pd.DataFrame(np.arange(12.0).reshape(3, 4), index=["TP53", "MYC", "not_a_gene"])
    table.to_csv(tmp_path / "vectors.csv")
    vectors, record = promoter_prior(tmp_path / "vectors.csv", dim=8)
    assert list(vectors.index) == ["ENSG00000141510", "ENSG00000136997"] and vectors.shape[1] == 4
    assert record["format"] == "table" and record["genes_unrecognised"] == 1
    assert promoter_prior(tmp_path / "vectors.csv", dim=2)[0].shape == (2, 2)  # wider than dim: PCA
    table.iloc[1, 2] = np.nan
    table.to_csv(tmp_path / "nan.csv")
    with pytest.raises(ValueError, match="NaN"):
        promoter_prior(tmp_path / "nan.csv")
    pd.concat([table.iloc[:1], table.iloc[:1]]).to_csv(tmp_path / "twice.csv")
    with pytest.raises(ValueError, match="twice"):
        promoter_prior(tmp_path / "twice.csv")
