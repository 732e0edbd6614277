"""Data capture on the request path: columnar JSON lines of a sampled request, on stdout.

No network call: Lambda ships stdout to CloudWatch Logs, whose subscription
filter (on the capture marker) forwards the lines through Firehose to hourly
partitions in S3. The request is sampled before anything is serialised; the
numeric columns are the encoder's canonical values (never the rows read
again), serialised by orjson straight from numpy; all of a request's lines
leave in one write.

The features the manifest names in `capture_exclude` are left out of every
line: no column, and no mention in a row's imputed or out-of-range flags
(which would tell whether the value was missing or outside the training range).
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from functions.core.capture import CAPTURE_MARKER, CAPTURE_SCHEMA, MAX_CAPTURED_TEXT, MAX_LINE_BYTES, ROWS_PER_LINE
from functions.core.features import EncodedBatch, FeatureSpec, FeatureType
from functions.core.manifest import Manifest
from functions.core.predictor import Prediction
from functions.core.rollout import LIVE
from functions.inference.service import Shadow

logger = logging.getLogger(__name__)

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class _SpecColumns:
    """What capture needs of a feature spec and its exclusions, computed once per loaded model."""

    def __init__(self, spec: FeatureSpec, exclude: Collection[str]) -> None:
        numeric_types = (FeatureType.NUMBER, FeatureType.INTEGER)
        self.excluded = frozenset(exclude)
        kept = [(i, f) for i, f in enumerate(spec.features) if f.name not in self.excluded]
        self.names = [f.name for _, f in kept]
        self.rows_per_line = ROWS_PER_LINE  # lowered when rows of this spec overflow MAX_LINE_BYTES
        self.numeric = [(i, f.name) for i, f in kept if f.type in numeric_types]
        all_numeric = len(self.numeric) == len(spec.features)
        self.numeric_index = None if all_numeric else np.array([i for i, _ in self.numeric], dtype=np.intp)
        # Categories and booleans are captured as sent (validated by the encoder), text cut to a bound.
        self.other = [
            (f.name, max(MAX_CAPTURED_TEXT, 1 + max((len(c) for c in f.categories or ()), default=0)))
            for _, f in kept
            if f.type not in numeric_types
        ]


class Capture:
    """Writes capture records of a sample of /predict requests."""

    def __init__(
        self,
        *,
        sampling_rate: float,
        sample: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sampling_rate = sampling_rate
        self._sample = sample
        self._clock = clock
        self._columns: dict[int, _SpecColumns] = {}

    def record(
        self,
        *,
        request_id: str,
        manifest: Manifest | None,
        model_version: str | None,
        rows: Sequence[Mapping[str, Any]],
        batch: EncodedBatch | None,
        predictions: Sequence[Prediction],
        keys: Sequence[str | None] | None = None,
        caller: str | None = None,
        role: str = LIVE,
        latency_ms: float | None = None,
        shadow: Shadow | None = None,
        candidate_error: str | None = None,
        always: bool = False,
    ) -> int:
        """Write the request's rows when it is sampled (and was encoded); the number of rows written.

        `manifest` is the answering model's (its feature spec and capture exclusions); None when no model is.
        With `always` (during a rollout, whose figures need every request) sampling is skipped.
        """
        if manifest is None or not (always or (self.sampling_rate > 0 and self._sample() < self.sampling_rate)):
            return 0
        if batch is None or batch.canonical is None or batch.missing is None:
            return 0  # rows no model could read: there are no canonical features to capture
        columns = self._columns.get(id(manifest))
        if columns is None:
            columns = self._columns[id(manifest)] = _SpecColumns(manifest.feature_spec, manifest.capture_exclude)
        record = _columnar(columns, rows, batch, predictions)
        if keys is not None:
            record["keys"] = list(keys)
        if shadow is not None:
            record["shadow"] = _shadow_columns(shadow)
        head = {
            CAPTURE_MARKER: CAPTURE_SCHEMA,
            "request_id": request_id,
            "time": self._clock().isoformat(),
            "model_version": model_version,
            "caller": caller,
            "model_role": role,
            "latency_ms": latency_ms,
            "candidate_error": candidate_error,
        }
        lines: list[bytes] = []
        count, start, written = len(predictions), 0, 0
        while start < count:
            end = min(start + columns.rows_per_line, count)
            written += _serialise(columns, head, record, start, end, lines)
            start = end
        if lines:
            # sys.stdout is looked up per call: the local stack redirects it to the function log.
            sys.stdout.write(b"\n".join(lines).decode() + "\n")
        return written


def _columnar(
    columns: _SpecColumns, rows: Sequence[Mapping[str, Any]], batch: EncodedBatch, predictions: Sequence[Prediction]
) -> dict[str, Any]:
    """The request as columns: numeric features from the encoder (NaN where missing), the rest as sent."""
    assert batch.canonical is not None and batch.missing is not None
    canonical, missing = batch.canonical, batch.missing
    if columns.numeric_index is not None:
        canonical, missing = canonical[:, columns.numeric_index], missing[:, columns.numeric_index]
    values = np.where(missing, np.nan, canonical).T  # one row per feature
    numeric_names = [name for _, name in columns.numeric]
    features: dict[str, Any]
    if len(predictions) <= ROWS_PER_LINE:
        # One line: plain lists (orjson writes NaN as null) cost less than a numpy array per column.
        features = dict(zip(numeric_names, values.tolist(), strict=True))
    else:
        # Contiguous rows, so each chunk of a column is a contiguous slice orjson serialises as is.
        values = np.ascontiguousarray(values)
        features = {name: values[j] for j, name in enumerate(numeric_names)}
    if columns.other:
        for name, limit in columns.other:
            features[name] = [
                v[:limit] if type(v) is str and len(v) > limit else v for v in (row.get(name) for row in rows)
            ]
        features = {name: features[name] for name in columns.names}  # the spec's order
    imputed = [p["imputed"] for p in predictions]
    out_of_range = [p["out_of_range"] for p in predictions]
    scores = [(p.get("outlier") or {}).get("score") for p in predictions]
    if columns.excluded:
        imputed, out_of_range = _without(imputed, columns.excluded), _without(out_of_range, columns.excluded)
    return {
        "features": features,
        **_answer_columns(predictions),
        "imputed": imputed,
        "out_of_range": out_of_range,
        "outlier": None if all(score is None for score in scores) else scores,
        "fallback": [p["fallback"] for p in predictions],
    }


def _answer_columns(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """label, probabilities (one list per class) and value of the predictions, as columns (None when absent)."""
    labels = [p["label"] for p in predictions]
    values = [p["value"] for p in predictions]
    answers = [p["probabilities"] for p in predictions]
    first = next((a for a in answers if a is not None), None)
    return {
        "label": None if all(label is None for label in labels) else labels,
        "probabilities": None if first is None else {c: [(a or {}).get(c) for a in answers] for c in first},
        "value": None if all(v is None for v in values) else values,
    }


def _shadow_columns(shadow: Shadow) -> dict[str, Any]:
    answers = _answer_columns(shadow.predictions) if shadow.predictions is not None else {}
    return {"version": shadow.version, **answers, "latency_ms": shadow.latency_ms, "error": shadow.error}


def _without(flags: list[list[str]], excluded: frozenset[str]) -> list[list[str]]:
    """Each row's flags minus the excluded features (rows without flags kept as they are)."""
    return [[name for name in row if name not in excluded] if row else row for row in flags]


