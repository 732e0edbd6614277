"""The live metrics, computed with numpy only, equal scikit-learn's holdout metrics on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from functions.core.quality import HIGHER_IS_BETTER, METRICS, live_metric
from functions.training.metrics import holdout_metrics

SEEDS = range(20)


def _classification(seed: int, classes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(20, 200))
    truth = rng.choice(classes, size=rows)
    truth[: len(classes)] = classes  # every class present
    raw = rng.random((rows, len(classes))).round(int(rng.integers(1, 4)))  # rounding makes ties
    probabilities = (raw + 1e-3) / (raw + 1e-3).sum(axis=1, keepdims=True)
    predicted = np.asarray(classes)[probabilities.argmax(axis=1)]
    return truth, predicted, probabilities


@pytest.mark.parametrize("classes", [["benign", "malignant"], ["a", "b", "c"]])
@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_equal_scikit_learns(seed: int, classes: list[str]) -> None:
    truth, predicted, probabilities = _classification(seed, classes)
    expected = holdout_metrics("classification", truth, predicted, probabilities, classes)
    rows = [dict(zip(classes, row, strict=True)) for row in probabilities]
    for metric in ("accuracy", "f1_macro", "log_loss", "roc_auc"):
        live = live_metric(metric, list(truth), labels=list(predicted), probabilities=rows, classes=classes)
        assert live == pytest.approx(expected[metric], abs=1e-9), metric


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics_equal_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=int(rng.integers(5, 300)))
    predicted = truth + rng.normal(scale=0.5, size=truth.size)
    expected = holdout_metrics("regression", truth, predicted, None, [])
    for metric in ("r2", "rmse", "mae"):
        assert live_metric(metric, list(truth), values=list(predicted)) == pytest.approx(expected[metric], abs=1e-9)
    assert expected["r2"] == pytest.approx(sk.r2_score(truth, predicted))


def test_one_table_names_every_metric_and_its_direction() -> None:
    assert set(HIGHER_IS_BETTER) == set(METRICS)
    assert {m for m, (task, _) in METRICS.items() if task == "regression"} == {"r2", "rmse", "mae"}
    assert [m for m, higher in HIGHER_IS_BETTER.items() if not higher] == ["log_loss", "rmse", "mae"]


def test_undefined_metrics_are_none() -> None:
    assert live_metric("accuracy", []) is None
    one_class = [{"benign": 0.9, "malignant": 0.1}] * 3
    assert live_metric("roc_auc", ["benign"] * 3, probabilities=one_class, classes=["benign", "malignant"]) is None
    assert live_metric("r2", [1.0, 1.0], values=[1.0, 2.0]) is None
