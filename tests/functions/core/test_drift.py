"""Drift statistics: known shifts give known values, fresh samples give no alarm, counts merge."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from benchmarks.category_drift_null import shifted
from functions.core.drift import (
    DriftPolicy,
    DriftReport,
    DriftThresholds,
    FeatureCounts,
    as_float,
    category_noise,
    category_statistics,
    category_text,
    count_columns,
    drift_report,
    feature_drift,
    js_distance,
    ks_binned,
    psi,
    readings,
    smooth,
)
from functions.core.features import Feature, FeatureSpec, FeatureType
from functions.core.manifest import (
    Baseline,
    FallbackAnswer,
    FeatureBaseline,
    FeatureImportance,
    FeatureReport,
    Lineage,
    Manifest,
    Parity,
)

N_FEATURES = 5
TRAIN_ROWS = 20_000


def _manifest(seed: int = 0) -> Manifest:
    """A manifest whose baseline is the frozen deciles of N(0, 1) per numeric feature, plus a category."""
    rng = np.random.default_rng(seed)
    baselines, features = [], []
    for i in range(N_FEATURES):
        train = rng.normal(0, 1, TRAIN_ROWS)
        edges = np.unique(np.quantile(train, np.linspace(0, 1, 11)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, train, side="right"), minlength=edges.size + 1)
        baselines.append(FeatureBaseline(name=f"x{i}", edges=tuple(edges), proportions=tuple(counts / TRAIN_ROWS),
                                         missing_rate=0.0, mean=0.0, std=1.0))  # fmt: skip
        features.append(Feature(name=f"x{i}", precision=6, train_min=float(train.min()),
                                train_max=float(train.max()), impute=0.0))  # fmt: skip
    baselines.append(FeatureBaseline(name="colour", categories=("red", "blue"), proportions=(0.5, 0.5, 0.0),
                                     missing_rate=0.0))  # fmt: skip
    features.append(Feature(name="colour", type=FeatureType.CATEGORY, categories=("red", "blue"), impute="red"))
    prediction = FeatureBaseline(name="prediction", categories=("a", "b"), proportions=(0.5, 0.5, 0.0), missing_rate=0)
    return Manifest(
        version="v1", task="classification", classes=("a", "b"), feature_spec=FeatureSpec(features=tuple(features)),
        metric="accuracy", metrics={"accuracy": 0.9}, fallback=FallbackAnswer(label="a"),
        baseline=Baseline(rows=TRAIN_ROWS, features=tuple(baselines), prediction=prediction),
        parity=Parity(rows=1, max_abs_diff=0.0, tolerance=1e-4),
        lineage=Lineage(data_hash="h", rows=TRAIN_ROWS, seed=0, recipe="test"),
    )  # fmt: skip


def _sample(rng: np.random.Generator, rows: int, shift: float = 0.0) -> tuple[dict[str, Any], list[str]]:
    columns: dict[str, Any] = {f"x{i}": rng.normal(0, 1, rows) for i in range(N_FEATURES)}
    columns["x0"] = rng.normal(shift, 1, rows)
    columns["colour"] = list(rng.choice(["red", "blue"], rows))
    return columns, list(rng.choice(["a", "b"], rows))


MANIFEST = _manifest()


def test_a_mean_shift_in_one_feature_flags_that_feature_alone() -> None:
    columns, predictions = _sample(np.random.default_rng(1), 2000, shift=1.0)
    report = drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions), DriftPolicy())
    assert report.drifted_features == ["x0"]
    assert report.drift_detected and report.verdict == "drift"
    x0 = report.features[0]
    assert x0.psi is not None and x0.psi > 0.25 and set(x0.reasons) >= {"psi", "ks"}


def test_fresh_samples_from_the_training_distribution_rarely_alarm() -> None:
    alarms = 0
    seeds = 200
    for seed in range(seeds):
        columns, predictions = _sample(np.random.default_rng(1000 + seed), 500)
        report = drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions), DriftPolicy())
        alarms += report.drift_detected
    assert alarms / seeds <= 0.01


def test_psi_js_and_ks_agree_with_a_direct_computation() -> None:
    expected = np.array(MANIFEST.baseline.features[1].proportions)
    columns, predictions = _sample(np.random.default_rng(7), 3000, shift=0.5)
    counts = count_columns(MANIFEST, columns, predictions)
    bins = np.array(counts.features[0].bins, dtype=float)
    actual = bins / bins.sum()
    e = (np.array(MANIFEST.baseline.features[0].proportions) + 1e-4) / (1 + 10e-4)
    a = (actual + 1e-4) / (1 + 10e-4)
    direct_psi = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    direct_ks = max(
        abs(sum(actual[: k + 1]) - sum(MANIFEST.baseline.features[0].proportions[: k + 1])) for k in range(10)
    )
    m = (a + e) / 2
    direct_js = math.sqrt(0.5 * sum(e * np.log2(e / m)) + 0.5 * sum(a * np.log2(a / m)))
    report = drift_report(MANIFEST, counts, DriftPolicy())
    assert report.features[0].psi == pytest.approx(direct_psi, rel=1e-12)
    assert report.features[0].ks == pytest.approx(direct_ks, rel=1e-12)
    assert report.features[0].js == pytest.approx(direct_js, rel=1e-12)
    assert psi(expected, expected) == pytest.approx(0.0, abs=1e-15)
    assert js_distance(expected, expected) == pytest.approx(0.0, abs=1e-7)
    assert ks_binned(expected, expected) == 0.0
    assert smooth(np.array([0.0, 1.0])).sum() == pytest.approx(1.0)


def test_hourly_counts_merged_equal_the_daily_counts() -> None:
    rng = np.random.default_rng(3)
    hours = [_sample(rng, int(rng.integers(0, 300)), shift=0.3) for _ in range(24)]
    merged = None
    for columns, predictions in hours:
        counts = count_columns(MANIFEST, columns, predictions)
        merged = counts if merged is None else merged.merged(counts)
    assert merged is not None
    daily_columns = {
        name: np.concatenate([np.asarray(h[0][name], dtype=object) for h in hours]) for name in hours[0][0]
    }
    daily: dict[str, Any] = {n: (c.astype(float) if n != "colour" else list(c)) for n, c in daily_columns.items()}
    daily_counts = count_columns(MANIFEST, daily, [p for h in hours for p in h[1]])
    assert merged == daily_counts
    assert drift_report(MANIFEST, merged, DriftPolicy()) == drift_report(MANIFEST, daily_counts, DriftPolicy())


def test_too_few_rows_is_insufficient_data_not_drift() -> None:
    columns, predictions = _sample(np.random.default_rng(0), 50, shift=5.0)
    report = drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions), DriftPolicy(min_rows=200))
    assert report.verdict == "insufficient_data" and not report.drift_detected
    assert all(f.drift is None for f in report.features)


def test_empty_nan_constant_all_missing_and_unseen_never_crash() -> None:
    empty = drift_report(MANIFEST, count_columns(MANIFEST, {}, []), DriftPolicy())
    assert empty.verdict == "insufficient_data" and empty.rows == 0
    rows = 400
    columns: dict[str, Any] = {
        "x0": np.full(rows, np.nan),  # all missing
        "x1": np.full(rows, 3.0),  # constant
        "x2": np.where(np.arange(rows) % 2 == 0, np.nan, 0.0),  # half NaN
        "x3": np.random.default_rng(0).normal(0, 1, rows),
        "colour": ["green"] * rows,  # unseen category
    }
    report = drift_report(MANIFEST, count_columns(MANIFEST, columns, ["a"] * rows), DriftPolicy())
    by_name = {f.name: f for f in report.features}
    assert by_name["x0"].missing_rate == 1.0 and by_name["x0"].reasons == ["missing_rate"] and by_name["x0"].psi is None
    assert by_name["x1"].drift and by_name["x1"].ks == pytest.approx(
        sum(MANIFEST.baseline.features[1].proportions[:-1])
    )
    assert by_name["x4"].missing_rate == 1.0  # absent column: every row missing
    assert by_name["colour"].unseen_share == 1.0 and "unseen_share" in by_name["colour"].reasons
    assert all(math.isfinite(f.psi) for f in report.features if f.psi is not None)


def test_each_distinct_value_is_read_once_and_told_apart_by_type() -> None:
    texts, codes = readings(["a", 1, True, "1", None, "", "a", 1], category_text)
    assert [texts[i] for i in codes] == ["a", "1", "True", "1", None, None, "a", "1"]
    assert len(texts) == 6  # "a", 1, True, "1", None, "": one reading each
    # Unhashable values, and floats (0.0 == -0.0 although their texts differ), are read one by one.
    for values in (["a", [1], "a"], [0.0, -0.0, float("nan")]):
        texts, codes = readings(values, category_text)
        assert [texts[i] for i in codes] == [category_text(v) for v in values]


def test_categories_count_as_read_one_value_at_a_time() -> None:
    rows = 12
    colour = ["red", "blue", None, "", "green", 7, True, "red", "blue", "red", [1], 0.0]
    counts = count_columns(MANIFEST, {"colour": colour}, ["a", "b", None, "zz"] * 3)
    by_name = {f.name: f for f in counts.features}
    assert by_name["colour"].bins == [3, 2, 5] and by_name["colour"].missing == 2
    assert counts.prediction.bins == [3, 3, 3] and counts.prediction.missing == 3 and counts.rows == rows


def test_numbers_from_lists_read_as_float_does_and_text_or_booleans_are_missing() -> None:
    values = [1.5, 2, None, float("nan"), "3", True, 10**400, -0.0]
    expected = [1.5, 2.0, math.nan, math.nan, math.nan, math.nan, math.nan, -0.0]
    assert np.array_equal(as_float(values), np.array(expected), equal_nan=True)
    assert np.array_equal(as_float([1.5, None, 2]), np.array([1.5, math.nan, 2.0]), equal_nan=True)
    assert as_float([]).shape == (0,)


def test_numbers_fall_in_the_bins_of_training_edges_and_infinities_included() -> None:
    edges = np.asarray(MANIFEST.baseline.features[0].edges)
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.normal(0, 1, 3_000), edges, np.nextafter(edges, -np.inf), [np.inf, -np.inf, np.nan]])
    (x0, *_) = count_columns(MANIFEST, {"x0": values}, ["a"] * values.size).features
    present = values[~np.isnan(values)]
    assert x0.bins == np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1).tolist()
    assert x0.missing == 1 and x0.out_of_range == 2  # the infinities lie outside the training range
    constant = MANIFEST.baseline.features[1].model_copy(update={"edges": (), "proportions": (1.0,)})
    manifest = MANIFEST.model_copy(
        update={"baseline": MANIFEST.baseline.model_copy(update={"features": (MANIFEST.baseline.features[0], constant,
                                                                             *MANIFEST.baseline.features[2:])})}
    )  # fmt: skip
    assert count_columns(manifest, {"x1": values}, ["a"] * values.size).features[1].bins == [present.size]


def test_per_feature_thresholds_override_the_defaults() -> None:
    columns, predictions = _sample(np.random.default_rng(1), 2000, shift=1.0)
    counts = count_columns(MANIFEST, columns, predictions)
    lenient = {"x0": {"psi": 10, "js": 1, "ks": 1, "out_of_range_share": 1}}
    report = drift_report(MANIFEST, counts, DriftPolicy.model_validate({"features": lenient}))
    assert report.drifted_features == []


def test_excluded_features_are_listed_not_computed_and_the_others_still_drift() -> None:
    """The columns carry values of the excluded features too (a CSV would): none is counted or reported."""
    excluded = Manifest.model_validate({**MANIFEST.model_dump(), "capture_exclude": ("x1", "colour")})
    columns, predictions = _sample(np.random.default_rng(1), 2000, shift=1.0)
    columns["x1"] = columns["x1"] + 5.0  # a shift no report may show
    columns["colour"] = ["green"] * 2000
    counts = count_columns(excluded, columns, predictions)
    report = drift_report(excluded, counts, DriftPolicy())

    assert report.excluded_features == ["x1", "colour"]
    assert [f.name for f in report.features] == ["x0", "x2", "x3", "x4"]
    assert report.drifted_features == ["x0"] and report.drift_share == pytest.approx(1 / 4)
    assert all(f.psi is not None and f.js is not None and f.ks is not None for f in report.features)
    x0 = report.features[0]
    assert x0.psi is not None and x0.psi > 0.25 and set(x0.reasons) >= {"psi", "ks"}
    by_name = {c.name: c for c in counts.features}
    assert by_name["x1"].bins == [0] * len(by_name["x1"].bins) and by_name["x1"].missing == 0
    assert sum(by_name["colour"].bins) == 0
    # The figures of the other features are those of a report on the same rows without the exclusion.
    full = {
        f.name: f for f in drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions), DriftPolicy()).features
    }
    assert all(f == full[f.name] for f in report.features)


def _with_detector(manifest: Manifest) -> Manifest:
    from functions.core.manifest import OutlierDetector

    detector = OutlierDetector(method="minimum_covariance_determinant", share=0.01, threshold=5.0,
                               features=("x0",), dimensions=1, training_flagged=0.01, holdout_flagged=0.01)  # fmt: skip
    return manifest.model_copy(update={"outliers": detector})


def test_outlier_scores_are_counted_and_merge() -> None:
    manifest = _with_detector(MANIFEST)
    columns, predictions = _sample(np.random.default_rng(8), 4)
    scores = [0.5, 2.0, None, 1.5]

    counts = count_columns(manifest, columns, predictions, outlier_scores=scores)
    twice = counts.merged(counts)

    assert (counts.outlier_scored, counts.outliers) == (3, 2)
    assert (twice.outlier_scored, twice.outliers) == (6, 4)


def test_a_window_of_outliers_drifts_although_no_feature_does() -> None:
    manifest = _with_detector(MANIFEST)
    policy = DriftPolicy()
    columns, predictions = _sample(np.random.default_rng(9), 2000)
    flagged = int(2000 * policy.outlier_share) + 10
    scores = [3.0] * flagged + [0.4] * (2000 - flagged)

    report = drift_report(manifest, count_columns(manifest, columns, predictions, outlier_scores=scores), policy)
    calm = drift_report(manifest, count_columns(manifest, columns, predictions, outlier_scores=[0.4] * 2000), policy)

    assert report.drifted_features == [] and report.prediction.drift is False
    assert report.outliers is not None and report.outliers.drift is True and report.outliers.flagged == flagged
    assert report.drift_detected and report.verdict == "drift"
    assert calm.outliers is not None and calm.outliers.share == 0 and not calm.drift_detected
    assert report.outliers.summary() == f"{flagged}/2000 rows flagged (5.5%; training 1.0%, drift at 5%): drift"
    assert calm.outliers.summary().endswith(": ok")


def test_outlier_figures_need_a_detector_and_enough_rows() -> None:
    columns, predictions = _sample(np.random.default_rng(10), 50)
    few = _with_detector(MANIFEST)

    without = drift_report(
        MANIFEST, count_columns(MANIFEST, columns, predictions, outlier_scores=[3.0] * 50), DriftPolicy()
    )
    too_few = drift_report(few, count_columns(few, columns, predictions, outlier_scores=[3.0] * 50), DriftPolicy())
    unscored = drift_report(few, count_columns(few, columns, predictions), DriftPolicy())

    assert without.outliers is None
    assert too_few.outliers is not None and too_few.outliers.share == 1.0 and too_few.outliers.drift is None
    assert unscored.outliers is not None and unscored.outliers.share is None and unscored.outliers.drift is None
    assert too_few.outliers.summary().endswith(": n/a (too few rows)")
    assert unscored.outliers.summary() == "no row was scored by the outlier detector"


# Importance from the manifest's feature report


def _with_report(manifest: Manifest, important: dict[str, float]) -> Manifest:
    """`manifest` with a feature report: the named features important with that importance, the others not."""
    names = manifest.feature_spec.names
    report = FeatureReport(
        metric="accuracy", threshold=0.01, repeats=5, rows=100, holdout_metric=0.9,
        features=tuple(
            FeatureImportance(name=name, importance=important.get(name, 0.0), std=0.0, rank=rank,
                              important=name in important)
            for rank, name in enumerate(names, start=1)
        ),
    )  # fmt: skip
    return manifest.model_copy(update={"feature_report": report})


def test_drift_names_each_feature_importance_from_the_manifest_report() -> None:
    manifest = _with_report(MANIFEST, {"x1": 0.2})
    columns, predictions = _sample(np.random.default_rng(3), 2_000, shift=1.0)

    report = drift_report(manifest, count_columns(manifest, columns, predictions), DriftPolicy())

    features = {f.name: f for f in report.features}
    assert features["x0"].drift is True
    assert (features["x0"].importance, features["x0"].important) == (0.0, False)  # drifted, but hardly used
    assert (features["x1"].importance, features["x1"].important) == (0.2, True)
    assert (report.prediction.importance, report.prediction.important) == (None, None)
    assert report.drifted_features == drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions),
                                                   DriftPolicy()).drifted_features  # fmt: skip


def test_without_a_feature_report_importance_is_unknown_and_old_reports_still_read() -> None:
    columns, predictions = _sample(np.random.default_rng(4), 500)

    report = drift_report(MANIFEST, count_columns(MANIFEST, columns, predictions), DriftPolicy())

    assert all(f.importance is None and f.important is None for f in report.features)
    stored = report.model_dump(mode="json")
    for feature in [*stored["features"], stored["prediction"]]:  # a report written before the fields
        del feature["importance"], feature["important"]
    assert DriftReport.model_validate(stored) == report


# Categories and booleans: PSI and Jensen-Shannon beside L-infinity


def _categories(shares: list[float]) -> FeatureBaseline:
    """A category feature's baseline: these training shares, and none unseen."""
    names = tuple(f"c{i}" for i in range(len(shares)))
    return FeatureBaseline(name="kind", categories=names, proportions=(*shares, 0.0), missing_rate=0.0)


