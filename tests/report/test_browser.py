"""The report renders in a real browser: headless Chromium (installed by .ci/run when missing)."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cellshift.report import Section, build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the report: records what the browser actually drew.
PROBE = """<script>
window.addEventListener("load", () => {
  const widths = [...document.images].map((img) => img.naturalWidth);
  const rows = document.querySelectorAll("table tbody tr").length;
  document.body.setAttribute("data-probe", widths.join(",") + "|" + rows);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_figures_and_tables_render_in_headless_chromium(tmp_path):
    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1, 2], [2, 0, 1])
    table = pd.DataFrame({"perturbation": ["STAT1", "<b>JAK2</b>", "CAV1"], "edistance_z": [86.6, 40.2, np.nan]})
    path = build_report(
        [Section("Ranked perturbations", table=table), Section("A figure", figure=figure)],
        title="browser check",
        path=tmp_path / "report.html",
    )
    probed = tmp_path / "probed.html"
    probed.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    probe = result.stdout.split('data-probe="', 1)[1].split('"', 1)[0]
    widths, rows = probe.split("|")
    assert [int(w) for w in widths.split(",")] == [450]  # the figure decoded: 3 in x 150 dpi
    assert int(rows) == 3
    assert "&lt;b&gt;JAK2&lt;/b&gt;" in result.stdout  # data is shown as text, not markup
