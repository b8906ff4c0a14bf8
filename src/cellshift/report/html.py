"""A self-contained HTML report: one file, figures as base64 PNG, sortable tables, no network.

A report is a title and a list of :class:`Section` s. Each section may hold paragraphs of text,
a key/value block, a table (a DataFrame) and figures (matplotlib Figures, PNG bytes or PNG
files), rendered in that order. Every string that comes from data (titles, labels, column
names, values) is HTML-escaped. Tables sort by a click on a column header (a few lines of
inline JavaScript; numbers sort by value). Nothing refers to another file or to the network.
"""

from __future__ import annotations

import base64
import html
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cellshift._io import atomic_path, check_writable
from cellshift.plotting import png_bytes

FigureLike = Figure | bytes | str | os.PathLike
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; }
nav li { margin: 0.1em 0; } dl.cs-summary { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.5em; }
dl.cs-summary dt { font-weight: 600; } dl.cs-summary dd { margin: 0; }
div.cs-scroll { max-height: 32em; overflow: auto; margin: 1em 0; }
table.cs-table { border-collapse: collapse; font-size: 0.9em; }
table.cs-table th, table.cs-table td { border: 1px solid #ccc; padding: 0.2em 0.6em; }
table.cs-table th { background: #eee; cursor: pointer; position: sticky; top: 0; }
table.cs-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.cs-table tbody tr:nth-child(even) { background: #f7f7f7; }
th[data-order=asc]::after { content: " \\25B2"; } th[data-order=desc]::after { content: " \\25BC"; }
figure { margin: 1em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
"""

SORT_SCRIPT = """
document.querySelectorAll("table.cs-table").forEach(function (table) {
  var headers = table.querySelectorAll("th");
  headers.forEach(function (header, column) {
    header.addEventListener("click", function () {
      var ascending = header.dataset.order !== "asc";
      headers.forEach(function (other) { delete other.dataset.order; });
      header.dataset.order = ascending ? "asc" : "desc";
      var body = table.tBodies[0], rows = Array.from(body.rows);
      function key(row) {
        var cell = row.cells[column];
        return cell.dataset.value !== undefined ? parseFloat(cell.dataset.value) : cell.textContent;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== "number") { return ascending ? x.localeCompare(y) : y.localeCompare(x); }
        if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
        return ascending ? x - y : y - x;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


@dataclass(frozen=True)
class Section:
    """One part of a report, rendered as a heading followed by its contents.

    Attributes
    ----------
    title
        Heading (also the entry of the table of contents).
    text
        Paragraphs, separated by blank lines (plain text, escaped).
    summary
        Key/value pairs shown as a definition list (values are formatted like table cells).
    table
        A DataFrame shown as a sortable table; a non-default index becomes the first columns.
    figure
        One figure or a sequence of them: matplotlib Figures, PNG bytes, or paths to PNG files.
    caption
        Text under the figures.
    """

    title: str
    text: str | None = None
    summary: Mapping[str, object] | None = None
    table: pd.DataFrame | None = None
    figure: FigureLike | Sequence[FigureLike] | None = None
    caption: str | None = None


def render_report(sections: Sequence[Section], *, title: str, note: str | None = None) -> str:
    """The HTML text of a report (see the module docstring).

    Parameters
    ----------
    sections
        Sections in order.
    title
        Title of the page.
    note
        Text under the title (escaped).

    Returns
    -------
    str
        A complete HTML5 document.
    """
    if not sections:
        raise ValueError("a report needs at least one section")
    contents = "\n".join(f'<li><a href="#section-{i}">{_escape(s.title)}</a></li>' for i, s in enumerate(sections))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_escape(title)}</h1>",
        f"<p>{_escape(note)}</p>" if note else "",
        f"<nav><ol>{contents}</ol></nav>",
        *(_render_section(section, f"section-{i}") for i, section in enumerate(sections)),
        f"<script>{SORT_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part)


def build_report(
    sections: Sequence[Section],
    *,
    title: str,
    path: str | os.PathLike,
    note: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the report as ONE self-contained HTML file, atomically.

    Parameters
    ----------
    sections
        Sections in order.
    title
        Title of the page.
    path
        File to write (``.html``).
    note
        Text under the title.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    path = check_writable(path, overwrite, option="path")
    text = render_report(sections, title=title, note=note)
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def _render_section(section: Section, anchor: str) -> str:
    """Heading, paragraphs, key/value block, table and figures of one section."""
    parts = [f'<section id="{anchor}">', f"<h2>{_escape(section.title)}</h2>"]
    if section.text:
        paragraphs = [block.strip() for block in section.text.split("\n\n") if block.strip()]
        parts += [f"<p>{_escape(block)}</p>" for block in paragraphs]
    if section.summary:
        rows = "".join(f"<dt>{_escape(key)}</dt><dd>{_format(value)}</dd>" for key, value in section.summary.items())
        parts.append(f'<dl class="cs-summary">{rows}</dl>')
    if section.table is not None:
        parts.append(render_table(section.table))
    figures = _as_figure_list(section.figure)
    for number, figure in enumerate(figures, start=1):
        encoded = base64.b64encode(_png(figure)).decode("ascii")
        alt = _escape(f"{section.title}, figure {number}")
        parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{encoded}"></figure>')
    if section.caption:
        parts.append(f"<p><small>{_escape(section.caption)}</small></p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a sortable HTML table; numbers carry their exact value in ``data-value``.

    Parameters
    ----------
    frame
        Table to show; a non-default index is shown as leading columns, MultiIndex column
        names are joined by spaces.

    Returns
    -------
    str
        ``<table class="cs-table">`` inside a scrolling ``<div>``.
    """
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    names = [" ".join(map(str, name)) if isinstance(name, tuple) else str(name) for name in frame.columns]
    head = "".join(f"<th>{_escape(name)}</th>" for name in names)
    body = "\n".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in frame.itertuples(index=False))
    table = f'<table class="cs-table"><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>'
    return f'<div class="cs-scroll">{table}</div>'


def _cell(value: object) -> str:
    """One ``<td>``: numbers right-aligned with their exact value for sorting."""
    if _is_number(value):
        number = float(value)
        exact = (
            repr(number) if np.isfinite(number) else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(number)]
        )
        return f'<td class="num" data-value="{exact}">{_format(value)}</td>'
    return f"<td>{_format(value)}</td>"


def _is_number(value: object) -> bool:
    """Real numbers (numpy included), not booleans."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _format(value: object) -> str:
    """Escaped display text: integers in full, other numbers with 4 significant digits, NaN as 'NA'."""
    if _is_number(value):
        if isinstance(value, numbers.Integral):
            return str(int(value))
        return "NA" if np.isnan(value) else f"{float(value):.4g}"
    if value is None or value is pd.NA or value is pd.NaT:
        return "NA"
    return _escape(value)


def _escape(value: object) -> str:
    """``html.escape`` of ``str(value)``, quotes included."""
    return html.escape(str(value), quote=True)


def _as_figure_list(figure: FigureLike | Sequence[FigureLike] | None) -> list[FigureLike]:
    """One figure or many, as a list."""
    if figure is None:
        return []
    if isinstance(figure, Figure | bytes | str | os.PathLike):
        return [figure]
    return list(figure)


def _png(figure: FigureLike) -> bytes:
    """PNG bytes of a Figure, of PNG bytes (checked) or of a PNG file (checked)."""
    if isinstance(figure, Figure):
        return png_bytes(figure)
    data = figure if isinstance(figure, bytes) else Path(figure).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        where = "the bytes given" if isinstance(figure, bytes) else str(figure)
        raise ValueError(f"figure ({where}) is not a PNG image; give a matplotlib Figure, PNG bytes or a .png file")
    return data
