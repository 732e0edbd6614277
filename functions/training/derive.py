"""Derive the feature spec, the drift baseline and the fallback answer from training data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.core.features import MAX_PRECISION, Feature, FeatureSpec, FeatureType
from functions.core.manifest import Baseline, FallbackAnswer, FeatureBaseline

BASELINE_BINS = 10
# A derived hard range reaches this many training spans beyond the training range;
# a non-negative training feature stays non-negative. Override in model/recipe.py.
VALID_RANGE_SPANS = 3.0


def derive_feature_spec(
    columns: Mapping[str, np.ndarray], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> FeatureSpec:
    """A spec for `columns` in their order, with the recipe's per-feature overrides applied."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(columns)
    if unknown:
        raise ValueError(f"FEATURES overrides name columns the data does not have: {sorted(unknown)}")
    features = []
    for name, raw in columns.items():
        derived = _derive_feature(name, np.asarray(raw), overrides.get(name, {}).get("type"))
        derived.update(overrides.get(name, {}))
        features.append(Feature.model_validate(derived))
    return FeatureSpec(features=tuple(features))


def _derive_feature(name: str, raw: np.ndarray, declared_type: str | None) -> dict[str, Any]:
    kind = FeatureType(declared_type) if declared_type else _infer_type(raw)
    if kind in (FeatureType.CATEGORY, FeatureType.BOOLEAN):
        present = [v for v in raw.tolist() if v is not None and v == v]
        if kind is FeatureType.BOOLEAN:
            mode = bool(np.mean([bool(v) for v in present]) >= 0.5) if present else False
            return {"name": name, "type": kind, "impute": mode}
        values, counts = np.unique(np.asarray([str(v) for v in present]), return_counts=True)
        return {
            "name": name,
            "type": kind,
            "categories": tuple(values.tolist()),
            "impute": str(values[np.argmax(counts)]),
        }
    column = raw.astype(np.float64)
    values = column[~np.isnan(column)]
    if values.size == 0:
        raise ValueError(f"feature {name!r} has no values in the training data")
    low, high = float(values.min()), float(values.max())
    span = max(high - low, abs(high), 1.0)
    valid_min = 0.0 if low >= 0 else low - VALID_RANGE_SPANS * span
    precision = 0 if kind is FeatureType.INTEGER else _precision(values)
    return {
        "name": name,
        "type": kind,
        "precision": precision if kind is FeatureType.NUMBER else None,
        "valid_min": valid_min,
        "valid_max": high + VALID_RANGE_SPANS * span,
        "train_min": low,
        "train_max": high,
        "impute": float(np.round(np.median(values), precision)),
    }


def _infer_type(raw: np.ndarray) -> FeatureType:
    if raw.dtype == np.bool_:
        return FeatureType.BOOLEAN
    if raw.dtype.kind == "O":
        return _infer_type_of_values(raw)
    if raw.dtype.kind in "US":
        return FeatureType.CATEGORY
    if raw.dtype.kind in "iu":
        return FeatureType.INTEGER
    return FeatureType.NUMBER


def _infer_type_of_values(raw: np.ndarray) -> FeatureType:
    """The type of an object column's present values: numbers with None among them stay numbers.

    Such columns come from a data set's nulls, and from labelled feedback rows that lack a
    feature (one the recipe excludes from capture); read as text they would become categories.
    """
    present = [v for v in raw.tolist() if v is not None and v == v]
    if present and all(type(v) is bool for v in present):
        return FeatureType.BOOLEAN
    if present and all(type(v) is int for v in present):
        return FeatureType.INTEGER
    if present and all(type(v) in (int, float) for v in present):
        return FeatureType.NUMBER
    return FeatureType.CATEGORY


def _precision(values: np.ndarray) -> int:
    """The fewest decimals that represent every training value."""
    scale = np.maximum(np.abs(values), 1.0)
    for decimals in range(MAX_PRECISION + 1):
        if np.all(np.abs(np.round(values, decimals) - values) <= 1e-9 * scale):
            return decimals
    return MAX_PRECISION


def derive_baseline(
    spec: FeatureSpec, columns: Mapping[str, np.ndarray], encoded: np.ndarray, predictions: np.ndarray, task: str
) -> Baseline:
    """Frozen bins and training proportions per feature and for the prediction."""
    features = []
    for index, feature in enumerate(spec.features):
        raw = np.asarray(columns[feature.name])
        missing_rate = float(np.mean([v is None or v != v for v in raw.tolist()]))
        features.append(_bins(feature.name, encoded[:, index], feature, missing_rate))
    if task == "classification":
        prediction = _category_bins("prediction", predictions.astype(str), np.unique(predictions.astype(str)), 0.0)
    else:
        prediction = _numeric_bins("prediction", predictions.astype(np.float64), 0.0)
    return Baseline(rows=int(encoded.shape[0]), features=tuple(features), prediction=prediction)


def _bins(name: str, column: np.ndarray, feature: Feature, missing_rate: float) -> FeatureBaseline:
    if feature.type is FeatureType.CATEGORY:
        assert feature.categories is not None
        labels = np.asarray(feature.categories, dtype=object)[column.astype(int)]
        return _category_bins(name, labels.astype(str), np.asarray(feature.categories), missing_rate)
    if feature.type is FeatureType.BOOLEAN:
        labels = np.where(column > 0.5, "true", "false")
        return _category_bins(name, labels, np.asarray(["false", "true"]), missing_rate)
    return _numeric_bins(name, column, missing_rate)


def _numeric_bins(name: str, column: np.ndarray, missing_rate: float) -> FeatureBaseline:
    quantiles = np.quantile(column, np.linspace(0, 1, BASELINE_BINS + 1)[1:-1])
    edges = np.unique(quantiles)
    counts = np.bincount(np.searchsorted(edges, column, side="right"), minlength=edges.size + 1)
    return FeatureBaseline(
        name=name,
        edges=tuple(edges.tolist()),
        proportions=tuple((counts / column.size).tolist()),
        missing_rate=missing_rate,
        mean=float(column.mean()),
        std=float(column.std()),
    )


def _category_bins(name: str, labels: np.ndarray, categories: np.ndarray, missing_rate: float) -> FeatureBaseline:
    order = {category: i for i, category in enumerate(categories.tolist())}
    counts = np.zeros(len(order) + 1)
    for label in labels.tolist():
        counts[order.get(label, len(order))] += 1
    return FeatureBaseline(
        name=name,
        categories=tuple(order),
        proportions=tuple((counts / max(labels.size, 1)).tolist()),
        missing_rate=missing_rate,
    )


def derive_fallback(task: str, target: np.ndarray, classes: tuple[str, ...] | None) -> FallbackAnswer:
    """The declared plan-B answer: the training prior (classification) or median (regression)."""
    if task == "classification":
        assert classes is not None
        labels = target.astype(str)
        priors = {label: float(np.mean(labels == label)) for label in classes}
        return FallbackAnswer(label=max(priors, key=lambda label: priors[label]), probabilities=priors)
    return FallbackAnswer(value=float(np.median(target.astype(np.float64))))
