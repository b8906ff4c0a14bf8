"""What a screen run found, in sentences: the "Findings" that open its report.

Each finding is computed from the run's tables, never typed in: which perturbations shift
cells (Benjamini-Hochberg FDR below a threshold, per embedding), which of those have no DEGs,
whether the 0-DEG enrichment is significant after Bonferroni correction, whether fine-tuning
separated the held-out perturbations more than PCA, whether the fine-tuning loss moved, and how
many cells respond per perturbation (per-cell calls) with their on-target knock-down.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from cellshift.analysis.screen_input import scored_rows

PAIRS_POOL = "between perturbations (pairs)"


def screen_findings(
    scores: Mapping[str, pd.DataFrame],
    degs: pd.DataFrame,
    *,
    metric: str = "edistance",
    fdr: float = 0.05,
    enrichment: pd.DataFrame | None = None,
    medians: pd.DataFrame | None = None,
    finetune_log: pd.DataFrame | None = None,
    responders: tuple[str, pd.DataFrame] | None = None,
    responder_knockdown: pd.DataFrame | None = None,
) -> list[str]:
    """Sentences stating what the run found, one per finding.

    Parameters
    ----------
    scores
        Embedding name -> table of :func:`cellshift.analysis.score_perturbations`.
    degs
        DEG summary (``perturbation, n_degs``).
    metric
        Metric whose ``<metric>_fdr`` decides which perturbations shift cells.
    fdr
        False discovery rate threshold.
    enrichment
        Table of :func:`cellshift.analysis.zero_deg_enrichment` (with a ``model`` column when
        several embeddings were tested).
    medians
        Table of :func:`cellshift.analysis.summary.medians_table`.
    finetune_log
        ``training/loss.csv`` of the fine-tuned model.
    responders
        ``(embedding name, its scores table)`` with the per-cell columns ``n_responders`` and
        ``fraction_responders`` (:func:`cellshift.analysis.score_cells`).
    responder_knockdown
        Table of :func:`cellshift.analysis.responder_knockdown` for that embedding.

    Returns
    -------
    list of str
        The findings, in the order above; a finding whose table is missing is left out.
    """
    n_degs = degs.set_index(degs["perturbation"].astype(str))["n_degs"]
    findings = [_shifted(name, table, n_degs, metric, fdr) for name, table in scores.items()]
    if enrichment is not None and not enrichment.empty:
        findings.append(_enrichment(enrichment))
    if medians is not None and "finetuned" in set(medians.get("model", [])):
        findings.append(_separation(medians, metric))
    if finetune_log is not None and len(finetune_log) > 1:
        findings.append(_loss_moved(finetune_log))
    if responders is not None and "fraction_responders" in responders[1].columns:
        findings.append(_responders(*responders, responder_knockdown))
    return [finding for finding in findings if finding]


def _shifted(name: str, table: pd.DataFrame, n_degs: pd.Series, metric: str, fdr: float) -> str:
    column = f"{metric}_fdr"
    if column not in table.columns:
        return ""
    table = scored_rows(table)
    hits = table[table[column] < fdr].sort_values(f"{metric}_z", ascending=False)
    zero = [p for p in hits["perturbation"].astype(str) if n_degs.get(p, -1) == 0]
    named = ", ".join(hits["perturbation"].astype(str).head(5))
    named += f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    sentence = f"{name}: {len(hits)} of {len(table)} perturbations shift cells ({metric}, FDR < {fdr:g})"
    sentence += f": {named}." if len(hits) else "."
    if zero:
        verb = "has" if len(zero) == 1 else "have"
        sentence += f" Of these, {len(zero)} {verb} no DEGs: {', '.join(zero)}."
    return sentence


def _enrichment(enrichment: pd.DataFrame) -> str:
    best = enrichment.loc[enrichment["p_bonferroni"].idxmin()]
    where = f" ({best['model']}, {best['metric']}, top {best['top_n']})" if "model" in enrichment else ""
    verdict = "is significant" if best["p_bonferroni"] < 0.05 else "is not significant"
    return (
        f"0-DEG enrichment {verdict}: the strongest is {best['gene_set']}{where}, {best['k']} of the top "
        f"{best['top_n']} in the set vs {best['expected']:.2f} expected, Bonferroni p = {best['p_bonferroni']:.2g} "
        f"(pool of {best['n_pool']})."
    )


def _separation(medians: pd.DataFrame, metric: str) -> str:
    pairs = medians[medians["pool"] == PAIRS_POOL].set_index("model")[f"{metric}_z"]
    if "finetuned" not in pairs or "pca" not in pairs:
        return ""
    more = "more" if pairs["finetuned"] > pairs["pca"] else "less"
    return (
        f"Fine-tuning separated the held-out perturbations {more} than PCA: median pair z "
        f"{pairs['finetuned']:.2f} vs {pairs['pca']:.2f}."
    )


def _loss_moved(log: pd.DataFrame) -> str:
    losses = pd.to_numeric(log["loss"], errors="coerce").dropna()
    if len(losses) < 2:
        return ""
    change = (losses.iloc[-1] - losses.iloc[0]) / abs(losses.iloc[0]) if losses.iloc[0] else 0.0
    verdict = "fell" if change < -0.05 else "rose" if change > 0.05 else "barely moved"
    first, last = losses.iloc[0], losses.iloc[-1]
    return f"The fine-tuning loss {verdict}: {first:.3g} at the first logged step, {last:.3g} at the last."


def _responders(name: str, table: pd.DataFrame, knockdown: pd.DataFrame | None) -> str:
    table = scored_rows(table)
    called = table[table["n_responders"] > 0].sort_values("fraction_responders", ascending=False)
    named = ", ".join(f"{row.perturbation} {row.fraction_responders:.0%}" for row in called.head(5).itertuples())
    sentence = f"Per-cell calls ({name}): {len(called)} of {len(table)} perturbations have responding cells"
    sentence += f" (most: {named})." if len(called) else "."
    if knockdown is not None:
        both = knockdown.dropna(subset=["knockdown_responders", "knockdown_non_responders"])
        if len(both):
            lower = int((both["knockdown_responders"] < both["knockdown_non_responders"]).sum())
            sentence += (
                f" Responders express the target less than non-responders for {lower} of {len(both)} measured "
                f"targets (median {both['knockdown_responders'].median():.0%} vs "
                f"{both['knockdown_non_responders'].median():.0%} of control)."
            )
    return sentence
