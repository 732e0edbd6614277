"""The ONNX converters Slipway registers with skl2onnx, and the estimators they are for.

- `SimpleImputer`: on float64 input, IsNaN and Where (ONNX Runtime runs the Imputer op in
  float32 only, which would round the values it passes through); on text, the identity when
  the missing marker is not a string (a string tensor holds no NaN or None: serving fills a
  missing category before the graph) and the marker replaced by each column's statistic when
  it is; anything else goes to skl2onnx's converter.
- `FunctionTransformer` of one of NumPy's element-wise functions in `ELEMENTWISE` (np.log1p,
  the usual transform of a skewed number, and a few others): the same function as ONNX ops, in
  the input's precision; log1p as log(u) * x / (u - 1) with u = 1 + x, which is exact to a few
  ulps where log(1 + x) alone loses the digits of a small x (Goldberg's identity). Any other
  function is refused before fitting (`functions.training.export.check_exportable`).
- LightGBM's and XGBoost's scikit-learn estimators (recipe dependencies, see
  model/requirements.txt): onnxmltools' converters, registered the first time a recipe uses
  one. LightGBM's dump is prepared so that its thresholds are exact in float32.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from skl2onnx.shape_calculators.function_transformer import calculate_sklearn_function_transformer_output_shapes
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

# The ai.onnx.ml opset onnxmltools' tree-ensemble converters write (LightGBM, XGBoost).
ONNX_ML_OPSET = 3


def library(estimator: object) -> str:
    """The top-level package an estimator's class comes from ('sklearn', 'lightgbm', 'xgboost', ...): the first
    one outside Slipway along its class's bases (Slipway's XGBoost classifier is XGBoost's)."""
    modules = [cls.__module__.split(".", 1)[0] for cls in type(estimator).__mro__]
    return next((module for module in modules if module != "functions"), modules[0])


def is_boosted_trees_library(estimator: object) -> bool:
    """A LightGBM or XGBoost estimator: gradient-boosted trees with float32 thresholds, exported by onnxmltools."""
    return library(estimator) in ("lightgbm", "xgboost")


def is_elementwise(step: object) -> bool:
    """A FunctionTransformer of one of the NumPy functions in ELEMENTWISE, with no arguments of its own."""
    return isinstance(step, FunctionTransformer) and any(step.func is f for f in ELEMENTWISE) and not step.kw_args


def register_converters_for(estimators: Iterable[object]) -> None:
    """Register onnxmltools' converters for the LightGBM and XGBoost estimators among `estimators`."""
    libraries = {library(estimator) for estimator in estimators}
    if "lightgbm" in libraries:
        _register_lightgbm()
    if "xgboost" in libraries:
        _register_xgboost()


def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer, exact for every input type serving feeds it (float64, float32, text)."""
    imputer = operator.raw_operator
    if isinstance(operator.inputs[0].type, StringTensorType):
        _impute_text(scope, operator, container)
        return
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    marker = imputer.missing_values
    faithful = (
        isinstance(operator.inputs[0].type, DoubleTensorType)
        and isinstance(marker, float)
        and np.isnan(marker)
        and not imputer.add_indicator
        and not np.isnan(statistics).any()  # an all-missing column would be dropped
    )
    if not faithful:
        convert_sklearn_imputer(scope, operator, container)
        return
    values = concatenate_variables(scope, operator.inputs, container)
    missing = scope.get_unique_variable_name("missing")
    fill = scope.get_unique_variable_name("fill")
    container.add_initializer(fill, TensorProto.DOUBLE, [1, statistics.size], statistics.tolist())
    container.add_node("IsNaN", [values], [missing])
    container.add_node("Where", [missing, fill, values], [operator.outputs[0].full_name])


def _impute_text(scope: Any, operator: Any, container: Any) -> None:
    """Text columns joined by Concat (skl2onnx joins several through a float-only op), the marker replaced by
    each column's statistic where it is a string; a NaN or None marker never occurs in a string tensor."""
    imputer = operator.raw_operator
    output = operator.outputs[0].full_name
    names = [variable.full_name for variable in operator.inputs]
    values = scope.get_unique_variable_name("text") if len(names) > 1 else names[0]
    if len(names) > 1:
        container.add_node("Concat", names, [values], axis=1)
    marker = imputer.missing_values
    if not isinstance(marker, str):
        container.add_node("Identity", [values], [output])
        return
    fills = [str(statistic) for statistic in imputer.statistics_]  # fill_value, for strategy='constant'
    fill, code, missing = (scope.get_unique_variable_name(name) for name in ("fill", "code", "missing"))
    container.add_initializer(fill, TensorProto.STRING, [1, len(fills)], [f.encode() for f in fills])
    container.add_node(
        "LabelEncoder", [values], [code], op_domain="ai.onnx.ml", op_version=2,
        keys_strings=[marker], values_int64s=[1], default_int64=0,
    )  # fmt: skip
    container.add_node("Cast", [code], [missing], to=TensorProto.BOOL)
    container.add_node("Where", [missing, fill, values], [output])


