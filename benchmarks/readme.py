"""The performance tables, rewritten from a whole benchmark run (`python -m benchmarks --readme`).

The full table sits between two markers in docs/performance.md; a handful of its rows, the
headline figures, between two markers in README.md. The prose around both (what limits each
figure) is written by hand and stays as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

START = "<!-- make bench --readme: from here -->"
END = "<!-- make bench --readme: to here -->"
HEADLINE_START = "<!-- make bench --readme: headline from here -->"
HEADLINE_END = "<!-- make bench --readme: headline to here -->"
# The rows the README shows, by figure (without its note number), in this order.
HEADLINE = (
    "warm, 1 row, p50",
    "warm, 1,000 rows, p50, every request captured",
    "cold start, with bytecode caches",
    "cost per million one-row predictions (example), arm64 1024 MB",
    "inference package, unzipped",
    "drift over 1,000,000 rows x 30 features",
    "local loop: total",
)
_NOTE = re.compile(r" \[\d+\]")


def with_table(text: str, table: str, measured: str, *, start: str = START, end: str = END) -> str:
    """`text` with what lies between the markers replaced by `measured` (one line) and `table`."""
    head, found_start, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found_start or not found_end:
        raise ValueError(f"no block between {start!r} and {end!r} to write the table into")
    return f"{head}{start}\n{measured}\n\n{table}\n{end}{tail}"


def headline(table: str) -> str:
    """The HEADLINE rows of a rendered table, with its header, in HEADLINE's order and without note numbers."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header, rule, rows = lines[0], lines[1], lines[2:]
    # A note number becomes as many spaces, so the columns stay aligned.
    by_figure = {_NOTE.sub("", row.split("|")[1]).strip(): _NOTE.sub(_blank, row) for row in rows}
    missing = [figure for figure in HEADLINE if figure not in by_figure]
    if missing:
        raise ValueError(f"the table has no row for the headline figures {missing}")
    return "\n".join([header, rule, *(by_figure[figure] for figure in HEADLINE)])


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def write_tables(performance: Path, readme: Path, table: str, measured: str) -> None:
    """The full table into `performance`, the headline rows into `readme`."""
    performance.write_text(with_table(performance.read_text(), table, measured))
    short = headline(table)
    readme.write_text(with_table(readme.read_text(), short, measured, start=HEADLINE_START, end=HEADLINE_END))
