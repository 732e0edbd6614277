"""The lake section at --quick size: its rows are well formed and the delta run read only the new object."""

from __future__ import annotations

import math

import pytest

from benchmarks import lake
from benchmarks.table import render_markdown


@pytest.fixture(scope="module")
def measured() -> lake.Measured:
    return lake.measure(rows_per_object=lake.ROWS_PER_OBJECT // 10)


def test_the_delta_reads_only_the_new_object_and_the_full_re_read_every_one(measured: lake.Measured) -> None:
    assert measured.delta.read == (measured.new_uri,)
    assert measured.delta.rows_read == 1_000 and measured.delta.kept == lake.OBJECTS
    assert len(measured.full.read) == lake.OBJECTS + 1 and measured.full.rows_read == 101_000
    assert measured.full.ledger == measured.delta.ledger, "both measured against the same table"
    assert len(measured.delta_seconds) == lake.DELTA_REPEATS


def test_the_rows_are_well_formed(measured: lake.Measured) -> None:
    rows = lake.as_rows(measured, quick=True)
    assert all(row.figure.startswith("lake: ") for row in rows)
    first = rows[0]
    assert first.figure == "lake: Prepare ingest, 1,000 new rows into a 100,000-row table"
    assert first.unit == "s" and first.target == "≥ 10x" and first.note and "--quick" in first.note
    assert first.baseline == measured.full_seconds and first.ratio is not None
    assert first.met == (first.ratio >= lake.TARGET_SPEEDUP)
    for row in rows:
        assert row.ours is not None and math.isfinite(row.ours) and row.ours > 0
        assert row.baseline is not None and row.baseline > row.ours
    assert [(row.ours, row.baseline) for row in rows[1:3]] == [(1, 101), (1_000, 101_000)]
    assert "[1]" in render_markdown(rows).splitlines()[2]
