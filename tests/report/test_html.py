import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellshift.analysis.summary import medians_table, ranked_table, split_table
from cellshift.plotting import distance_distributions, png_bytes
from cellshift.report import Section, build_report, render_table, screen_sections

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
        medians=medians_table(scores, degs),
        ranking=ranked_table(scores["pre-trained"], degs=degs),
        ranking_model="pre-trained",
        metric="edistance",
        enrichment=enrichment,
        figures={"Distances (Figure)": figure, "Distances (file)": png_file, "Distances (bytes)": png_bytes(figure)},
        summary={"data set": "Papalexi 2021", "cells": 20729},
        split=split_table({"train": ["gene1", "gene2"], "test": ["gene3"], "0-DEG pool": [EVIL]}),
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


def test_tables_keep_exact_values_for_sorting_and_escape_text():
    frame = pd.DataFrame({"label": ["a&b", "<i>"], "value": [0.123456789, np.nan], "count": [3, 4]})
    html = render_table(frame)
    assert 'data-value="0.123456789"' in html and ">0.1235<" in html and ">NA<" in html
    assert "a&amp;b" in html and "&lt;i&gt;" in html and "<i>" not in html


def test_a_figure_that_is_not_png_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a PNG"):
        build_report([Section("Figure", figure=b"GIF89a")], title="t", path=tmp_path / "r.html")
    assert not list(tmp_path.iterdir())


def test_sections_show_the_tables_they_are_given_in_order():
    medians = pd.DataFrame({"model": ["m"], "pool": ["any"], "n_perturbations": [1], "edistance_z": [1.5]})
    ranking = pd.DataFrame({"rank": [1], "perturbation": ["g"]})
    split = pd.DataFrame({"part": ["train"], "n_perturbations": [1], "perturbations": ["g"]})
    response = pd.DataFrame({"method": ["pca"], "l2": [0.3]})
    sections = screen_sections(
        medians=medians,
        ranking=ranking,
        ranking_model="m",
        metric="edistance",
        figures={"A figure": b"\x89PNG\r\n\x1a\n"},
        response=response,
        split=split,
        split_overview={"seed": 0},
    )
    assert [section.title for section in sections] == [
        "Median normalised distance per model",
        "Ranked perturbations (m, edistance)",
        "A figure",
        "Response prediction of unseen knock-downs",
        "Split of the perturbations",
        "Software versions",
    ]
    shown = [section.table for section in sections if section.table is not None]
    assert all(table is given for table, given in zip(shown, [medians, ranking, response, split], strict=True))
    assert sections[-2].summary == {"seed": 0}


def test_the_report_package_computes_nothing():
    sources = (Path(__file__).parents[2] / "src" / "cellshift" / "report").glob("*.py")
    imports = {
        path.name: re.findall(r"^(?:from|import) cellshift\.analysis", path.read_text(), re.M) for path in sources
    }
    assert not any(imports.values()), imports  # tables come from cellshift.analysis.summary, made by the caller
