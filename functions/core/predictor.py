"""Scoring: one vectorised ONNX Runtime call per request, and plan B when the model cannot answer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.core.errors import BundleError, ModelUnavailable
from functions.core.features import CompiledSpec, EncodedBatch
from functions.core.manifest import FallbackAnswer, Manifest

# Why a fallback answered, as reported per row and counted in the FallbacksByReason metric.
REASON_NO_LIVE_MODEL = "no_live_model"
REASON_MODEL_UNAVAILABLE = "model_unavailable"
REASON_RUNTIME_ERROR = "runtime_error"
REASON_NON_FINITE_OUTPUT = "non_finite_output"


# One row's answer, shaped as the API returns it (schemas.PredictionOut): label and
# probabilities (classification) or value (regression), imputed, out_of_range, fallback.
# A plain dict, because a thousand of them are built and serialised per request.
Prediction = dict[str, Any]


def _answer(
    label: str | None, probabilities: dict[str, float] | None, value: float | None,
    imputed: list[str], out_of_range: list[str], fallback: str | None,
) -> Prediction:  # fmt: skip
    return {
        "label": label,
        "probabilities": probabilities,
        "value": value,
        "imputed": imputed,
        "out_of_range": out_of_range,
        "fallback": fallback,
    }


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One request is one small matrix: threads cost more to wake than they save,
    # and Lambda gives a function about one vCPU per 1,769 MB anyway.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class Predictor:
    """A loaded model version: encodes rows, scores them in one call, and shapes the answers."""

    def __init__(self, manifest: Manifest, onnx_bytes: bytes) -> None:
        if manifest.version and manifest.content_version(onnx_bytes) != manifest.version:
            raise BundleError(f"bundle {manifest.version} does not match its content hash")
        try:
            self._session = ort.InferenceSession(
                onnx_bytes, sess_options=_session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime raises its own untyped errors for a bad graph
            raise BundleError(f"bundle {manifest.version} has an unreadable ONNX graph: {exc}") from exc
        self.manifest = manifest
        self.version = manifest.version
        self.spec = CompiledSpec(manifest.feature_spec)
        self._input = manifest.onnx_input
        self._classes = list(manifest.classes or ())
        self._outputs = [output.name for output in self._session.get_outputs()]

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> EncodedBatch:
        """Validate and encode rows (raises InvalidRequest)."""
        return self.spec.encode(rows)

    def score(self, batch: EncodedBatch) -> list[Prediction]:
        """Answer every row of an encoded batch; raises ModelUnavailable with a reason on failure."""
        try:
            outputs = self._session.run(self._outputs, {self._input: batch.matrix})
        except Exception as exc:  # any runtime failure must become plan B, never a 500
            raise ModelUnavailable(REASON_RUNTIME_ERROR) from exc
        if self.manifest.task == "classification":
            return self._classification(outputs, batch)
        return self._regression(outputs, batch)

    def _classification(self, outputs: list[Any], batch: EncodedBatch) -> list[Prediction]:
        labels, probabilities = outputs[0], np.asarray(outputs[1], dtype=np.float64)
        if not np.all(np.isfinite(probabilities)):
            raise ModelUnavailable(REASON_NON_FINITE_OUTPUT)
        classes = self._classes
        rows = probabilities.tolist()
        return [
            _answer(str(label), dict(zip(classes, row, strict=True)), None, imputed, outside, None)
            for label, row, imputed, outside in zip(
                labels.tolist(), rows, batch.imputed, batch.out_of_range, strict=True
            )
        ]

    def _regression(self, outputs: list[Any], batch: EncodedBatch) -> list[Prediction]:
        values = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise ModelUnavailable(REASON_NON_FINITE_OUTPUT)
        return [
            _answer(None, None, value, imputed, outside, None)
            for value, imputed, outside in zip(values.tolist(), batch.imputed, batch.out_of_range, strict=True)
        ]


def fallback_predictions(
    answer: FallbackAnswer | None, reason: str, count: int, batch: EncodedBatch | None = None
) -> list[Prediction]:
    """Plan B for `count` rows: the declared fallback answer, flagged with the reason."""
    answer = answer or FallbackAnswer()
    value = answer.value if answer.value is not None and math.isfinite(answer.value) else None
    imputed = batch.imputed if batch else [[] for _ in range(count)]
    outside = batch.out_of_range if batch else [[] for _ in range(count)]
    return [_answer(answer.label, answer.probabilities, value, imputed[i], outside[i], reason) for i in range(count)]
