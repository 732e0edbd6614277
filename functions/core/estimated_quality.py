"""Estimated quality without labels: the recipe's metric expected from calibrated probabilities. AWS-free.

Confidence-based performance estimation (CBPE, as NannyML does it): when a model's
probabilities, once calibrated on the holdout, say how often it is right, a
window's expected confusion matrix follows from them alone. Each row counts as
a positive of class k with its calibrated probability c_k and as a negative with
1 - c_k:

- accuracy = mean of c at the predicted class;
- per class k, expected TP = Σ c_k over rows predicted k, FP = Σ (1 - c_k) over
  them, FN = Σ c_k over rows predicted otherwise; F1 and macro-F1 from those;
- ROC AUC = the Mann-Whitney statistic of the model's own scores with every
  (i, j) pair weighted c_i (1 - c_j) (one vs rest, macro, for several classes);
- log loss = -mean Σ_k c_k log p_k (p the model's probabilities).

The band is how far the window's realized metric would stray from its expectation
through sampling alone: labels are drawn from the calibrated probabilities
(`DRAWS` times, seeded) and the band is the expectation ± 1.96 standard deviations
of the metric over the draws. It holds when the calibration does: the calibration's
own error on the holdout (`Calibration.calibration_error`) comes on top.

The blind spot: the estimate reads the inputs' probabilities only. When the relation
of features to label changes while the features do not (concept drift), the
estimate stays where it was and the realized quality falls. `compare` says so when
labels are there to show it. Regression is not estimated (see NOT_ESTIMATED_REGRESSION).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from functions.core.manifest import Calibration, Manifest
from functions.core.quality import HIGHER_IS_BETTER

ESTIMATED_METRICS = ("accuracy", "roc_auc", "f1_macro", "log_loss")
DRAWS = 64  # label draws for the band: its standard deviation is known to about 1/sqrt(2*64), 9 %
DRAW_BLOCK = 8  # draws made at once, so that 100,000 rows take a few MB
Z = 1.96  # the band's half-width in standard deviations (95 % of a normal)
_EPS = 1e-15

BLIND_SPOT = (
    "estimated from the calibrated probabilities of the inputs alone: blind to concept drift (the relation of "
    "features to label changing while the features do not); only labels show that"
)
NOT_ESTIMATED_REGRESSION = (
    "not estimated for regression: a regression model gives no probability of being right, and an estimate would "
    "need a second model of its error fitted on the holdout (NannyML's DLE), which Slipway does not train"
)
NOT_CALIBRATED = "not estimated: this model version has no calibration (trained before it existed)"
DISAGREE = "estimate and realized quality disagree: concept drift?"
NO_ROWS = "not estimated: no answer of the model with its probabilities in the window"


class MetricEstimate(BaseModel):
    """One metric's expectation over a window and the band its realized value should fall in."""

    model_config = ConfigDict(frozen=True)

    value: float
    lower: float
    upper: float
    std: float = Field(ge=0, description="Standard deviation of the realized metric over labels drawn.")


class EstimatedQuality(BaseModel):
    """A window's quality estimated without labels (empty `metrics`, with the reason, when it cannot be)."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    metric: str = Field(description="The recipe's gate metric.")
    rows: int = Field(ge=0, description="Rows the model answered (plan B's answers are left out).")
    metrics: dict[str, MetricEstimate] = Field(default_factory=dict)
    calibration_error: float | None = Field(None, description="The calibration's cross-fitted error on the holdout.")
    note: str = Field(description="What the estimate cannot see, or why there is none.")
    # Labels of the quality window, when there are any: the estimate over the same labelled rows beside the realized
    # figure; they disagree when the realized one is outside the band widened by the calibration error.
    labelled_rows: int = 0
    labelled_estimate: MetricEstimate | None = None
    realized: float | None = None
    disagrees: bool | None = None
    warning: str | None = None

    @property
    def value(self) -> float | None:
        """The gate metric's estimate (None when it has none)."""
        found = self.metrics.get(self.metric)
        return None if found is None else found.value


