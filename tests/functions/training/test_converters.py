"""Every converter Slipway registers, on every input type the graph can give it: the graph answers as scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import FunctionTransformer
from xgboost import XGBClassifier, XGBRegressor

from functions.training.converters import (
    ELEMENTWISE,
    ONNX_ML_OPSET,
    is_boosted_trees_library,
    is_elementwise,
    library,
    register_converters_for,
    with_string_labels,
)

pytestmark = pytest.mark.unit

NUMBER_TYPES = [(DoubleTensorType, np.float64), (FloatTensorType, np.float32)]
OPSET = {"": 18, "ai.onnx.ml": ONNX_ML_OPSET}


def _run(estimator: Any, tensor_type: Any, x: np.ndarray, options: dict[str, Any] | None = None) -> list[Any]:
    graph = to_onnx(
        estimator, initial_types=[("x", tensor_type([None, x.shape[1]]))], options=options, target_opset=OPSET
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _numbers(dtype: Any) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(200, 3)).round(3)
    x[::7, 1] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize(("tensor_type", "dtype"), NUMBER_TYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(
    "imputer",
    [
        SimpleImputer(),
        SimpleImputer(strategy="median"),
        SimpleImputer(strategy="most_frequent"),
        SimpleImputer(strategy="constant", fill_value=-1.0),
    ],
    ids=["mean", "median", "most_frequent", "constant"],
)
def test_a_numeric_imputer_fills_as_scikit_learn_in_the_input_precision(
    imputer: SimpleImputer, tensor_type: Any, dtype: Any
) -> None:
    x = _numbers(dtype)
    fitted = clone(imputer).fit(x)

    [filled] = _run(fitted, tensor_type, x)

    assert filled.dtype == dtype
    np.testing.assert_array_equal(filled, fitted.transform(x).astype(dtype))


TEXT = np.array([["red", "a"], ["green", "b"], ["red", "?"], ["blue", "a"], ["red", "b"]], dtype=object)


@pytest.mark.parametrize(
    "imputer",
    [SimpleImputer(strategy="most_frequent"), SimpleImputer(strategy="constant", fill_value="none")],
    ids=["most_frequent", "constant"],
)
def test_a_text_imputer_whose_marker_is_nan_passes_text_through(imputer: SimpleImputer) -> None:
    """A string tensor holds no NaN or None: serving fills a missing category before the graph."""
    fitted = clone(imputer).fit(TEXT)

    [out] = _run(fitted, StringTensorType, TEXT)

    assert out.tolist() == fitted.transform(TEXT).tolist() == TEXT.tolist()


@pytest.mark.parametrize(
    "imputer",
    [
        SimpleImputer(strategy="most_frequent", missing_values="?"),
        SimpleImputer(strategy="constant", missing_values="?", fill_value="none"),
    ],
    ids=["most_frequent", "constant"],
)
def test_a_text_imputer_with_a_string_marker_replaces_it_as_scikit_learn(imputer: SimpleImputer) -> None:
    fitted = clone(imputer).fit(TEXT)

    [out] = _run(fitted, StringTensorType, TEXT)

    assert out.tolist() == fitted.transform(TEXT).tolist()
    assert "?" not in out.ravel().tolist()


@pytest.mark.parametrize(
    "imputer",
    [
        SimpleImputer(strategy="most_frequent"),
        SimpleImputer(strategy="most_frequent", missing_values="?"),
        SimpleImputer(strategy="constant", missing_values="?", fill_value="none"),
    ],
    ids=["nan marker", "string marker", "constant"],
)
def test_a_text_imputer_alone_takes_each_column_as_its_own_input(imputer: SimpleImputer) -> None:
    """A pipeline's first step gets one graph input per feature: the columns are joined as text, not numbers."""
    fitted = clone(imputer).fit(TEXT)
    graph = to_onnx(
        fitted, initial_types=[("colour", StringTensorType([None, 1])), ("grade", StringTensorType([None, 1]))],
        target_opset=OPSET,
    )  # fmt: skip
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])

    [out] = session.run(None, {"colour": TEXT[:, :1], "grade": TEXT[:, 1:]})

    assert out.tolist() == fitted.transform(TEXT).tolist()


