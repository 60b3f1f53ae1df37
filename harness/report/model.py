"""What a report is made of: sections holding text, tables and figures (renderer-neutral)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Figure:
    """A PNG image with its caption."""

    png: bytes
    caption: str


@dataclass
class Table:
    """A table with an optional caption; ``digits`` significant digits for floats."""

    frame: pd.DataFrame
    caption: str = ""
    digits: int = 4


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
