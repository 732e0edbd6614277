"""Holdout metrics and the gate metric's checks."""

from __future__ import annotations

import numpy as np
import pytest

from functions.training.metrics import METRICS, check_metric, higher_is_better, holdout_metrics


@pytest.mark.parametrize(("metric", "task"), [(name, task) for name, (task, _) in METRICS.items()])
def test_check_metric_accepts_every_metric_for_its_task(metric: str, task: str) -> None:
    check_metric(metric, task)


def test_check_metric_refuses_an_unknown_metric() -> None:
    choices = r"\['accuracy', 'f1_macro', 'log_loss', 'mae', 'r2', 'rmse', 'roc_auc'\]"

    with pytest.raises(ValueError, match=rf"unknown METRIC 'mape': choose one of {choices}"):
        check_metric("mape", "regression")


@pytest.mark.parametrize(
    ("metric", "task", "choices"),
    [
        ("roc_auc", "regression", r"\['mae', 'r2', 'rmse'\]"),
        ("rmse", "classification", r"\['accuracy', 'f1_macro', 'log_loss', 'roc_auc'\]"),
    ],
)
def test_check_metric_refuses_a_metric_of_the_other_task(metric: str, task: str, choices: str) -> None:
    with pytest.raises(ValueError, match=rf"METRIC '{metric}' does not fit a {task} task: choose one of {choices}"):
        check_metric(metric, task)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy", True),
        ("roc_auc", True),
        ("f1_macro", True),
        ("r2", True),
        ("log_loss", False),
        ("rmse", False),
        ("mae", False),
    ],
)
def test_higher_is_better(metric: str, expected: bool) -> None:
    assert higher_is_better(metric) is expected


def test_higher_is_better_of_an_unknown_metric_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        higher_is_better("mape")


def test_regression_metrics() -> None:
    result = holdout_metrics("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), None, [])

    assert set(result) == {"r2", "rmse", "mae"}
    assert result["mae"] == pytest.approx(2 / 3)
    assert result["rmse"] == pytest.approx(np.sqrt(4 / 3))
    assert result["r2"] == pytest.approx(1 - 4 / 2)


def test_binary_classification_metrics() -> None:
    y = np.array(["a", "b", "b", "a"])
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    predicted = np.array(["a", "b", "b", "b"])

    result = holdout_metrics("classification", y, predicted, probabilities, ["a", "b"])

    assert set(result) == {"accuracy", "roc_auc", "f1_macro", "log_loss"}
    assert result["accuracy"] == 0.75
    assert result["roc_auc"] == 0.75  # 3 of 4 (positive, negative) pairs ranked right
    assert result["log_loss"] > 0


def test_multiclass_classification_metrics() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c"])
    probabilities = np.eye(3)[[0, 1, 2, 0, 1, 2]] * 0.8 + 0.2 / 3

    result = holdout_metrics("classification", y, y, probabilities, ["a", "b", "c"])

    assert result["accuracy"] == 1.0
    assert result["roc_auc"] == 1.0
    assert result["f1_macro"] == 1.0


def test_float32_probabilities_that_sum_past_one_are_scored() -> None:
    """A forest's ONNX probabilities (float32) can sum to 1 + 4e-7; the retrain gate must still score them."""
    classes = ["churn", "stay"]
    y_true = np.array(["churn", "stay", "stay"])
    probabilities = np.array([[0.7, 0.3000004], [0.1, 0.9], [0.0, 1.0000004]], dtype=np.float32)
    metrics = holdout_metrics("classification", y_true, np.array(["churn", "stay", "stay"]), probabilities, classes)
    assert metrics["accuracy"] == 1.0 and metrics["roc_auc"] == 1.0
    assert metrics["log_loss"] == pytest.approx(-(np.log(0.7) + np.log(0.9) + np.log(1.0)) / 3, rel=1e-5)
