import pandas as pd

from cellshift.analysis.findings import screen_findings
from cellshift.report import screen_sections


def tables():
    scores = pd.DataFrame(
        {
            "perturbation": ["A", "B", "C", "D"],
            "edistance_z": [30.0, 8.0, 2.0, -0.5],
            "edistance_fdr": [0.001, 0.01, 0.2, 0.9],
        }
    )
    degs = pd.DataFrame({"perturbation": ["A", "B", "C", "D"], "n_degs": [40, 0, 0, 3]})
    enrichment = pd.DataFrame(
        {
            "gene_set": ["essential", "cell_cycle"],
            "metric": ["edistance"] * 2,
            "top_n": [3, 3],
            "n_pool": [9, 9],
            "k": [2, 0],
            "expected": [0.67, 0.0],
            "p_bonferroni": [0.18, 1.0],
            "model": ["pca", "pca"],
        }
    )
    medians = pd.DataFrame(
        {
            "model": ["pca", "finetuned"],
            "pool": ["between perturbations (pairs)"] * 2,
            "edistance_z": [2.5, 1.2],
        }
    )
    log = pd.DataFrame({"step": [1, 2, 3], "loss": [90.0, 60.0, 40.0]})
    return {"pca": scores}, degs, enrichment, medians, log


def test_findings_are_computed_from_the_tables():
    scores, degs, enrichment, medians, log = tables()
    findings = screen_findings(scores, degs, enrichment=enrichment, medians=medians, finetune_log=log)
    assert findings[0] == (
        "pca: 2 of 4 perturbations shift cells (edistance, FDR < 0.05): A, B. Of these, 1 has no DEGs: B."
    )
    assert findings[1].startswith("0-DEG enrichment is not significant: the strongest is essential")
    assert "less than PCA: median pair z 1.20 vs 2.50" in findings[2]
    assert findings[3].startswith("The fine-tuning loss fell: 90")
    assert len(screen_findings(scores, degs)) == 1  # missing tables leave their findings out


def test_responder_finding_names_fractions_and_knockdown():
    scores, degs, *_ = tables()
    table = scores["pca"].assign(n_responders=[30, 0, 5, 0], fraction_responders=[0.6, 0.0, 0.1, 0.0])
    knockdown = pd.DataFrame(
        {"perturbation": ["A", "C"], "knockdown_responders": [0.1, 0.9], "knockdown_non_responders": [0.8, 0.7]}
    )
    findings = screen_findings(scores, degs, responders=("pca", table), responder_knockdown=knockdown)
    assert findings[-1] == (
        "Per-cell calls (pca): 2 of 4 perturbations have responding cells (most: A 60%, C 10%). Responders "
        "express the target less than non-responders for 1 of 2 measured targets (median 50% vs 75% of control)."
    )


def test_findings_open_the_report():
    scores, degs, *_ = tables()
    sections = screen_sections(
        findings=screen_findings(scores, degs),
        medians=pd.DataFrame({"model": ["pca"]}),
        ranking=scores["pca"],
        ranking_model="pca",
        metric="edistance",
    )
    assert sections[0].title == "Findings" and "2 of 4 perturbations shift cells" in sections[0].text
