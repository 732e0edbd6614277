"""One row of the benchmark table, and the table as Markdown and as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One figure, measured for Slipway and (when comparable) for the naive baseline.

    `met` is None when the figure has no target. `note` is printed under the table.
    """

    figure: str
    unit: str
    ours: float | None
    baseline: float | None = None
    target: str = "—"
    met: bool | None = None
    note: str | None = None

    @property
    def ratio(self) -> float | None:
        """Baseline / Slipway: how many times smaller (faster, lighter) Slipway is."""
        if self.ours is None or self.baseline is None or self.ours == 0:
            return None
        return self.baseline / self.ours

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "unit": self.unit,
            "slipway": self.ours,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def format_value(value: float | None, unit: str) -> str:
    """Three significant figures without exponent notation: 0.214 ms, 12.3 ms, 612 ms."""
    if value is None:
        return "not measured"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}"


def _met(row: Row) -> str:
    return "—" if row.met is None else ("yes" if row.met else "**no**")


def render_markdown(rows: Sequence[Row]) -> str:
    """An aligned plain-text table that is also valid Markdown, with numbered notes below it."""
    header = ("figure", "Slipway", "naive baseline", "ratio", "target", "met?")
    notes: list[str] = []
    lines = []
    for row in rows:
        figure = row.figure
        if row.note:
            notes.append(row.note)
            figure = f"{figure} [{len(notes)}]"
        ratio = "—" if row.ratio is None else f"{row.ratio:.1f}x"
        baseline = "—" if row.baseline is None else format_value(row.baseline, row.unit)
        lines.append((figure, format_value(row.ours, row.unit), baseline, ratio, row.target, _met(row)))
    widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]
    right = {1, 2, 3}

    def render(cells: Sequence[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        padded = [cell.rjust(width) if i in right else cell.ljust(width) for i, (cell, width) in pairs]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    text = [render(header), rule, *(render(cells) for cells in lines)]
    if notes:
        text.append("")
        text.extend(f"[{number}] {note}" for number, note in enumerate(notes, start=1))
    return "\n".join(text)
