"""The README's performance table, rewritten from a whole benchmark run (`python -m benchmarks --readme`).

The table sits between two markers in README.md; the prose around it (what limits each
figure) is written by hand and stays as it is.
"""

from __future__ import annotations

from pathlib import Path

START = "<!-- make bench --readme: from here -->"
END = "<!-- make bench --readme: to here -->"


def with_table(readme: str, table: str, measured: str) -> str:
    """`readme` with the text between the markers replaced by `measured` (one line) and `table`."""
    head, start, rest = readme.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"README.md has no block between {START!r} and {END!r} to write the table into")
    return f"{head}{START}\n{measured}\n\n{table}\n{END}{tail}"


def write_table(path: Path, table: str, measured: str) -> None:
    path.write_text(with_table(path.read_text(), table, measured))
