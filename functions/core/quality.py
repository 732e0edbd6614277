"""Live model quality from delayed labels: the recipe's metric, computed with numpy only. AWS-free.

`METRICS` is the one table of the metrics a recipe may name (task and direction);
the holdout metrics of functions.training.metrics are the same ones, computed with
scikit-learn, so the live figure is comparable with the one in the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# name -> (task, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("classification", True),
    "roc_auc": ("classification", True),
    "f1_macro": ("classification", True),
    "log_loss": ("classification", False),
    "r2": ("regression", True),
    "rmse": ("regression", False),
    "mae": ("regression", False),
}
HIGHER_IS_BETTER = {name: higher for name, (_, higher) in METRICS.items()}


def live_metric(
    metric: str,
    y_true: Sequence[str | float],
    *,
    labels: Sequence[str | None] | None = None,
    probabilities: Sequence[Mapping[str, float | None] | None] | None = None,
    values: Sequence[float | None] | None = None,
    classes: Sequence[str] = (),
) -> float | None:
    """`metric` over labelled rows; None when it is undefined for them (no rows, one class for AUC)."""
    if not len(y_true):
        return None
    if metric in ("r2", "rmse", "mae"):
        truth = np.asarray(y_true, dtype=np.float64)
        predicted = np.asarray([np.nan if v is None else v for v in values or ()], dtype=np.float64)
        keep = np.isfinite(truth) & np.isfinite(predicted)
        truth, predicted = truth[keep], predicted[keep]
        if not truth.size:
            return None
        error = predicted - truth
        if metric == "rmse":
            return float(np.sqrt(np.mean(error**2)))
        if metric == "mae":
            return float(np.mean(np.abs(error)))
        spread = np.sum((truth - truth.mean()) ** 2)
        return None if spread == 0 else float(1 - np.sum(error**2) / spread)
    truth_labels = np.asarray([str(y) for y in y_true])
    if metric in ("accuracy", "f1_macro"):
        predicted_labels = np.asarray([str(label) for label in labels or ()])
        if metric == "accuracy":
            return float(np.mean(predicted_labels == truth_labels))
        return _f1_macro(truth_labels, predicted_labels)
    matrix = _probability_matrix(probabilities or (), classes)
    if metric == "log_loss":
        index = {c: i for i, c in enumerate(classes)}
        rows = [(r, index[t]) for r, t in enumerate(truth_labels) if t in index]
        if not rows:
            return None
        p = np.clip(np.array([matrix[r, c] for r, c in rows]), 1e-15, 1.0)
        return float(-np.mean(np.log(p)))
    if metric == "roc_auc":
        return _roc_auc(truth_labels, matrix, classes)
    raise ValueError(f"unknown metric {metric!r}: choose one of {sorted(HIGHER_IS_BETTER)}")


def _probability_matrix(
    probabilities: Sequence[Mapping[str, float | None] | None], classes: Sequence[str]
) -> np.ndarray:
    return np.array([[(p or {}).get(c, np.nan) for c in classes] for p in probabilities], dtype=np.float64).reshape(
        len(probabilities), len(classes)
    )


def _f1_macro(truth: np.ndarray, predicted: np.ndarray) -> float:
    scores = []
    for label in np.unique(np.concatenate([truth, predicted])):
        tp = np.sum((predicted == label) & (truth == label))
        fp = np.sum((predicted == label) & (truth != label))
        fn = np.sum((predicted != label) & (truth == label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Mann-Whitney AUC with average ranks for ties."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(score.size)
    sorted_scores = score[order]
    _, start, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = start + (counts + 1) / 2  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _roc_auc(truth: np.ndarray, matrix: np.ndarray, classes: Sequence[str]) -> float | None:
    keep = np.all(np.isfinite(matrix), axis=1) if matrix.size else np.zeros(truth.size, dtype=bool)
    truth, matrix = truth[keep], matrix[keep]
    if len(classes) == 2:
        return _binary_auc(truth == classes[1], matrix[:, 1])
    # One-vs-rest, averaged over the classes present (as scikit-learn's multi_class="ovr", macro).
    scores = [_binary_auc(truth == c, matrix[:, i]) for i, c in enumerate(classes)]
    defined = [s for s in scores if s is not None]
    return float(np.mean(defined)) if defined else None
