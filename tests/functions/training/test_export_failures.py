"""Every export failure names the step, the input it met, the likely cause and the fix: one test per class."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from functions.core.errors import BundleError
from functions.core.features import category_texts, encode_columns
from functions.training.converters import register_converters_for, with_string_labels
from functions.training.derive import derive_feature_spec
from functions.training.export import export_onnx, steps_of
from functions.training.export_failures import explain_export_failure
from functions.training.frame import model_frame

pytestmark = pytest.mark.unit

ROWS = 120


def _table() -> tuple[Any, Any, np.ndarray]:
    rng = np.random.default_rng(2)
    columns = {
        "size": np.round(rng.normal(size=ROWS), 3),
        "weight": np.round(rng.normal(size=ROWS), 3),
        "colour": rng.choice(["red", "green", "blue"], ROWS).astype(object),
    }
    spec = derive_feature_spec(columns)
    frame = model_frame(spec, encode_columns(spec, columns), category_texts(spec, columns))
    target = np.where((columns["colour"] == "red") | (columns["size"] > 0.5), "yes", "no")
    return spec, frame, target


def _refusal(pipeline: Pipeline) -> str:
    spec, frame, target = _table()
    fitted = with_string_labels(pipeline).fit(frame, target)
    with pytest.raises(BundleError) as refused:
        export_onnx(fitted, spec, "classification")
    return str(refused.value)


def _parts(message: str) -> dict[str, str]:
    """The refusal's four parts: where, what it met, the cause, the fix."""
    found = re.fullmatch(
        r"ONNX export failed at (?P<where>.+?), which met (?P<met>.+?): (?P<said>.+)\. "
        r"Likely cause: (?P<cause>.+)\. Fix: (?P<fix>.+)\.",
        message,
        flags=re.DOTALL,
    )
    assert found is not None, message
    return found.groupdict()


def test_numbers_and_text_in_one_step_name_it_and_say_to_split_the_branches() -> None:
    both = ColumnTransformer([("all", SimpleImputer(strategy="most_frequent"), ["size", "colour"])])
    pipeline = Pipeline(
        [("pre", both), ("encode", OneHotEncoder(handle_unknown="ignore")), ("model", LogisticRegression())]
    )

    parts = _parts(_refusal(pipeline))

    assert parts["where"] == "pipeline step 'pre' -> 'all' (SimpleImputer)"
    assert "text" in parts["met"]
    assert parts["cause"].startswith("the step receives numbers and text in one block")
    assert "separate ColumnTransformer branches" in parts["fix"] and "make_column_selector" in parts["fix"]


def test_a_setting_the_converter_lacks_is_named_with_the_step() -> None:
    numbers = ColumnTransformer([("numbers", StandardScaler(), ["size", "weight"])])
    vote = VotingClassifier([("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))], voting="soft")
    pipeline = Pipeline([("pre", numbers), ("vote", vote)])

    parts = _parts(_refusal(pipeline))

    assert parts["where"] == "pipeline step 'vote' (VotingClassifier)"
    assert parts["met"] == "float64 numbers"
    assert "skl2onnx said NotImplementedError: flatten_transform==True is not implemented" in parts["said"]
    assert parts["cause"] == "the converter does not implement this setting of the step"
    assert "setting named above" in parts["fix"]


class Doubled(TransformerMixin, BaseEstimator):
    """A recipe's own transformer: nothing converts it."""

    def fit(self, x: Any, y: Any = None) -> Doubled:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2


def test_a_step_without_a_converter_is_named_by_its_path() -> None:
    numbers = ColumnTransformer([("twice", Doubled(), ["size"]), ("colour", OneHotEncoder(), ["colour"])])
    pipeline = Pipeline([("pre", numbers), ("model", LogisticRegression())])

    parts = _parts(_refusal(pipeline))

    assert parts["where"] == "pipeline step 'pre' -> 'twice' (Doubled)"
    assert parts["cause"] == "the step has no ONNX converter"
    assert "scikit-learn's own transformers" in parts["fix"]


def test_an_op_onnx_runtime_cannot_run_names_the_step_that_wrote_it() -> None:
    """ONNX Runtime sees only the graph: the op it names leads back to the step (a float32-only tree ensemble)."""
    x = np.random.default_rng(0).normal(size=(60, 3))
    model = with_string_labels(XGBClassifier(n_estimators=5)).fit(x, np.where(x[:, 0] > 0, "yes", "no"))
    pipeline = Pipeline([("scale", StandardScaler().fit(x)), ("model", model)])
    register_converters_for([model])
    graph = to_onnx(pipeline, initial_types=[("x", DoubleTensorType([None, 3]))], options={"zipmap": False},
                    target_opset={"": 18, "ai.onnx.ml": 3})  # fmt: skip
    with pytest.raises(Exception, match="ONNXRuntimeError") as failed:
        ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])

    parts = _parts(explain_export_failure(failed.value, steps_of(pipeline, "pipeline")))

    assert parts["where"] == "pipeline step 'model' (LabelledXGBClassifier)"
    assert parts["met"] == "float64 numbers"
    assert parts["said"].startswith("onnxruntime said")
    assert parts["cause"] == "this op computes in float32 only in ONNX Runtime and met float64 numbers"
    assert "last step" in parts["fix"]


def test_a_failure_no_rule_knows_still_says_where_and_what_to_do() -> None:
    try:
        raise ValueError("something new")
    except ValueError as exc:
        message = explain_export_failure(exc, [])

    parts = _parts(message)
    assert parts["where"] == "the pipeline (no single step)"
    assert parts["cause"] == "a limitation of the converter for this step"
    assert "Supported estimators" in parts["fix"]
