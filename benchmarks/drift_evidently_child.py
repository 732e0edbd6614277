"""One drift computation over rows already in memory, in a fresh process: Slipway's or Evidently's.

`python -m benchmarks.drift_evidently_child {slipway|evidently} ROWS REFERENCE_ROWS MANIFEST.json`
prints the seconds of the computation, the process's peak RSS in MB, its RSS before
the computation and the number of drifted columns. Both tools get the same rows,
made here: the example's features as N(15, 5) rounded to 2 decimals (the shape of
benchmarks/drift.py's capture) and a predicted label. Slipway compares them with the
manifest's frozen baseline; Evidently with REFERENCE_ROWS rows of the same
distribution. The Evidently side runs in its own virtual environment
(benchmarks/evidently-requirements.txt), so this file imports neither tool at the top.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from benchmarks.peak_memory import peak_rss_mb


def rows_in_memory(rows: int, names: list[str], classes: list[str], seed: int) -> tuple[np.ndarray, list[str]]:
    """A (features x rows) float64 block and the predicted labels."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(15, 5, (len(names), rows)), 2), rng.choice(classes, rows).tolist()


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def slipway(rows: int, manifest_path: str) -> tuple[float, int]:
    from functions.core.drift import DriftPolicy, count_columns, drift_report
    from functions.core.manifest import Manifest

    with open(manifest_path) as file:
        manifest = Manifest.model_validate_json(file.read())
    names = list(manifest.feature_spec.names)
    block, labels = rows_in_memory(rows, names, list(manifest.classes or ("x",)), 0)
    columns = dict(zip(names, block, strict=True))
    started = time.perf_counter()
    report = drift_report(manifest, count_columns(manifest, columns, labels), DriftPolicy())
    return time.perf_counter() - started, len(report.drifted_features)


def evidently(rows: int, reference_rows: int, manifest_path: str) -> tuple[float, int]:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    with open(manifest_path) as file:
        manifest: dict[str, Any] = json.load(file)
    names = [feature["name"] for feature in manifest["feature_spec"]["features"]]
    classes = list(manifest.get("classes") or ("x",))

    def frame(n: int, seed: int) -> pd.DataFrame:
        block, labels = rows_in_memory(n, names, classes, seed)
        return pd.DataFrame({**dict(zip(names, block, strict=True)), "prediction": labels})

    current, reference = frame(rows, 0), frame(reference_rows, 1)
    definition = DataDefinition(numerical_columns=names, categorical_columns=["prediction"])
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    elapsed = time.perf_counter() - started
    drifted = snapshot.dict()["metrics"][0]["value"]["count"]
    return elapsed, int(drifted)


def main(argv: list[str]) -> None:
    tool, rows, reference_rows, manifest_path = argv[0], int(argv[1]), int(argv[2]), argv[3]
    before = _rss_mb()
    if tool == "slipway":
        elapsed, drifted = slipway(rows, manifest_path)
    elif tool == "evidently":
        elapsed, drifted = evidently(rows, reference_rows, manifest_path)
    else:
        raise SystemExit(f"unknown tool {tool!r}: slipway or evidently")
    print(elapsed, peak_rss_mb(), before, drifted)


if __name__ == "__main__":
    main(sys.argv[1:])
