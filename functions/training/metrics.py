"""Holdout metrics a recipe may name as its gate metric (the table of names and directions: core.quality.METRICS)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn import metrics as sk

from functions.core.quality import METRICS


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of `metric` is a better model."""
    return METRICS[metric][1]


def check_metric(metric: str, task: str) -> None:
    """Refuse a gate metric that does not exist or does not fit the task."""
    if metric not in METRICS:
        raise ValueError(f"unknown METRIC {metric!r}: choose one of {sorted(METRICS)}")
    if METRICS[metric][0] != task:
        names = sorted(name for name, (kind, _) in METRICS.items() if kind == task)
        raise ValueError(f"METRIC {metric!r} does not fit a {task} task: choose one of {names}")


def holdout_metrics(
    task: str, y_true: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None, classes: list[str]
) -> dict[str, float]:
    """Every metric of the task on the holdout set."""
    if task == "regression":
        return {
            "r2": float(sk.r2_score(y_true, predicted)),
            "rmse": float(np.sqrt(sk.mean_squared_error(y_true, predicted))),
            "mae": float(sk.mean_absolute_error(y_true, predicted)),
        }
    assert probabilities is not None
    # An ONNX graph answers in float32: a forest's probabilities can sum to 1 + 4e-7 in a row,
    # which scikit-learn's log_loss refuses; it scores them as the distribution they stand for.
    probabilities = np.asarray(probabilities, dtype=np.float64)
    distributions = np.clip(probabilities, 0.0, 1.0)
    distributions = distributions / distributions.sum(axis=1, keepdims=True)
    auc: Callable[[], float]
    if len(classes) == 2:
        auc = lambda: float(sk.roc_auc_score(y_true == classes[1], probabilities[:, 1]))  # noqa: E731
    else:
        auc = lambda: float(sk.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes))  # noqa: E731
    return {
        "accuracy": float(sk.accuracy_score(y_true, predicted)),
        "roc_auc": auc(),
        "f1_macro": float(sk.f1_score(y_true, predicted, average="macro")),
        "log_loss": float(sk.log_loss(y_true, distributions, labels=classes)),
    }
