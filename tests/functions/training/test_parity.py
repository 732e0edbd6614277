"""Parity by construction: the graph computes in float64 and casts to float32 where scikit-learn's trees do.

Before, a scaler in front of a random forest was refused on the breast-cancer data
(ONNX scaled in float32, scikit-learn in float64, and canonical values sat on tree
thresholds: max probability difference 0.01 there, 0.03 on other data). Steps that
cannot be exported faithfully are refused before fitting, naming the step.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.svm import SVR

from functions.core.errors import BundleError, RecipeError
from functions.core.predictor import Predictor
from functions.training.export import cast_before_trees, graph_precision
from functions.training.train import train_bundle

pytestmark = pytest.mark.unit


def _recipe(build: Any, task: str = "classification", metric: str = "accuracy", data: Any = None) -> Any:
    if data is None:
        loaded = load_breast_cancer() if task == "classification" else load_diabetes()
        names = [f"f{i}" for i in range(loaded.data.shape[1])]
        data = ({name: loaded.data[:, i] for i, name in enumerate(names)}, loaded.target)
    return types.SimpleNamespace(
        __name__="tests.parity_recipe", SEED=0, TASK=task, METRIC=metric, load_data=lambda: data, build=build
    )


def test_a_scaler_before_a_random_forest_matches_scikit_learn() -> None:
    build = lambda seed: Pipeline(  # noqa: E731
        [("scale", StandardScaler()), ("forest", RandomForestClassifier(100, random_state=seed))]
    )
    bundle = train_bundle(_recipe(build))

    assert bundle.manifest.parity.labels_equal is True
    assert bundle.manifest.parity.max_abs_diff < 1e-6  # float32 rounding of the probabilities, no more
    assert graph_precision(bundle.onnx_bytes) == "float64"
    ops = [node.op_type for node in _graph(bundle.onnx_bytes).graph.node]
    assert ops.index("Cast") < ops.index("TreeEnsembleClassifier"), ops


def test_a_scaler_before_a_forest_regressor_matches_too() -> None:
    build = lambda seed: Pipeline(  # noqa: E731
        [
            ("impute", SimpleImputer()),
            ("scale", StandardScaler()),
            ("forest", RandomForestRegressor(50, random_state=seed)),
        ]
    )
    bundle = train_bundle(_recipe(build, task="regression", metric="rmse"))

    assert bundle.manifest.parity.max_abs_diff < 1e-6


def test_without_the_cast_the_same_forest_differs_past_the_tolerance() -> None:
    """The mismatch the cast removes is real: exported without it, a float64 graph disagrees with scikit-learn."""
    data = load_breast_cancer()
    x, y = np.round(data.data, 4), data.target
    pipeline = Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(100, random_state=0))])
    pipeline.fit(x, y)
    graph = to_onnx(pipeline, initial_types=[("x", DoubleTensorType([None, x.shape[1]]))], options={"zipmap": False})
    probabilities = ort.InferenceSession(graph.SerializeToString()).run(None, {"x": x})[1]
    assert np.max(np.abs(probabilities - pipeline.predict_proba(x))) > 1e-3


def test_the_cast_changes_no_prediction_of_scikit_learn_s_own_trees() -> None:
    data = load_breast_cancer()
    x, y = data.data, data.target
    plain = Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(30, random_state=0))]).fit(x, y)
    cast = cast_before_trees(
        Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(30, random_state=0))])
    ).fit(x, y)
    assert [name for name, _ in cast.steps] == ["scale", "float32_for_trees", "forest"]
    np.testing.assert_array_equal(plain.predict_proba(x), cast.predict_proba(x))


def test_a_graph_with_a_float_only_op_is_exported_in_float32_and_still_judged() -> None:
    build = lambda seed: Pipeline([("scale", StandardScaler()), ("svr", SVR())])  # noqa: E731
    bundle = train_bundle(_recipe(build, task="regression", metric="rmse"))

    assert graph_precision(bundle.onnx_bytes) == "float32"  # ONNX Runtime has no float64 SVMRegressor
    assert bundle.manifest.parity.max_abs_diff < 1e-4
    predictor = Predictor(bundle.manifest, bundle.onnx_bytes)  # bundles made before float64 graphs load alike
    columns, _ = _recipe(build, task="regression").load_data()
    rows = [{name: float(values[i]) for name, values in columns.items()} for i in range(3)]
    assert all(answer["fallback"] is None for answer in predictor.score(predictor.encode(rows)))


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (
            HistGradientBoostingClassifier(categorical_features=[0]),
            r"build\(\) step 'model' is HistGradientBoostingClassifier\(categorical_features=\.\.\.\): skl2onnx does "
            r"not export categorical splits.*Instead, one-hot or ordinal encode",
        ),
        (
            FunctionTransformer(np.cbrt),
            r"build\(\) step 'model' is FunctionTransformer\(cbrt\), which has no ONNX converter.*Slipway exports "
            r"FunctionTransformer of np.log1p, np.log, np.exp, np.sqrt, np.absolute.*Instead, use one of those",
        ),
    ],
)
def test_a_step_the_export_cannot_reproduce_is_refused_before_fitting(step: Any, expected: str) -> None:
    fitted: list[bool] = []

    class Watched(LogisticRegression):
        def fit(self, *args: Any, **kwargs: Any) -> Any:
            fitted.append(True)
            return super().fit(*args, **kwargs)

    build = lambda seed: Pipeline([("model", step), ("classify", Watched())])  # noqa: E731
    with pytest.raises(BundleError, match=expected):
        train_bundle(_recipe(build))
    assert fitted == [], "refused before any fitting"


def test_a_custom_transformer_inside_a_column_transformer_is_named_by_its_path() -> None:
    class Doubler(FunctionTransformer):
        pass

    build = lambda seed: Pipeline(  # noqa: E731
        [
            ("prep", ColumnTransformer([("twice", Doubler(), [0, 1])], remainder="passthrough")),
            ("lr", LogisticRegression()),
        ]
    )
    with pytest.raises(BundleError, match=r"build\(\) step 'prep' -> 'twice' is Doubler, which has no ONNX converter"):
        train_bundle(_recipe(build))


@pytest.mark.parametrize(
    ("encoder", "instead"),
    [
        (OneHotEncoder(), r'OneHotEncoder\(handle_unknown="ignore"\)'),
        (OrdinalEncoder(), r'OrdinalEncoder\(handle_unknown="use_encoded_value", unknown_value=-1\)'),
    ],
)
def test_an_encoder_that_would_fail_on_an_unseen_category_is_refused(encoder: Any, instead: str) -> None:
    """Unseen categories are served (flagged out_of_range): an encoder that errors on them would send plan B."""
    build = lambda seed: Pipeline(  # noqa: E731
        [("prep", ColumnTransformer([("colour", encoder, [0])], remainder="passthrough")), ("lr", LogisticRegression())]
    )
    with pytest.raises(BundleError, match=rf"step 'prep' -> 'colour' is \w+\(handle_unknown='error'\).*{instead}"):
        train_bundle(_recipe(build))


def test_build_returning_no_estimator_says_so() -> None:
    with pytest.raises(RecipeError, match=r"build\(\) must return an unfitted scikit-learn estimator .*got dict"):
        train_bundle(_recipe(lambda seed: {"model": "logistic"}))


def test_a_target_with_one_class_says_what_to_check() -> None:
    x = np.arange(40.0)
    recipe = _recipe(lambda seed: LogisticRegression(), data=({"x": x}, np.array(["yes"] * 40)))
    with pytest.raises(RecipeError, match=r"the target has one class \('yes'\).*at least two"):
        train_bundle(recipe)


def test_a_fit_that_fails_says_what_the_pipeline_receives() -> None:
    build = lambda seed: Pipeline(  # noqa: E731
        [("prep", ColumnTransformer([("num", StandardScaler(), ["no_such_column"])])), ("lr", LogisticRegression())]
    )
    with pytest.raises(RecipeError, match=r"fitting build\(\)'s estimator failed: .*receives a pandas DataFrame"):
        train_bundle(_recipe(build))


def _graph(onnx_bytes: bytes) -> Any:
    import onnx

    return onnx.load_from_string(onnx_bytes)
