"""The feature spec: validation, canonicalisation, imputation and encoding of request rows."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from functions.core.errors import InvalidRequest
from functions.core.features import (
    MAX_REPORTED_ERRORS,
    MAX_ROW_KEY_LENGTH,
    CompiledSpec,
    EncodedBatch,
    Feature,
    FeatureSpec,
    FeatureType,
    NonFiniteLiteral,
    encode_columns,
    split_row_keys,
)


def numeric_spec() -> FeatureSpec:
    """Three numeric features: a required number, an optional integer, an optional number."""
    return FeatureSpec(
        features=(
            Feature(
                name="a", precision=2, valid_min=0, valid_max=100, train_min=1, train_max=50, impute=10.0,
                required=True,
            ),
            Feature(
                name="n", type=FeatureType.INTEGER, valid_min=-10, valid_max=1000, train_min=0, train_max=20,
                impute=5,
            ),
            Feature(name="b", precision=1, train_min=-1, train_max=1, impute=0.5),
        )
    )  # fmt: skip


def mixed_spec() -> FeatureSpec:
    """The numeric features plus a category and a boolean (never the vectorised path)."""
    return FeatureSpec(
        features=(
            *numeric_spec().features,
            Feature(name="colour", type=FeatureType.CATEGORY, categories=("red", "green", "blue"), impute="green"),
            Feature(name="flag", type=FeatureType.BOOLEAN, impute=False),
        )
    )


def errors_of(spec: FeatureSpec, rows: list[Any]) -> list[tuple[tuple[Any, ...], str, str]]:
    with pytest.raises(InvalidRequest) as caught:
        spec.compile().encode(rows)
    return [(e.loc, e.type, e.msg) for e in caught.value.errors]


def assert_same_batch(left: EncodedBatch, right: EncodedBatch) -> None:
    assert left.matrix.dtype == right.matrix.dtype == np.float32
    assert left.matrix.tobytes() == right.matrix.tobytes()
    assert left.imputed == right.imputed
    assert left.out_of_range == right.out_of_range


# Canonicalisation


def test_values_that_differ_below_the_precision_encode_to_identical_bytes() -> None:
    compiled = numeric_spec().compile()

    matrices = [compiled.encode([{"a": value, "n": 3, "b": 0.2}]).matrix.tobytes() for value in (2, 2.0001, 1.9999999)]

    assert matrices[0] == matrices[1] == matrices[2]
    assert compiled.encode([{"a": 2.0}]).matrix[0, 0] == np.float32(2.0)


def test_integer_features_are_rounded_to_whole_numbers() -> None:
    compiled = numeric_spec().compile()

    batch = compiled.encode([{"a": 1.0, "n": 2.6}, {"a": 1.0, "n": 7.2}, {"a": 1.0, "n": 4}])

    assert batch.matrix[:, 1].tolist() == [3.0, 7.0, 4.0]


def test_encoded_matrix_is_float32_in_feature_order() -> None:
    batch = numeric_spec().compile().encode([{"b": -0.24, "n": 3, "a": 12.346}])

    assert batch.matrix.dtype == np.float32
    assert batch.matrix.shape == (1, 3)
    np.testing.assert_array_equal(batch.matrix, np.array([[12.35, 3.0, -0.2]], dtype=np.float32))


# The vectorised and per-column paths agree


VALID_ROWS: list[dict[str, Any]] = [
    {"a": 2, "n": 3, "b": 0.25},
    {"a": 2.0001, "n": 3.4, "b": -0.96},
    {"a": 1.9999999},  # optional features missing: imputed
    {"a": 0.5, "n": 999, "b": 7.77},  # outside the training range, inside the valid range
    {"a": 99.999, "n": None, "b": None},  # explicit nulls: imputed
    {"a": 100, "n": -10, "b": -1234.56},
    {"a": 0, "n": 20, "b": 1},
]


def test_vectorised_and_per_column_paths_agree_on_valid_rows() -> None:
    compiled = numeric_spec().compile()

    vectorised = compiled._encode_numeric(VALID_ROWS)
    by_column = compiled._encode_by_column(VALID_ROWS, "instances")

    assert vectorised is not None
    assert_same_batch(vectorised, by_column)
    assert_same_batch(compiled.encode(VALID_ROWS), by_column)
    assert vectorised.imputed[2] == ["n", "b"]
    assert vectorised.out_of_range[3] == ["a", "n", "b"]


def test_vectorised_and_per_column_paths_agree_on_many_random_rows() -> None:
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for _ in range(300):
        row: dict[str, Any] = {"a": float(rng.uniform(0, 100)) if rng.random() < 0.7 else int(rng.integers(0, 101))}
        if rng.random() < 0.8:
            row["n"] = float(rng.uniform(-10, 1000)) if rng.random() < 0.5 else int(rng.integers(-10, 1001))
        if rng.random() < 0.8:
            row["b"] = float(np.round(rng.normal(0, 3), int(rng.integers(0, 8))))
        rows.append(row)
    compiled = numeric_spec().compile()

    vectorised = compiled._encode_numeric(rows)

    assert vectorised is not None
    assert_same_batch(vectorised, compiled._encode_by_column(rows, "instances"))


@pytest.mark.parametrize("spec", [numeric_spec(), mixed_spec()], ids=["numeric", "mixed"])
def test_one_row_alone_encodes_exactly_as_inside_a_batch(spec: FeatureSpec) -> None:
    compiled = spec.compile()
    rows = [dict(row) for row in VALID_ROWS]
    if len(spec.features) > 3:
        for index, row in enumerate(rows):
            row["colour"] = ["red", "blue", "mauve", None][index % 4]
            if index % 3:
                row["flag"] = index % 2 == 0

    batch = compiled.encode(rows)

    for index, row in enumerate(rows):
        alone = compiled.encode([row])
        assert alone.matrix.tobytes() == batch.matrix[index : index + 1].tobytes()
        assert alone.imputed == [batch.imputed[index]]
        assert alone.out_of_range == [batch.out_of_range[index]]


# Missing values


def test_missing_required_feature_is_refused_with_its_location() -> None:
    errors = errors_of(numeric_spec(), [{"a": 1.0}, {"n": 3, "b": 0.1}])

    assert errors == [(("instances", 1, "a"), "missing", "'a' is required")]


def test_required_feature_given_as_null_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"instances\.0\.a: 'a' is required"):
        numeric_spec().compile().encode([{"a": None}])


def test_missing_optional_features_take_their_training_value_and_are_flagged() -> None:
    batch = numeric_spec().compile().encode([{"a": 3.0}, {"a": 3.0, "n": None, "b": 0.3}])

    np.testing.assert_array_equal(batch.matrix, np.array([[3.0, 5.0, 0.5], [3.0, 5.0, 0.3]], dtype=np.float32))
    assert batch.imputed == [["n", "b"], ["n"]]
    assert batch.imputation_count == 3


# Refusals


def test_unknown_feature_is_refused_naming_the_expected_ones() -> None:
    with pytest.raises(InvalidRequest, match=r"unknown feature 'z'; expected some of: a, n, b") as caught:
        numeric_spec().compile().encode([{"a": 1.0}, {"a": 1.0, "z": 2}])

    assert [(e.loc, e.type) for e in caught.value.errors] == [(("instances", 1, "z"), "unknown_feature")]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("a", "1.5", r"'a' must be a number, got string"),
        ("a", True, r"'a' must be a number, got boolean"),
        ("a", [1.0], r"'a' must be a number, got array"),
        ("n", {"v": 1}, r"'n' must be a number, got object"),
        ("colour", 3, r"'colour' must be a string category"),
        ("colour", True, r"'colour' must be a string category"),
        ("flag", "true", r"'flag' must be true or false"),
        ("flag", 1, r"'flag' must be true or false"),
    ],
)
def test_wrong_types_are_refused(name: str, value: Any, message: str) -> None:
    for spec in (numeric_spec(), mixed_spec()):
        if name not in spec.names:
            continue
        errors = errors_of(spec, [{"a": 1.0, name: value} if name != "a" else {"a": value}])
        assert len(errors) == 1
        loc, kind, msg = errors[0]
        assert (loc, kind) == (("instances", 0, name), "type")
        assert re.search(message, msg)


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("-inf"), NonFiniteLiteral("NaN"), NonFiniteLiteral("Infinity"), NonFiniteLiteral("-Infinity")],
)
@pytest.mark.parametrize("spec", [numeric_spec(), mixed_spec()], ids=["numeric", "mixed"])
def test_non_finite_numbers_are_refused_not_imputed(spec: FeatureSpec, value: float) -> None:
    errors = errors_of(spec, [{"a": 1.0}, {"a": 1.0, "b": value}])

    assert [(loc, kind) for loc, kind, _ in errors] == [(("instances", 1, "b"), "finite")]
    assert "must be a finite number" in errors[0][2]


def test_non_finite_literal_in_a_category_is_refused_as_non_finite() -> None:
    errors = errors_of(mixed_spec(), [{"a": 1.0, "colour": NonFiniteLiteral("NaN")}])

    assert [(loc, kind) for loc, kind, _ in errors] == [(("instances", 0, "colour"), "finite")]


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**301])
def test_huge_integer_is_refused_as_non_finite_not_an_overflow(value: int) -> None:
    with pytest.raises(InvalidRequest, match=r"'n' is too large to be a number") as caught:
        numeric_spec().compile().encode([{"a": 1.0, "n": value}])

    assert [(e.loc, e.type) for e in caught.value.errors] == [(("instances", 0, "n"), "finite")]


@pytest.mark.parametrize(("value", "where"), [(-0.01, "below"), (100.01, "above"), (-5, "below"), (250, "above")])
def test_values_outside_the_valid_range_are_refused_naming_the_bounds(value: float, where: str) -> None:
    with pytest.raises(InvalidRequest, match=r"'a' must be between 0\.0 and 100\.0, got ") as caught:
        numeric_spec().compile().encode([{"a": 50.0}, {"a": value}])

    assert [(e.loc, e.type) for e in caught.value.errors] == [(("instances", 1, "a"), "range")]
    assert caught.value.status == 422


def test_valid_range_applies_after_rounding_to_the_precision() -> None:
    compiled = numeric_spec().compile()

    batch = compiled.encode([{"a": 100.004}, {"a": -0.004}])

    assert batch.matrix[:, 0].tolist() == [100.0, 0.0]
    with pytest.raises(InvalidRequest, match="must be between"):
        compiled.encode([{"a": 100.005001}])


def test_every_error_in_a_batch_is_reported_with_its_location() -> None:
    rows: list[Any] = [
        {"n": 1},  # a missing
        {"a": 1.0, "colour": 3},  # wrong type
        {"a": 1.0, "b": float("inf")},  # non-finite
        {"a": 1.0, "n": 1001},  # out of the valid range
        {"a": 1.0, "flag": "yes"},  # wrong type
        {"a": 1.0},  # fine
    ]

    errors = errors_of(mixed_spec(), rows)

    assert sorted((loc, kind) for loc, kind, _ in errors) == [
        (("instances", 0, "a"), "missing"),
        (("instances", 1, "colour"), "type"),
        (("instances", 2, "b"), "finite"),
        (("instances", 3, "n"), "range"),
        (("instances", 4, "flag"), "type"),
    ]


def test_a_range_error_is_reported_even_when_another_row_breaks_the_same_feature() -> None:
    # encode() promises to name every broken field; a type error in row 0 must not hide row 1's range error.
    errors = errors_of(numeric_spec(), [{"a": "x"}, {"a": 101.0}])

    assert sorted((loc, kind) for loc, kind, _ in errors) == [
        (("instances", 0, "a"), "type"),
        (("instances", 1, "a"), "range"),
    ]


def test_reported_errors_are_capped_and_the_message_counts_the_rest() -> None:
    rows = [{"n": 1} for _ in range(MAX_REPORTED_ERRORS + 5)]

    with pytest.raises(InvalidRequest, match=r"\(and 5 more\)$") as caught:
        numeric_spec().compile().encode(rows)

    assert [e.loc for e in caught.value.errors] == [("instances", i, "a") for i in range(MAX_REPORTED_ERRORS)]
    assert str(caught.value).startswith("invalid instances: instances.0.a: 'a' is required; instances.1.a:")


def test_a_row_that_is_not_an_object_is_refused() -> None:
    errors = errors_of(numeric_spec(), [{"a": 1.0}, [1.0, 2.0], "a=1"])

    assert errors == [
        (("instances", 1), "type", "each instance must be a JSON object"),
        (("instances", 2), "type", "each instance must be a JSON object"),
    ]


# Out of the training range


def test_values_outside_the_training_range_are_served_and_flagged() -> None:
    batch = numeric_spec().compile().encode([{"a": 0.5, "n": 21, "b": 0.0}, {"a": 50.0, "n": 0, "b": 1.0}])

    assert batch.out_of_range == [["a", "n"], []]
    assert batch.out_of_range_count == 2
    assert batch.matrix[0].tolist() == [0.5, 21.0, 0.0]


@pytest.mark.parametrize("encoder", ["_encode_numeric", "by_column"])
def test_imputed_values_are_never_flagged_out_of_range(encoder: str) -> None:
    # An imputation value outside its training range (possible through an override) is still not "out of range".
    spec = FeatureSpec(features=(Feature(name="x", precision=1, train_min=1, train_max=2, impute=9.0),))
    compiled = spec.compile()
    rows: list[dict[str, Any]] = [{}, {"x": None}, {"x": 9.0}]

    batch = compiled._encode_numeric(rows) if encoder == "_encode_numeric" else compiled._encode_by_column(rows, "i")

    assert batch is not None
    assert batch.matrix[:, 0].tolist() == [9.0, 9.0, 9.0]
    assert batch.imputed == [["x"], ["x"], []]
    assert batch.out_of_range == [[], [], ["x"]]


# Categories and booleans


def test_known_category_encodes_to_its_index() -> None:
    batch = mixed_spec().compile().encode([{"a": 1.0, "colour": c} for c in ("red", "green", "blue")])

    assert batch.matrix[:, 3].tolist() == [0.0, 1.0, 2.0]
    assert batch.out_of_range == [[], [], []]


def test_unseen_category_encodes_to_minus_one_and_is_flagged() -> None:
    batch = mixed_spec().compile().encode([{"a": 1.0, "colour": "mauve"}, {"a": 1.0, "colour": "Red"}])

    assert batch.matrix[:, 3].tolist() == [-1.0, -1.0]
    assert batch.out_of_range == [["colour"], ["colour"]]


def test_missing_category_takes_the_training_mode() -> None:
    batch = mixed_spec().compile().encode([{"a": 1.0}, {"a": 1.0, "colour": None}])

    assert batch.matrix[:, 3].tolist() == [1.0, 1.0]  # "green"
    assert all("colour" in names for names in batch.imputed)
    assert batch.out_of_range == [[], []]


def test_booleans_encode_to_one_and_zero_and_missing_takes_the_mode() -> None:
    batch = mixed_spec().compile().encode([{"a": 1.0, "flag": True}, {"a": 1.0, "flag": False}, {"a": 1.0}])

    assert batch.matrix[:, 4].tolist() == [1.0, 0.0, 0.0]
    assert "flag" not in batch.imputed[0] and "flag" not in batch.imputed[1]
    assert "flag" in batch.imputed[2]


def test_mixed_spec_gives_the_same_numbers_as_the_numeric_spec() -> None:
    numeric = numeric_spec().compile().encode(VALID_ROWS)
    mixed = mixed_spec().compile().encode(VALID_ROWS)

    assert mixed.matrix[:, :3].tobytes() == numeric.matrix.tobytes()
    assert [[n for n in names if n in {"a", "n", "b"}] for names in mixed.out_of_range] == numeric.out_of_range


# encode_columns: the training-side encoder


def test_encode_columns_matches_the_serving_encoder() -> None:
    spec = mixed_spec()
    rows: list[dict[str, Any]] = [
        {"a": 2.0001, "n": 3.4, "b": 0.25, "colour": "blue", "flag": True},
        {"a": 99.999, "n": 999, "b": -7.77, "colour": "red", "flag": False},
        {"a": 0.004, "n": -10, "b": 1.05, "colour": "green", "flag": True},
    ]
    columns = {name: [row[name] for row in rows] for name in spec.names}

    encoded = encode_columns(spec, columns)

    assert encoded.astype(np.float32).tobytes() == spec.compile().encode(rows).matrix.tobytes()


def test_encode_columns_imputes_nan_and_none() -> None:
    spec = mixed_spec()
    columns = {
        "a": np.array([1.0, np.nan]),
        "n": np.array([np.nan, 4.0]),
        "b": [None, 0.3],
        "colour": ["red", None],
        "flag": [None, True],
    }

    encoded = encode_columns(spec, columns)

    np.testing.assert_array_equal(encoded, np.array([[1.0, 5.0, 0.5, 0.0, 0.0], [10.0, 4.0, 0.3, 1.0, 1.0]]))
    served = spec.compile().encode([{"a": 1.0, "colour": "red"}, {"a": 10.0, "n": 4, "b": 0.3, "flag": True}])
    assert encoded.astype(np.float32).tobytes() == served.matrix.tobytes()


def test_encode_columns_refuses_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"columns missing from the data: \['n', 'b'\]"):
        encode_columns(numeric_spec(), {"a": [1.0]})


# Feature and FeatureSpec validation


def test_category_feature_needs_its_categories() -> None:
    with pytest.raises(ValidationError, match="category feature 'c' needs its training categories"):
        Feature(name="c", type=FeatureType.CATEGORY, impute="x")


def test_category_impute_must_be_one_of_its_categories() -> None:
    with pytest.raises(ValidationError, match="impute value of 'c' must be one of its categories"):
        Feature(name="c", type=FeatureType.CATEGORY, categories=("x", "y"), impute="z")


def test_number_feature_needs_a_precision() -> None:
    with pytest.raises(ValidationError, match="number feature 'x' needs a precision"):
        Feature(name="x", impute=1.0)
    assert Feature(name="i", type=FeatureType.INTEGER, impute=1).decimals == 0


@pytest.mark.parametrize(("low", "high"), [("valid_min", "valid_max"), ("train_min", "train_max")])
def test_range_minimum_above_maximum_is_refused(low: str, high: str) -> None:
    with pytest.raises(ValidationError, match=r"feature 'x': range minimum 5\.0 exceeds maximum 1\.0"):
        Feature.model_validate({"name": "x", "precision": 1, "impute": 1.0, low: 5, high: 1})


def test_feature_spec_refuses_duplicate_names() -> None:
    feature = Feature(name="x", precision=1, impute=0.0)

    with pytest.raises(ValidationError, match="feature names must be unique"):
        FeatureSpec(features=(feature, feature))


def test_compiled_spec_of_a_single_feature_encodes_rows() -> None:
    spec = FeatureSpec(features=(Feature(name="only", precision=0, impute=0.0),))

    batch = CompiledSpec(spec).encode([{"only": 2.4}, {}])

    assert batch.matrix.tolist() == [[2.0], [0.0]]
    assert batch.imputed == [[], ["only"]]


@pytest.mark.parametrize("decimals", range(7))
def test_canonical_is_bit_for_bit_numpy_round(decimals: int) -> None:
    from functions.core.features import canonical

    rng = np.random.default_rng(decimals)
    values = np.concatenate([rng.normal(0, 1e3, 50_000), np.arange(-5000, 5000) * 0.0005 + 1e-9])
    assert np.array_equal(canonical(values, 10.0**decimals), np.round(values, decimals))


def test_canonical_rounds_each_column_to_its_own_precision() -> None:
    from functions.core.features import canonical

    matrix = np.array([[1.23456, 1.23456, 1.23456]])
    assert canonical(matrix, np.array([1.0, 100.0, 10_000.0])).tolist() == [[1.0, 1.23, 1.2346]]


def test_split_row_keys_takes_the_key_out_of_each_row_that_has_one() -> None:
    rows = [{"x": 1.0, "id": "a"}, {"x": 2.0}, {"x": 3.0, "id": 12}, {"x": 4.0, "id": None}]
    stripped, keys = split_row_keys(rows, "id")
    assert stripped == [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}, {"x": 4.0}]
    assert keys == ["a", None, "12", None]
    assert split_row_keys(rows[1:2], "id") == (rows[1:2], None)  # no row has one: the rows as they are
    assert split_row_keys(rows, None) == (rows, None)


def test_a_row_key_that_is_not_an_id_names_every_row_it_breaks() -> None:
    rows = [{"id": 1.5}, {"id": "ok"}, {"id": ["a"]}, {"id": "x" * (MAX_ROW_KEY_LENGTH + 1)}]
    with pytest.raises(InvalidRequest) as raised:
        split_row_keys(rows, "id")
    assert [e.loc for e in raised.value.errors] == [
        ("instances", 0, "id"),
        ("instances", 2, "id"),
        ("instances", 3, "id"),
    ]
    assert "'id' is the row key: a string or an integer" in raised.value.message