def _serialise(
    columns: _SpecColumns, head: dict[str, Any], record: dict[str, Any], start: int, end: int, lines: list[bytes]
) -> int:
    """Append the line(s) of rows [start, end) to `lines`, halved until they fit MAX_LINE_BYTES; rows written."""
    line = orjson.dumps({**head, "first_row": start, "rows": end - start, **_rows(record, start, end)}, option=_NUMPY)
    if len(line) <= MAX_LINE_BYTES:
        lines.append(line)
        return end - start
    if end - start > 1:
        middle = (start + end) // 2
        # Rows this wide will not fit next time either: later chunks of this spec start smaller.
        columns.rows_per_line = min(columns.rows_per_line, middle - start)
        return _serialise(columns, head, record, start, middle, lines) + _serialise(
            columns, head, record, middle, end, lines
        )
    # Only a spec of thousands of features gets here; CloudWatch Logs would cut the line anyway.
    logger.warning("capture: row %d of request %s is %d bytes, over the line limit; not captured",
                   start, head["request_id"], len(line))  # fmt: skip
    return 0


def _rows(record: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    if start == 0 and end == len(record["fallback"]):
        return record  # the whole request fits one line

    def part(column: Any) -> Any:
        return None if column is None else column[start:end]

    def answers(columns: dict[str, Any]) -> dict[str, Any]:
        probabilities = columns.get("probabilities")
        return {
            "label": part(columns.get("label")),
            "probabilities": None if probabilities is None else {c: p[start:end] for c, p in probabilities.items()},
            "value": part(columns.get("value")),
        }

    shadow = record.get("shadow")
    return {
        "features": {name: column[start:end] for name, column in record["features"].items()},
        "keys": part(record.get("keys")),
        **answers(record),
        "imputed": record["imputed"][start:end],
        "out_of_range": record["out_of_range"][start:end],
        "outlier": part(record["outlier"]),
        "fallback": record["fallback"][start:end],
        **({"shadow": {**shadow, **answers(shadow)}} if shadow is not None else {}),
    }
