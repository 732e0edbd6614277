"""Stream capture lines into counts in the frozen bins, a chunk at a time, per model version.

Most of a capture line is its feature columns, and validating them value by
value (as `CaptureRecord.model_validate_json` does) cost more than the rest of
the count. So a line is parsed once with orjson; `CaptureRecord` validates
everything but the feature values; and each line's numeric features become one
numpy block at once, a conversion that also fails on any value that is not a
scalar. A line is accepted exactly when `CaptureRecord` would accept it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from functions.core.capture import CaptureRecord
from functions.core.drift import WindowCounts, as_float, count_columns
from functions.core.estimated_quality import answered_rows
from functions.core.features import FeatureType
from functions.core.manifest import Manifest
from functions.core.segments import SegmentCounts, count_segments

logger = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
NUMERIC = (FeatureType.NUMBER, FeatureType.INTEGER)
# The JSON values a captured feature value may be (functions.core.capture.FeatureValue).
_SCALARS = frozenset({float, int, str, bool, type(None)})


def _read_line(line: bytes) -> tuple[CaptureRecord, Mapping[str, list[Any]]]:
    """The line's record, validated but for its feature values, and its feature columns as parsed.

    Raises ValueError (pydantic's ValidationError is one) when the line is no capture record;
    the caller checks the feature values as it converts them.
    """
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        # What orjson refuses and pydantic reads (NaN, integers beyond 64 bits); the rest raises here.
        record = CaptureRecord.model_validate_json(line)
        return record, record.features
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        record = CaptureRecord.model_validate(data)  # raises: no record without a features object
        return record, record.features
    features: dict[str, Any] = data["features"]
    record = CaptureRecord.model_validate({**data, "features": {}})
    for name, column in features.items():
        if not isinstance(column, list) or len(column) != record.rows:
            raise ValueError(f"column features.{name} is not a list of {record.rows} values")
    return record, features


def _check_scalars(name: str, column: Sequence[Any]) -> None:
    if not set(map(type, column)) <= _SCALARS:
        raise ValueError(f"column features.{name} holds a value that is not a number, text, boolean or null")


def _number_column(name: str, column: list[Any], rows: int) -> np.ndarray:
    with suppress(TypeError, ValueError, OverflowError):
        numbers = np.array(column, dtype=np.float64)
        if numbers.shape == (rows,):
            return numbers
    _check_scalars(name, column)
    return as_float(column)  # a column with a stray text value: text and booleans are missing


def _number_block(features: Mapping[str, list[Any]], names: Sequence[str], rows: int) -> np.ndarray:
    """The numeric features of one record as a (features, rows) float64 block, NaN where missing or absent.

    Read as numpy reads them (null as NaN); in a column numpy cannot read, as as_float does.
    Raises ValueError on a value that is not a scalar.
    """
    absent = [None] * rows
    with suppress(TypeError, ValueError, OverflowError):
        block = np.array([features.get(name, absent) for name in names], dtype=np.float64)
        if block.shape == (len(names), rows):  # so every value was a scalar
            return block
    return np.array([_number_column(name, features.get(name, absent), rows) for name in names]).reshape(-1, rows)


class _Pending:
    """The rows of one model version not counted yet: numeric features in per-record blocks, the rest as lists."""

    def __init__(self, manifest: Manifest) -> None:
        features = manifest.feature_spec.features
        self.numeric = [f.name for f in features if f.type in NUMERIC]
        self._numeric = frozenset(self.numeric)
        self.blocks: list[np.ndarray] = []
        self.columns: dict[str, list[Any]] = {f.name: [] for f in features if f.type not in NUMERIC}
        self._classification = manifest.task == "classification"
        self._classes = manifest.classes or ()
        self.predictions: list[Any] = []  # labels (classification) or values
        # The model's probabilities (rows x classes) and predicted class of the rows it answered: what
        # estimated quality reads.
        self.probabilities: list[np.ndarray] = []
        self.predicted: list[np.ndarray] = []
        self.outliers: list[float | None] = []
        self.answered: list[bool] = []  # by the model, not plan B
        self.rows = 0
        self.start: datetime | None = None
        self.end: datetime | None = None

    def add(self, record: CaptureRecord, features: Mapping[str, list[Any]]) -> None:
        """Add the record's rows; raises ValueError, adding nothing, when a feature value is not a scalar."""
        rows = record.rows
        block = _number_block(features, self.numeric, rows)
        for name, column in features.items():
            if name not in self._numeric:
                _check_scalars(name, column)
        self.blocks.append(block)
        for name, target in self.columns.items():
            captured = features.get(name)
            target.extend(captured if captured is not None else [None] * rows)  # absent: missing in its rows
        self.rows += rows
        self.predictions.extend((record.label if self._classification else record.value) or [None] * rows)
        self.outliers.extend(record.outlier or [None] * rows)
        self.answered.extend([reason is None for reason in record.fallback])
        if self._classification and record.probabilities:
            self._add_probabilities(record)
        time = record.time
        self.start = time if self.start is None or time < self.start else self.start
        self.end = time if self.end is None or time > self.end else self.end

    def _add_probabilities(self, record: CaptureRecord) -> None:
        matrix, predicted = answered_rows(
            record.probabilities, record.label, self._classes, record.rows, [r is None for r in record.fallback]
        )
        self.probabilities.append(matrix)
        self.predicted.append(predicted)

    def feature_columns(self) -> dict[str, Any]:
        """Every feature of the spec: numeric ones as float64 arrays, the others as captured."""
        numbers = np.concatenate(self.blocks, axis=1) if self.blocks else np.empty((len(self.numeric), 0))
        return {**{name: numbers[i] for i, name in enumerate(self.numeric)}, **self.columns}


class WindowCounter:
    """Adds capture lines to per-version counts; memory stays one chunk, whatever the window's size."""

    def __init__(self, manifest_of: Callable[[str], Manifest | None], *, chunk_rows: int = CHUNK_ROWS) -> None:
        self._manifest_of = manifest_of
        self._manifests: dict[str, Manifest | None] = {}
        self._chunk_rows = chunk_rows
        self._pending: dict[str, _Pending] = {}
        self._pending_rows = 0
        self.counts: dict[str, WindowCounts] = {}
        self.segments: dict[str, SegmentCounts] = {}  # versions whose manifest declares segments
        # Per version, the probabilities and predicted classes of the answered rows (classification): estimated
        # quality needs the rows themselves, 8 bytes per class and row, not counts.
        self._answers: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self.skipped = 0  # lines that are not capture records, or of an unknown model version

    def add_lines(self, lines: Iterable[bytes], start: datetime | None = None, end: datetime | None = None) -> None:
        """Count the capture records among `lines` whose time is in [start, end)."""
        malformed = 0
        for line in lines:
            try:
                record, features = _read_line(line)
                if (start is not None and record.time < start) or (end is not None and record.time >= end):
                    for name, column in features.items():  # a malformed line counts as one wherever it falls
                        _check_scalars(name, column)
                    continue
                self._add(record, features)
            except ValueError as exc:
                if not malformed:
                    logger.warning("skipping a malformed capture line: %s", _reason(exc))
                malformed += 1
                continue
            if self._pending_rows >= self._chunk_rows:
                self.flush()
        if malformed:
            logger.warning("skipped %d malformed capture lines", malformed)
        self.skipped += malformed
        self.flush()

    def add_record(self, record: CaptureRecord) -> None:
        """Count one record under its model version (skipped, counted, when the version is unknown)."""
        self._add(record, record.features)
        if self._pending_rows >= self._chunk_rows:
            self.flush()

    def _add(self, record: CaptureRecord, features: Mapping[str, list[Any]]) -> None:
        version = str(record.model_version)
        if version not in self._manifests:
            self._manifests[version] = self._manifest_of(version)
        manifest = self._manifests[version]
        if manifest is None:
            for name, column in features.items():
                _check_scalars(name, column)
            self.skipped += 1
            return
        pending = self._pending.get(version)
        if pending is None:
            pending = self._pending[version] = _Pending(manifest)
        pending.add(record, features)
        self._pending_rows += record.rows

    def flush(self) -> None:
        """Count the pending records."""
        pending, self._pending, self._pending_rows = self._pending, {}, 0
        for version, rows in pending.items():
            manifest = self._manifests[version]
            assert manifest is not None  # records of unknown versions are never pending
            columns, predictions = rows.feature_columns(), rows.predictions
            counts = count_columns(
                manifest, columns, predictions, start=rows.start, end=rows.end, outlier_scores=rows.outliers
            )
            current = self.counts.get(version)
            self.counts[version] = counts if current is None else current.merged(counts)
            if rows.probabilities:
                kept = self._answers.setdefault(version, ([], []))
                kept[0].extend(rows.probabilities)
                kept[1].extend(rows.predicted)
            if manifest.segments:
                tallies = count_segments(manifest, columns, predictions, rows.answered)
                known = self.segments.get(version)
                self.segments[version] = tallies if known is None else known.merged(tallies)

    def result(self) -> dict[str, WindowCounts]:
        self.flush()
        return self.counts

    def answers(self, version: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
        """The model probabilities (rows x classes) and predicted class indices of `version`'s answered rows."""
        self.flush()
        matrices, predicted = self._answers.get(version, ([], []))
        if not matrices:
            return np.empty((0, classes)), np.empty(0, dtype=np.int64)
        return np.concatenate(matrices), np.concatenate(predicted)

    def segment_counts(self, version: str) -> SegmentCounts:
        """The per-segment tallies of `version`'s rows (empty when its manifest declares no segments)."""
        self.flush()
        return self.segments.get(version, SegmentCounts())


def _reason(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        return f"{first['msg']} at {first['loc']}"
    return str(exc)
