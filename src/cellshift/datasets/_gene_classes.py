"""Bundled gene classification labels: Geneformer's dosage-sensitive and -insensitive transcription factors."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellshift.datasets._bundled import FILES

DOSAGE_SENSITIVE_TFS = FILES / "genes" / "gene_classes" / "dosage_sens_tf_labels.csv"


def dosage_sensitive_tfs() -> pd.DataFrame:
    """490 human transcription factors labelled dosage-sensitive (122) or dosage-insensitive (368).

    Geneformer's gene-classification example set (Theodoris et al. 2023), derived from Ni et al.
    2019 (Front. Genet. 10:1208); see ``files/PROVENANCE.md``. The file's two ``Yes``/blank
    columns become one label; no gene carries both.

    Returns
    -------
    pandas.DataFrame
        Columns ``gene`` (Ensembl ID), ``symbol`` (as in the source file), ``label``
        (``sensitive`` / ``insensitive``), in file order.
    """
    table = pd.read_csv(DOSAGE_SENSITIVE_TFS, dtype=str)
    sensitive = table["dosage_sensitive"].eq("Yes")
    insensitive = table["dosage_insensitive"].eq("Yes")
    if (sensitive == insensitive).any():
        raise ValueError(f"{DOSAGE_SENSITIVE_TFS.name}: every gene needs exactly one of the two labels")
    return pd.DataFrame(
        {
            "gene": table["ensembl_id"],
            "symbol": table["gene_name"],
            "label": np.where(sensitive, "sensitive", "insensitive"),
        }
    )
