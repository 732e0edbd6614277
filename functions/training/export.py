"""Export a fitted pipeline to ONNX and prove it answers like scikit-learn."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

from functions.core.errors import BundleError
from functions.core.manifest import Parity

ONNX_INPUT = "input"
TARGET_OPSET = 18


def export_onnx(pipeline: Pipeline, n_features: int, task: str) -> bytes:
    """The fitted pipeline as an ONNX graph taking one float32 matrix."""
    options = {"zipmap": False} if task == "classification" else None
    try:
        graph = to_onnx(
            pipeline,
            initial_types=[(ONNX_INPUT, FloatTensorType([None, n_features]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported estimators
        raise BundleError(f"skl2onnx cannot export this pipeline: {exc}") from exc
    graph.doc_string = ""
    return bytes(graph.SerializeToString())


def check_parity(pipeline: Pipeline, onnx_bytes: bytes, holdout: np.ndarray, task: str, tolerance: float) -> Parity:
    """Compare ONNX Runtime with scikit-learn on the holdout set; raise BundleError on a mismatch."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {ONNX_INPUT: holdout.astype(np.float32)})
    if task == "classification":
        labels_equal = bool(np.array_equal(np.asarray(outputs[0]).astype(str), pipeline.predict(holdout).astype(str)))
        diff = float(np.max(np.abs(np.asarray(outputs[1], np.float64) - pipeline.predict_proba(holdout))))
    else:
        labels_equal = None
        expected = np.asarray(pipeline.predict(holdout), np.float64)
        # Relative above 1, so a target in the thousands is held to the same digits.
        actual = np.asarray(outputs[0], np.float64).reshape(-1)
        diff = float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)))
    parity = Parity(rows=int(holdout.shape[0]), labels_equal=labels_equal, max_abs_diff=diff, tolerance=tolerance)
    if labels_equal is False or diff > tolerance or not np.isfinite(diff):
        raise BundleError(
            f"ONNX export refused: labels equal={labels_equal}, max difference {diff:.3g} "
            f"over tolerance {tolerance:g} on {parity.rows} holdout rows"
        )
    return parity
