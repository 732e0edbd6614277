"""Drift statistics against the frozen bins of a model's training baseline. AWS-free.

A window of served rows is reduced to counts in the baseline's bins
(`WindowCounts`); counts add up, so a day's statistics equal those of its
hours merged. Every statistic is computed from counts, never from bins fitted
to live data. The formulas are in docs/monitoring.md; the conventions are
defined once, here:

- proportions are smoothed before any logarithm: p' = (p + EPSILON) / (1 + k * EPSILON)
  over the k bins, so an empty bin never gives an infinite value;
- PSI uses the natural logarithm (the credit-scoring convention its 0.1 / 0.25
  rule of thumb was set with);
- Jensen-Shannon is reported as a distance (the square root of the divergence)
  with base-2 logarithms, so it lies in [0, 1];
- the binned Kolmogorov-Smirnov statistic and the L-infinity distance use the
  unsmoothed proportions;
- for categories and booleans, PSI and Jensen-Shannon compare the shares of the
  training categories among the values that have one (the unseen bin is left out:
  `unseen_share` judges it), and a window only drifts on them when the statistic
  also clears the sampling noise of its size (`category_noise`).

The features a manifest names in `capture_exclude` are never counted (even
when a table holds them) and have no statistics: the report lists them as
excluded, and the drifted share is taken over the other features.

When the manifest carries a feature report (functions.training.importance),
each feature's drift also names its importance at training, so that a
drifted feature the model hardly uses reads differently from one it relies
on; the verdict and the drifted share do not depend on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from functions.core.features import FeatureType
from functions.core.manifest import Baseline, FeatureBaseline, FeatureImportance, Manifest

EPSILON = 1e-4
PREDICTION = "prediction"

Verdict = Literal["drift", "no_drift", "insufficient_data"]


class DriftThresholds(BaseModel):
    """When a feature counts as drifted (a statistic at or above its threshold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: float = Field(0.25, gt=0, description="PSI: < 0.1 stable, 0.1-0.25 moderate, >= 0.25 significant shift.")
    js: float = Field(0.1, gt=0, le=1, description="Jensen-Shannon distance (base 2).")
    ks: float = Field(0.15, gt=0, le=1, description="Binned Kolmogorov-Smirnov statistic.")
    linf: float = Field(0.1, gt=0, le=1, description="L-infinity distance between category shares.")
    category_psi: float = Field(
        0.02,
        gt=0,
        description="PSI of category and boolean shares; in a small window, the sampling noise bound "
        "(docs/monitoring.md) if that is higher.",
    )
    category_js: float = Field(
        0.06,
        gt=0,
        le=1,
        description="Jensen-Shannon distance (base 2) of category and boolean shares; in a small window, "
        "the sampling noise bound if that is higher.",
    )
    unseen_share: float = Field(0.05, gt=0, le=1, description="Share of values outside the training categories.")
    missing_rate_increase: float = Field(0.1, gt=0, le=1, description="Missing rate above the training one by this.")
    out_of_range_share: float = Field(0.05, gt=0, le=1, description="Share of values outside the training range.")


class DriftPolicy(BaseModel):
    """Thresholds per feature (with defaults), the minimum rows for a verdict and the dataset rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rows: int = Field(200, ge=1, description="Below this many rows a window's verdict is insufficient_data.")
    drift_share: float = Field(
        0.1, gt=0, le=1, description="The window drifts when this share of features drifts (or the prediction does)."
    )
    thresholds: DriftThresholds = DriftThresholds()
    features: dict[str, DriftThresholds] = Field(default_factory=dict, description="Per-feature overrides.")
    outlier_share: float = Field(
        0.05,
        gt=0,
        le=1,
        description="The window drifts when this share of its rows is flagged by the outlier detector "
        "(which flags about 1 % of training rows).",
    )

    def for_feature(self, name: str) -> DriftThresholds:
        return self.features.get(name, self.thresholds)


# -- counts ---------------------------------------------------------------------------------


class FeatureCounts(BaseModel):
    """Counts of one feature in a window: per frozen bin (present values), missing, out of range."""

    model_config = ConfigDict(frozen=True)

    name: str
    bins: list[int]
    missing: int = 0
    out_of_range: int = 0

    def merged(self, other: FeatureCounts) -> FeatureCounts:
        if other.name != self.name or len(other.bins) != len(self.bins):
            raise ValueError(f"cannot merge counts of {other.name!r} into {self.name!r}: different bins")
        return FeatureCounts(
            name=self.name,
            bins=[a + b for a, b in zip(self.bins, other.bins, strict=True)],
            missing=self.missing + other.missing,
            out_of_range=self.out_of_range + other.out_of_range,
        )


class WindowCounts(BaseModel):
    """Everything the statistics need about a window of rows served by one model version."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    rows: int = 0
    start: datetime | None = None
    end: datetime | None = None
    features: list[FeatureCounts]
    prediction: FeatureCounts
    outlier_scored: int = Field(0, description="Rows the outlier detector scored (no plan B, a model with one).")
    outliers: int = Field(0, description="Of them, rows it flagged.")

    def merged(self, other: WindowCounts) -> WindowCounts:
        """The counts of both windows together (the same model version)."""
        if other.model_version != self.model_version:
            raise ValueError(f"cannot merge counts of model {other.model_version} into {self.model_version}")
        starts = [t for t in (self.start, other.start) if t is not None]
        ends = [t for t in (self.end, other.end) if t is not None]
        return WindowCounts(
            model_version=self.model_version,
            rows=self.rows + other.rows,
            start=min(starts) if starts else None,
            end=max(ends) if ends else None,
            features=[a.merged(b) for a, b in zip(self.features, other.features, strict=True)],
            prediction=self.prediction.merged(other.prediction),
            outlier_scored=self.outlier_scored + other.outlier_scored,
            outliers=self.outliers + other.outliers,
        )


def empty_counts(manifest: Manifest) -> WindowCounts:
    """Zero counts in the bins of `manifest`'s baseline."""
    baseline = manifest.baseline
    return WindowCounts(
        model_version=manifest.version,
        features=[FeatureCounts(name=b.name, bins=[0] * len(b.proportions)) for b in baseline.features],
        prediction=FeatureCounts(name=PREDICTION, bins=[0] * len(baseline.prediction.proportions)),
    )


def count_columns(
    manifest: Manifest,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    predictions: Sequence[Any] | np.ndarray,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    outlier_scores: Sequence[float | None] | None = None,
) -> WindowCounts:
    """Count a table of canonical feature values (None or NaN when missing) and its predictions.

    `predictions` are labels (classification) or values (regression); `outlier_scores` the
    detector's score of each row (None where it gave none; above 1 is flagged). A feature
    absent from `columns` counts as missing in every row; a feature the manifest
    excludes from capture is not counted at all.
    """
    rows = len(predictions)
    spec = manifest.feature_spec
    excluded = set(manifest.capture_exclude)
    features = []
    for feature, baseline in zip(spec.features, manifest.baseline.features, strict=True):
        raw = columns.get(feature.name)
        if feature.name in excluded:
            features.append(FeatureCounts(name=feature.name, bins=[0] * len(baseline.proportions)))
            continue
        if raw is None:
            features.append(FeatureCounts(name=feature.name, bins=[0] * len(baseline.proportions), missing=rows))
            continue
        if len(raw) != rows:
            raise ValueError(f"column {feature.name!r} has {len(raw)} values for {rows} rows")
        if feature.type in (FeatureType.NUMBER, FeatureType.INTEGER):
            features.append(_count_numeric(baseline, as_float(raw), feature.train_min, feature.train_max))
        else:
            features.append(_count_categories(baseline, raw, feature.type is FeatureType.BOOLEAN))
    prediction_baseline = manifest.baseline.prediction
    if manifest.task == "classification":
        prediction = _count_categories(prediction_baseline, predictions, False)
    else:
        prediction = _count_numeric(prediction_baseline, as_float(predictions), None, None)
    prediction = prediction.model_copy(update={"name": PREDICTION})
    scores = as_float(outlier_scores) if outlier_scores is not None else np.zeros(0)
    scores = scores[~np.isnan(scores)]
    return WindowCounts(
        model_version=manifest.version,
        rows=rows,
        start=start,
        end=end,
        features=features,
        prediction=prediction,
        outlier_scored=int(scores.size),
        outliers=int(np.count_nonzero(scores > 1.0)),
    )


# Python numbers numpy reads as float() does (None as NaN); a bool is an int to numpy but missing here.
_PLAIN_NUMBERS = frozenset({float, int, type(None)})
# Kinds whose equal values read alike (a float is not one: 0.0 == -0.0, but their texts differ).
_PLAIN_KINDS = frozenset({str, int, bool, type(None)})


def as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as float64, NaN where missing or not a number (text, booleans)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return values.astype(np.float64, copy=False)
    if not isinstance(values, np.ndarray) and set(map(type, values)) <= _PLAIN_NUMBERS:
        with suppress(OverflowError):  # an integer beyond float64: read one by one below
            return np.array(values, dtype=np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            out[i] = np.nan if value is None or isinstance(value, (str, bool)) else float(value)
        except (TypeError, ValueError, OverflowError):
            out[i] = np.nan
    return out


def readings(
    values: Sequence[Any] | np.ndarray, read: Callable[[Any], str | None]
) -> tuple[list[str | None], np.ndarray]:
    """What `read` makes of each value: the readings of the distinct values, and each value's index among them.

    A window holds few distinct categories, so `read` runs once per distinct value (told
    apart by type too: 1, True and "1" may read differently), not once per row.
    """
    with suppress(TypeError):  # an unhashable value (a list): read every value below
        distinct = dict.fromkeys(zip(map(type, values), values, strict=True))
        if all(kind in _PLAIN_KINDS or issubclass(kind, str) for kind, _ in distinct):
            index = {key: i for i, key in enumerate(distinct)}
            codes = np.fromiter(
                map(index.__getitem__, zip(map(type, values), values, strict=True)), np.intp, len(values)
            )
            return [read(value) for _, value in distinct], codes
    every = [read(value) for value in values]
    found = {reading: i for i, reading in enumerate(dict.fromkeys(every))}
    return list(found), np.fromiter(map(found.__getitem__, every), np.intp, len(every))


def category_text(value: Any) -> str | None:
    """A captured category value as text; None when missing."""
    return None if is_missing(value) else str(value)


def boolean_reading(value: Any) -> str | None:
    """A captured boolean value as "true" or "false" (see boolean_text); None when missing."""
    return None if is_missing(value) else boolean_text(value)


def boolean_text(value: Any) -> str:
    """A present boolean value as "true" or "false" (texts true/1/false/0 too; other text as it is)."""
    if isinstance(value, str):
        return {"true": "true", "1": "true", "false": "false", "0": "false"}.get(value.lower(), value)
    return "true" if value else "false"


def is_missing(value: Any) -> bool:
    """None, NaN or an empty text: a captured value that is not there."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _count_numeric(
    baseline: FeatureBaseline, values: np.ndarray, low: float | None, high: float | None
) -> FeatureCounts:
    missing = int(np.count_nonzero(np.isnan(values)))
    # The bins of training (functions.training.derive): bin i holds edges[i-1] <= x < edges[i], over
    # sorted edges. Counting the values below each of the few edges (NaN is below none) gives the same
    # bins several times faster than searching the bin of every value.
    below = [int(np.count_nonzero(values < edge)) for edge in baseline.edges]
    bins = np.diff([0, *below, values.size - missing])
    outside = 0
    if low is not None:
        outside += int(np.count_nonzero(values < low))
    if high is not None:
        outside += int(np.count_nonzero(values > high))
    return FeatureCounts(name=baseline.name, bins=bins.tolist(), missing=missing, out_of_range=outside)


def _count_categories(baseline: FeatureBaseline, values: Sequence[Any] | np.ndarray, boolean: bool) -> FeatureCounts:
    labels, codes = readings(values, boolean_reading if boolean else category_text)
    index = {category: i for i, category in enumerate(baseline.categories)}
    unseen = len(index)
    bins = [0] * (unseen + 1)
    missing = 0
    for label, count in zip(labels, np.bincount(codes, minlength=len(labels)).tolist(), strict=True):
        if label is None:
            missing += count
        else:
            bins[index.get(label, unseen)] += count
    # An unseen category is outside the training domain: it counts as out of range too.
    return FeatureCounts(name=baseline.name, bins=bins, missing=missing, out_of_range=bins[unseen])


# -- statistics -----------------------------------------------------------------------------


def smooth(proportions: np.ndarray) -> np.ndarray:
    """The smoothed proportions every logarithm is taken of (see the module docstring)."""
    return (proportions + EPSILON) / (1.0 + proportions.size * EPSILON)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index: sum (a - e) * ln(a / e) over smoothed proportions."""
    e, a = smooth(expected), smooth(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(expected: np.ndarray, actual: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2: sqrt of the mean KL divergence of each to their midpoint."""
    e, a = smooth(expected), smooth(actual)
    m = (e + a) / 2
    divergence = 0.5 * np.sum(e * np.log2(e / m)) + 0.5 * np.sum(a * np.log2(a / m))
    return float(math.sqrt(max(divergence, 0.0)))


def ks_binned(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest gap between the two cumulative distributions at the bin edges."""
    return float(np.max(np.abs(np.cumsum(actual) - np.cumsum(expected)))) if expected.size else 0.0


def linf(expected: np.ndarray, actual: np.ndarray) -> float:
    """Largest gap between the shares of any one bin (category)."""
    return float(np.max(np.abs(actual - expected))) if expected.size else 0.0


# How far above its expected sampling noise a category statistic must be: the z of the Wilson-Hilferty
# normal approximation to the chi-squared quantile, 4.75 for a one-sided probability of 1e-6.
NOISE_Z = 4.75


def category_noise(present: int, categories: int) -> tuple[float, float]:
    """The PSI and Jensen-Shannon distance that windows of the training population exceed about once in a million.

    `present` is the window's values of the `categories` training categories.

    For a window of n values drawn from the training shares of k categories, n * PSI
    is close to Pearson's chi-squared statistic with k - 1 degrees of freedom, and
    the Jensen-Shannon divergence (base 2) close to PSI / (8 ln 2); the bound is
    that statistic's quantile (Wilson-Hilferty) over n. Near-empty categories would
    put PSI's tail above it; PSEUDO_COUNT keeps it under (measured by
    `python -m benchmarks.category_drift_null`, figures in docs/monitoring.md).
    """
    if present <= 0 or categories < 2:
        return math.inf, 1.0
    df = categories - 1
    quantile = df * (1 - 2 / (9 * df) + NOISE_Z * math.sqrt(2 / (9 * df))) ** 3
    bound = quantile / present
    return bound, min(1.0, math.sqrt(bound / (8 * math.log(2))))


# Half a value added to each category's count in the window before PSI and Jensen-Shannon (the
# Jeffreys estimate of its share): in a small window an empty or nearly empty category's logarithm
# would otherwise outweigh the sampling noise the threshold allows for. Negligible at 5,000 values.
PSEUDO_COUNT = 0.5


def category_statistics(expected: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """PSI and Jensen-Shannon distance between the training shares and a window's counts of its categories.

    `expected` and `counts` hold the training categories alone (no unseen bin); the
    window's shares are estimated with PSEUDO_COUNT.
    """
    total = expected.sum()
    training = expected / total if total > 0 else np.full(expected.size, 1.0 / max(expected.size, 1))
    actual = (counts + PSEUDO_COUNT) / (counts.sum() + PSEUDO_COUNT * counts.size)
    return psi(training, actual), js_distance(training, actual)


class FeatureDrift(BaseModel):
    """The statistics and verdict of one feature (or the prediction) in a window."""

    name: str
    kind: Literal["numeric", "categorical"]
    rows: int
    present: int
    psi: float | None = None
    js: float | None = None
    ks: float | None = None
    linf: float | None = None
    unseen_share: float | None = None
    missing_rate: float
    baseline_missing_rate: float
    out_of_range: float
    drift: bool | None = Field(description="None when there is too little data for a verdict.")
    reasons: list[str] = Field(default_factory=list, description="Which statistics crossed their threshold.")
    baseline_proportions: list[float]
    live_proportions: list[float]
    bin_labels: list[str]
    importance: float | None = Field(
        None, description="The feature's permutation importance at training; None when the manifest has no report."
    )
    important: bool | None = Field(
        None, description="Whether that importance reached the report's threshold; None without a report."
    )


class OutlierFigures(BaseModel):
    """The window's rows the model's outlier detector flagged, against the share it flags of training rows."""

    scored: int = Field(description="Rows scored by the detector (answered by a model that has one).")
    flagged: int
    share: float | None = Field(description="flagged / scored; None when nothing was scored.")
    training_share: float | None = Field(description="The share of training rows the detector flags.")
    threshold: float = Field(description="The share at which the window drifts (monitor.drift.outlier_share).")
    drift: bool | None = Field(description="None when too few rows were scored for a verdict.")

    def summary(self) -> str:
        """The figures in one line, for people (`slipway monitor`, the HTML report, the demo)."""
        if self.share is None:
            return "no row was scored by the outlier detector"
        verdict = "n/a (too few rows)" if self.drift is None else ("drift" if self.drift else "ok")
        training = "n/a" if self.training_share is None else f"{self.training_share:.1%}"
        return (
            f"{self.flagged}/{self.scored} rows flagged ({self.share:.1%}; training {training}, "
            f"drift at {self.threshold:.0%}): {verdict}"
        )


class DriftReport(BaseModel):
    """The statistics of a window against the baseline of the model version that served it."""

    model_version: str
    window_start: datetime | None
    window_end: datetime | None
    rows: int
    min_rows: int
    verdict: Verdict
    drift_detected: bool
    drift_share: float
    drifted_features: list[str]
    features: list[FeatureDrift] = Field(description="Every captured feature, in spec order.")
    excluded_features: list[str] = Field(
        default_factory=list, description="Features kept out of capture by the recipe: no drift is computed for them."
    )
    prediction: FeatureDrift
    outliers: OutlierFigures | None = Field(None, description="None when the model has no outlier detector.")


def feature_drift(
    baseline: FeatureBaseline, counts: FeatureCounts, rows: int, thresholds: DriftThresholds, min_rows: int
) -> FeatureDrift:
    """The statistics of one feature; never raises on empty, constant or all-missing columns."""
    bins = np.asarray(counts.bins, dtype=np.float64)
    present = int(bins.sum())
    expected = np.asarray(baseline.proportions, dtype=np.float64)
    total = expected.sum()
    expected = expected / total if total > 0 else np.full(expected.size, 1.0 / max(expected.size, 1))
    actual = bins / present if present else np.zeros_like(bins)
    categorical = bool(baseline.categories)
    missing_rate = counts.missing / rows if rows else 0.0
    result: dict[str, Any] = {
        "name": baseline.name,
        "kind": "categorical" if categorical else "numeric",
        "rows": rows,
        "present": present,
        "missing_rate": missing_rate,
        "baseline_missing_rate": baseline.missing_rate,
        "out_of_range": counts.out_of_range / present if present else 0.0,
        "baseline_proportions": expected.tolist(),
        "live_proportions": actual.tolist(),
        "bin_labels": bin_labels(baseline),
    }
    if rows < min_rows:
        return FeatureDrift(**result, drift=None)
    reasons = []
    if missing_rate - baseline.missing_rate >= thresholds.missing_rate_increase:
        reasons.append("missing_rate")
    if present >= min_rows:
        if categorical:
            result["linf"] = linf(expected, actual)
            result["unseen_share"] = float(actual[-1])
            reasons += [name for name in ("linf", "unseen_share") if result[name] >= getattr(thresholds, name)]
            known = int(bins[:-1].sum())
            if known:
                result["psi"], result["js"] = category_statistics(expected[:-1], bins[:-1])
                noise_psi, noise_js = category_noise(known, len(baseline.categories))
                if result["psi"] >= max(thresholds.category_psi, noise_psi):
                    reasons.append("psi")
                if result["js"] >= max(thresholds.category_js, noise_js):
                    reasons.append("js")
        else:
            result.update(psi=psi(expected, actual), js=js_distance(expected, actual), ks=ks_binned(expected, actual))
            reasons += [name for name in ("psi", "js", "ks") if result[name] >= getattr(thresholds, name)]
            if result["out_of_range"] >= thresholds.out_of_range_share:
                reasons.append("out_of_range")
    return FeatureDrift(**result, drift=bool(reasons), reasons=reasons)


def bin_labels(baseline: FeatureBaseline) -> list[str]:
    """Readable names of a baseline's bins, e.g. '< 1.5', '[1.5, 2)', '>= 2', or the categories and 'unseen'."""
    if baseline.categories:
        return [*baseline.categories, "unseen"]
    edges = [f"{edge:.4g}" for edge in baseline.edges]
    if not edges:
        return ["all"]
    return [f"< {edges[0]}"] + [f"[{a}, {b})" for a, b in pairwise(edges)] + [f">= {edges[-1]}"]


def drift_report(
    manifest: Manifest, counts: WindowCounts, policy: DriftPolicy, *, with_prediction: bool = True
) -> DriftReport:
    """The verdict of a window: per feature, the prediction (unless the rows carry none), the drifted share."""
    baseline: Baseline = manifest.baseline
    rows = counts.rows
    excluded = set(manifest.capture_exclude)
    measured = manifest.feature_report.by_name() if manifest.feature_report is not None else {}
    features = [
        _with_importance(feature_drift(b, c, rows, policy.for_feature(b.name), policy.min_rows), measured.get(b.name))
        for b, c in zip(baseline.features, counts.features, strict=True)
        if b.name not in excluded
    ]
    prediction = feature_drift(
        baseline.prediction, counts.prediction, rows, policy.for_feature(PREDICTION), policy.min_rows
    )
    if not with_prediction:
        prediction = prediction.model_copy(update={"drift": None, "reasons": []})
    drifted = [f.name for f in features if f.drift]
    share = len(drifted) / len(features) if features else 0.0
    outliers = _outlier_figures(manifest, counts, policy)
    if rows < policy.min_rows:
        verdict: Verdict = "insufficient_data"
        detected = False
    else:
        detected = share >= policy.drift_share or bool(prediction.drift) or bool(outliers and outliers.drift)
        verdict = "drift" if detected else "no_drift"
    return DriftReport(
        model_version=counts.model_version,
        window_start=counts.start,
        window_end=counts.end,
        rows=rows,
        min_rows=policy.min_rows,
        verdict=verdict,
        drift_detected=detected,
        drift_share=share if rows >= policy.min_rows else 0.0,
        drifted_features=drifted if rows >= policy.min_rows else [],
        features=features,
        excluded_features=[b.name for b in baseline.features if b.name in excluded],
        prediction=prediction,
        outliers=outliers,
    )


def _outlier_figures(manifest: Manifest, counts: WindowCounts, policy: DriftPolicy) -> OutlierFigures | None:
    if manifest.outliers is None:
        return None
    scored = counts.outlier_scored
    share = counts.outliers / scored if scored else None
    return OutlierFigures(
        scored=scored,
        flagged=counts.outliers,
        share=share,
        training_share=manifest.outliers.training_flagged,
        threshold=policy.outlier_share,
        drift=None if share is None or scored < policy.min_rows else share >= policy.outlier_share,
    )


def _with_importance(drift: FeatureDrift, measured: FeatureImportance | None) -> FeatureDrift:
    if measured is None:
        return drift
    return drift.model_copy(update={"importance": measured.importance, "important": measured.important})
