"""Stream capture lines into counts in the frozen bins, a chunk at a time, per model version."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import numpy as np
import orjson

from functions.core.drift import WindowCounts, count_columns
from functions.core.manifest import Manifest

CHUNK_ROWS = 50_000


class WindowCounter:
    """Adds capture lines to per-version counts; memory stays one chunk, whatever the window's size."""

    def __init__(self, manifest_of: Callable[[str], Manifest | None], *, chunk_rows: int = CHUNK_ROWS) -> None:
        self._manifest_of = manifest_of
        self._chunk_rows = chunk_rows
        self._pending: list[dict] = []  # type: ignore[type-arg]
        self.counts: dict[str, WindowCounts] = {}
        self.skipped = 0  # lines that are not capture records, or of an unknown model version

    def add_lines(self, lines: Iterable[bytes], start: datetime | None = None, end: datetime | None = None) -> None:
        start_text = start.isoformat() if start else None
        end_text = end.isoformat() if end else None
        for line in lines:
            try:
                record = orjson.loads(line)
                record["features"]  # noqa: B018 - a capture record has features
            except (orjson.JSONDecodeError, KeyError, TypeError):
                self.skipped += 1
                continue
            # ISO-8601 UTC timestamps of one format compare as text.
            time = record.get("time", "")
            if (start_text and time < start_text) or (end_text and time >= end_text):
                continue
            self._pending.append(record)
            if len(self._pending) >= self._chunk_rows:
                self.flush()

    def flush(self) -> None:
        """Count the pending records."""
        by_version: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for record in self._pending:
            by_version.setdefault(str(record.get("model_version")), []).append(record)
        self._pending = []
        for version, records in by_version.items():
            manifest = self._manifest_of(version)
            if manifest is None:
                self.skipped += len(records)
                continue
            counts = _count(manifest, records)
            current = self.counts.get(version)
            self.counts[version] = counts if current is None else current.merged(counts)

    def result(self) -> dict[str, WindowCounts]:
        self.flush()
        return self.counts


def _count(manifest: Manifest, records: list[dict]) -> WindowCounts:  # type: ignore[type-arg]
    names = manifest.feature_spec.names
    features = [record["features"] for record in records]
    columns = {}
    for name in names:
        column = [row.get(name) for row in features]
        try:
            columns[name] = np.array(column, dtype=np.float64)  # None -> NaN; fails on text
        except (TypeError, ValueError):
            columns[name] = column  # type: ignore[assignment]
    if manifest.task == "classification":
        predictions: list[object] = [record.get("label") for record in records]
    else:
        predictions = [record.get("value") for record in records]
    times = sorted(record.get("time", "") for record in records)
    return count_columns(
        manifest,
        columns,
        predictions,
        start=datetime.fromisoformat(times[0]) if times and times[0] else None,
        end=datetime.fromisoformat(times[-1]) if times and times[-1] else None,
    )