def _category_drift(baseline: FeatureBaseline, counts: list[int], policy: DriftPolicy | None = None) -> Any:
    policy = policy or DriftPolicy()
    window = FeatureCounts(name=baseline.name, bins=[*counts, 0])
    return feature_drift(baseline, window, sum(counts), policy.for_feature(baseline.name), policy.min_rows)


@pytest.mark.parametrize(
    ("shares", "category"),
    [([0.5, 0.5], 0), ([0.4, 0.3, 0.15, 0.1, 0.05], 0), ([1 / 12] * 12, 3), ([0.9, 0.1], 1)],
    ids=["boolean", "five skewed", "twelve uniform", "rare boolean"],
)
@pytest.mark.parametrize("seed", range(5))
def test_a_ten_point_shift_of_one_category_share_over_5000_rows_drifts(
    shares: list[float], category: int, seed: int
) -> None:
    counts = np.random.default_rng(seed).multinomial(5000, shifted(np.array(shares), category, 0.1))

    feature = _category_drift(_categories(shares), counts.tolist())

    assert feature.drift and {"psi", "js"} & set(feature.reasons), feature


def test_a_nine_point_shift_the_linf_threshold_misses_is_caught_by_psi_and_js() -> None:
    """The shape of the public benchmark's missed feature: L-infinity 0.09, under its 0.1 threshold."""
    feature = _category_drift(_categories([0.5, 0.5]), [2950, 2050])

    assert feature.linf == pytest.approx(0.09)
    assert feature.reasons == ["psi", "js"]


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(0.002, 1.0), min_size=2, max_size=20),
    rows=st.sampled_from([200, 500, 1000, 5000]),
    seed=st.integers(0, 2**32 - 1),
)
def test_windows_drawn_from_the_training_shares_do_not_drift(weights: list[float], rows: int, seed: int) -> None:
    """Domains of 2 to 20 categories, some as rare as 0.01 %, windows from min_rows to 5,000 rows."""
    shares = np.array(weights) / sum(weights)
    draws = np.random.default_rng(seed).multinomial(rows, shares, size=20)
    baseline = _categories(shares.tolist())

    for counts in draws:
        feature = _category_drift(baseline, counts.tolist())
        assert not {"psi", "js"} & set(feature.reasons), (counts, feature)


