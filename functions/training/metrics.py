"""Holdout metrics a recipe may name as its gate metric (the table of names and directions: core.quality.METRICS)."""

from __future__ import annotations

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
    names = [name for name, (kind, _) in METRICS.items() if kind == task]
    return {name: metric_value(name, y_true, predicted, probabilities, classes) for name in names}


def metric_value(
    metric: str, y_true: np.ndarray, predicted: np.ndarray | None, probabilities: np.ndarray | None, classes: list[str]
) -> float:
    """One metric: regression ones and accuracy or f1_macro read `predicted`; roc_auc and log_loss `probabilities`."""
    if metric in ("roc_auc", "log_loss"):
        assert probabilities is not None
        return _probability_metric(metric, y_true, np.asarray(probabilities, dtype=np.float64), classes)
    assert predicted is not None
    if metric == "r2":
        return float(sk.r2_score(y_true, predicted))
    if metric == "rmse":
        return float(np.sqrt(sk.mean_squared_error(y_true, predicted)))
    if metric == "mae":
        return float(sk.mean_absolute_error(y_true, predicted))
    if metric == "accuracy":
        return float(sk.accuracy_score(y_true, predicted))
    if metric == "f1_macro":
        return float(sk.f1_score(y_true, predicted, average="macro"))
    raise ValueError(f"unknown metric {metric!r}: choose one of {sorted(METRICS)}")


def _probability_metric(metric: str, y_true: np.ndarray, probabilities: np.ndarray, classes: list[str]) -> float:
    if metric == "roc_auc":
        if len(classes) == 2:
            return float(sk.roc_auc_score(y_true == classes[1], probabilities[:, 1]))
        return float(sk.roc_auc_score(y_true, probabilities, multi_class="ovr", labels=classes))
    # An ONNX graph answers in float32: a forest's probabilities can sum to 1 + 4e-7 in a row,
    # which scikit-learn's log_loss refuses; it scores them as the distribution they stand for.
    distributions = np.clip(probabilities, 0.0, 1.0)
    distributions = distributions / distributions.sum(axis=1, keepdims=True)
    return float(sk.log_loss(y_true, distributions, labels=classes))
