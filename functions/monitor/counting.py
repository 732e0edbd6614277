"""Stream capture lines into counts in the frozen bins, a chunk at a time, per model version."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import suppress
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from functions.core.capture import CaptureRecord
from functions.core.drift import WindowCounts, count_columns
from functions.core.features import FeatureType
from functions.core.manifest import Manifest
from functions.core.segments import SegmentCounts, count_segments

logger = logging.getLogger(__name__)

CHUNK_ROWS = 50_000


class _Pending:
    """The columns of one model version's records not counted yet, appended to as records arrive."""

    def __init__(self) -> None:
        self.features: dict[str, list[Any]] = {}
        self.labels: list[Any] = []
        self.values: list[Any] = []
        self.outliers: list[float | None] = []
        self.answered: list[bool] = []  # by the model, not plan B
        self.rows = 0
        self.start: datetime | None = None
        self.end: datetime | None = None

    def add(self, record: CaptureRecord) -> None:
        # Extending a few long lists (and dropping the record) keeps the garbage collector's
        # work small: a chunk is a few dozen containers, not a list per column per record.
        rows = record.rows
        features = self.features
        for name, column in record.features.items():
            target = features.get(name)
            if target is None:
                target = features[name] = [None] * self.rows
            target.extend(column)
        self.rows += rows
        for target in features.values():
            if len(target) < self.rows:  # a feature this record lacks: missing in its rows
                target.extend([None] * (self.rows - len(target)))
        self.labels.extend(record.label or [None] * rows)
        self.values.extend(record.value or [None] * rows)
        self.outliers.extend(record.outlier or [None] * rows)
        self.answered.extend(reason is None for reason in record.fallback)
        time = record.time
        self.start = time if self.start is None or time < self.start else self.start
        self.end = time if self.end is None or time > self.end else self.end


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
        self.skipped = 0  # lines that are not capture records, or of an unknown model version

    def add_lines(self, lines: Iterable[bytes], start: datetime | None = None, end: datetime | None = None) -> None:
        """Count the capture records among `lines` whose time is in [start, end)."""
        malformed = 0
        for line in lines:
            try:
                record = CaptureRecord.model_validate_json(line)
            except ValidationError as exc:
                if not malformed:
                    first = exc.errors(include_url=False, include_input=False)[0]
                    logger.warning("skipping a malformed capture line: %s at %s", first["msg"], first["loc"])
                malformed += 1
                continue
            if (start is not None and record.time < start) or (end is not None and record.time >= end):
                continue
            self.add_record(record)
        if malformed:
            logger.warning("skipped %d malformed capture lines", malformed)
        self.skipped += malformed
        self.flush()

    def add_record(self, record: CaptureRecord) -> None:
        """Count one record under its model version (skipped, counted, when the version is unknown)."""
        version = str(record.model_version)
        if version not in self._manifests:
            self._manifests[version] = self._manifest_of(version)
        if self._manifests[version] is None:
            self.skipped += 1
            return
        pending = self._pending.get(version)
        if pending is None:
            pending = self._pending[version] = _Pending()
        pending.add(record)
        self._pending_rows += record.rows
        if self._pending_rows >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Count the pending records."""
        pending, self._pending, self._pending_rows = self._pending, {}, 0
        for version, columns in pending.items():
            manifest = self._manifests[version]
            assert manifest is not None  # records of unknown versions are never pending
            counts = _count(manifest, columns)
            current = self.counts.get(version)
            self.counts[version] = counts if current is None else current.merged(counts)
            if manifest.segments:
                predictions = columns.labels if manifest.task == "classification" else columns.values
                tallies = count_segments(manifest, columns.features, predictions, columns.answered)
                known = self.segments.get(version)
                self.segments[version] = tallies if known is None else known.merged(tallies)

    def result(self) -> dict[str, WindowCounts]:
        self.flush()
        return self.counts

    def segment_counts(self, version: str) -> SegmentCounts:
        """The per-segment tallies of `version`'s rows (empty when its manifest declares no segments)."""
        self.flush()
        return self.segments.get(version, SegmentCounts())


def _count(manifest: Manifest, pending: _Pending) -> WindowCounts:
    columns: dict[str, Any] = {}
    for feature in manifest.feature_spec.features:
        column = pending.features.get(feature.name)
        if column is None:
            continue  # absent from every record: count_columns counts it missing
        columns[feature.name] = column  # categories and booleans as captured
        if feature.type in (FeatureType.NUMBER, FeatureType.INTEGER):
            # None -> NaN; a column with a stray text value stays a list, read as missing by count_columns.
            with suppress(TypeError, ValueError):
                columns[feature.name] = np.array(column, dtype=np.float64)
    predictions = pending.labels if manifest.task == "classification" else pending.values
    return count_columns(
        manifest, columns, predictions, start=pending.start, end=pending.end, outlier_scores=pending.outliers
    )
