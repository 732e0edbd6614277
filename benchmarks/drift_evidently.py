"""Slipway's drift report against Evidently's DataDriftPreset on the same rows, measured in the same run.

Both run in a fresh process each (benchmarks/drift_evidently_child.py) over the
same rows already in memory (30 features, N(15, 5), and the predicted label);
Slipway's monitor also reads the same rows from capture lines
(benchmarks.drift.monitor_from_capture), its real path. Evidently compares with a
reference of REFERENCE_ROWS rows of the same distribution (a stand-in for the
training set: Slipway's is the manifest's frozen baseline, computed at training).
Evidently 0.7 does not import with the project's pandas 3, so it runs in its own
virtual environment, `.venv/evidently`, built on first use from
benchmarks/evidently-requirements.txt (a few minutes, once).

Rows: SLIPWAY_BENCH_EVIDENTLY_ROWS (default 1,000,000, the drift section's table, a
few minutes for the section on a loaded 2-core machine; a tenth with --quick).
Slipway's time grows linearly with rows; Evidently's has a fixed part of about 25 s
(its reference and per-column work) and then grows linearly too, so the ratio grows
with rows: figures at smaller sizes are in docs/performance.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.drift import monitor_from_capture
from benchmarks.table import Row
from benchmarks.tool_venv import tool_venv
from benchmarks.workload import PROJECT_ROOT, Workload

ROWS = 1_000_000
ROWS_VARIABLE = "SLIPWAY_BENCH_EVIDENTLY_ROWS"
REFERENCE_ROWS = 50_000
EVIDENTLY = "evidently==0.7.23"
REQUIREMENTS = Path(__file__).with_name("evidently-requirements.txt")
# Run as a module from the project's root, so that `benchmarks` imports in either tool's environment.
CHILD = "benchmarks.drift_evidently_child"


def _measure(python: Path, tool: str, rows: int, manifest: Path) -> tuple[float, float, int]:
    """Seconds, peak MB and drifted columns of one tool's child process."""
    answer = subprocess.run(
        [str(python), "-m", CHILD, tool, str(rows), str(REFERENCE_ROWS), str(manifest)],
        capture_output=True, text=True, check=True, cwd=PROJECT_ROOT, timeout=1800,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )  # fmt: skip
    elapsed, peak, _before, drifted = answer.stdout.split()
    return float(elapsed), float(peak), int(drifted)


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    rows = int(os.environ.get(ROWS_VARIABLE, ROWS))
    rows = rows // 10 if quick else rows
    evidently_python = tool_venv("evidently", REQUIREMENTS, Path(sys.executable))
    with tempfile.TemporaryDirectory(prefix="slipway-evidently-") as scratch:
        manifest = Path(scratch) / "manifest.json"
        manifest.write_bytes(workload.bundle.manifest.to_json())
        ours, ours_mb, _drifted = _measure(Path(sys.executable), "slipway", rows, manifest)
        theirs, theirs_mb, _their_drifted = _measure(evidently_python, "evidently", rows, manifest)
    captured, captured_mb, _size = monitor_from_capture(workload.bundle.manifest, rows)
    note = (
        f"drift vs Evidently: {EVIDENTLY}'s Report([DataDriftPreset()]) (its default tests: Wasserstein for "
        f"numbers, Jensen-Shannon for the label; {REFERENCE_ROWS:,} reference rows) against Slipway's "
        "count_columns and drift_report (the manifest's frozen baseline), each in a fresh process over the same "
        f"{rows:,} rows x 30 features and the predicted label already in memory (DataFrames for Evidently, numpy "
        "columns for Slipway); peak RSS (VmHWM) of each process, the rows included. 'from capture lines' is "
        "Slipway's monitor reading the same number of rows from capture JSON (benchmarks/drift.py's path). "
        f"The naive-baseline column holds Evidently here. Rows: {ROWS_VARIABLE}"
    )
    return [
        Row(f"drift vs Evidently, {rows:,} rows in memory", "s", ours, theirs, note=note),
        Row("drift vs Evidently, peak memory", "MB", ours_mb, theirs_mb),
        Row(f"drift vs Evidently, {rows:,} rows from capture lines", "s", captured, theirs),
        Row("drift vs Evidently, from capture lines, peak memory", "MB", captured_mb, theirs_mb),
    ]
