"""The standard sections of a screen report, from tables and figures made before.

The tables come from :mod:`cellshift.analysis.summary` (medians, ranking, split) and
:mod:`cellshift.analysis.enrichment`; this module only lays them out, with their titles and
explanations, and adds the software versions of the run.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Mapping, Sequence

import pandas as pd

from cellshift.report.html import FigureLike, Section

PACKAGES = (
    "cellshift",
    "numpy",
    "scipy",
    "pandas",
    "anndata",
    "scanpy",
    "torch",
    "transformers",
    "scikit-learn",
    "umap-learn",
    "matplotlib",
    "scvi-tools",
)

TITLES = {
    "summary": "Summary",
    "medians": "Median normalised distance per model",
    "ranking": "Ranked perturbations",
    "findings": "Findings",
    "enrichment": "0-DEG enrichment",
    "response": "Response prediction of unseen knock-downs",
    "split": "Split of the perturbations",
    "settings": "Run settings",
    "versions": "Software versions",
}

MEDIANS_TEXT = (
    "Median over perturbations of the normalised distance z to the control cells (E-distances: the distance over "
    "its exact permutation spread; see the ranked perturbations), per model, pool of perturbations and metric "
    "(Zhao et al. 2025, Table 1). The pair rows give the median over pairs of perturbations of their normalised "
    "distance to each other."
)
RESPONSE_TEXT = (
    "Pseudobulk change of each held-out knock-down predicted from gene embeddings (kNN, 5 splits of the "
    "perturbations); L2 = norm of predicted minus measured change, lower is better."
)


def software_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Python's version and each package's installed version (``"not installed"`` when absent)."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def screen_sections(
    *,
    medians: pd.DataFrame,
    ranking: pd.DataFrame,
    ranking_model: str,
    metric: str,
    summary: Mapping[str, object] | None = None,
    findings: Sequence[str] | None = None,
    enrichment: pd.DataFrame | None = None,
    figures: Mapping[str, FigureLike] | None = None,
    captions: Mapping[str, str] | None = None,
    response: pd.DataFrame | None = None,
    response_figure: FigureLike | None = None,
    split: pd.DataFrame | None = None,
    split_overview: Mapping[str, object] | None = None,
    settings: Mapping[str, object] | None = None,
) -> list[Section]:
    """The standard sections of a screen report, in order; every table is shown as given.

    Findings and summary (when given), medians per model, ranked perturbations, 0-DEG enrichment (when given),
    one section per figure, response prediction (when given), split (when given), run settings
    (when given) and software versions.

    Parameters
    ----------
    medians
        Table of :func:`cellshift.analysis.summary.medians_table`.
    ranking
        Table of :func:`cellshift.analysis.summary.ranked_table`.
    ranking_model, metric
        The model (embedding) and metric of the ranking, named in its title.
    summary
        Key/value pairs of the run (data set, cells, perturbations, ...).
    findings
        Sentences of :func:`cellshift.analysis.findings.screen_findings`, shown first.
    enrichment
        Table of :mod:`cellshift.analysis.enrichment`.
    figures
        Section title -> figure (Figure, PNG bytes or PNG file).
    captions
        Section title -> the text shown under that figure (what it shows, how to read it).
    response, response_figure
        Summary table and figure of the response-prediction benchmark
        (:func:`cellshift.analysis.response.benchmark`).
    split
        Table of :func:`cellshift.analysis.summary.split_table`.
    split_overview
        Key/value pairs shown with the split (:func:`cellshift.analysis.summary.split_overview`).
    settings
        Key/value pairs of the options of the run.

    Returns
    -------
    list of Section
        Ready for :func:`cellshift.report.build_report`.
    """
    sections = [Section(TITLES["findings"], text="\n\n".join(findings))] if findings else []
    sections += [Section(TITLES["summary"], summary=summary)] if summary else []
    sections.append(Section(TITLES["medians"], text=MEDIANS_TEXT, table=medians))
    sections.append(
        Section(
            f"{TITLES['ranking']} ({ranking_model}, {metric})",
            text=(
                f"Perturbations ranked by normalised {metric} in the {ranking_model} embedding. "
                "z is the distance over its exact permutation spread (mean 0, sd 1 for a group no different "
                "from the controls, at any size); p comes from control-null draws on the same scale, or "
                "from a fitted tail ('tail fit') where z lies beyond all but a few draws; fdr is Benjamini-Hochberg. "
                "knockdown is the target gene's mean normalised expression in the perturbed cells over that in the "
                "controls (1 = unchanged, 0.2 = 80% knocked down); it is empty when the target gene is not among "
                "the measured genes or not expressed in the controls. Perturbations with too few cells to score "
                "are listed last, without a rank; their status says why."
            ),
            table=ranking,
        )
    )
    if enrichment is not None:
        sections.append(Section(TITLES["enrichment"], table=enrichment))
    captions = captions or {}
    for title, figure in (figures or {}).items():
        sections.append(Section(title, figure=figure, caption=captions.get(title)))
    if response is not None:
        sections.append(Section(TITLES["response"], text=RESPONSE_TEXT, table=response, figure=response_figure))
    if split is not None:
        sections.append(Section(TITLES["split"], summary=split_overview, table=split))
    if settings:
        sections.append(Section(TITLES["settings"], summary=settings))
    sections.append(Section(TITLES["versions"], summary=software_versions()))
    return sections