def test_category_psi_and_js_match_a_hand_computation() -> None:
    """Counts 3 and 1 read as shares 0.7 and 0.3 (half a value added to each) against 0.5 and 0.5."""
    psi_value, js_value = category_statistics(np.array([0.5, 0.5]), np.array([3.0, 1.0]))

    # PSI = 0.2 ln(0.7/0.5) - 0.2 ln(0.3/0.5); JS = sqrt of the mean KL (base 2) of each to (0.6, 0.4).
    assert psi_value == pytest.approx(0.16946, rel=1e-3)
    assert js_value == pytest.approx(0.17408, rel=1e-3)
    assert category_statistics(np.array([0.2, 0.8]), np.array([2e6, 8e6])) == pytest.approx((0.0, 0.0), abs=1e-6)


def test_unseen_values_are_left_to_unseen_share_and_an_all_unseen_window_has_no_psi() -> None:
    baseline = _categories([0.5, 0.5])
    some = feature_drift(baseline, FeatureCounts(name="kind", bins=[1950, 1950, 100]), 4000, DriftThresholds(), 200)
    every = feature_drift(baseline, FeatureCounts(name="kind", bins=[0, 0, 4000]), 4000, DriftThresholds(), 200)

    assert some.psi == pytest.approx(0.0, abs=1e-6) and some.reasons == []  # 2.5 % unseen, under unseen_share
    assert every.psi is None and every.js is None and every.reasons == ["linf", "unseen_share"]


