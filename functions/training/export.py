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

The converters Slipway registers with skl2onnx (SimpleImputer; LightGBM's and XGBoost's
estimators) are in functions.training.converters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import GraphProto, ModelProto
from skl2onnx import get_model_alias, to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.compose import make_column_selector
from sklearn.ensemble import (
    BaseEnsemble,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer, OneHotEncoder, OrdinalEncoder
from sklearn.tree import BaseDecisionTree

from functions.core.errors import BundleError
from functions.core.features import FeatureSpec, FeatureType
from functions.core.manifest import Parity
from functions.core.predictor import GraphInputs
from functions.training.converters import (
    ELEMENTWISE,
    ONNX_ML_OPSET,
    is_boosted_trees_library,
    is_elementwise,
    register_converters_for,
    with_string_labels,
)
from functions.training.export_failures import explain_export_failure

ONNX_INPUT = "input"
TARGET_OPSET = 18
# Holdout rows named in a parity refusal.
_SHOWN_ROWS = 5

_HIST_GRADIENT_BOOSTING = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
_GRADIENT_BOOSTING = (GradientBoostingClassifier, GradientBoostingRegressor)


def _is_tree_model(estimator: object) -> bool:
    if is_boosted_trees_library(estimator):
        return True  # LightGBM, XGBoost: gradient-boosted trees; onnxmltools exports float32 thresholds
    if isinstance(estimator, (BaseDecisionTree, *_GRADIENT_BOOSTING, *_HIST_GRADIENT_BOOSTING)):
        return True
    # Forests and extra trees: ensembles of decision trees.
    return isinstance(estimator, BaseEnsemble) and isinstance(getattr(estimator, "estimator", None), BaseDecisionTree)


def prepared_for_export(estimator: BaseEstimator) -> BaseEstimator:
    """`estimator` (unfitted) as Slipway fits it: string labels for XGBoost, a float32 cast before final trees."""
    return cast_before_trees(with_string_labels(estimator))


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
    steps = steps_of(estimator, "build()")
    register_converters_for(step for _, step in steps)
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
        if isinstance(step, OneHotEncoder | OrdinalEncoder) and (
            step.min_frequency is not None or step.max_categories is not None
        ):
            raise BundleError(
                f"{path} is {kind}(min_frequency=..., max_categories=...): skl2onnx does not export infrequent "
                "categories, so the served model would encode them differently. Instead, leave min_frequency and "
                "max_categories unset: every training category keeps its own column, and a category training never "
                "saw is still answered (handle_unknown)."
            )
        if isinstance(step, KBinsDiscretizer) and step.encode == "onehot":
            raise BundleError(
                f"{path} is KBinsDiscretizer(encode='onehot'): skl2onnx cannot export its sparse output. Instead, "
                "use KBinsDiscretizer(encode='onehot-dense'), the same values as a dense matrix, or encode='ordinal'."
            )
        if isinstance(step, FunctionTransformer) and step.func is not None and not is_elementwise(step):
            functions = ", ".join(f"np.{f.__name__}" for f in ELEMENTWISE)
            raise BundleError(
                f"{path} is FunctionTransformer({getattr(step.func, '__name__', step.func)}), which has no ONNX "
                f"converter: the endpoint runs no Python of the recipe. Slipway exports FunctionTransformer of "
                f"{functions} (without kw_args). Instead, use one of those or scikit-learn's own transformers for "
                "the same step."
            )
        if not _has_converter(step):
            raise BundleError(
                f"{path} is {kind}, which has no ONNX converter (a custom step cannot be exported: the endpoint runs "
                "no Python of the recipe). Instead, use scikit-learn's own transformers for the same step, or "
                "compute the column in load_data() so that training and serving share it."
            )
        for selector in _selectors(step):
            if "category" in _dtypes(selector):
                raise BundleError(
                    f"{path} selects columns by pandas' category dtype ({_described_selector(selector)}): categories "
                    "reach the pipeline "
                    "as strings (object dtype), so it would select none, or every text column where it excludes "
                    "them. Instead, use make_column_selector(dtype_include=object) for text and "
                    'make_column_selector(dtype_include="number") for numbers.'
                )


def _selectors(step: BaseEstimator) -> list[make_column_selector]:
    columns = [entry[2] for entry in getattr(step, "transformers", ()) if len(entry) > 2]
    return [selected for selected in columns if isinstance(selected, make_column_selector)]


def _described_selector(selector: make_column_selector) -> str:
    settings = {"dtype_include": selector.dtype_include, "dtype_exclude": selector.dtype_exclude}
    return "make_column_selector(" + ", ".join(f"{k}={v!r}" for k, v in settings.items() if v is not None) + ")"


def _dtypes(selector: make_column_selector) -> list[str]:
    declared = [selector.dtype_include, selector.dtype_exclude]
    found = [
        d for entry in declared if entry is not None for d in (entry if isinstance(entry, list | tuple) else [entry])
    ]
    return [str(d) for d in found]


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


def steps_of(estimator: object, path: str) -> list[tuple[str, BaseEstimator]]:
    """Every estimator inside `estimator` (through pipelines, column transformers, feature unions and voting or
    stacking ensembles), with its path; a fitted one's fitted parts, which are what the export converts."""
    if isinstance(estimator, str) or estimator is None:  # "passthrough" / "drop"
        return []
    found = [(path, estimator)]
    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            found += steps_of(step, f"{path} step {name!r}")
        return found[1:]  # a Pipeline is exported through its steps
    for attribute in ("transformers_", "transformers", "transformer_list"):
        if hasattr(estimator, attribute):
            for name, step, *_ in getattr(estimator, attribute):
                found += steps_of(step, f"{path} -> {name!r}")
            break  # a fitted column transformer's own copies, else the ones it was given
    members = getattr(estimator, "named_estimators_", None) or dict(getattr(estimator, "estimators", None) or ())
    for name, member in members.items():
        found += steps_of(member, f"{path} -> {name!r}")
    final = getattr(estimator, "final_estimator_", None) or getattr(estimator, "final_estimator", None)
    if final is not None:
        found += steps_of(final, f"{path} -> final_estimator")
    return found


def export_onnx(pipeline: BaseEstimator, spec: FeatureSpec, task: str) -> bytes:
    """The fitted pipeline as an ONNX graph, in the first input layout that converts and loads.

    float64 before float32 (an op without a float64 kernel: the float32 graph, judged by parity);
    for all-numeric data one matrix before one input per feature (30 inputs cost about 0.1 ms
    more per request; a pipeline that selects columns by name cannot take a matrix); categories
    are always their own string inputs.
    """
    steps = steps_of(pipeline, "pipeline")
    register_converters_for(step for _, step in steps)
    # onnxmltools' tree converters write the ai.onnx.ml domain's version 3 only; the rest keep
    # skl2onnx's default, so that their graphs (hence versions) stay as they were.
    boosted = any(is_boosted_trees_library(step) for _, step in steps)
    opset: int | dict[str, int] = {"": TARGET_OPSET, "ai.onnx.ml": ONNX_ML_OPSET} if boosted else TARGET_OPSET
    problems: list[Exception] = []
    for inputs in _layouts(spec):
        try:
            return _loadable(_convert(pipeline, inputs, task, opset))
        except Exception as exc:  # skl2onnx and ONNX Runtime raise many types
            problems.append(exc)
    # The first layout's reason: the one the pipeline was most likely to take.
    raise BundleError(explain_export_failure(problems[0], steps)) from problems[0]


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
    """Compare ONNX Runtime with scikit-learn on the holdout set; raise BundleError on a mismatch.

    Labels are equal where scikit-learn's probabilities pick one class. Where its two best classes
    tie (within the tolerance: a binary forest of an even number of pure trees splits 50/50), either
    label is scikit-learn's answer up to rounding, and the graph breaks the tie by its own.
    """
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, GraphInputs.of(session).feed(holdout.canonical, holdout.texts))
    reference = holdout.frame  # the same values, as the pipeline takes them
    if task == "classification":
        expected_labels = np.asarray(pipeline.predict(reference)).astype(str)
        served_labels = np.asarray(outputs[0]).astype(str)
        probabilities = np.asarray(pipeline.predict_proba(reference), np.float64)
        classes = [str(c) for c in pipeline.classes_]
        served_column = np.array([classes.index(label) if label in classes else -1 for label in served_labels])
        served_probability = np.where(
            served_column >= 0, probabilities[np.arange(len(served_column)), served_column], -np.inf
        )
        tie = probabilities.max(axis=1) - served_probability <= tolerance
        label_differs = (served_labels != expected_labels) & ~tie
        labels_equal = not bool(label_differs.any())
        row_diff = np.max(np.abs(np.asarray(outputs[1], np.float64) - probabilities), axis=1)
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
