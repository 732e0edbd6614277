"""The training section's arithmetic on given figures: the fitted scaling, Lambda's limits, the costs."""

from __future__ import annotations

import math

import pytest

from benchmarks.training_scale import (
    Run,
    Scaling,
    crossover_note,
    increments_per_million,
    lambda_usd,
    limit_rows,
    sagemaker_usd,
)


def test_scaling_recovers_a_line_and_its_crossovers() -> None:
    # 5 s fixed + 40 s per million rows; 300 MB + 2,000 MB per million rows.
    runs = [Run(rows, 5 + 40e-6 * rows, 300 + 2e-3 * rows) for rows in (10_000, 100_000, 1_000_000)]
    scaling = Scaling.fit(runs)

    assert scaling.fixed_seconds == pytest.approx(5)
    assert scaling.seconds_per_row * 1e6 == pytest.approx(40)
    assert scaling.base_mb == pytest.approx(300)
    assert scaling.rows_within_seconds(900) == pytest.approx(22_375_000)
    assert scaling.rows_within_mb(10_240) == pytest.approx(4_970_000)
    assert scaling.rows_within_mb(3_008) == pytest.approx(1_354_000)


def test_a_limit_that_does_not_grow_is_never_reached() -> None:
    flat = Scaling(
        fixed_seconds=3,
        seconds_per_row=0,
        base_mb=250,
        mb_per_row=0,
    )
    assert flat.rows_within_seconds(900) == math.inf
    assert flat.rows_within_mb(10_240) == math.inf


def test_crossover_names_the_limit_reached_first() -> None:
    note = crossover_note({"time": 2_000_000, "max_memory": 5_000_000, "default_memory": 1_000_000})
    assert "At 3,008 MB memory runs out first, at 1,000,000 rows" in note
    assert "at 10,240 MB the 900 s timeout comes first, at 2,000,000 rows" in note


def test_costs_of_one_run() -> None:
    assert lambda_usd(100, 3_008) == pytest.approx(100 * 2.9375 * 0.0000133334)
    # Three minutes of billed start-up and one of training at $0.23 an hour.
    assert sagemaker_usd(60, 180) == pytest.approx(0.23 * 4 / 60)


def test_limits_are_rounded_and_increments_are_per_million() -> None:
    scaling = Scaling(fixed_seconds=3.5, seconds_per_row=39.7e-6, base_mb=292, mb_per_row=2355e-6)
    assert limit_rows(scaling) == {"time": 22_600_000, "max_memory": 4_220_000, "default_memory": 1_150_000}
    runs = [Run(100_000, 8.0, 0), Run(300_000, 16.0, 0), Run(1_000_000, 44.0, 0)]
    assert increments_per_million(runs) == pytest.approx([40.0, 40.0])
