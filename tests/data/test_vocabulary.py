import numpy as np
import pandas as pd
import pytest

from cellshift.data import (
    GeneTable,
    canonical_mouse_symbols,
    human_keys,
    mouse_to_human,
    resolve_to_human_ensembl,
    vocabulary_keys,
)

TP53, GCG, ACTB = "ENSG00000141510", "ENSG00000115263", "ENSG00000075624"


def test_upper_cased_mouse_symbols_take_the_tables_case_and_find_their_orthologs():
    assert canonical_mouse_symbols(["Gcg", "GCG", "MT-CO1", "NotAGene1"]) == ["Gcg", "Gcg", "mt-Co1", "NotAGene1"]
    assert mouse_to_human(["GCG", "TRP53"]).target == mouse_to_human(["Gcg", "Trp53"]).target == ("GCG", "TP53")


def test_ortholog_vocabulary_keys_every_gene_by_human_ensembl():
    for genes, species in ((["Trp53", "Gcg", "Xist"], "mouse"), (["TP53", "GCG"], "human")):
        keys, found = vocabulary_keys(genes, species=species, vocabulary="ortholog")
        assert keys == resolve_to_human_ensembl(genes, species=species)[0] and found == species
    assert vocabulary_keys(["Trp53", "Xist"], species="mouse")[0].target == (TP53, None)  # Xist has no ortholog


def test_joint_vocabulary_keeps_mouse_genes_as_mouse_tokens_and_human_genes_as_ensembl():
    mouse, species = vocabulary_keys(["Trp53", "GCG", "Xist"], vocabulary="joint", species="mouse")
    assert mouse.target == ("mouse:Trp53", "mouse:Gcg", "mouse:Xist") and species == "mouse"
    human, species = vocabulary_keys(["TP53", "GCG"], vocabulary="joint")
    assert human.target == (TP53, GCG) and species == "human"
    with pytest.raises(ValueError, match="gene_key"):
        vocabulary_keys(["ENSMUSG00000059552", "ENSMUSG00000057666"], vocabulary="joint")
    with pytest.raises(ValueError, match="unknown vocabulary"):
        vocabulary_keys(["TP53"], vocabulary="mouse")


def test_mouse_tokens_link_to_their_human_orthologs():
    tokens = ["<pad>", TP53, "mouse:Trp53", "mouse:Gcg", "mouse:Xist"]
    assert human_keys(tokens) == ["<pad>", TP53, TP53, GCG, None]


def test_a_table_with_mouse_tokens_is_a_joint_vocabulary_and_an_empty_table_is_refused():
    ortholog = GeneTable.from_medians(pd.Series([1.0, 2.0], index=[TP53, ACTB]))
    joint = GeneTable.from_medians(pd.Series([1.0, 2.0], index=[TP53, "mouse:Actb"]))
    assert ortholog.vocabulary == "ortholog" and joint.vocabulary == "joint"
    assert joint.tokens[4:] == (TP53, "mouse:Actb")  # human Ensembl IDs sort before mouse tokens
    with pytest.raises(ValueError, match="no gene has a median > 0"):
        GeneTable.from_medians(pd.Series([0.0, np.nan], index=[TP53, ACTB]), name="empty")
