"""The Evidently comparison's child process, on Slipway's side (Evidently's needs its own environment)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.drift_evidently import CHILD, REFERENCE_ROWS
from benchmarks.drift_evidently_child import main, rows_in_memory
from benchmarks.workload import PROJECT_ROOT
from functions.training.train import Bundle


def test_both_tools_get_the_same_rows_of_the_capture_benchmark_shape() -> None:
    block, labels = rows_in_memory(1000, ["a", "b", "c"], ["x", "y"], 0)
    again, same_labels = rows_in_memory(1000, ["a", "b", "c"], ["x", "y"], 0)

    assert block.shape == (3, 1000) and np.array_equal(block, again) and labels == same_labels
    assert set(labels) == {"x", "y"} and np.array_equal(block, np.round(block, 2))
    assert abs(block.mean() - 15) < 0.5 and abs(block.std() - 5) < 0.5


def test_the_slipway_child_reports_time_memory_and_drifted_columns(bundle: Bundle, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(bundle.manifest.to_json())

    answer = subprocess.run(
        [sys.executable, "-m", CHILD, "slipway", "2000", str(REFERENCE_ROWS), str(manifest)],
        capture_output=True, text=True, check=True, cwd=PROJECT_ROOT, timeout=120,
    )  # fmt: skip

    elapsed, peak, before, drifted = answer.stdout.split()
    assert 0 < float(elapsed) < 30 and float(peak) >= float(before) > 0
    assert 0 <= int(drifted) <= len(bundle.manifest.feature_spec.names)


def test_an_unknown_tool_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown tool 'whylogs'"):
        main(["whylogs", "10", "10", "manifest.json"])
