"""Estimated quality without labels: how close it comes under covariate shift, and what it costs per window.

Accuracy: a synthetic world with one fixed labelling function (SHIFTED_WORLD, which
tests/functions/core/test_estimated_quality.py asserts on): a logistic regression trained and
calibrated on the unshifted population, then windows of WINDOW_ROWS rows whose inputs moved;
the estimated accuracy and ROC AUC of each window against the realized ones.

Cost: the example model's probabilities for windows of 10,000 and 100,000 rows (its data's rows
drawn with replacement, scored once by the live graph; the scoring is not timed): calibration,
the expected metrics and the band's label draws (functions.core.estimated_quality.DRAWS) are.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from benchmarks.table import Row
from benchmarks.workload import Workload
from functions.core.estimated_quality import DRAWS, answered_rows, calibrated, estimate, estimate_quality
from functions.core.manifest import Calibration
from functions.core.predictor import Predictor
from functions.training.calibration import fit_calibration

WINDOWS = (10_000, 100_000)
SCORE_CHUNK = 10_000
WEIGHTS = np.array([1.5, -1.0, 0.8, 0.0, 0.5])
CLASSES = ("no", "yes")
# 50,000 rows a window: the realized accuracy's own sampling noise is then about 0.002 (AUC's alike).
WINDOW_ROWS = 50_000
# Where each window's inputs moved to (in standard deviations of each feature); the first is no shift.
ACCURACY_TARGET = 0.01  # the test's bound on |estimated - realized| per window
SHIFTS = (
    np.zeros(5),
    np.array([1.0, 0, 0, 0, 0]),
    np.array([-1.0, 1.0, 0, 0, 0]),
    np.array([0.5, 0.5, 1.0, 0, -1.0]),
)


def shifted_rows(rng: np.random.Generator, n: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features around `shift`, and labels from the world's one fixed labelling function of them."""
    x = rng.normal(0.0, 1.0, (n, 5)) + shift
    p = 1 / (1 + np.exp(-(x @ WEIGHTS - 0.3)))
    return x, np.where(rng.random(n) < p, "yes", "no")


def shifted_world(seed: int = 4) -> tuple[Any, Calibration, np.random.Generator]:
    """The world's model (trained on 50,000 unshifted rows), its calibration (on 50,000 more) and the generator
    that draws its windows."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x, y = shifted_rows(rng, 100_000, np.zeros(5))
    model = LogisticRegression().fit(x[:50_000], y[:50_000])
    calibration = fit_calibration(model.predict_proba(x[50_000:]), y[50_000:], CLASSES, seed=0)
    assert calibration is not None
    return model, calibration, rng


def window_errors() -> list[tuple[float, float, float, float]]:
    """Per window of the shifted world: (realized accuracy, its estimate, realized ROC AUC, its estimate)."""
    from sklearn.metrics import roc_auc_score

    model, calibration, rng = shifted_world()
    out = []
    for shift in SHIFTS:
        x, y = shifted_rows(rng, WINDOW_ROWS, shift)
        raw = model.predict_proba(x)
        predicted = raw.argmax(axis=1)
        found = estimate(raw, calibrated(calibration, CLASSES, raw), predicted)
        accuracy = float(np.mean(np.asarray(CLASSES)[predicted] == y))
        auc = float(roc_auc_score(y == "yes", raw[:, 1]))
        out.append((accuracy, found["accuracy"].value, auc, found["roc_auc"].value))
    return out


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
    errors = window_errors()
    for i, (accuracy, estimated_accuracy, auc, estimated_auc) in enumerate(errors):
        note = (
            f"estimated quality: window {i} of {WINDOW_ROWS:,} rows, inputs moved by {SHIFTS[i].tolist()}: accuracy "
            f"{accuracy:.4f} realized, {estimated_accuracy:.4f} estimated; ROC AUC {auc:.4f} realized, "
            f"{estimated_auc:.4f} estimated"
        )
        for metric, error in (("accuracy", abs(estimated_accuracy - accuracy)), ("ROC AUC", abs(estimated_auc - auc))):
            out.append(
                Row(
                    f"estimated quality: window {i} under covariate shift, |estimated - realized| {metric}",
                    "",
                    error,
                    target=f"<= {ACCURACY_TARGET}",
                    met=error <= ACCURACY_TARGET,
                    note=note if metric == "accuracy" else None,
                )
            )
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
