"""Plain-text renderings of DataFrames: aligned text, Markdown, TSV, JSON (no extra dependency)."""

from __future__ import annotations

import json
import math
from enum import Enum
from typing import TYPE_CHECKING

from harness.enums import parse_enum

if TYPE_CHECKING:  # pandas is imported where a table is rendered: commands list the formats
    import pandas as pd


class TableFormat(str, Enum):
    TABLE = "table"
    MD = "md"
    TSV = "tsv"
    JSON = "json"

    @classmethod
    def parse(cls, value: str | TableFormat) -> TableFormat:
        return parse_enum(cls, value, "format")


def format_value(value, digits: int = 4) -> str:
    """A cell as text: floats with ``digits`` significant digits, missing values as ``-``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    import pandas as pd

    if value is pd.NA or value is pd.NaT:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{digits}g}"
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            return format_value(value.item(), digits)
        except (ValueError, AttributeError):
            pass
    return str(value)


def _cells(frame: pd.DataFrame, digits: int) -> list[list[str]]:
    return [[format_value(v, digits) for v in row] for row in frame.itertuples(index=False)]


def _numeric(frame: pd.DataFrame) -> list[bool]:
    from pandas.api.types import is_numeric_dtype

    return [is_numeric_dtype(frame[c]) for c in frame.columns]


def to_text(frame: pd.DataFrame, digits: int = 4) -> str:
    """An aligned plain-text table (numbers right-aligned)."""
    header = [str(c) for c in frame.columns]
    rows = _cells(frame, digits)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    numeric = _numeric(frame)

    def line(cells):
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table."""
    header = [str(c) for c in frame.columns]
    numeric = _numeric(frame)
    rows = [[c.replace("|", "\\|") for c in r] for r in _cells(frame, digits)]
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def to_json(frame: pd.DataFrame) -> str:
    return json.dumps(json.loads(frame.to_json(orient="records", date_format="iso")), indent=2)


def render(frame: pd.DataFrame, fmt: str | TableFormat = TableFormat.TABLE, digits: int = 4) -> str:
    """Render ``frame`` in one of the :class:`TableFormat` formats."""
    fmt = TableFormat.parse(fmt)
    if fmt is TableFormat.TSV:
        return frame.to_csv(sep="\t", index=False).rstrip("\n")
    if fmt is TableFormat.JSON:
        return to_json(frame)
    if fmt is TableFormat.MD:
        return to_markdown(frame, digits)
    return to_text(frame, digits)