@pytest.mark.parametrize(("tensor_type", "dtype"), NUMBER_TYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("func", [None, *ELEMENTWISE], ids=["identity", *(f.__name__ for f in ELEMENTWISE)])
def test_an_elementwise_function_transformer_computes_numpys_function(func: Any, tensor_type: Any, dtype: Any) -> None:
    x = np.abs(_numbers(np.float64)[:, [0, 2]]) * 5
    x[:3, 0] = [1e-12, 3e-9, 0.0]  # where log(1 + x) alone loses x's digits
    step = FunctionTransformer(func).fit(x.astype(dtype))

    [out] = _run(step, tensor_type, x.astype(dtype))

    np.testing.assert_allclose(out, step.transform(x.astype(dtype)), rtol=4 * np.finfo(dtype).eps, atol=0)


def test_only_numpys_listed_functions_without_arguments_are_elementwise() -> None:
    assert is_elementwise(FunctionTransformer(np.log1p))
    assert not is_elementwise(FunctionTransformer(np.cbrt))
    assert not is_elementwise(FunctionTransformer(np.power, kw_args={"x2": 2}))
    assert not is_elementwise(FunctionTransformer())  # the identity is skl2onnx's own case


# Boosted trees meet float32 only: Slipway casts before a final tree model (export.cast_before_trees).
BOOSTED = [
    pytest.param(LGBMClassifier(n_estimators=20, verbose=-1, random_state=0), id="LightGBM classifier"),
    pytest.param(LGBMRegressor(n_estimators=20, verbose=-1, random_state=0), id="LightGBM regressor"),
    pytest.param(XGBClassifier(n_estimators=20, random_state=0), id="XGBoost classifier"),
    pytest.param(XGBRegressor(n_estimators=20, random_state=0), id="XGBoost regressor"),
]


@pytest.mark.parametrize("model", BOOSTED)
def test_boosted_trees_on_float32_answer_as_their_library(model: Any) -> None:
    x = np.nan_to_num(_numbers(np.float32))
    classifier = hasattr(model, "predict_proba")
    y = np.where(x[:, 0] + x[:, 2] > 0, "yes", "no") if classifier else x[:, 0] * 3
    fitted = with_string_labels(clone(model)).fit(x, y)
    register_converters_for([fitted])

    outputs = _run(fitted, FloatTensorType, x, {"zipmap": False} if classifier else None)

    if classifier:
        assert outputs[0].tolist() == fitted.predict(x).tolist()
        np.testing.assert_allclose(outputs[1], fitted.predict_proba(x), atol=1e-6)
    else:
        np.testing.assert_allclose(outputs[0].ravel(), fitted.predict(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("model", BOOSTED)
def test_boosted_trees_on_float64_do_not_convert(model: Any) -> None:
    """The tree ensemble ops compute in float32: a float64 input is refused, never silently rounded."""
    x = np.nan_to_num(_numbers(np.float32))
    classifier = hasattr(model, "predict_proba")
    fitted = with_string_labels(clone(model)).fit(x, (x[:, 0] > 0).astype(int) if classifier else x[:, 0])
    register_converters_for([fitted])

    with pytest.raises(Exception, match=r"tensor\(double\).*tensor\(float\)"):
        _run(fitted, DoubleTensorType, x.astype(np.float64), {"zipmap": False} if classifier else None)


def test_an_xgboost_classifier_learns_string_labels_and_answers_with_them() -> None:
    x = np.nan_to_num(_numbers(np.float32))
    y = np.array(["low", "mid", "high"])[np.digitize(x[:, 0], [-0.5, 0.5])]

    model = with_string_labels(XGBClassifier(n_estimators=10, max_depth=3, random_state=0))
    fitted = model.fit(x, y)

    assert fitted.classes_.tolist() == ["high", "low", "mid"]
    assert set(fitted.predict(x)) <= {"high", "low", "mid"}
    unfitted = clone(fitted)
    assert type(unfitted) is type(fitted) and not hasattr(unfitted, "labels_")
    assert (unfitted.n_estimators, unfitted.max_depth, unfitted.random_state) == (10, 3, 0)
    assert library(fitted) == "xgboost" and is_boosted_trees_library(fitted)
    assert with_string_labels(fitted) is fitted
    assert with_string_labels(XGBRegressor()).__class__ is XGBRegressor
