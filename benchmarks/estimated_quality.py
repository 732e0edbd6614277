"""What estimating a window's quality without labels costs the monitor: `estimate_quality` per window.

The example model's probabilities for windows of 10,000 and 100,000 rows (its data's rows drawn
with replacement, scored once by the live graph; the scoring is not timed): calibration, the
expected metrics and the band's label draws (functions.core.estimated_quality.DRAWS) are.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from benchmarks.table import Row
from benchmarks.workload import Workload
from functions.core.estimated_quality import DRAWS, answered_rows, estimate_quality
from functions.core.predictor import Predictor

WINDOWS = (10_000, 100_000)
SCORE_CHUNK = 10_000


def _window(predictor: Predictor, rows: list[dict[str, Any]], size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`size` rows drawn from `rows`, as the monitor holds them: the model's probabilities and predicted classes."""
    picks = np.random.default_rng(seed).integers(0, len(rows), size)
    classes = predictor.manifest.classes or ()
    answers = []
    for start in range(0, size, SCORE_CHUNK):
        answers += predictor.score(predictor.encode([rows[i] for i in picks[start : start + SCORE_CHUNK]]))
    columns = {c: [a["probabilities"][c] for a in answers] for c in classes}
    return answered_rows(columns, [a["label"] for a in answers], classes, size)


def run(workload: Workload, *, quick: bool = False, **_: Any) -> list[Row]:
    bundle = workload.bundle
    if bundle.manifest.calibration is None:
        raise RuntimeError("the example bundle has no calibration: estimated quality cannot be measured")
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)
    examples = [row for body in workload.one_row_bodies for row in json.loads(body)["instances"]]
    out = []
    for size in WINDOWS:
        raw, predicted = _window(predictor, examples, size, seed=size)
        repeats = (3 if quick else 15) if size <= 10_000 else (2 if quick else 5)
        estimate_quality(bundle.manifest, raw, predicted)  # warm-up
        samples = []
        for _call in range(repeats):
            started = time.perf_counter()
            found = estimate_quality(bundle.manifest, raw, predicted)
            samples.append((time.perf_counter() - started) * 1000)
        assert found.value is not None, "the example's gate metric must be estimated"
        out.append(
            Row(
                f"estimated quality: one window of {size:,} rows, p50",
                "ms",
                float(np.percentile(samples, 50)),
                note=(
                    f"estimated quality: estimate_quality over the example model's probabilities ({size:,} rows, "
                    f"{len(bundle.manifest.classes or ())} classes, {DRAWS} label draws for the band), "
                    f"{repeats} calls; p50"
                ),
            )
        )
    return out
