"""Estimated quality without labels: accurate under covariate shift, blind (and saying so) under concept shift.

The shifted world (its labelling function, model, calibration and windows) is the benchmark's, so that the
figures `python -m benchmarks --only estimated_quality` reports are the ones asserted here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks.estimated_quality import CLASSES, SHIFTS, WINDOW_ROWS, shifted_rows, shifted_world
from functions.core.estimated_quality import (
    BLIND_SPOT,
    DISAGREE,
    NO_ROWS,
    NOT_CALIBRATED,
    NOT_ESTIMATED_REGRESSION,
    answered_rows,
    below,
    calibrated,
    compare,
    estimate,
    estimate_quality,
    expected_metrics,
)
from functions.core.manifest import Calibration, ClassCalibration, Manifest
from functions.core.quality import live_metric
from functions.training.calibration import fit_calibration
from functions.training.train import Bundle


@pytest.fixture(scope="module")
def trained() -> tuple[Any, Calibration, np.random.Generator]:
    return shifted_world()


def _manifest(bundle: Bundle, calibration: Calibration | None, metric: str = "roc_auc") -> Manifest:
    return bundle.manifest.model_copy(update={"classes": CLASSES, "calibration": calibration, "metric": metric})


def test_estimates_follow_realized_quality_under_covariate_shift(trained: tuple, bundle: Bundle) -> None:
    model, calibration, rng = trained
    manifest = _manifest(bundle, calibration)
    realized_accuracy = []
    for shift in SHIFTS:
        x, y = shifted_rows(rng, WINDOW_ROWS, shift)
        raw = model.predict_proba(x)
        predicted = raw.argmax(axis=1)
        found = estimate_quality(manifest, raw, predicted)
        accuracy = float(np.mean(np.asarray(CLASSES)[predicted] == y))
        auc = float(roc_auc_score(y == "yes", raw[:, 1]))
        assert found.metrics["accuracy"].value == pytest.approx(accuracy, abs=0.01)
        assert found.metrics["roc_auc"].value == pytest.approx(auc, abs=0.01)
        assert found.value == found.metrics["roc_auc"].value  # the gate metric
        assert found.metrics["accuracy"].lower < found.metrics["accuracy"].value < found.metrics["accuracy"].upper
        assert found.note == BLIND_SPOT
        realized_accuracy.append(accuracy)
    assert max(realized_accuracy) - min(realized_accuracy) > 0.05  # the shifts did move quality


def test_a_concept_shift_leaves_the_estimate_and_the_report_says_so(trained: tuple, bundle: Bundle) -> None:
    model, calibration, rng = trained
    manifest = _manifest(bundle, calibration, metric="accuracy")
    x, y = shifted_rows(rng, 5_000, np.zeros(5))
    raw = model.predict_proba(x)
    predicted = raw.argmax(axis=1)
    labels = list(np.asarray(CLASSES)[predicted])
    flipped = np.where(rng.random(len(y)) < 0.3, np.where(y == "yes", "no", "yes"), y)  # same inputs, new labels

    before = estimate_quality(manifest, raw, predicted)
    realized = live_metric("accuracy", list(y), labels=labels)
    realized_after = live_metric("accuracy", list(flipped), labels=labels)
    assert realized is not None and realized_after is not None and realized - realized_after > 0.1

    agreeing = compare(before, manifest, raw, predicted, realized)
    disagreeing = compare(before, manifest, raw, predicted, realized_after)
    assert agreeing.disagrees is False and agreeing.warning is None
    assert disagreeing.value == before.value  # the estimate cannot see the change
    assert disagreeing.disagrees is True and disagreeing.warning == DISAGREE
    assert disagreeing.realized == realized_after and disagreeing.labelled_rows == 5_000


def test_the_band_narrows_with_the_window(trained: tuple) -> None:
    model, calibration, rng = trained
    widths = []
    for n in (500, 20_000):
        raw = model.predict_proba(shifted_rows(rng, n, np.zeros(5))[0])
        found = estimate(raw, calibrated(calibration, CLASSES, raw), raw.argmax(axis=1))
        widths.append(found["accuracy"].upper - found["accuracy"].lower)
    assert widths[1] < widths[0] / 4  # about sqrt(40) narrower


def test_the_expected_confusion_matrix_of_certain_rows_is_the_realized_one() -> None:
    raw = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    certain = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # labels yes, yes, no, no
    predicted = raw.argmax(axis=1)
    found = expected_metrics(raw, certain, predicted)
    truth = ["yes", "yes", "no", "no"]
    labels = [CLASSES[k] for k in predicted]
    probabilities = [dict(zip(CLASSES, row, strict=True)) for row in raw.tolist()]
    for metric in ("accuracy", "f1_macro", "roc_auc", "log_loss"):
        realized = live_metric(metric, truth, labels=labels, probabilities=probabilities, classes=CLASSES)
        assert found[metric] == pytest.approx(realized), metric


def test_multiclass_maps_every_class_and_rows_sum_to_one() -> None:
    rng = np.random.default_rng(1)
    classes = ("a", "b", "c")
    raw = rng.dirichlet([1, 1, 1], 600)
    truth = np.array([rng.choice(3, p=p) for p in raw])
    calibration = fit_calibration(raw, np.asarray(classes)[truth], classes, seed=0)
    assert calibration is not None and [c.name for c in calibration.classes] == list(classes)
    rows = calibrated(calibration, classes, raw)
    assert np.allclose(rows.sum(axis=1), 1.0)
    found = estimate(raw, rows, raw.argmax(axis=1))
    assert set(found) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    realized = float(np.mean(raw.argmax(axis=1) == truth))
    assert found["accuracy"].lower - 0.05 <= realized <= found["accuracy"].upper + 0.05


def test_no_estimate_for_regression_or_an_uncalibrated_model(bundle: Bundle) -> None:
    uncalibrated = bundle.manifest.model_copy(update={"calibration": None})
    assert estimate_quality(uncalibrated, np.full((3, 2), 0.5)).note == NOT_CALIBRATED
    empty = estimate_quality(bundle.manifest, np.empty((0, 2)))
    assert empty.metrics == {} and empty.rows == 0 and empty.note == NO_ROWS
    regression = bundle.manifest.model_copy(update={"task": "regression", "classes": None, "calibration": None})
    found = estimate_quality(regression, np.empty((0, 0)))
    assert found.metrics == {} and found.value is None and found.note == NOT_ESTIMATED_REGRESSION


def test_a_small_or_one_class_holdout_gets_no_calibration() -> None:
    raw = np.tile([[0.3, 0.7]], (50, 1))
    assert fit_calibration(raw[:10], np.array(["yes"] * 10), CLASSES, seed=0) is None
    assert fit_calibration(raw, np.array(["yes"] * 48 + ["no"] * 2), CLASSES, seed=0) is None


def test_captured_answers_become_rows_and_predictions() -> None:
    columns = {"no": [0.7, None, 0.2, 0.6, 0.5], "yes": [0.3, None, 0.8, 0.4, 0.5]}
    matrix, predicted = answered_rows(
        columns, ["no", "no", None, "yes", "no"], CLASSES, 5, answered=[True, True, True, True, False]
    )
    assert matrix.tolist() == [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]]  # no probability, or plan B's answer: left out
    assert predicted.tolist() == [0, 1, 1]  # the captured label; the most probable class when none was captured


def test_below_only_for_enough_rows_and_a_metric_where_higher_is_better(trained: tuple, bundle: Bundle) -> None:
    model, calibration, rng = trained
    raw = model.predict_proba(shifted_rows(rng, 1_000, np.zeros(5))[0])
    found = estimate_quality(_manifest(bundle, calibration), raw)
    assert found.value is not None
    assert below(found, found.value + 0.01, min_rows=200)
    assert not below(found, found.value - 0.01, min_rows=200)
    assert not below(found, found.value + 0.01, min_rows=2_000)
    assert not below(found, None, min_rows=200)
    loss = estimate_quality(_manifest(bundle, calibration, metric="log_loss"), raw)
    assert not below(loss, 10.0, min_rows=200)


def test_calibration_knots_are_checked() -> None:
    with pytest.raises(ValueError, match="must not decrease"):
        ClassCalibration(name="yes", x=(0.1, 0.05), y=(0.2, 0.3))
    with pytest.raises(ValueError, match="as many x as y"):
        ClassCalibration(name="yes", x=(0.1,), y=(0.2, 0.3))


def test_multiclass_estimates_follow_realized_quality_under_covariate_shift() -> None:
    from sklearn.linear_model import LogisticRegression

    weights = np.array([[1.2, -0.5, 0.3, 0, 0.4], [-0.8, 1.0, 0.2, 0.5, 0], [0, 0, -0.6, -0.4, 0.9]])
    classes = ("a", "b", "c")
    rng = np.random.default_rng(4)

    def rows(n: int, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(0.0, 1.0, (n, 5)) + shift
        p = np.exp(x @ weights.T)
        p /= p.sum(axis=1, keepdims=True)
        drawn = np.minimum((rng.random((n, 1)) > p.cumsum(axis=1)).sum(axis=1), 2)
        return x, np.asarray(classes)[drawn]

    x, y = rows(100_000, np.zeros(5))
    model = LogisticRegression(max_iter=1000).fit(x[:50_000], y[:50_000])
    calibration = fit_calibration(model.predict_proba(x[50_000:]), y[50_000:], classes, seed=0)
    assert calibration is not None
    for shift in SHIFTS:
        x, y = rows(WINDOW_ROWS, shift)
        raw = model.predict_proba(x)
        found = estimate(raw, calibrated(calibration, classes, raw), raw.argmax(axis=1))
        accuracy = float(np.mean(np.asarray(classes)[raw.argmax(axis=1)] == y))
        auc = float(roc_auc_score(y, raw, multi_class="ovr", labels=list(classes)))
        assert found["accuracy"].value == pytest.approx(accuracy, abs=0.01)
        assert found["roc_auc"].value == pytest.approx(auc, abs=0.01)
