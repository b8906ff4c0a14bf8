"""A pandas table as a GitHub markdown table (without the optional ``tabulate`` dependency)."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame, float_format: str = ".3g") -> str:
    """Rows of ``frame`` as a markdown table; floats written with ``float_format``."""

    def cell(value) -> str:
        return format(value, float_format) if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