update_registered_converter(
    SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes, convert_imputer
)

# NumPy's function and the ONNX op computing it; log1p, which ONNX lacks, is written by `_log1p`.
ELEMENTWISE = {np.log1p: "Log1p", np.log: "Log", np.exp: "Exp", np.sqrt: "Sqrt", np.abs: "Abs"}


def convert_function_transformer(scope: Any, operator: Any, container: Any) -> None:
    """FunctionTransformer: the identity (func=None, as skl2onnx does) or an ELEMENTWISE function."""
    step = operator.raw_operator
    values = concatenate_variables(scope, operator.inputs, container)
    output = operator.outputs[0].full_name
    if step.func is None:
        container.add_node("Identity", [values], [output])
    elif step.func is np.log1p:
        _log1p(scope, operator, container, values, output)
    else:
        container.add_node(ELEMENTWISE[step.func], [values], [output])


def _log1p(scope: Any, operator: Any, container: Any, x: str, output: str) -> None:
    """log1p(x) = x where 1 + x rounds to 1, else log(u) * x / (u - 1) with u = 1 + x."""
    kind = TensorProto.DOUBLE if isinstance(operator.inputs[0].type, DoubleTensorType) else TensorProto.FLOAT
    one = scope.get_unique_variable_name("one")
    container.add_initializer(one, kind, [], [1.0])
    names = {name: scope.get_unique_variable_name(name) for name in ("u", "d", "log", "scaled", "ratio", "tiny")}
    container.add_node("Add", [x, one], [names["u"]])
    container.add_node("Sub", [names["u"], one], [names["d"]])
    container.add_node("Log", [names["u"]], [names["log"]])
    container.add_node("Mul", [names["log"], x], [names["scaled"]])
    container.add_node("Div", [names["scaled"], names["d"]], [names["ratio"]])
    container.add_node("Equal", [names["u"], one], [names["tiny"]])
    container.add_node("Where", [names["tiny"], x, names["ratio"]], [output])


def _function_transformer_shapes(operator: Any) -> None:
    """skl2onnx's shape calculator, which refuses any function, for the identity and ELEMENTWISE's functions."""
    step = operator.raw_operator
    if step.func is None or not is_elementwise(step):
        calculate_sklearn_function_transformer_output_shapes(operator)
        return
    operator.raw_operator = FunctionTransformer()  # the same shape as the identity
    try:
        calculate_sklearn_function_transformer_output_shapes(operator)
    finally:
        operator.raw_operator = step


update_registered_converter(
    FunctionTransformer, "SklearnFunctionTransformer", _function_transformer_shapes, convert_function_transformer
)


def with_string_labels(estimator: BaseEstimator) -> BaseEstimator:
    """`estimator` with an XGBoost classifier (alone or last in a pipeline) replaced by Slipway's, which takes
    the string labels every Slipway classifier is trained on; XGBoost's own takes only 0..n-1 (unfitted)."""
    if isinstance(estimator, Pipeline):
        *head, (name, last) = estimator.steps
        labelled = with_string_labels(last)
        return estimator if labelled is last else Pipeline([*head, (name, labelled)])
    if library(estimator) != "xgboost" or not hasattr(estimator, "predict_proba"):
        return estimator
    labelled_class = _labelled_xgb_classifier()
    if isinstance(estimator, labelled_class):
        return estimator
    return labelled_class(**estimator.get_params())


