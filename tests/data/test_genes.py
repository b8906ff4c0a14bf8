import pandas as pd
import pytest

from cellshift.data import (
    detect_id_type,
    detect_species,
    ensembl_to_symbols,
    human_to_mouse,
    mouse_to_human,
    resolve_to_human_ensembl,
    symbols_to_ensembl,
)
from cellshift.data._tables import GENES


def test_known_human_symbols_map_to_their_ensembl_ids():
    mapping = symbols_to_ensembl(["TP53", "GAPDH", "NOT_A_GENE"])
    assert mapping.target == ("ENSG00000141510", "ENSG00000111640", None)
    assert mapping.n_unmapped == 1 and mapping.unmapped == ["NOT_A_GENE"]
    assert "2 of 3 mapped, 1 unmapped" in mapping.summary()


def test_renamed_symbol_is_found_through_hgnc_aliases():
    # AARS was renamed AARS1 (HGNC 2020); GENCODE v44 only knows the new name.
    assert symbols_to_ensembl(["AARS"]).target == symbols_to_ensembl(["AARS1"]).target != (None,)


def test_ensembl_to_symbol_strips_versions_and_round_trips():
    ids = ["ENSG00000141510.18", "ENSG00000111640"]
    symbols = ensembl_to_symbols(ids)
    assert symbols.target == ("TP53", "GAPDH")
    assert symbols_to_ensembl(list(symbols.target)).target == ("ENSG00000141510", "ENSG00000111640")


def test_orthologs_are_one_to_one_and_invert_each_other():
    pairs = pd.read_csv(GENES / "orthologs" / "ensembl105_human2mouse_symbols.csv", header=None).dropna()
    mouse = mouse_to_human(["Trp53", "Sox9", "Actb"])
    assert mouse.target == ("TP53", "SOX9", "ACTB")
    assert human_to_mouse(list(mouse.target)).target == ("Trp53", "Sox9", "Actb")
    # a human gene with several mouse orthologs in the source table is not one-to-one
    multi = pairs[0][pairs[0].duplicated()].iloc[0]
    assert human_to_mouse([multi]).target == (None,)


def test_species_and_id_type_detection():
    assert detect_id_type(["ENSG00000141510", "ENSG00000111640"]) == "ensembl"
    assert detect_species(["ENSMUSG00000059552", "ENSMUSG00000057666"]) == "mouse"
    assert detect_species(["Actb", "Gapdh", "Trp53"]) == "mouse"
    assert detect_species(["ACTB", "GAPDH", "TP53"]) == "human"
    with pytest.raises(ValueError, match="cannot tell the species"):
        detect_species(["foo1", "bar2"])
    with pytest.raises(ValueError, match="0 genes"):
        detect_id_type([])


def test_mouse_symbols_resolve_to_human_ensembl_and_mouse_ensembl_needs_symbols():
    mapping, species = resolve_to_human_ensembl(["Trp53", "Actb", "Xist"])
    assert species == "mouse"
    assert mapping.target[:2] == ("ENSG00000141510", "ENSG00000075624")
    with pytest.raises(ValueError, match="gene_key"):
        resolve_to_human_ensembl(["ENSMUSG00000059552", "ENSMUSG00000057666"])
