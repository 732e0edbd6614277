"""ONNX export and the scikit-learn parity check."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from functions.core.errors import BundleError
from functions.training.export import ONNX_INPUT, check_parity, export_onnx


@pytest.fixture(scope="module")
def classifier() -> tuple[Pipeline, np.ndarray]:
    x, y = make_classification(n_samples=120, n_features=4, random_state=1)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x, y.astype(str))
    return pipeline, x


def test_export_gives_a_graph_taking_one_float64_matrix(classifier: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, x = classifier

    onnx_bytes = export_onnx(pipeline, 4, "classification")

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [(ONNX_INPUT, "tensor(double)")]
    labels, probabilities = session.run(None, {ONNX_INPUT: x[:5]})
    assert np.asarray(probabilities).shape == (5, 2)  # no zipmap: a plain matrix
    assert list(labels) == list(pipeline.predict(x[:5]))


def test_export_is_deterministic(classifier: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, _ = classifier

    assert export_onnx(pipeline, 4, "classification") == export_onnx(pipeline, 4, "classification")


def test_an_unexportable_pipeline_is_a_bundle_error() -> None:
    x, y = make_regression(n_samples=30, n_features=2, random_state=0)
    pipeline = Pipeline([("custom", FunctionTransformer(np.log1p)), ("lr", LinearRegression())]).fit(np.abs(x), y)

    with pytest.raises(BundleError, match="skl2onnx cannot export this pipeline"):
        export_onnx(pipeline, 2, "regression")


def test_parity_within_tolerance_is_recorded(classifier: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, x = classifier
    onnx_bytes = export_onnx(pipeline, 4, "classification")

    parity = check_parity(pipeline, onnx_bytes, x[:30], "classification", 1e-4)

    assert (parity.rows, parity.labels_equal, parity.tolerance) == (30, True, 1e-4)
    assert 0 <= parity.max_abs_diff <= 1e-4


def test_parity_over_tolerance_is_refused(classifier: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, x = classifier
    onnx_bytes = export_onnx(pipeline, 4, "classification")

    with pytest.raises(
        BundleError,
        match=r"ONNX export refused: on 30 holdout rows labels equal=True, max difference .* over tolerance 0; "
        r"\d+ row\(s\) differ, the worst at holdout row\(s\) \d+ \(difference",
    ):
        check_parity(pipeline, onnx_bytes, x[:30], "classification", 0.0)


def test_regression_parity_is_relative_for_large_targets() -> None:
    x, y = make_regression(n_samples=80, n_features=3, random_state=2)
    y = y * 1000 + 50_000
    pipeline = Pipeline([("scale", StandardScaler()), ("lr", LinearRegression())]).fit(x, y)
    onnx_bytes = export_onnx(pipeline, 3, "regression")

    parity = check_parity(pipeline, onnx_bytes, x, "regression", 1e-4)

    assert parity.labels_equal is None
    assert parity.max_abs_diff <= 1e-4


def test_parity_refuses_a_graph_of_another_model(classifier: tuple[Pipeline, np.ndarray]) -> None:
    pipeline, x = classifier
    x2, y2 = make_classification(n_samples=120, n_features=4, random_state=9)
    other = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(x2, y2.astype(str))

    with pytest.raises(BundleError, match="ONNX export refused"):
        check_parity(pipeline, export_onnx(other, 4, "classification"), x, "classification", 1e-4)
