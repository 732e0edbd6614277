"""Export a fitted pipeline to ONNX and prove it answers like scikit-learn.

Parity by construction, not by luck:

- The graph takes the canonical values in double precision, so every step before the
  estimator (scalers, imputers, linear maps) computes what scikit-learn computes, in
  float64. A graph ONNX Runtime cannot run in double (an op with only a float kernel,
  such as SVMRegressor) is exported in float32 instead, and the parity gate judges it.
- Tree ensembles compare float32 features with their thresholds: scikit-learn casts
  the input to float32 inside `predict`. `cast_before_trees` puts that cast in the
  pipeline itself (skl2onnx's `CastTransformer`) before fitting, so the graph casts at
  the same point and the converter's thresholds are exact for float32 input.
  HistGradientBoosting bins in float64 instead; with the cast it is trained on the
  float32 values it will be asked about, and then matches exactly too.

Everything the export cannot do faithfully is refused before fitting (`check_exportable`),
naming the step, the reason and what to use instead.

LightGBM's scikit-learn estimators (a recipe dependency, see model/requirements.txt) export
through onnxmltools' converters, registered with skl2onnx the first time a recipe uses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import GraphProto, ModelProto, TensorProto
from skl2onnx import get_model_alias, to_onnx, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.operator_converters.common import concatenate_variables
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    BaseEnsemble,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder
from sklearn.tree import BaseDecisionTree

from functions.core.errors import BundleError
from functions.core.features import FeatureSpec, FeatureType
from functions.core.manifest import Parity
from functions.core.predictor import GraphInputs

ONNX_INPUT = "input"
TARGET_OPSET = 18
# Holdout rows named in a parity refusal.
_SHOWN_ROWS = 5

_HIST_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
_GRADIENT_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)


def _is_lightgbm(estimator: object) -> bool:
    return type(estimator).__module__.split(".", 1)[0] == "lightgbm"


def _is_tree_model(estimator: object) -> bool:
    if _is_lightgbm(estimator):
        return True  # gradient-boosted trees; onnxmltools exports float32 thresholds
    if isinstance(estimator, (BaseDecisionTree, *_GRADIENT_BOOSTING, *_HIST_GRADIENT_BOOSTING)):
        return True
    # Forests and extra trees: ensembles of decision trees.
    return isinstance(estimator, BaseEnsemble) and isinstance(getattr(estimator, "estimator", None), BaseDecisionTree)


def cast_before_trees(estimator: BaseEstimator) -> BaseEstimator:
    """`estimator` with a float32 cast in front of a tree-ensemble final step (unfitted; the cast is stateless)."""
    if isinstance(estimator, Pipeline):
        *head, (name, last) = estimator.steps
        if not _is_tree_model(last):
            return estimator
        return Pipeline([*head, ("float32_for_trees", CastTransformer(dtype=np.float32)), (name, last)])
    if _is_tree_model(estimator):
        return Pipeline([("float32_for_trees", CastTransformer(dtype=np.float32)), ("model", estimator)])
    return estimator


def check_exportable(estimator: BaseEstimator) -> None:
    """Refuse, before any fitting, a step the ONNX export cannot reproduce (naming it, why, and instead what)."""
    steps = _steps(estimator, "build()")
    _register_converters_for(steps)
    for path, step in steps:
        kind = type(step).__name__
        if isinstance(step, _HIST_GRADIENT_BOOSTING) and _declares_categories(step):
            raise BundleError(
                f"{path} is {kind}(categorical_features=...): skl2onnx does not export categorical splits, so the "
                "served model would answer differently. Instead, one-hot or ordinal encode the column before it "
                "(OneHotEncoder / OrdinalEncoder) and leave categorical_features unset."
            )
        if isinstance(step, OneHotEncoder | OrdinalEncoder) and step.handle_unknown == "error":
            instead = (
                'handle_unknown="ignore"'
                if isinstance(step, OneHotEncoder)
                else 'handle_unknown="use_encoded_value", unknown_value=-1'
            )
            raise BundleError(
                f"{path} is {kind}(handle_unknown='error'): the endpoint serves categories training never saw "
                "(flagged out_of_range), and this encoder would fail on them, sending the whole request to plan B. "
                f"Instead, use {kind}({instead})."
            )
        if not _has_converter(step) or (isinstance(step, FunctionTransformer) and step.func is not None):
            raise BundleError(
                f"{path} is {kind}, which has no ONNX converter (a custom or FunctionTransformer step cannot be "
                "exported: the endpoint runs no Python of the recipe). Instead, use scikit-learn's own transformers "
                "for the same step, or compute the column in load_data() so that training and serving share it."
            )


def _register_converters_for(steps: list[tuple[str, BaseEstimator]]) -> None:
    if any(_is_lightgbm(step) for _, step in steps):
        _register_lightgbm()


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
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, _convert_lightgbm
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


def _has_converter(step: BaseEstimator) -> bool:
    try:
        get_model_alias(type(step))
    except RuntimeError:
        return False
    return True


def _declares_categories(step: BaseEstimator) -> bool:
    declared = getattr(step, "categorical_features", None)
    if declared is None or (isinstance(declared, str) and declared == "from_dtype"):
        return False  # 'from_dtype' finds none: categories arrive as strings, not pandas' category dtype
    declared = np.asarray(declared)
    return bool(declared.any()) if declared.dtype == bool else declared.size > 0  # a mask, or indices / names


def _steps(estimator: object, path: str) -> list[tuple[str, BaseEstimator]]:
    """Every estimator inside `estimator` (through pipelines, column transformers and feature unions), with its path."""
    if isinstance(estimator, str) or estimator is None:  # "passthrough" / "drop"
        return []
    found = [(path, estimator)]
    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            found += _steps(step, f"{path} step {name!r}")
        return found[1:]  # a Pipeline is exported through its steps
    for attribute in ("transformers", "transformer_list"):
        for name, step, *_ in getattr(estimator, attribute, ()):
            found += _steps(step, f"{path} -> {name!r}")
    return found


def export_onnx(pipeline: BaseEstimator, spec: FeatureSpec, task: str) -> bytes:
    """The fitted pipeline as an ONNX graph, in the first input layout that converts and loads.

    float64 before float32 (an op without a float64 kernel: the float32 graph, judged by parity);
    for all-numeric data one matrix before one input per feature (30 inputs cost about 0.1 ms
    more per request; a pipeline that selects columns by name cannot take a matrix); categories
    are always their own string inputs.
    """
    steps = _steps(pipeline, "pipeline")
    _register_converters_for(steps)
    # onnxmltools' LightGBM converter writes the ai.onnx.ml domain's version 3 only; the rest keep
    # skl2onnx's default, so that their graphs (hence versions) stay as they were.
    opset: int | dict[str, int] = (
        {"": TARGET_OPSET, "ai.onnx.ml": 3} if any(_is_lightgbm(step) for _, step in steps) else TARGET_OPSET
    )
    problems: list[Exception] = []
    for inputs in _layouts(spec):
        try:
            return _loadable(_convert(pipeline, inputs, task, opset))
        except Exception as exc:  # skl2onnx and ONNX Runtime raise many types
            problems.append(exc)
    # The first layout's reason: the one the pipeline was most likely to take.
    raise BundleError(f"skl2onnx cannot export this pipeline: {problems[0]}")


def _layouts(spec: FeatureSpec) -> list[list[tuple[str, Any]]]:
    numeric = all(f.type is not FeatureType.CATEGORY for f in spec.features)
    layouts = []
    for number in (DoubleTensorType, FloatTensorType):
        if numeric:
            layouts.append([(ONNX_INPUT, number([None, len(spec.features)]))])
        layouts.append([
            (f.name, StringTensorType([None, 1]) if f.type is FeatureType.CATEGORY else number([None, 1]))
            for f in spec.features
        ])  # fmt: skip
    return layouts


def _convert(pipeline: BaseEstimator, inputs: list[tuple[str, Any]], task: str, opset: int | dict[str, int]) -> bytes:
    options = {"zipmap": False} if task == "classification" else None
    graph = to_onnx(pipeline, initial_types=inputs, options=options, target_opset=opset)
    graph.doc_string = ""
    # skl2onnx lists the opset imports of a dict target_opset in set order, which varies with
    # Python's string hashing from one process to the next: sorted, the bytes do not.
    imports = sorted(graph.opset_import, key=lambda entry: entry.domain)
    del graph.opset_import[:]
    graph.opset_import.extend(imports)
    _canonical_names(graph)
    return bytes(graph.SerializeToString())


def _canonical_names(model: ModelProto) -> None:
    """Name every node and intermediate value by its place in the graph.

    skl2onnx numbers names with process-wide counters (k-NN's Scan body, for one), so the
    same model exported twice in one process would give other bytes, hence another version.
    The graph's own inputs and outputs keep their names (serving feeds and reads them).
    """
    keep = {value.name for value in (*model.graph.input, *model.graph.output)}
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        return name if not name or name in keep else names.setdefault(name, f"v{len(names)}")

    def walk(graph: GraphProto, prefix: str) -> None:
        for value in (*graph.initializer, *graph.input, *graph.output, *graph.value_info):
            value.name = rename(value.name)
        for index, node in enumerate(graph.node):
            node.name = f"{prefix}{index}"
            node.input[:] = [rename(name) for name in node.input]
            node.output[:] = [rename(name) for name in node.output]
            for attribute in node.attribute:
                subgraphs = [attribute.g] if attribute.HasField("g") else []
                for position, subgraph in enumerate([*subgraphs, *attribute.graphs]):
                    walk(subgraph, f"{node.name}.{position}.")

    walk(model.graph, "n")


def _loadable(onnx_bytes: bytes) -> bytes:
    ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    return onnx_bytes


@dataclass(frozen=True)
class Holdout:
    """Holdout rows both ways: as the pipeline takes them, and as serving encodes them (codes and texts)."""

    frame: Any
    canonical: np.ndarray
    texts: dict[int, list[str]]


def graph_precision(onnx_bytes: bytes) -> str:
    """'float64' or 'float32': what the graph's numeric inputs (hence its first steps) compute in."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    types = {i.type for i in session.get_inputs()} - {"tensor(string)"}
    return "float64" if types == {"tensor(double)"} else "float32"


def check_parity(pipeline: BaseEstimator, onnx_bytes: bytes, holdout: Holdout, task: str, tolerance: float) -> Parity:
    """Compare ONNX Runtime with scikit-learn on the holdout set; raise BundleError on a mismatch."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, GraphInputs.of(session).feed(holdout.canonical, holdout.texts))
    reference = holdout.frame  # the same values, as the pipeline takes them
    if task == "classification":
        expected_labels = np.asarray(pipeline.predict(reference)).astype(str)
        label_differs = np.asarray(outputs[0]).astype(str) != expected_labels
        labels_equal = not bool(label_differs.any())
        row_diff = np.max(np.abs(np.asarray(outputs[1], np.float64) - pipeline.predict_proba(reference)), axis=1)
    else:
        labels_equal, label_differs = None, np.zeros(len(reference), dtype=bool)
        expected = np.asarray(pipeline.predict(reference), np.float64)
        # Relative above 1, so a target in the thousands is held to the same digits.
        actual = np.asarray(outputs[0], np.float64).reshape(-1)
        row_diff = np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)
    diff = float(np.max(row_diff))
    parity = Parity(rows=len(reference), labels_equal=labels_equal, max_abs_diff=diff, tolerance=tolerance)
    if labels_equal is False or diff > tolerance or not np.isfinite(diff):
        raise BundleError(_parity_refusal(parity, row_diff, label_differs, graph_precision(onnx_bytes)))
    return parity


def _parity_refusal(parity: Parity, row_diff: np.ndarray, label_differs: np.ndarray, precision: str) -> str:
    off = np.flatnonzero(label_differs | ~(row_diff <= parity.tolerance))
    worst = off[np.argsort(-np.nan_to_num(row_diff[off], nan=np.inf), kind="stable")][:_SHOWN_ROWS]
    rows = ", ".join(f"{int(i)} (difference {row_diff[i]:.3g})" for i in worst)
    cause = (
        "the graph runs in float32 (an op of the pipeline has no float64 kernel in ONNX Runtime), so values near "
        "a threshold or a large sum can round differently; a model whose steps all run in float64 avoids it"
        if precision == "float32"
        else "a step whose converter approximates scikit-learn (see skl2onnx's list of supported options)"
    )
    return (
        f"ONNX export refused: on {parity.rows} holdout rows labels equal={parity.labels_equal}, max difference "
        f"{parity.max_abs_diff:.3g} over tolerance {parity.tolerance:g}; {len(off)} row(s) differ, the worst at "
        f"holdout row(s) {rows}. Likely cause: {cause}. A recipe may raise PARITY_TOLERANCE when the difference is "
        "understood."
    )


def _convert_double_imputer(scope: object, operator: object, container: object) -> None:
    """SimpleImputer on float64 input as IsNaN and Where (ONNX Runtime runs the Imputer op in float32 only)."""
    imputer = operator.raw_operator  # type: ignore[attr-defined]
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    marker = imputer.missing_values
    faithful = (
        isinstance(operator.inputs[0].type, DoubleTensorType)  # type: ignore[attr-defined]
        and isinstance(marker, float)
        and np.isnan(marker)
        and not imputer.add_indicator
        and not np.isnan(statistics).any()  # an all-missing column would be dropped
    )
    if not faithful:
        convert_sklearn_imputer(scope, operator, container)
        return
    values = concatenate_variables(scope, operator.inputs, container)  # type: ignore[attr-defined]
    missing = scope.get_unique_variable_name("missing")  # type: ignore[attr-defined]
    fill = scope.get_unique_variable_name("fill")  # type: ignore[attr-defined]
    container.add_initializer(fill, TensorProto.DOUBLE, [1, statistics.size], statistics.tolist())  # type: ignore[attr-defined]
    container.add_node("IsNaN", [values], [missing])  # type: ignore[attr-defined]
    container.add_node("Where", [missing, fill, values], [operator.outputs[0].full_name])  # type: ignore[attr-defined]


update_registered_converter(
    SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes, _convert_double_imputer
)