@cache
def _labelled_xgb_classifier() -> type:
    """XGBClassifier fitted on the codes of its labels, whose classes_ and predictions are the labels.

    onnxmltools' converter writes a classifier's classes_ as the graph's labels, so the graph
    answers with the labels too.
    """
    from xgboost import XGBClassifier

    class LabelledXGBClassifier(XGBClassifier):  # type: ignore[misc]
        def fit(self, x: Any, y: Any, **kwargs: Any) -> LabelledXGBClassifier:
            self.__dict__.pop("labels_", None)  # XGBoost checks the codes against classes_ while it fits
            labels, codes = np.unique(np.asarray(y), return_inverse=True)
            super().fit(x, codes, **kwargs)
            self.labels_ = labels
            return self

        @property
        def classes_(self) -> np.ndarray:
            return self.__dict__["labels_"] if "labels_" in self.__dict__ else super().classes_

        def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
            return np.asarray(self.labels_)[np.asarray(super().predict(x, **kwargs), dtype=int)]

    LabelledXGBClassifier.__qualname__ = LabelledXGBClassifier.__name__
    return LabelledXGBClassifier


_CLASSIFIER_OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}


@cache
def _register_lightgbm() -> None:
    """LightGBM's classifier and regressor as skl2onnx pipeline steps (onnxmltools' converter)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        _convert_lightgbm,
        options=_CLASSIFIER_OPTIONS,
    )
    update_registered_converter(
        LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, _convert_lightgbm
    )


@cache
def _register_xgboost() -> None:
    """XGBoost's classifier and regressor as skl2onnx pipeline steps (onnxmltools' converter).

    XGBoost sends a feature left when x < threshold, with float32 thresholds and features
    (`cast_before_trees` casts before it), and onnxmltools writes those thresholds and BRANCH_LT
    as they are: no preparation needed.
    """
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    for classifier in (XGBClassifier, _labelled_xgb_classifier()):
        update_registered_converter(
            classifier,
            f"XGBoost{classifier.__name__}",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=_CLASSIFIER_OPTIONS,
        )
    update_registered_converter(
        XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
    )


def _convert_lightgbm(scope: object, operator: Any, container: object) -> None:
    """onnxmltools' LightGBM converter, fed a dump whose `<=` thresholds are exact in float32.

    LightGBM compares a feature with a float64 threshold; ONNX's tree ensemble stores float32
    thresholds, rounded to nearest, so a float32 value equal to a threshold rounded up went
    the other way (seen: 0.024 in a probability). The features reach the trees as float32
    (`cast_before_trees`), and for a float32 x, x <= t exactly when x <= the largest float32
    not above t: that is the threshold written. onnxmltools reads a booster that says
    `is_mock` through its `dump_model()`, its own hook for a prepared dump.
    """
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    model = operator.raw_operator
    dump = model.booster_.dump_model()
    for tree in dump["tree_info"]:
        _floor_thresholds(tree["tree_structure"])
    prepared = _PreparedBooster(dump)
    operator.raw_operator = SimpleNamespace(
        booster_=prepared, boosting_type=model.boosting_type, classes_=getattr(model, "classes_", None)
    )
    try:
        convert_lightgbm(scope, operator, container)
    finally:
        operator.raw_operator = model


@dataclass(frozen=True)
class _PreparedBooster:
    dump: dict[str, Any]
    is_mock: bool = True

    def dump_model(self) -> dict[str, Any]:
        return self.dump


def _floor_thresholds(node: dict[str, Any]) -> None:
    stack = [node]
    while stack:
        node = stack.pop()
        if "left_child" not in node:
            continue
        threshold = node.get("threshold")
        if node.get("decision_type") == "<=" and isinstance(threshold, float):
            single = np.float32(threshold)
            if float(single) > threshold:  # compared in float64 (NumPy would compare a float32 in float32)
                single = np.nextafter(single, np.float32(-np.inf))
            node["threshold"] = float(single)
        stack += [node["left_child"], node["right_child"]]
