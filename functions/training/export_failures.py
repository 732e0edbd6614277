"""Why an export failed, in the recipe's terms: the step, the input it met, the likely cause and the fix.

skl2onnx, onnxmltools and ONNX Runtime raise many exception types whose messages name
their own internals ("could not convert string to float", "Type (tensor(double)) of output
arg ... does not match"). A converter runs with its operator in hand, whose `raw_operator`
is the recipe's step, so the failing step is found in the exception's traceback; ONNX
Runtime, which only sees the finished graph, names an op, and the step is the one whose
converter writes that op. The cause and the fix come from the first rule below that
matches.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType, StringTensorType
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from functions.training.converters import is_boosted_trees_library, library

# Longest library message quoted in a refusal.
_QUOTED = 300

_TYPES = (
    (StringTensorType, "text (a string column)"),
    (DoubleTensorType, "float64 numbers"),
    (FloatTensorType, "float32 numbers"),
    (Int64TensorType, "int64 numbers"),
)
_ORT_TYPES = {"tensor(double)": "float64 numbers", "tensor(float)": "float32 numbers", "tensor(string)": "text"}

_SEPARATE_BRANCHES = (
    "give numbers and text separate ColumnTransformer branches, e.g. "
    "('num', ..., make_column_selector(dtype_include=\"number\")) and "
    '(\'cat\', make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")), '
    'make_column_selector(dtype_exclude="number"))'
)
_SUPPORTED = 'use a step listed in docs/models.md, "Supported estimators" (tests/functions/training/test_zoo.py)'


@dataclass(frozen=True)
class _Rule:
    """A failure the message or the step's input reveals, what likely caused it, and what to change."""

    pattern: str
    cause: str
    fix: str


_MIXED_TYPES = _Rule(
    r"should have the same type|types? (?:differ|mismatch)",
    "the step receives numbers and text in one block, and its ONNX converter takes one type",
    _SEPARATE_BRANCHES,
)
_TEXT_INTO_NUMBERS = _Rule(
    r"string to float|could not convert string",
    "a numeric step met a text column (categories are strings in the graph)",
    "encode the text first (OneHotEncoder or OrdinalEncoder in the text branch), or " + _SEPARATE_BRANCHES,
)
_FLOAT32_ONLY = _Rule(
    r"tensor\(double\).*tensor\(float\)|Could not find an implementation",
    "this op computes in float32 only in ONNX Runtime and met float64 numbers",
    "make the tree model the pipeline's last step (Slipway casts to float32 before a final tree model), "
    "or use another estimator for this step",
)
_SETTING = _Rule(
    r"NotImplemented|not implemented|not supported|[Uu]nsupported",
    "the converter does not implement this setting of the step",
    "change the setting named above (skl2onnx's documentation lists each converter's options), or " + _SUPPORTED,
)
_NO_CONVERTER = _Rule(
    r"shape calculator|[Cc]onverter",
    "the step has no ONNX converter",
    "use scikit-learn's own transformers for the same step, or compute the column in load_data()",
)
_DEFAULT = _Rule("", "a limitation of the converter for this step", "simplify the step, or " + _SUPPORTED)
# First match wins: a message can mention a converter and a setting both.
_RULES = (_MIXED_TYPES, _TEXT_INTO_NUMBERS, _FLOAT32_ONLY, _SETTING, _NO_CONVERTER)
# Steps whose converters take text: a text input is no surprise there.
_TAKES_TEXT = (OneHotEncoder, OrdinalEncoder, TargetEncoder, SimpleImputer)


def explain_export_failure(exc: BaseException, steps: Sequence[tuple[str, Any]]) -> str:
    """A refusal naming where the export failed (the step path, from `steps` as `export.steps_of` lists them),
    what the step met, why, and the fix."""
    paths = {id(step): path for path, step in steps}
    operator, step = _failing_operator(exc, paths)
    raised_by = _raised_by(exc)
    said = " ".join(str(exc).split())[:_QUOTED]
    if step is None and raised_by == "onnxruntime":
        step = _step_writing_op(said, steps)
    met = _described(operator) if operator is not None else _ort_input(said)
    path = paths.get(id(step), "pipeline") if step is not None else "pipeline"
    where = f"{path} ({type(step).__name__})" if step is not None else "the pipeline (no single step)"
    rule = _rule(said, met, step)
    return (
        f"ONNX export failed at {where}, which met {met or 'its input'}: {raised_by} said "
        f"{type(exc).__name__}: {said}. Likely cause: {rule.cause}. Fix: {rule.fix}."
    )


def _failing_operator(exc: BaseException, paths: dict[int, str]) -> tuple[Any, object | None]:
    """The converter's operator (and the recipe's step) in the innermost traceback frame that has one."""
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        for name in ("operator", "model", "raw_model"):
            candidate = frame.f_locals.get(name)
            raw = getattr(candidate, "raw_operator", candidate)
            if id(raw) in paths:
                return (candidate if candidate is not raw else None), raw
    return None, None


def _raised_by(exc: BaseException) -> str:
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    for frame in reversed(frames):
        module = str(frame.f_globals.get("__name__", "")).split(".", 1)[0]
        if module in ("skl2onnx", "onnxmltools", "onnxruntime", "onnx", "sklearn"):
            return module
    return "onnxruntime" if "ONNXRuntimeError" in str(exc) else "the converter"


def _described(operator: Any) -> str:
    kinds = []
    for variable in getattr(operator, "inputs", ()):
        kind = next((text for cls, text in _TYPES if isinstance(variable.type, cls)), type(variable.type).__name__)
        if kind not in kinds:
            kinds.append(kind)
    return " and ".join(kinds)


def _ort_input(said: str) -> str:
    found = re.search(r"Type \((tensor\(\w+\))\)", said)
    return _ORT_TYPES.get(found.group(1), found.group(1)) if found else ""


def _step_writing_op(said: str, steps: Sequence[tuple[str, Any]]) -> object | None:
    """The last step whose converter writes the op ONNX Runtime names (tree ensembles, SVMs, linear models)."""
    found = re.search(r"\b(TreeEnsemble\w*|SVM\w*|Linear\w*|Imputer|Scaler|Normalizer)\b", said)
    if found is None:
        return None
    op = found.group(1)
    for _, step in reversed(steps):
        kind = type(step).__name__
        trees = op.startswith("TreeEnsemble") and (is_boosted_trees_library(step) or "Tree" in kind or "Forest" in kind)
        svm = op.startswith("SVM") and kind in ("SVC", "SVR", "NuSVC", "NuSVR", "LinearSVC", "LinearSVR")
        if trees or svm or op.lower() in kind.lower():
            return step
    return None


def _rule(said: str, met: str, step: object | None) -> _Rule:
    """The first rule the message matches; else, a scikit-learn step that met only text did not expect it."""
    for rule in _RULES:
        if re.search(rule.pattern, said) and not (rule is _TEXT_INTO_NUMBERS and isinstance(step, _TAKES_TEXT)):
            return rule
    if met.startswith("text") and " and " not in met and step is not None and not isinstance(step, _TAKES_TEXT):
        return _TEXT_INTO_NUMBERS if library(step) == "sklearn" else _DEFAULT
    return _DEFAULT
