"""Deriving the feature spec, the drift baseline and the fallback from training data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from functions.core.data_source import DataSource
from functions.core.features import FeatureType, encode_columns
from functions.lake.ingest import add_labelled, ingest, load_snapshot
from functions.lake.tables import part_bytes
from functions.training.derive import (
    BASELINE_BINS,
    VALID_RANGE_SPANS,
    derive_baseline,
    derive_fallback,
    derive_feature_spec,
)
from functions.training.train import Bundle
from tests.functions.lake.memory import MemoryBucket, MemorySource


def test_precision_is_the_fewest_decimals_that_keep_every_value() -> None:
    spec = derive_feature_spec(
        {
            "three": np.array([1.5, 2.25, 3.125, 4.0]),
            "zero": np.array([1.0, 2.0, 30.0]),
            "one": np.array([0.1, 0.2, 0.7]),
            "max": np.array([np.pi, np.e]),
        }
    )

    assert [f.precision for f in spec.features] == [3, 0, 1, 6]
    assert all(f.type is FeatureType.NUMBER for f in spec.features)


def test_integer_arrays_become_integer_features() -> None:
    (feature,) = derive_feature_spec({"count": np.array([1, 2, 3, 4, 10])}).features

    assert feature.type is FeatureType.INTEGER
    assert feature.precision is None and feature.decimals == 0
    assert (feature.train_min, feature.train_max, feature.impute) == (1.0, 10.0, 3.0)


def test_integer_median_is_rounded_to_a_whole_number() -> None:
    (feature,) = derive_feature_spec({"count": np.array([1, 2, 4, 9])}).features

    assert feature.impute == 3.0  # median 3.0
    (feature,) = derive_feature_spec({"count": np.array([1, 2, 5, 9])}).features
    assert float(feature.impute).is_integer()


def test_non_negative_training_data_keeps_a_non_negative_valid_range() -> None:
    (feature,) = derive_feature_spec({"x": np.array([2.0, 4.0, 6.0])}).features

    assert feature.valid_min == 0.0
    assert feature.valid_max == 6.0 + VALID_RANGE_SPANS * 6.0  # span = max(high - low, |high|, 1)
    assert (feature.train_min, feature.train_max) == (2.0, 6.0)
    assert feature.impute == 4.0


def test_negative_training_data_reaches_spans_below() -> None:
    (feature,) = derive_feature_spec({"x": np.array([-2.0, 0.0, 1.0])}).features

    assert feature.valid_min == -2.0 - VALID_RANGE_SPANS * 3.0
    assert feature.valid_max == 1.0 + VALID_RANGE_SPANS * 3.0


def test_missing_values_are_ignored_when_deriving() -> None:
    (feature,) = derive_feature_spec({"x": np.array([1.0, np.nan, 3.0, np.nan, 2.0])}).features

    assert (feature.train_min, feature.train_max, feature.impute) == (1.0, 3.0, 2.0)


def test_a_feature_with_no_values_is_refused() -> None:
    with pytest.raises(ValueError, match="feature 'x' has no values in the training data"):
        derive_feature_spec({"x": np.array([np.nan, np.nan])})


def test_strings_become_categories_with_the_mode_as_imputation() -> None:
    (feature,) = derive_feature_spec({"colour": np.array(["red", "blue", "red", None], dtype=object)}).features

    assert feature.type is FeatureType.CATEGORY
    assert feature.categories == ("blue", "red")
    assert feature.impute == "red"


def test_booleans_become_boolean_features_with_the_mode() -> None:
    (feature,) = derive_feature_spec({"flag": np.array([True, True, False])}).features

    assert (feature.type, feature.impute) == (FeatureType.BOOLEAN, True)


def test_overrides_are_applied_over_the_derived_values() -> None:
    spec = derive_feature_spec(
        {"x": np.array([1.0, 2.5]), "y": np.array([3.0, 4.0])},
        {"x": {"required": True, "valid_max": 10.0, "precision": 3}},
    )
    x, y = spec.features

    assert (x.required, x.valid_max, x.precision, x.train_max) == (True, 10.0, 3, 2.5)
    assert (y.required, y.precision) == (False, 0)
    assert spec.names == ["x", "y"]


def test_type_override_changes_the_derivation() -> None:
    (feature,) = derive_feature_spec({"x": np.array([1.0, 2.0, 3.5])}, {"x": {"type": "integer"}}).features

    assert feature.type is FeatureType.INTEGER
    assert feature.precision is None


def test_overrides_naming_unknown_columns_are_refused() -> None:
    with pytest.raises(ValueError, match=r"FEATURES overrides name columns the data does not have: \['nope', 'z'\]"):
        derive_feature_spec({"x": np.array([1.0])}, {"z": {"required": True}, "nope": {}, "x": {}})


def test_integer_column_declared_category_encodes_its_training_values_as_serving_does() -> None:
    # The recipe may override `type` (model/recipe.py); training must then encode each value to the
    # same code serving gives the client's string, not -1 ("unseen") for every training row.
    columns = {"grade": np.array([1, 2, 3, 1])}
    spec = derive_feature_spec(columns, {"grade": {"type": "category"}})
    (feature,) = spec.features
    assert feature.categories == ("1", "2", "3")

    trained = encode_columns(spec, columns)
    served = spec.compile().encode([{"grade": "1"}, {"grade": "2"}, {"grade": "3"}, {"grade": "1"}])

    assert trained[:, 0].tolist() == served.matrix[:, 0].tolist() == [0.0, 1.0, 2.0, 0.0]


def test_baseline_bins_are_frozen_quantiles_with_training_proportions(bundle: Bundle) -> None:
    baseline = bundle.manifest.baseline

    assert baseline.rows == 569
    assert [b.name for b in baseline.features] == bundle.manifest.feature_spec.names
    for feature in baseline.features:
        edges = np.array(feature.edges)
        assert 1 <= edges.size <= BASELINE_BINS - 1
        assert np.all(np.diff(edges) > 0), feature.name
        assert len(feature.proportions) == edges.size + 1
        assert sum(feature.proportions) == pytest.approx(1.0)
        assert all(p >= 0 for p in feature.proportions)
        assert feature.missing_rate == 0.0
        assert feature.mean is not None and feature.std is not None and feature.std > 0


def test_prediction_baseline_holds_the_training_class_shares(bundle: Bundle) -> None:
    prediction = bundle.manifest.baseline.prediction

    assert prediction.name == "prediction"
    assert prediction.categories == bundle.manifest.classes
    assert len(prediction.proportions) == len(prediction.categories) + 1
    assert sum(prediction.proportions) == pytest.approx(1.0)
    assert prediction.proportions[-1] == 0.0


def test_baseline_of_repeated_values_deduplicates_edges() -> None:
    columns = {"x": np.array([0.0] * 90 + [1.0] * 10), "c": np.array(["a"] * 70 + ["b"] * 30)}
    spec = derive_feature_spec(columns)
    encoded = encode_columns(spec, columns)

    baseline = derive_baseline(spec, columns, encoded, np.arange(100, dtype=np.float64), "regression")

    x, c = baseline.features
    assert x.edges == pytest.approx((0.0, 0.1))  # nine quantiles, eight of them 0.0, deduplicated
    assert x.proportions == pytest.approx((0.0, 0.9, 0.1))
    assert c.categories == ("a", "b")
    assert c.proportions == pytest.approx((0.7, 0.3, 0.0))
    assert baseline.prediction.edges and np.all(np.diff(baseline.prediction.edges) > 0)


def test_missing_rate_counts_missing_training_values() -> None:
    columns = {"x": np.array([1.0, np.nan, 2.0, np.nan])}
    spec = derive_feature_spec(columns)

    baseline = derive_baseline(spec, columns, encode_columns(spec, columns), np.zeros(4), "regression")

    assert baseline.features[0].missing_rate == 0.5


def test_classification_fallback_is_the_training_prior() -> None:
    answer = derive_fallback("classification", np.array(["a", "b", "b", "b"]), ("a", "b"))

    assert answer.label == "b"
    assert answer.probabilities == {"a": 0.25, "b": 0.75}
    assert answer.value is None


def test_regression_fallback_is_the_median() -> None:
    answer = derive_fallback("regression", np.array([1.0, 2.0, 10.0]), None)

    assert (answer.value, answer.label, answer.probabilities) == (2.0, None, None)


@pytest.mark.parametrize(
    ("values", "kind"),
    [([1.5, None, 2.25], FeatureType.NUMBER), ([3, None, 4], FeatureType.INTEGER), ([3, None, 4.5], FeatureType.NUMBER),
     ([True, None, False], FeatureType.BOOLEAN), (["a", None, "b"], FeatureType.CATEGORY),
     ([1.5, "a", None], FeatureType.CATEGORY)],
    ids=["number", "integer", "mixed numbers", "boolean", "category", "numbers and text"],
)  # fmt: skip
def test_a_column_with_missing_values_keeps_the_type_of_its_values(values: list[object], kind: FeatureType) -> None:
    """Columns holding None are object arrays (a data set's nulls, labelled rows missing a feature)."""
    (feature,) = derive_feature_spec({"x": np.asarray(values, dtype=object)}).features

    assert feature.type is kind


def test_labelled_rows_missing_an_excluded_feature_keep_its_type_for_retraining() -> None:
    """Feedback joins captured rows, which lack the features excluded from capture: those stay missing."""
    bucket = MemoryBucket()
    base = pa.table(
        {"age": list(range(30, 50)), "income": [1000.5 + i for i in range(20)], "y": [i % 2 for i in range(20)]}
    )
    bucket.put("data/sources/base.parquet", part_bytes(base))
    source = DataSource(kind="s3", uris=("s3://artifacts/data/sources/",), target="y")
    report = ingest(source, MemorySource(bucket), bucket, artifacts_bucket="artifacts", now=datetime.now(UTC))
    labelled = [({"age": 40}, 1) for _ in range(5)]
    snapshot = add_labelled(bucket, report.ledger, labelled, key="retrain/runs/r/labelled.parquet", target="y",
                            key_column=None)  # fmt: skip

    table = load_snapshot(bucket, snapshot)
    spec = derive_feature_spec(table.columns)

    assert [(f.name, f.type) for f in spec.features] == [("age", FeatureType.INTEGER), ("income", FeatureType.NUMBER)]
    assert spec.features[1].impute == 1010.0  # the median of the values present
    assert encode_columns(spec, table.columns)[-1].tolist() == [40.0, 1010.0]
