"""ONNX export and the scikit-learn parity check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from functions.core.errors import BundleError
from functions.core.features import FeatureSpec, category_texts, encode_columns
from functions.core.predictor import GraphInputs
from functions.training.derive import derive_feature_spec
from functions.training.export import Holdout, check_parity, export_onnx
from functions.training.frame import model_frame


@dataclass(frozen=True)
class Table:
    spec: FeatureSpec
    holdout: Holdout


def table(columns: dict[str, np.ndarray]) -> Table:
    spec = derive_feature_spec(columns)
    encoded, texts = encode_columns(spec, columns), category_texts(spec, columns)
    return Table(spec, Holdout(model_frame(spec, encoded, texts), encoded, texts))


def numbers(x: np.ndarray) -> Table:
    return table({f"f{i}": np.round(x[:, i], 4) for i in range(x.shape[1])})


@pytest.fixture(scope="module")
def classifier() -> tuple[Pipeline, Table]:
    x, y = make_classification(n_samples=120, n_features=4, random_state=1)
    data = numbers(x)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(
        data.holdout.frame, y.astype(str)
    )
    return pipeline, data


def test_all_numeric_data_gives_a_graph_taking_one_float64_matrix(classifier: tuple[Pipeline, Table]) -> None:
    pipeline, data = classifier

    onnx_bytes = export_onnx(pipeline, data.spec, "classification")

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [("input", "tensor(double)", 4)]
    labels, probabilities = session.run(None, GraphInputs.of(session).feed(data.holdout.canonical[:5], {}))
    assert np.asarray(probabilities).shape == (5, 2)  # no zipmap: a plain matrix
    assert list(labels) == list(pipeline.predict(data.holdout.frame.iloc[:5]))  # type: ignore[attr-defined]


def test_a_pipeline_selecting_numbers_by_name_gets_one_input_per_feature(classifier: tuple[Pipeline, Table]) -> None:
    _, data = classifier
    y = (data.holdout.canonical[:, 0] > 0).astype(str)
    prep = ColumnTransformer([("scaled", StandardScaler(), ["f2", "f0"])])
    pipeline = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(data.holdout.frame, y)

    onnx_bytes = export_onnx(pipeline, data.spec, "classification")

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [(f"f{i}", "tensor(double)") for i in range(4)]
    assert check_parity(pipeline, onnx_bytes, data.holdout, "classification", 1e-9).max_abs_diff <= 1e-12


def test_a_category_is_a_string_input_selected_by_name() -> None:
    rng = np.random.default_rng(3)
    colour = rng.choice(["red", "green", "blue"], 150)
    size = np.round(rng.normal(size=150), 3)
    y = np.where((colour == "red") | (size > 1), "yes", "no")
    data = table({"size": size, "colour": colour.astype(object)})
    prep = ColumnTransformer(
        [("size", StandardScaler(), ["size"]), ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"])]
    )
    pipeline = Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(data.holdout.frame, y)

    onnx_bytes = export_onnx(pipeline, data.spec, "classification")

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("size", "tensor(double)"),
        ("colour", "tensor(string)"),
    ]
    parity = check_parity(pipeline, onnx_bytes, data.holdout, "classification", 1e-9)
    assert parity.labels_equal is True and parity.max_abs_diff <= 1e-12


def test_export_is_deterministic(classifier: tuple[Pipeline, Table]) -> None:
    pipeline, data = classifier

    assert export_onnx(pipeline, data.spec, "classification") == export_onnx(pipeline, data.spec, "classification")


def test_an_unexportable_pipeline_is_a_bundle_error() -> None:
    x, y = make_regression(n_samples=30, n_features=2, random_state=0)
    data = numbers(np.abs(x))
    pipeline = Pipeline([("custom", FunctionTransformer(np.cbrt)), ("lr", LinearRegression())]).fit(
        data.holdout.frame, y
    )

    with pytest.raises(BundleError, match=r"ONNX export failed at pipeline step 'custom' \(FunctionTransformer\)"):
        export_onnx(pipeline, data.spec, "regression")


def test_parity_within_tolerance_is_recorded(classifier: tuple[Pipeline, Table]) -> None:
    pipeline, data = classifier
    onnx_bytes = export_onnx(pipeline, data.spec, "classification")

    parity = check_parity(pipeline, onnx_bytes, data.holdout, "classification", 1e-4)

    assert (parity.rows, parity.labels_equal, parity.tolerance) == (120, True, 1e-4)
    assert 0 <= parity.max_abs_diff <= 1e-4


def test_parity_over_tolerance_is_refused(classifier: tuple[Pipeline, Table]) -> None:
    pipeline, data = classifier
    onnx_bytes = export_onnx(pipeline, data.spec, "classification")

    with pytest.raises(
        BundleError,
        match=r"ONNX export refused: on 120 holdout rows labels equal=True, max difference .* over tolerance 0; "
        r"\d+ row\(s\) differ, the worst at holdout row\(s\) \d+ \(difference",
    ):
        check_parity(pipeline, onnx_bytes, data.holdout, "classification", 0.0)


def test_regression_parity_is_relative_for_large_targets() -> None:
    x, y = make_regression(n_samples=80, n_features=3, random_state=2)
    y = y * 1000 + 50_000
    data = numbers(x)
    pipeline = Pipeline([("scale", StandardScaler()), ("lr", LinearRegression())]).fit(data.holdout.frame, y)
    onnx_bytes = export_onnx(pipeline, data.spec, "regression")

    parity = check_parity(pipeline, onnx_bytes, data.holdout, "regression", 1e-4)

    assert parity.labels_equal is None
    assert parity.max_abs_diff <= 1e-4


def test_parity_refuses_a_graph_of_another_model(classifier: tuple[Pipeline, Table]) -> None:
    pipeline, data = classifier
    x2, y2 = make_classification(n_samples=120, n_features=4, random_state=9)
    other_data = numbers(x2)
    other = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(
        other_data.holdout.frame, y2.astype(str)
    )

    with pytest.raises(BundleError, match="ONNX export refused"):
        check_parity(pipeline, export_onnx(other, data.spec, "classification"), data.holdout, "classification", 1e-4)
