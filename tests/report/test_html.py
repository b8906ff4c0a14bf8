import base64
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from cellshift.plotting import distance_distributions, png_bytes
from cellshift.report import (
    Section,
    build_report,
    medians_table,
    ranked_table,
    render_table,
    screen_sections,
    split_table,
)

EVIL = "<script>alert('x')</script>"
METRICS = ("edistance", "cosine_edistance", "wasserstein")


def fake_scores(seed, n=30):
    """A scores table like score_perturbations' with one label that tries to inject a script."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {"perturbation": [EVIL] + [f"gene{i}" for i in range(1, n)], "n_cells": rng.integers(20, 400, n)}
    )
    for metric in METRICS:
        table[metric] = rng.random(n)
        table[f"{metric}_z"] = rng.normal(2.0, 3.0, n)
        table[f"{metric}_pvalue"] = rng.uniform(0.001, 1, n)
    table.loc[5, "edistance_z"] = np.nan
    return table


@pytest.fixture(scope="module")
def degs():
    rng = np.random.default_rng(7)
    labels = [EVIL] + [f"gene{i}" for i in range(1, 30)]
    return pd.DataFrame(
        {"perturbation": labels, "n_degs": rng.choice([0, 0, 4, 20, 31, 250], 30), "knockdown": rng.random(30)}
    )


class Collector(HTMLParser):
    """Tags, their attributes, and the text of every h2 and td."""

    def __init__(self):
        super().__init__()
        self.tags, self.h2, self.rows, self._in = [], [], 0, None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.rows += tag == "tr"
        self._in = tag

    def handle_data(self, data):
        if self._in == "h2":
            self.h2.append(data)

    def handle_endtag(self, tag):
        self._in = None


def test_report_is_one_self_contained_file_with_every_section(tmp_path, degs):
    scores = {"pre-trained": fake_scores(0), "PCA": fake_scores(1)}
    figure = distance_distributions(scores, degs=degs)
    png_file = tmp_path / "figures" / "dist.png"
    png_file.parent.mkdir()
    png_file.write_bytes(png_bytes(figure))
    enrichment = pd.DataFrame({"gene_set": ["essential"], "metric": ["edistance"], "top_n": [3], "p_value": [0.02]})
    sections = screen_sections(
        scores,
        degs=degs,
        enrichment=enrichment,
        figures={"Distances (Figure)": figure, "Distances (file)": png_file, "Distances (bytes)": png_bytes(figure)},
        summary={"data set": "Papalexi 2021", "cells": 20729},
        split={"train": ["gene1", "gene2"], "test": ["gene3"], "0-DEG pool": [EVIL]},
        settings={"n_null": 1000, "seed": 0},
    )
    path = build_report(sections, title="Screen <report>", path=tmp_path / "run" / "report.html")
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]
    text = path.read_text(encoding="utf-8")

    parser = Collector()
    parser.feed(text)
    links = [
        (tag, name, value) for tag, attrs in parser.tags for name, value in attrs.items() if name in ("src", "href")
    ]
    images = [value for tag, name, value in links if tag == "img"]
    assert len(images) == 3
    for value in images:
        assert value.startswith("data:image/png;base64,")
        assert base64.b64decode(value.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert all(value.startswith("#") for tag, name, value in links if tag != "img")
    assert not any("http" in value for _, _, value in links)
    assert not any(tag in ("link", "iframe") for tag, _ in parser.tags)
    assert [attrs for tag, attrs in parser.tags if tag == "script"] == [{}]  # only the inline sorting script

    assert parser.h2 == [section.title for section in sections]
    for title in ("Summary", "Median normalised distance per model", "0-DEG enrichment", "Software versions"):
        assert title in parser.h2
    assert EVIL not in text and "<report>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    # header rows + body rows: medians (2 models x 2 pools), ranking (30), enrichment (1), split (3)
    assert parser.rows == (1 + 4) + (1 + 30) + (1 + 1) + (1 + 3)
    with pytest.raises(FileExistsError):
        build_report(sections, title="again", path=path)
    assert build_report(sections[:1], title="again", path=path, overwrite=True) == path
    assert "again" in path.read_text(encoding="utf-8")


def test_medians_table_equals_groupby_medians(degs):
    scores = {"pre-trained": fake_scores(0), "fine-tuned": fake_scores(2), "PCA": fake_scores(1)}
    table = medians_table(scores, degs)

    tidy = pd.concat([frame.assign(model=model) for model, frame in scores.items()]).merge(
        degs[["perturbation", "n_degs"]], on="perturbation"
    )
    tidy["pool"] = np.select([tidy["n_degs"] == 0, tidy["n_degs"] >= 20], ["0 DEGs", ">= 20 DEGs"], default="other")
    columns = [f"{metric}_z" for metric in METRICS]
    expected = tidy[tidy["pool"] != "other"].groupby(["model", "pool"])[columns].median()
    counts = tidy[tidy["pool"] != "other"].groupby(["model", "pool"]).size()

    got = table.set_index(["model", "pool"]).sort_index()
    pd.testing.assert_frame_equal(got[columns], expected.sort_index())
    np.testing.assert_array_equal(got["n_perturbations"], counts.sort_index())
    assert list(table["model"].unique()) == list(scores)

    pools = medians_table(scores, degs, pools={"test": ["gene1", "gene2", "gene3"]}, metrics=["wasserstein"])
    first = scores["pre-trained"].iloc[1:4]["wasserstein_z"].median()
    assert pools.loc[0, "wasserstein_z"] == pytest.approx(first) and list(pools["n_perturbations"]) == [3, 3, 3]
    assert list(medians_table({"m": fake_scores(0)})["pool"]) == ["all perturbations"]


def test_ranked_table_sorts_by_z_with_nan_last(degs):
    scores = fake_scores(3)
    table = ranked_table(scores, metric="edistance", degs=degs, top=None)
    assert list(table["rank"]) == list(range(1, 31))
    finite = table["edistance_z"].dropna()
    assert finite.is_monotonic_decreasing and np.isnan(table["edistance_z"].iloc[-1])
    assert list(table.columns) == [
        "rank", "perturbation", "n_cells", "n_degs", "knockdown",
        "edistance_z", "cosine_edistance_z", "wasserstein_z", "edistance_pvalue",
    ]  # fmt: skip
    by_label = table.set_index("perturbation")
    np.testing.assert_array_equal(by_label.loc[degs["perturbation"], "n_degs"], degs["n_degs"])
    assert len(ranked_table(scores, metric="wasserstein", top=5)) == 5
    with pytest.raises(KeyError, match="missing_z"):
        ranked_table(scores, metric="missing")


def test_tables_keep_exact_values_for_sorting_and_escape_text():
    frame = pd.DataFrame({"label": ["a&b", "<i>"], "value": [0.123456789, np.nan], "count": [3, 4]})
    html = render_table(frame)
    assert 'data-value="0.123456789"' in html and ">0.1235<" in html and ">NA<" in html
    assert "a&amp;b" in html and "&lt;i&gt;" in html and "<i>" not in html
    split = split_table(pd.DataFrame({"perturbation": ["b", "a", "c"], "split": ["train", "train", "test"]}))
    assert split.to_dict("list") == {
        "part": ["train", "test"],
        "n_perturbations": [2, 1],
        "perturbations": ["a, b", "c"],
    }


def test_a_figure_that_is_not_png_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a PNG"):
        build_report([Section("Figure", figure=b"GIF89a")], title="t", path=tmp_path / "r.html")
    assert not list(tmp_path.iterdir())


def test_a_perturbation_split_sets_the_pools_of_the_medians_table(degs):
    from cellshift.analysis import PerturbationSplit

    split = PerturbationSplit(
        train=("gene1", "gene2"), test=("gene3", "gene4"), zero_deg=("gene5", "gene6", "gene7"), few_degs=("gene8",),
        control_train=("c1", "c2", "c3"), control_validation=("c4",), control_test=("c5",),
        n_degs={}, perturbation_key="guide", control="NT", min_degs=20, test_fraction=0.5,
        control_fractions=(0.6, 0.2, 0.2), seed=0,
    )  # fmt: skip
    scores = {"pre-trained": fake_scores(0)}
    sections = screen_sections(scores, degs=degs, split=split)
    medians = next(s.table for s in sections if s.title == "Median normalised distance per model")
    assert list(medians["pool"]) == ["0-DEG pool", "test (>= 20 DEGs)"]
    frame = scores["pre-trained"].set_index("perturbation")
    expected = [
        frame.loc[list(split.zero_deg), "wasserstein_z"].median(),
        frame.loc[["gene3", "gene4"], "wasserstein_z"].median(),
    ]
    np.testing.assert_allclose(medians["wasserstein_z"], expected)
    split_section = next(s for s in sections if s.title == "Split of the perturbations")
    assert list(split_section.table["n_perturbations"]) == [2, 2, 3, 1]
    assert split_section.summary["control cells (train / validation / test)"] == "3 / 1 / 1"