def test_the_threshold_rises_above_the_sampling_noise_of_small_windows() -> None:
    thresholds = DriftThresholds()
    small_psi, small_js = category_noise(200, 20)
    large_psi, large_js = category_noise(5000, 20)

    assert small_psi > 10 * thresholds.category_psi and small_js > 3 * thresholds.category_js
    assert large_psi < thresholds.category_psi and large_js < thresholds.category_js
    assert category_noise(0, 5) == (math.inf, 1.0)
    # 12 categories over 300 rows: a PSI of 0.05 is sampling noise there, not drift.
    counts = np.random.default_rng(2).multinomial(300, shifted(np.full(12, 1 / 12), 0, 0.05))
    feature = _category_drift(_categories([1 / 12] * 12), counts.tolist())
    assert feature.psi is not None and feature.psi > thresholds.category_psi and "psi" not in feature.reasons


def test_category_thresholds_validate_and_override_per_feature() -> None:
    for bad in ({"category_psi": 0}, {"category_js": 1.5}, {"category_js": -0.1}, {"category_psy": 0.1}):
        with pytest.raises(ValidationError):
            DriftThresholds.model_validate(bad)
    lenient = DriftPolicy.model_validate({"features": {"kind": {"category_psi": 1, "category_js": 1, "linf": 1}}})

    feature = _category_drift(_categories([0.5, 0.5]), [3500, 1500], lenient)

    assert feature.psi is not None and feature.psi > 0.1 and feature.drift is False
    assert _category_drift(_categories([0.5, 0.5]), [3500, 1500]).drift is True
