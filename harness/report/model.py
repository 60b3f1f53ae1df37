"""What a report is made of: sections holding text, tables and figures (renderer-neutral)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Figure:
    """A PNG image with its caption."""

    png: bytes
    caption: str


#: a text block starting with this is rendered as a warning
WARNING = "Warning:"

#: rows a table shows before it is collapsed (the full table then travels as a TSV download)
MAX_ROWS = 25


@dataclass
class Table:
    """A table with an optional caption; ``digits`` significant digits for floats. Tables longer
    than ``max_rows`` show their first rows; the HTML embeds the whole table as a TSV link."""

    frame: pd.DataFrame
    caption: str = ""
    digits: int = 4
    max_rows: int | None = MAX_ROWS

    @property
    def collapsed(self) -> bool:
        return self.max_rows is not None and len(self.frame) > self.max_rows

    @property
    def shown(self) -> pd.DataFrame:
        return self.frame.head(self.max_rows) if self.collapsed else self.frame


@dataclass
class Section:
    """One titled part of a report; blocks are rendered in order."""

    title: str
    anchor: str
    intro: str = ""
    blocks: list[Table | Figure | str] = field(default_factory=list)

    def add(self, block: Table | Figure | str | None) -> None:
        if block is not None:
            self.blocks.append(block)


@dataclass
class Report:
    title: str
    generated: str
    inputs: list[str]
    sections: list[Section]
