"""Small helpers for reports: plain-text tables and JSON-safe values (inf/nan as strings)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]],
                 first_width: int = 60) -> list[str]:
    """Lines of a left-aligned first column and right-aligned others, indented by two spaces;
    an over-long first cell keeps its end (the distinctive part of a layer name)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[0] = min(widths[0], first_width)

    def fmt(r: tuple[str, ...]) -> str:
        first = str(r[0])
        if len(first) > widths[0]:
            first = "…" + first[-(widths[0] - 1):]
        cells = [first.ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        return "  " + "  ".join(cells)

    return [fmt(header)] + [fmt(r) for r in rows]


@dataclass(frozen=True)
class Table:
    """A report table: the library prints it as plain text (`format_table`), the `edgesdk`
    command through its renderer (sdk.cli.output), from the same rows."""

    title: str | None
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    first_width: int = 60

    def lines(self) -> list[str]:
        return ([self.title] if self.title else []) + format_table(self.header, self.rows,
                                                                    self.first_width)


#: a report: lines of text and tables, in order
Section = str | Table


def render_plain(sections: list[Section]) -> str:
    """A report's sections as plain text (what `summary()` / `table()` return)."""
    lines: list[str] = []
    for section in sections:
        lines += section.lines() if isinstance(section, Table) else [section]
    return "\n".join(lines)


def jsonable(x: Any) -> Any:
    """`x` with non-finite floats as "inf"/"-inf"/"nan" and numpy scalars as Python ones."""
    if isinstance(x, (float, np.floating)) and not math.isfinite(float(x)):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def from_jsonable(x: Any) -> Any:
    """Inverse of `jsonable` for the non-finite floats."""
    if isinstance(x, str) and x in ("inf", "-inf", "nan"):
        return float(x)
    if isinstance(x, dict):
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [from_jsonable(v) for v in x]
    return x
