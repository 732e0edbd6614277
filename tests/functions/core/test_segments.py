"""Bias across segments: figures with known answers, insufficient segments, streamed counts, numeric bins."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from functions.core.manifest import Manifest, SegmentSpec
from functions.core.segments import (
    MISSING,
    UNSEEN,
    LabelledAnswer,
    SegmentCounts,
    SegmentPolicy,
    count_segments,
    segment_names,
    segment_report,
    segments_of,
)
from functions.training.train import Bundle

GROUP = SegmentSpec(feature="group", kind="category", values=("a", "b"))
AGE = SegmentSpec(feature="age", kind="numeric", edges=(30.0, 50.0))
POLICY = SegmentPolicy(min_rows=30, min_labelled=30, gap_alarm=0.2)


def _segmented(bundle: Bundle, *segments: SegmentSpec, **update: Any) -> Manifest:
    # The pure functions read the task, classes, metric and segments; the spec's features are not needed.
    return bundle.manifest.model_copy(update={"segments": segments, **update})


def _rows(group: str, n: int, *, truth: str, predicted: str) -> list[tuple[dict[str, Any], str, str]]:
    return [({"group": group}, truth, predicted)] * n


def _binary_window() -> list[tuple[dict[str, Any], str, str]]:
    """a: 40 rows, 10 predicted malignant; b: 50 rows, 30. Truth: a 20 malignant, b 30 malignant."""
    return [
        *_rows("a", 10, truth="malignant", predicted="malignant"),
        *_rows("a", 10, truth="malignant", predicted="benign"),
        *_rows("a", 20, truth="benign", predicted="benign"),
        *_rows("b", 24, truth="malignant", predicted="malignant"),
        *_rows("b", 6, truth="malignant", predicted="benign"),
        *_rows("b", 6, truth="benign", predicted="malignant"),
        *_rows("b", 14, truth="benign", predicted="benign"),
    ]


def _report(manifest: Manifest, rows: list[tuple[dict[str, Any], str, str]], policy: SegmentPolicy = POLICY) -> Any:
    columns = {"group": [features["group"] for features, _, _ in rows]}
    counts = count_segments(manifest, columns, [predicted for _, _, predicted in rows])
    labelled = [
        LabelledAnswer(features=f, truth=t, label=p, probabilities={"benign": 0.5, "malignant": 0.5})
        for f, t, p in rows
    ]
    return segment_report(manifest, counts, labelled, policy)


def test_binary_gaps_are_max_minus_min_over_segments_of_the_positive_class(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP)
    assert manifest.classes == ("benign", "malignant")  # classes[1] is the positive class, as for roc_auc
    report = _report(manifest, _binary_window())

    assert report.positive_class == "malignant"
    (feature,) = report.features
    a, b = feature.segments
    assert (a.rows, a.positive_rate, a.true_positive_rate, a.false_positive_rate) == (40, 0.25, 0.5, 0.0)
    assert (b.rows, b.positive_rate, b.true_positive_rate, b.false_positive_rate) == (50, 0.6, 0.8, 0.3)
    gaps = {g.name: g for g in feature.gaps}
    assert gaps["demographic_parity"].value == pytest.approx(0.35)
    assert (gaps["demographic_parity"].highest, gaps["demographic_parity"].lowest) == ("b", "a")
    assert gaps["true_positive_rate"].value == pytest.approx(0.3)
    assert gaps["false_positive_rate"].value == pytest.approx(0.3)
    assert feature.largest_gap == pytest.approx(0.35) and feature.verdict == "gap"
    assert report.largest_gap == pytest.approx(0.35) and report.largest_gap_feature == "group"
    assert a.metric == 0.5 and a.labelled_rows == 40  # roc_auc of constant scores


def test_a_gap_at_or_below_the_setting_is_ok(bundle: Bundle) -> None:
    report = _report(_segmented(bundle, GROUP), _binary_window(), SegmentPolicy(gap_alarm=0.35))
    assert report.verdict == "ok"


def test_segments_with_too_few_rows_are_reported_and_left_out_of_the_gaps(bundle: Bundle) -> None:
    rows = [*_rows("a", 40, truth="benign", predicted="benign"), *_rows("b", 10, truth="benign", predicted="malignant")]
    report = _report(_segmented(bundle, GROUP), rows)

    (feature,) = report.features
    b = feature.segments[1]
    assert b.rows == 10 and not b.sufficient and not b.labelled_sufficient and b.positive_rate == 1.0
    assert all(g.value is None and g.segments <= 1 for g in feature.gaps)
    assert feature.largest_gap is None and feature.verdict == "insufficient_data"
    assert report.largest_gap is None and report.verdict == "insufficient_data"


def test_labelled_rows_count_separately_from_served_rows(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP)
    rows = _binary_window()
    counts = count_segments(manifest, {"group": [f["group"] for f, _, _ in rows]}, [p for _, _, p in rows])
    labelled = [LabelledAnswer(features=f, truth=t, label=p) for f, t, p in rows if f["group"] == "b"][:20]
    (feature,) = segment_report(manifest, counts, labelled, POLICY).features
    gaps = {g.name: g.value for g in feature.gaps}
    assert gaps["demographic_parity"] == pytest.approx(0.35)
    assert gaps["true_positive_rate"] is None and gaps["false_positive_rate"] is None  # a: no labels, b: 20 < 30


def test_missing_and_unseen_values_are_reported_but_in_no_gap(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP)
    columns = {"group": ["a"] * 40 + ["b"] * 40 + [None] * 40 + ["z"] * 40}
    predictions = ["benign"] * 80 + ["malignant"] * 80
    (feature,) = segment_report(manifest, count_segments(manifest, columns, predictions), [], POLICY).features
    by_name = {s.segment: s for s in feature.segments}
    assert list(by_name) == ["a", "b", UNSEEN, MISSING]
    assert not by_name[MISSING].declared and by_name[MISSING].positive_rate == 1.0
    assert feature.gaps[0].value == 0.0  # a and b alone


def test_rows_answered_by_plan_b_are_not_counted(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP)
    answered = [True, False, True]  # the second row was answered by plan B
    counts = count_segments(manifest, {"group": ["a", "a", "b"]}, ["benign", "malignant", "benign"], answered)
    assert counts.features["group"]["a"].rows == 1 and counts.features["group"]["a"].predicted == {"benign": 1}


def test_counts_of_chunks_merged_equal_one_pass(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP, AGE)
    groups = ["a", "b", None, "c"] * 25
    ages = [float(i) for i in range(100)]
    labels = ["benign", "malignant", "malignant"] * 33 + ["benign"]
    whole = count_segments(manifest, {"group": groups, "age": ages}, labels)
    merged = SegmentCounts()
    for start in range(0, 100, 17):
        part = slice(start, start + 17)
        merged = merged.merged(count_segments(manifest, {"group": groups[part], "age": ages[part]}, labels[part]))
    assert merged == whole
    assert sum(t.rows for t in whole.features["age"].values()) == 100


def test_tallies_keep_the_order_rows_first_show_segments_and_classes_in(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP)
    counts = count_segments(
        manifest, {"group": ["b", None, "a", "b", "z"]}, ["malignant", "benign", None, "benign", ""]
    )
    tallies = counts.features["group"]
    assert list(tallies) == ["b", MISSING]  # a's only row and the unseen one have no answer
    assert list(tallies["b"].predicted.items()) == [("malignant", 1), ("benign", 1)]


def test_regression_sums_equal_a_running_sum_to_the_last_bit(bundle: Bundle) -> None:
    manifest = _segmented(bundle, AGE, task="regression", classes=None, metric="mae")
    rng = np.random.default_rng(3)
    ages, values = rng.uniform(0, 80, 5_000), rng.lognormal(0, 3, 5_000)
    values[::7] = np.nan  # no answer: left out
    tallies = count_segments(manifest, {"age": ages}, values.tolist()).features["age"]
    for name, low, high in (("< 30", -np.inf, 30.0), ("[30, 50)", 30.0, 50.0), (">= 50", 50.0, np.inf)):
        running = 0.0
        for age, value in zip(ages.tolist(), values.tolist(), strict=True):
            if low <= age < high and not math.isnan(value):
                running += value
        assert tallies[name].prediction_sum == running and tallies[name].predicted == {}


def test_numeric_segments_by_edges_follow_the_bins_of_training() -> None:
    assert segment_names(AGE) == ["< 30", "[30, 50)", ">= 50"]
    values = [29.9, 30.0, 49.99, 50.0, None, float("nan"), "text"]
    assert segments_of(AGE, values) == ["< 30", "[30, 50)", "[30, 50)", ">= 50", MISSING, MISSING, MISSING]


def test_boolean_segments_read_values_as_sent() -> None:
    spec = SegmentSpec(feature="member", kind="boolean", values=("false", "true"))
    assert segments_of(spec, [True, False, "true", "0", 1, None]) == ["true", "false", "true", "false", "true", MISSING]


def test_multiclass_gaps_are_the_widest_one_vs_rest(bundle: Bundle) -> None:
    manifest = _segmented(bundle, GROUP, classes=("x", "y", "z"), metric="accuracy")
    columns = {"group": ["a"] * 40 + ["b"] * 40}
    predictions = ["x"] * 20 + ["y"] * 20 + ["x"] * 20 + ["z"] * 20  # y: 0.5 vs 0; z: 0 vs 0.5; x: equal
    (feature,) = segment_report(manifest, count_segments(manifest, columns, predictions), [], POLICY).features
    parity = feature.gaps[0]
    assert parity.value == 0.5 and parity.positive_class == "y"
    assert feature.segments[0].positive_rate is None and feature.segments[0].prediction_rates["y"] == 0.5


def test_regression_gaps_in_mean_prediction_and_mae_scaled_by_the_training_spread(bundle: Bundle) -> None:
    baseline = bundle.manifest.baseline
    scaled = baseline.model_copy(update={"prediction": baseline.prediction.model_copy(update={"std": 4.0})})
    manifest = _segmented(bundle, GROUP, task="regression", classes=None, metric="mae", baseline=scaled)
    columns = {"group": ["a"] * 30 + ["b"] * 30}
    values = [10.0] * 30 + [12.0] * 30
    labelled = [LabelledAnswer(features={"group": "a"}, truth=11.0, value=10.0)] * 30 + [
        LabelledAnswer(features={"group": "b"}, truth=15.0, value=12.0)
    ] * 30
    report = segment_report(manifest, count_segments(manifest, columns, values), labelled, POLICY)
    (feature,) = report.features
    a, b = feature.segments
    assert (a.mean_prediction, a.mae, b.mean_prediction, b.mae) == (10.0, 1.0, 12.0, 3.0)
    assert {g.name: g.value for g in feature.gaps} == {"mean_prediction": 2.0, "mae": 2.0}
    assert report.prediction_scale == 4.0 and feature.largest_gap == 0.5 and feature.verdict == "gap"
