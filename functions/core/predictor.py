"""Scoring: one vectorised ONNX Runtime call per request, and plan B when the model cannot answer."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from functions.core.errors import BundleError, ModelUnavailable
from functions.core.features import CompiledSpec, EncodedBatch, FeatureSpec, FeatureType, canonical
from functions.core.manifest import FallbackAnswer, Manifest

logger = logging.getLogger(__name__)

# Rows per block of the padded model call (see Predictor._run).
PAD_ROWS = 8
# The outlier detector's input (the canonical rows, float64) and output (each row's distance) in the
# model's graph (functions.training.outliers); a graph without them has no detector.
OUTLIER_INPUT = "outlier_rows"
OUTLIER_OUTPUT = "outlier_distance"

# Why a fallback answered, as reported per row and counted in the FallbacksByReason metric.
REASON_NO_LIVE_MODEL = "no_live_model"
REASON_REGISTRY_UNREACHABLE = "registry_unreachable"  # the live pointer could not be read at a cold start
REASON_MODEL_UNAVAILABLE = "model_unavailable"
REASON_RUNTIME_ERROR = "runtime_error"
REASON_NON_FINITE_OUTPUT = "non_finite_output"


# One row's answer, shaped as the API returns it (schemas.PredictionOut): label and
# probabilities (classification) or value (regression), imputed, out_of_range, outlier,
# fallback. A plain dict, because a thousand of them are built and serialised per request.
Prediction = dict[str, Any]


def _answer(
    label: str | None, probabilities: dict[str, float] | None, value: float | None,
    imputed: list[str], out_of_range: list[str], outlier: dict[str, Any] | None, fallback: str | None,
) -> Prediction:  # fmt: skip
    return {
        "label": label,
        "probabilities": probabilities,
        "value": value,
        "imputed": imputed,
        "out_of_range": out_of_range,
        "outlier": outlier,
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

    def __init__(self, manifest: Manifest, onnx_bytes: bytes, *, digest: str | None = None) -> None:
        """Load a bundle, checked against its content hash: the full SHA-256 `digest` the live pointer recorded at
        promotion (a 16-character version alone could be matched by a forged bundle in about 2^32 tries)."""
        # How long each step of the load took, in ms (logged with "live model loaded", read by `make bench`).
        self.load_ms: dict[str, float] = {}
        started = time.perf_counter()
        found = manifest.content_digest(onnx_bytes) if manifest.version or digest else None
        if found is not None and manifest.version and not found.startswith(manifest.version):
            raise BundleError(f"bundle {manifest.version} does not match its content hash")
        if found is not None and digest is not None and found != digest:
            raise BundleError(f"bundle {manifest.version} does not match the full digest recorded at its promotion")
        started = self._timed("hash_check", started)
        try:
            self._session = ort.InferenceSession(
                onnx_bytes, sess_options=_session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ONNX Runtime raises its own untyped errors for a bad graph
            raise BundleError(f"bundle {manifest.version} has an unreadable ONNX graph: {exc}") from exc
        self.manifest = manifest
        self.version = manifest.version
        self.spec = CompiledSpec(manifest.feature_spec)
        self._inputs = GraphInputs.of(self._session)
        self._classes = list(manifest.classes or ())
        self._outputs = [output.name for output in self._session.get_outputs()]
        detector = manifest.outliers
        self._threshold = detector.threshold if detector and OUTLIER_OUTPUT in self._outputs else None
        started = self._timed("session", started)
        self.batch_invariant = self._is_batch_invariant()
        self._timed("batch_invariance_probe", started)
        if not self.batch_invariant:
            logger.warning("model %s answers differently in batches on this CPU; scoring row by row", self.version)

    def _timed(self, step: str, started: float) -> float:
        now = time.perf_counter()
        self.load_ms[step] = (now - started) * 1000
        return now

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> EncodedBatch:
        """Validate and encode rows (raises InvalidRequest)."""
        return self.spec.encode(rows)

    def score(self, batch: EncodedBatch) -> list[Prediction]:
        """Answer every row of an encoded batch; raises ModelUnavailable with a reason on failure."""
        try:
            outputs = self._run(batch.matrix, batch.texts)  # the canonical values, already in float32
        except Exception as exc:  # any runtime failure must become plan B, never a 500
            raise ModelUnavailable(REASON_RUNTIME_ERROR) from exc
        if self.manifest.task == "classification":
            return self._classification(outputs, batch)
        return self._regression(outputs, batch)

    def _run(self, canonical: np.ndarray, texts: Mapping[int, Sequence[str]]) -> list[np.ndarray]:
        """The graph's outputs for these rows, the same for a row whatever batch it arrives in.

        ONNX Runtime takes another kernel for a single row than for a block of
        rows, and the two round differently in the last bits of float32. Every
        call is therefore padded to a multiple of PAD_ROWS (with copies of the
        first row), so each row goes through the same block kernel. Should a
        model still vary with the batch (checked at load), rows are scored one
        by one.
        """
        if not self.batch_invariant:
            parts = [self._run_padded(*_rows(canonical, texts, slice(i, i + 1))) for i in range(canonical.shape[0])]
            return [np.concatenate(column) for column in zip(*parts, strict=True)]
        return self._run_padded(canonical, texts)

    def _run_padded(self, canonical: np.ndarray, texts: Mapping[int, Sequence[str]]) -> list[np.ndarray]:
        rows = canonical.shape[0]
        padding = -rows % PAD_ROWS
        if padding:
            canonical = np.concatenate([canonical, np.repeat(canonical[:1], padding, axis=0)])
            texts = {column: [*values, *[values[0]] * padding] for column, values in texts.items()}
        outputs = self._session.run(self._outputs, self._inputs.feed(canonical, texts))
        return [np.asarray(output)[:rows] for output in outputs]

    def _is_batch_invariant(self) -> bool:
        """Whether probe rows score identically alone and together on this CPU."""
        probe, texts = probe_rows(self.manifest.feature_spec)
        together = self._run_padded(probe, texts)
        for index in range(probe.shape[0]):
            alone = self._run_padded(*_rows(probe, texts, slice(index, index + 1)))
            if any(not np.array_equal(a[0], t[index]) for a, t in zip(alone, together, strict=True)):
                return False
        return True

    def _classification(self, outputs: list[Any], batch: EncodedBatch) -> list[Prediction]:
        labels, probabilities = outputs[0], np.asarray(outputs[1], dtype=np.float64)
        if not np.all(np.isfinite(probabilities)):
            raise ModelUnavailable(REASON_NON_FINITE_OUTPUT)
        classes = self._classes
        rows = probabilities.tolist()
        return [
            _answer(str(label), dict(zip(classes, row, strict=True)), None, imputed, outside, outlier, None)
            for label, row, imputed, outside, outlier in zip(
                labels.tolist(), rows, batch.imputed, batch.out_of_range, self._outliers(outputs), strict=True
            )
        ]

    def _regression(self, outputs: list[Any], batch: EncodedBatch) -> list[Prediction]:
        values = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(values)):
            raise ModelUnavailable(REASON_NON_FINITE_OUTPUT)
        return [
            _answer(None, None, value, imputed, outside, outlier, None)
            for value, imputed, outside, outlier in zip(
                values.tolist(), batch.imputed, batch.out_of_range, self._outliers(outputs), strict=True
            )
        ]

    def _outliers(self, outputs: list[Any]) -> list[dict[str, Any] | None]:
        """Each row's outlier score (its distance over the detector's threshold) and flag; None without one."""
        rows = len(outputs[0])
        if self._threshold is None:
            return [None] * rows
        scores = np.asarray(outputs[-1], dtype=np.float64) / self._threshold
        # A distance that is not finite (an extreme value overflowing) is as far from training as it gets.
        scores = np.where(np.isfinite(scores), scores, np.finfo(np.float64).max)
        flags = (scores > 1.0).tolist()
        return [{"score": score, "flag": flag} for score, flag in zip(scores.round(4).tolist(), flags, strict=True)]


@dataclass(frozen=True)
class GraphInputs:
    """How a graph takes rows: one matrix (all-numeric data, and older bundles) or one input per feature.

    Model values are the canonical values rounded to float32, in training and serving alike:
    skl2onnx joins numeric columns through a float32 op (FeatureVectorizer), so values that
    float32 holds exactly pass it unchanged, and the graph's float64 steps then compute what
    scikit-learn computed on the same values. Categories are fed as their text.
    """

    names: tuple[str, ...]
    dtypes: tuple[Any, ...]  # np.float64, np.float32, or object (text)
    outliers: bool = False  # the graph also takes the rows for its outlier detector

    @classmethod
    def of(cls, session: ort.InferenceSession) -> GraphInputs:
        kinds = {"tensor(double)": np.float64, "tensor(float)": np.float32, "tensor(string)": object}
        inputs = [i for i in session.get_inputs() if i.name != OUTLIER_INPUT]
        detector = any(i.name == OUTLIER_INPUT for i in session.get_inputs())
        return cls(tuple(i.name for i in inputs), tuple(kinds.get(i.type, np.float32) for i in inputs), detector)

    def feed(self, canonical: np.ndarray, texts: Mapping[int, Sequence[str]]) -> dict[str, np.ndarray]:
        """The graph's inputs for rows given as canonical values (category codes; float64, or already
        rounded to float32) and category texts."""
        values = np.asarray(canonical, dtype=np.float32)
        feed = {OUTLIER_INPUT: values.astype(np.float64)} if self.outliers else {}
        if len(self.names) == 1 and self.dtypes[0] is not object:
            feed[self.names[0]] = np.ascontiguousarray(values, dtype=self.dtypes[0])
            return feed
        for column, (name, dtype) in enumerate(zip(self.names, self.dtypes, strict=True)):
            if dtype is object:
                feed[name] = np.array(texts[column], dtype=object).reshape(-1, 1)
            else:
                feed[name] = np.ascontiguousarray(values[:, column : column + 1], dtype=dtype)
        return feed


def _rows(
    canonical: np.ndarray, texts: Mapping[int, Sequence[str]], rows: slice
) -> tuple[np.ndarray, dict[int, list[str]]]:
    return canonical[rows], {column: list(values[rows]) for column, values in texts.items()}


def probe_rows(spec: FeatureSpec, count: int = 2 * PAD_ROWS + 3) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Synthetic, valid rows spread over each feature's training range (no training data needed):
    canonical values, and the text of each category column."""
    rng = np.random.default_rng(0)
    columns = []
    texts: dict[int, list[str]] = {}
    for index, feature in enumerate(spec.features):
        if feature.categories:
            codes = rng.integers(0, len(feature.categories), count)
            columns.append(codes.astype(np.float64))
            texts[index] = [feature.categories[code] for code in codes]
        elif feature.type is FeatureType.BOOLEAN:
            columns.append(rng.integers(0, 2, count).astype(np.float64))
        else:
            low = feature.train_min if feature.train_min is not None else feature.encode_impute() - 1
            high = feature.train_max if feature.train_max is not None else feature.encode_impute() + 1
            columns.append(canonical(rng.uniform(low, high, count), feature.scale))
    return np.column_stack(columns), texts


def fallback_predictions(
    answer: FallbackAnswer | None, reason: str, count: int, batch: EncodedBatch | None = None
) -> list[Prediction]:
    """Plan B for `count` rows: the declared fallback answer, flagged with the reason."""
    answer = answer or FallbackAnswer()
    value = answer.value if answer.value is not None and math.isfinite(answer.value) else None
    imputed = batch.imputed if batch else [[] for _ in range(count)]
    outside = batch.out_of_range if batch else [[] for _ in range(count)]
    return [
        _answer(answer.label, answer.probabilities, value, imputed[i], outside[i], None, reason) for i in range(count)
    ]
