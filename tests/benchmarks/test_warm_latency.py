"""The warm section's rows and budgets on given latencies: no timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.deployed_models import FOREST_LABEL
from benchmarks.warm_latency import EXAMPLE_BUDGET, EXTRA_BUDGET, Budget, Measured, cost_rows, model_rows
from benchmarks.workload import ServedModel


def test_quick_budgets_are_a_tenth_and_never_empty() -> None:
    assert EXAMPLE_BUDGET.scaled(quick=True) == Budget(one_row=200, one_row_warmup=20, batch=20, batch_warmup=2)
    assert EXTRA_BUDGET.scaled(quick=True).batch_warmup >= 1
    assert EXAMPLE_BUDGET.scaled(quick=False) is EXAMPLE_BUDGET


def test_another_model_gets_its_one_row_and_batch_rows_by_label() -> None:
    model = ServedModel(FOREST_LABEL, bundle=None, naive_model_path=Path("unused"))  # type: ignore[arg-type]
    one_row = {
        "ours": np.array([0.2, 0.3, 0.4]),
        "naive": np.array([20.0, 21.0, 40.0]),
        "scoring": np.array([0.05, 0.1, 0.2]),
    }
    batch = {"ours": np.array([5.0]), "naive": np.array([90.0]), "scoring": np.array([3.0])}
    measured = Measured(model, one_row, batch)
    rows = model_rows(measured)

    assert [row.figure for row in rows] == [
        "warm, 1 row, p50 (random forest, 300 trees)",
        "  of which scoring (service.predict alone), 1 row, p50 (random forest, 300 trees)",
        "warm, 1 row, p99 (random forest, 300 trees)",
        "warm, 1,000 rows, p50 (random forest, 300 trees)",
    ]
    assert (rows[0].ours, rows[0].baseline) == (pytest.approx(0.3), pytest.approx(21.0))
    assert (rows[1].ours, rows[1].baseline) == (pytest.approx(0.1), None)
    assert rows[3].ratio == pytest.approx(18.0)
    assert all(row.met is None for row in rows)
    # What the handler adds to its scoring: p50 against p50.
    assert measured.overhead("one_row") == pytest.approx(0.2)
    assert measured.overhead("batch") == pytest.approx(2.0)


def test_costs_round_each_duration_up_to_a_millisecond() -> None:
    durations = [("example", {"ours": 0.5, "naive": 0.56}, {"ours": 0.9, "naive": 1.2})]
    rows = cost_rows(durations, 1024)

    assert [row.figure for row in rows] == [
        "cost per million one-row predictions (example), arm64 1024 MB",
        "cost per million one-row predictions (example), arm64 1024 MB, every request at p99",
    ]
    # 0.5 and 0.56 ms are both billed 1 ms: the same cost, however much faster one handler is.
    assert rows[0].ours == pytest.approx(0.2133334)
    assert rows[0].ratio == pytest.approx(1.0)
    # 0.9 ms is billed 1 ms, 1.2 ms is billed 2 ms.
    assert rows[1].baseline == pytest.approx(0.2266668)
    assert rows[0].note is not None and rows[1].note is None
