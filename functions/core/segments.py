"""Bias across segments: the model's answers and errors per segment of a feature, and the gaps. AWS-free.

A manifest's `segments` (the recipe's SEGMENTS) name the features served rows
are split by: one segment per training value of a category or boolean feature,
one per bin of a numeric one. A window of served rows is reduced to counts per
segment (`SegmentCounts`; counts add up, so the monitor counts a chunk at a
time); labelled rows (feedback joined with capture) give each segment's error
rates and the recipe's metric. The gaps are differences between the segments
that have enough rows:

- demographic-parity difference: max - min over segments of the share of rows
  predicted as the positive class (binary: `classes[1]`, the class roc_auc
  treats as positive; multiclass: each class one-vs-rest, the largest gap);
- true-positive-rate (equal-opportunity) and false-positive-rate differences,
  over labelled rows (both small: equalized odds);
- regression: the differences in mean prediction and in mean absolute error.

Rows whose value is missing, or outside the training values of a category,
are reported as the segments "(missing)" and "(unseen)" but take no part in the
gaps: they are no group the recipe declared. Rows answered by plan B are not
the model's answers and are left out. The definitions are in docs/monitoring.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from functions.core.drift import as_float, boolean_reading, category_text, readings
from functions.core.manifest import Manifest, SegmentSpec
from functions.core.quality import live_metric

# Not segments the recipe declared; in brackets so that no category value is mistaken for them.
MISSING = "(missing)"
UNSEEN = "(unseen)"

Verdict = Literal["gap", "ok", "insufficient_data"]
GapName = Literal["demographic_parity", "true_positive_rate", "false_positive_rate", "mean_prediction", "mae"]
CLASSIFICATION_GAPS: tuple[GapName, ...] = ("demographic_parity", "true_positive_rate", "false_positive_rate")
REGRESSION_GAPS: tuple[GapName, ...] = ("mean_prediction", "mae")


class SegmentPolicy(BaseModel):
    """How many rows a segment needs to count, and the gap that alarms (monitor.segments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_rows: int = Field(30, ge=1, description="Served rows a segment needs for its prediction rates to count.")
    min_labelled: int = Field(30, ge=1, description="Labelled rows a segment needs for its error rates to count.")
    gap_alarm: float = Field(
        0.2,
        gt=0,
        description="A gap above this is reported (and alarms): a difference of rates (classification), or of "
        "mean prediction or MAE in standard deviations of the training predictions (regression).",
    )


# -- segments of a feature ------------------------------------------------------------------


def _edge(value: float) -> str:
    return f"{value:.6g}"


def segment_names(spec: SegmentSpec) -> list[str]:
    """The declared segments of a feature: its values, or its bins as '< 30', '[30, 50)', '>= 50'."""
    if spec.kind != "numeric":
        return list(spec.values)
    edges = [_edge(e) for e in spec.edges]
    return [f"< {edges[0]}", *(f"[{a}, {b})" for a, b in pairwise(edges)), f">= {edges[-1]}"]


def segments_of(spec: SegmentSpec, values: Sequence[Any] | np.ndarray) -> list[str]:
    """The segment of each captured value (as sent for categories and booleans, canonical floats for numbers)."""
    names, codes = segment_codes(spec, values)
    return [names[i] for i in codes.tolist()]


def segment_codes(spec: SegmentSpec, values: Sequence[Any] | np.ndarray) -> tuple[list[str], np.ndarray]:
    """The segments of `spec` followed by (unseen) and (missing), and the index of each value's segment among them."""
    names = [*segment_names(spec), UNSEEN, MISSING]
    missing = len(names) - 1
    if spec.kind == "numeric":
        numbers = as_float(values)
        codes = np.searchsorted(np.asarray(spec.edges, dtype=np.float64), numbers, side="right")
        codes[np.isnan(numbers)] = missing
        return names, codes
    texts, codes = readings(values, boolean_reading if spec.kind == "boolean" else category_text)
    declared = {name: i for i, name in enumerate(spec.values)}
    of_text = [missing if text is None else declared.get(text, missing - 1) for text in texts]
    return names, np.asarray(of_text, dtype=np.intp)[codes]


# -- counts of a window (streamed) ------------------------------------------------------------


class SegmentTally(BaseModel):
    """Rows of one segment in a window: how many, and what the model answered."""

    model_config = ConfigDict(frozen=True)

    rows: int = 0
    predicted: dict[str, int] = Field(default_factory=dict, description="Rows per predicted class.")
    prediction_sum: float = Field(0.0, description="Sum of the predicted values (regression).")

    def merged(self, other: SegmentTally) -> SegmentTally:
        predicted = dict(self.predicted)
        for label, count in other.predicted.items():
            predicted[label] = predicted.get(label, 0) + count
        return SegmentTally(
            rows=self.rows + other.rows, predicted=predicted, prediction_sum=self.prediction_sum + other.prediction_sum
        )


class SegmentCounts(BaseModel):
    """Per segment feature, per segment, the tally of a window's rows (of one model version)."""

    model_config = ConfigDict(frozen=True)

    features: dict[str, dict[str, SegmentTally]] = Field(default_factory=dict)

    def merged(self, other: SegmentCounts) -> SegmentCounts:
        """The counts of both windows together."""
        features = {name: dict(tallies) for name, tallies in self.features.items()}
        for name, tallies in other.features.items():
            target = features.setdefault(name, {})
            for segment, tally in tallies.items():
                current = target.get(segment)
                target[segment] = tally if current is None else current.merged(tally)
        return SegmentCounts(features=features)


def count_segments(
    manifest: Manifest,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    predictions: Sequence[Any] | np.ndarray,
    answered: Sequence[bool] | np.ndarray | None = None,
) -> SegmentCounts:
    """Tally rows by segment: `predictions` are labels or values; rows not `answered` by the model are skipped.

    Rows without an answer (missing, or a regression answer that is no number) are skipped too.
    """
    rows = len(predictions)
    keep = np.ones(rows, dtype=bool) if answered is None else np.asarray(answered, dtype=bool).reshape(rows)
    if manifest.task == "classification":
        labels, answers = readings(predictions, category_text)
        keep &= np.asarray([label is not None for label in labels], dtype=bool)[answers]
        answers = answers[keep]
    else:
        values = as_float(predictions)
        keep &= ~np.isnan(values)
        values = values[keep]
    features: dict[str, dict[str, SegmentTally]] = {}
    for spec in manifest.segments:
        column = columns.get(spec.feature)
        names, codes = segment_codes(spec, column if column is not None else [None] * rows)
        codes = codes[keep]
        if manifest.task == "classification":
            features[spec.feature] = _class_tallies(names, codes, labels, answers)
        else:
            features[spec.feature] = _value_tallies(names, codes, values)
    return SegmentCounts(features=features)


def _class_tallies(
    names: Sequence[str], codes: np.ndarray, labels: Sequence[str | None], answers: np.ndarray
) -> dict[str, SegmentTally]:
    """Rows per segment and predicted class; segments and classes in the order they first appear."""
    pairs, first, counts = np.unique(codes * len(labels) + answers, return_index=True, return_counts=True)
    order = np.argsort(first)
    rows: dict[str, int] = {}
    predicted: dict[str, dict[str, int]] = {}
    for pair, count in zip(pairs[order].tolist(), counts[order].tolist(), strict=True):
        segment, label = names[pair // len(labels)], str(labels[pair % len(labels)])
        rows[segment] = rows.get(segment, 0) + count
        per_class = predicted.setdefault(segment, {})
        per_class[label] = per_class.get(label, 0) + count
    return {segment: SegmentTally(rows=n, predicted=predicted[segment]) for segment, n in rows.items()}


def _value_tallies(names: Sequence[str], codes: np.ndarray, values: np.ndarray) -> dict[str, SegmentTally]:
    """Rows and the sum of predicted values per segment, in the order segments first appear."""
    # bincount adds the weights in row order, as a running sum would: the sums are the same to the last bit.
    sums = np.bincount(codes, weights=values, minlength=len(names)).tolist()
    counts = np.bincount(codes, minlength=len(names)).tolist()
    present, first = np.unique(codes, return_index=True)
    return {
        names[code]: SegmentTally(rows=counts[code], prediction_sum=sums[code])
        for code in present[np.argsort(first)].tolist()
    }


# -- figures and gaps -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledAnswer:
    """One served row whose truth arrived: its captured features, the model's answer and the truth."""

    features: Mapping[str, Any]
    truth: str | float
    label: str | None = None
    probabilities: Mapping[str, float | None] | None = None
    value: float | None = None


class SegmentFigures(BaseModel):
    """One segment: rows, the model's answers, and its errors on labelled rows."""

    segment: str
    declared: bool = Field(description="False for the (missing) and (unseen) rows, which are in no gap.")
    rows: int
    labelled_rows: int
    sufficient: bool = Field(description="rows >= min_rows: its prediction rates enter the gaps.")
    labelled_sufficient: bool = Field(description="labelled_rows >= min_labelled: its error rates enter the gaps.")
    prediction_rates: dict[str, float] = Field(default_factory=dict, description="Share of rows per predicted class.")
    positive_rate: float | None = Field(None, description="Binary: share of rows predicted as the positive class.")
    mean_prediction: float | None = None
    metric: float | None = Field(None, description="The recipe's metric on the segment's labelled rows.")
    true_positive_rates: dict[str, float | None] = Field(default_factory=dict, description="Per class, one-vs-rest.")
    false_positive_rates: dict[str, float | None] = Field(default_factory=dict, description="Per class, one-vs-rest.")
    true_positive_rate: float | None = Field(None, description="Binary: of the positive class.")
    false_positive_rate: float | None = Field(None, description="Binary: of the positive class.")
    mae: float | None = None


class SegmentGap(BaseModel):
    """max - min of one figure over the segments with enough rows (None when fewer than two have)."""

    name: GapName
    value: float | None
    positive_class: str | None = Field(None, description="The class the rates are of (multiclass: the widest).")
    highest: str | None = None
    lowest: str | None = None
    segments: int = Field(description="Segments that had enough rows to take part.")


class FeatureSegments(BaseModel):
    """The segments of one feature and the gaps between them."""

    feature: str
    kind: str
    segments: list[SegmentFigures]
    gaps: list[SegmentGap]
    largest_gap: float | None = Field(
        description="The widest gap, comparable with gap_alarm (regression: in training prediction std)."
    )
    verdict: Verdict


class SegmentReport(BaseModel):
    """Bias across segments in one cycle: prediction rates over the window, errors over the quality window."""

    model_version: str
    task: str
    positive_class: str | None = Field(None, description="Binary classification: classes[1].")
    prediction_scale: float | None = Field(None, description="Regression: the training predictions' std.")
    min_rows: int
    min_labelled: int
    gap_alarm: float
    features: list[FeatureSegments]
    largest_gap: float | None
    largest_gap_feature: str | None
    verdict: Verdict


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _labelled_figures(
    manifest: Manifest, rows: Sequence[LabelledAnswer]
) -> tuple[float | None, dict[str, float | None], dict[str, float | None], float | None]:
    """(metric, TPR per class, FPR per class, MAE) of one segment's labelled rows."""
    classes = list(manifest.classes or ())
    truth = [row.truth for row in rows]
    metric = live_metric(
        manifest.metric,
        truth,
        labels=[row.label for row in rows],
        probabilities=[row.probabilities for row in rows],
        values=[row.value for row in rows],
        classes=classes,
    )
    if manifest.task != "classification":
        errors = [abs(row.value - float(row.truth)) for row in rows if row.value is not None]
        return metric, {}, {}, (sum(errors) / len(errors) if errors else None)
    tpr: dict[str, float | None] = {}
    fpr: dict[str, float | None] = {}
    actual = [str(t) for t in truth]
    predicted = [row.label for row in rows]
    for c in classes:
        positives = sum(1 for t in actual if t == c)
        hits = sum(1 for t, p in zip(actual, predicted, strict=True) if t == c and p == c)
        false_alarms = sum(1 for t, p in zip(actual, predicted, strict=True) if t != c and p == c)
        tpr[c] = _rate(hits, positives)
        fpr[c] = _rate(false_alarms, len(actual) - positives)
    return metric, tpr, fpr, None


def _figures(
    manifest: Manifest,
    segment: str,
    declared: bool,
    tally: SegmentTally,
    labelled: Sequence[LabelledAnswer],
    policy: SegmentPolicy,
    positive: str | None,
) -> SegmentFigures:
    classification = manifest.task == "classification"
    answered = sum(tally.predicted.values()) if classification else tally.rows
    rates = {c: tally.predicted.get(c, 0) / answered for c in manifest.classes or ()} if answered else {}
    metric, tpr, fpr, mae = _labelled_figures(manifest, labelled) if labelled else (None, {}, {}, None)
    return SegmentFigures(
        segment=segment,
        declared=declared,
        rows=tally.rows,
        labelled_rows=len(labelled),
        sufficient=tally.rows >= policy.min_rows,
        labelled_sufficient=len(labelled) >= policy.min_labelled,
        prediction_rates=rates,
        positive_rate=rates.get(positive) if positive else None,
        mean_prediction=None if classification or not tally.rows else tally.prediction_sum / tally.rows,
        metric=metric,
        true_positive_rates=tpr,
        false_positive_rates=fpr,
        true_positive_rate=tpr.get(positive) if positive else None,
        false_positive_rate=fpr.get(positive) if positive else None,
        mae=mae,
    )


def _gap(name: GapName, values: dict[str, float | None], positive_class: str | None = None) -> SegmentGap:
    present = {segment: v for segment, v in values.items() if v is not None}
    if len(present) < 2:
        return SegmentGap(name=name, value=None, positive_class=positive_class, segments=len(present))
    highest = max(present, key=lambda s: present[s])
    lowest = min(present, key=lambda s: present[s])
    return SegmentGap(
        name=name,
        value=present[highest] - present[lowest],
        positive_class=positive_class,
        highest=highest,
        lowest=lowest,
        segments=len(present),
    )


def _widest(gaps: Iterable[SegmentGap]) -> SegmentGap:
    """The widest of one gap's per-class versions (one-vs-rest); the first when none is defined."""
    gaps = list(gaps)
    defined = [g for g in gaps if g.value is not None]
    return max(defined, key=lambda g: g.value or 0.0) if defined else gaps[0]


def feature_gaps(manifest: Manifest, segments: Sequence[SegmentFigures]) -> list[SegmentGap]:
    """The gaps between the declared segments with enough rows (labelled rows, for the error rates)."""
    served = [s for s in segments if s.declared and s.sufficient]
    labelled = [s for s in segments if s.declared and s.labelled_sufficient]
    if manifest.task != "classification":
        return [
            _gap("mean_prediction", {s.segment: s.mean_prediction for s in served}),
            _gap("mae", {s.segment: s.mae for s in labelled}),
        ]
    classes = list(manifest.classes or ())
    positives = classes[1:2] if len(classes) == 2 else classes

    def widest(name: GapName, rows: Sequence[SegmentFigures], rates: str) -> SegmentGap:
        return _widest(_gap(name, {s.segment: getattr(s, rates).get(c) for s in rows}, c) for c in positives)

    return [
        widest("demographic_parity", served, "prediction_rates"),
        widest("true_positive_rate", labelled, "true_positive_rates"),
        widest("false_positive_rate", labelled, "false_positive_rates"),
    ]


def _verdict(largest: float | None, policy: SegmentPolicy) -> Verdict:
    if largest is None:
        return "insufficient_data"
    return "gap" if largest > policy.gap_alarm else "ok"


def segment_report(
    manifest: Manifest, counts: SegmentCounts, labelled: Sequence[LabelledAnswer], policy: SegmentPolicy
) -> SegmentReport:
    """Figures per segment, the gaps per segment feature, and the widest gap of all (None when none qualifies)."""
    classification = manifest.task == "classification"
    classes = list(manifest.classes or ())
    positive = classes[1] if classification and len(classes) == 2 else None
    scale = None
    if not classification:
        scale = manifest.baseline.prediction.std or 1.0  # a constant model's gaps are 0 in any unit
    features = []
    for spec in manifest.segments:
        tallies = counts.features.get(spec.feature, {})
        by_segment: dict[str, list[LabelledAnswer]] = {}
        captured = [row.features.get(spec.feature) for row in labelled]
        for row, segment in zip(labelled, segments_of(spec, captured), strict=True):
            by_segment.setdefault(segment, []).append(row)
        declared = segment_names(spec)
        extra = [name for name in (UNSEEN, MISSING) if name in tallies or name in by_segment]
        figures = [
            _figures(manifest, name, name in declared, tallies.get(name, SegmentTally()), by_segment.get(name, []),
                     policy, positive)
            for name in (*declared, *extra)
        ]  # fmt: skip
        gaps = feature_gaps(manifest, figures)
        values = [g.value for g in gaps if g.value is not None]
        largest = (max(values) / (scale or 1.0)) if values else None
        features.append(
            FeatureSegments(
                feature=spec.feature,
                kind=spec.kind,
                segments=figures,
                gaps=gaps,
                largest_gap=largest,
                verdict=_verdict(largest, policy),
            )
        )
    widest = max((f for f in features if f.largest_gap is not None), key=lambda f: f.largest_gap or 0.0, default=None)
    largest = widest.largest_gap if widest else None
    return SegmentReport(
        model_version=manifest.version,
        task=manifest.task,
        positive_class=positive,
        prediction_scale=scale,
        min_rows=policy.min_rows,
        min_labelled=policy.min_labelled,
        gap_alarm=policy.gap_alarm,
        features=features,
        largest_gap=largest,
        largest_gap_feature=widest.feature if widest else None,
        verdict=_verdict(largest, policy),
    )
