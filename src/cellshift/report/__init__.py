"""The HTML report of a screen: one self-contained file (figures embedded, sortable tables, no network)."""

from cellshift.report.html import Section, build_report, render_report, render_table
from cellshift.report.sections import screen_sections, software_versions

__all__ = [
    "Section",
    "build_report",
    "render_report",
    "render_table",
    "screen_sections",
    "software_versions",
]