def calibrated(calibration: Calibration, classes: Sequence[str], raw: np.ndarray) -> np.ndarray:
    """The rows' calibrated probabilities (rows x classes, in `classes` order) from the model's `raw` ones."""
    raw = np.clip(np.asarray(raw, dtype=np.float64), 0.0, 1.0)
    index = {c: i for i, c in enumerate(classes)}
    if len(classes) == 2 and len(calibration.classes) == 1:
        only = calibration.classes[0]
        k = index[only.name]
        mapped = np.interp(raw[:, k], only.x, only.y)
        out = np.empty_like(raw)
        out[:, k], out[:, 1 - k] = mapped, 1.0 - mapped
        return out
    out = raw.copy()
    for entry in calibration.classes:
        out[:, index[entry.name]] = np.interp(raw[:, index[entry.name]], entry.x, entry.y)
    total = out.sum(axis=1, keepdims=True)
    # A row whose every class maps to 0 keeps the model's own probabilities: nothing better is known of it.
    return np.where(total > 0, out / np.where(total > 0, total, 1.0), raw)


def expected_metrics(raw: np.ndarray, calibrated_rows: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Every estimated metric's expectation (a metric undefined for the rows, AUC of one class, is left out)."""
    rows, classes = calibrated_rows.shape
    if rows == 0:
        return {}
    c = calibrated_rows
    picked = c[np.arange(rows), predicted]
    out = {"accuracy": float(picked.mean())}
    f1 = []
    for k in range(classes):
        mine = predicted == k
        tp = c[mine, k].sum()
        fp = (1.0 - c[mine, k]).sum()
        fn = c[~mine, k].sum()
        f1.append(0.0 if tp <= 0 else 2 * tp / (2 * tp + fp + fn))
    out["f1_macro"] = float(np.mean(f1))
    out["log_loss"] = float(-np.mean(np.sum(c * np.log(np.clip(raw, _EPS, 1.0)), axis=1)))
    aucs = [_weighted_auc(raw[:, k], c[:, k]) for k in ([1] if classes == 2 else range(classes))]
    defined = [a for a in aucs if a is not None]
    if defined:
        out["roc_auc"] = float(np.mean(defined))
    return out


def _weighted_auc(score: np.ndarray, positive: np.ndarray) -> float | None:
    """The AUC of `score` with row i a positive of weight positive[i] and a negative of weight 1 - positive[i]:
    the expected number of correctly ordered (positive, negative) pairs (ties half) over the expected pairs."""
    order = np.argsort(score, kind="mergesort")
    s, p = score[order], positive[order]
    n = 1.0 - p
    _, start = np.unique(s, return_index=True)
    group_p = np.add.reduceat(p, start)
    group_n = np.add.reduceat(n, start)
    below_n = np.concatenate([[0.0], np.cumsum(group_n)[:-1]])
    self_pairs = float(np.sum(p * n))  # a row is never paired with itself
    pairs = float(p.sum() * n.sum()) - self_pairs
    if pairs <= _EPS:
        return None
    ordered = float(np.sum(group_p * (below_n + 0.5 * group_n))) - 0.5 * self_pairs
    return ordered / pairs


def _drawn_metrics(
    raw: np.ndarray, calibrated_rows: np.ndarray, predicted: np.ndarray, *, draws: int, seed: int
) -> dict[str, np.ndarray]:
    """Each metric realized on `draws` sets of labels drawn from the calibrated probabilities."""
    rows, classes = calibrated_rows.shape
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(calibrated_rows, axis=1)
    cumulative[:, -1] = 1.0
    log_raw = np.log(np.clip(raw, _EPS, 1.0))
    scored = [1] if classes == 2 else list(range(classes))
    ranks = [_average_ranks(raw[:, k]) for k in scored]
    found: dict[str, list[float]] = {name: [] for name in ESTIMATED_METRICS}
    picked_log = [log_raw[:, k] for k in range(classes)]
    mine = [predicted == k for k in range(classes)]
    for first in range(0, draws, DRAW_BLOCK):
        block = min(DRAW_BLOCK, draws - first)
        u = rng.random((block, rows))
        labels = np.zeros((block, rows), dtype=np.int8 if classes < 128 else np.int64)
        for k in range(classes - 1):  # the class drawn for each row: how many cumulative shares u passes
            labels += u > cumulative[:, k]
        truth = [labels == k for k in range(classes)]
        # As float once, for the weighted sums: einsum, as BLAS's matrix-vector product, is slow on a busy machine.
        weights = [t.astype(np.float64) for t in truth]
        correct = np.zeros((block, rows), dtype=bool)
        loss = np.zeros(block)
        f1 = np.zeros((block, classes))
        for k in range(classes):
            hit = truth[k] & mine[k]
            correct |= hit
            loss += np.einsum("dn,n->d", weights[k], picked_log[k])
            tp = np.count_nonzero(hit, axis=1)
            wrong = np.count_nonzero(truth[k] ^ mine[k], axis=1)  # FP + FN
            f1[:, k] = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)
        found["accuracy"] += list(np.count_nonzero(correct, axis=1) / rows)
        found["log_loss"] += list(-loss / rows)
        found["f1_macro"] += list(f1.mean(axis=1))
        aucs = []
        for k, rank in zip(scored, ranks, strict=True):
            n_pos = np.count_nonzero(truth[k], axis=1).astype(np.float64)
            n_neg = rows - n_pos
            with np.errstate(divide="ignore", invalid="ignore"):
                ranked = np.einsum("dn,n->d", weights[k], rank)
                aucs.append((ranked - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
        stacked = np.array(aucs)
        defined = np.isfinite(stacked)  # a draw with one class has no AUC for it
        counted = defined.sum(axis=0)
        mean = np.where(defined, stacked, 0.0).sum(axis=0) / np.maximum(counted, 1)
        found["roc_auc"] += list(np.where(counted > 0, mean, np.nan))
    return {name: np.asarray(values, dtype=np.float64) for name, values in found.items()}


def _average_ranks(score: np.ndarray) -> np.ndarray:
    """1-based ranks of `score`, ties given their average rank."""
    order = np.argsort(score, kind="mergesort")
    _, start, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(score.size)
    ranks[order] = np.repeat(start + (counts + 1) / 2, counts)
    return ranks


def estimate(
    raw: np.ndarray, calibrated_rows: np.ndarray, predicted: np.ndarray, *, draws: int = DRAWS, seed: int = 0
) -> dict[str, MetricEstimate]:
    """Each metric's expectation over the rows and its band (see the module's docstring)."""
    expected = expected_metrics(raw, calibrated_rows, predicted)
    if not expected:
        return {}
    drawn = _drawn_metrics(raw, calibrated_rows, predicted, draws=draws, seed=seed)
    out = {}
    for name, value in expected.items():
        finite = drawn[name][np.isfinite(drawn[name])]
        std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
        low, high = value - Z * std, value + Z * std
        if name != "log_loss":  # the others are shares in [0, 1]
            low, high = max(low, 0.0), min(high, 1.0)
        out[name] = MetricEstimate(value=value, lower=max(low, 0.0), upper=high, std=std)
    return out


def answered_rows(
    columns: Mapping[str, Sequence[float | None]] | None,
    labels: Sequence[str | None] | None,
    classes: Sequence[str],
    rows: int,
    answered: Sequence[bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model probabilities (rows x classes) and predicted class indices of captured answers, as columns per
    class: rows not `answered` by the model (plan B) or missing a probability are dropped; a row's predicted
    class is its captured label, else its most probable class."""
    absent: list[float | None] = [None] * rows
    found = columns or {}
    matrix = np.array([found.get(c, absent) for c in classes], dtype=np.float64).T.reshape(rows, len(classes))
    index = {c: i for i, c in enumerate(classes)}
    captured: Sequence[str | None] = labels if labels is not None else [None] * rows
    predicted = np.array([index.get(label, -1) if label else -1 for label in captured], dtype=np.int64)
    keep = np.all(np.isfinite(matrix), axis=1)
    if answered is not None:
        keep &= np.asarray(answered, dtype=bool)
    matrix, predicted = matrix[keep], predicted[keep]
    guessed = predicted < 0
    if guessed.any():
        predicted[guessed] = np.argmax(matrix[guessed], axis=1)
    return matrix, predicted


def estimate_quality(manifest: Manifest, raw: np.ndarray, predicted: np.ndarray | None = None) -> EstimatedQuality:
    """The manifest's gate metric (and every other estimated one) expected over rows whose model probabilities
    are `raw` (rows x classes, in manifest.classes order) and predicted classes `predicted` (default: argmax)."""
    rows = int(np.asarray(raw).shape[0]) if manifest.task == "classification" else 0
    base = {"model_version": manifest.version, "metric": manifest.metric, "rows": rows}
    if manifest.task != "classification":
        return EstimatedQuality(**base, note=NOT_ESTIMATED_REGRESSION)
    if manifest.calibration is None:
        return EstimatedQuality(**base, note=NOT_CALIBRATED)
    if rows == 0:
        return EstimatedQuality(**base, calibration_error=manifest.calibration.calibration_error, note=NO_ROWS)
    raw = np.asarray(raw, dtype=np.float64).reshape(rows, len(manifest.classes or ()))
    predicted = np.argmax(raw, axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    rows_calibrated = calibrated(manifest.calibration, manifest.classes or (), raw)
    return EstimatedQuality(
        **base,
        metrics=estimate(raw, rows_calibrated, predicted),
        calibration_error=manifest.calibration.calibration_error,
        note=BLIND_SPOT,
    )


def compare(
    estimated: EstimatedQuality,
    manifest: Manifest,
    raw: np.ndarray,
    predicted: np.ndarray,
    realized: float | None,
) -> EstimatedQuality:
    """`estimated` with the labelled rows' own estimate beside their realized metric, and the warning when they
    disagree: the realized figure outside the band, widened by the calibration's error on the holdout."""
    if realized is None or not estimated.metrics or not len(raw):
        return estimated
    on_labelled = estimate_quality(manifest, raw, predicted).metrics.get(manifest.metric)
    if on_labelled is None:
        return estimated
    slack = estimated.calibration_error or 0.0
    disagrees = not (on_labelled.lower - slack <= realized <= on_labelled.upper + slack)
    return estimated.model_copy(
        update={
            "labelled_rows": len(raw),
            "labelled_estimate": on_labelled,
            "realized": realized,
            "disagrees": disagrees,
            "warning": DISAGREE if disagrees else None,
        }
    )


def below(estimated: EstimatedQuality, threshold: float | None, *, min_rows: int) -> bool:
    """Whether the gate metric's estimate over at least `min_rows` rows fell below `threshold` (a metric where
    higher is better; never for an error such as log_loss)."""
    value = estimated.value
    return (
        threshold is not None
        and value is not None
        and estimated.rows >= min_rows
        and HIGHER_IS_BETTER.get(estimated.metric, False)
        and value < threshold
    )


HISTORY_POINTS = 168  # a week of hourly cycles


class QualityPoint(BaseModel):
    """One cycle's estimated quality (gate metric, with its band) and the realized quality of its quality window."""

    model_config = ConfigDict(frozen=True)

    end: datetime
    model_version: str
    metric: str
    estimated: float | None
    lower: float | None
    upper: float | None
    realized: float | None


def with_point(
    history: Sequence[QualityPoint], estimated: EstimatedQuality, realized: float | None, end: datetime
) -> list[QualityPoint]:
    """`history` with the cycle ending at `end` added (replacing a point of the same end), the last HISTORY_POINTS."""
    found = estimated.metrics.get(estimated.metric)
    point = QualityPoint(
        end=end,
        model_version=estimated.model_version,
        metric=estimated.metric,
        estimated=found.value if found else None,
        lower=found.lower if found else None,
        upper=found.upper if found else None,
        realized=realized,
    )
    kept = sorted([p for p in history if p.end != end] + [point], key=lambda p: p.end)
    return kept[-HISTORY_POINTS:]
