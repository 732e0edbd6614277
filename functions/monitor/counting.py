"""Stream capture lines into counts in the frozen bins, a chunk at a time, per model version."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any

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
        self._raw: list[bytes] = []
        self._window = ("", "\uffff")
        self.counts: dict[str, WindowCounts] = {}
        self.skipped = 0  # lines that are not capture records, or of an unknown model version

    def add_lines(self, lines: Iterable[bytes], start: datetime | None = None, end: datetime | None = None) -> None:
        """Count the capture records among `lines` whose time is in [start, end)."""
        self._window = (start.isoformat() if start else "", end.isoformat() if end else "\uffff")
        raw = self._raw
        for line in lines:
            raw.append(line)
            if len(raw) >= self._chunk_rows:
                self.flush()
        self.flush()

    def _parse(self) -> list[dict]:  # type: ignore[type-arg]
        """The pending lines as records: one parse of the whole chunk, line by line only if it is malformed."""
        raw = list(self._raw)
        self._raw.clear()  # in place: add_lines holds a reference to this list
        if not raw:
            return []
        try:
            parsed = orjson.loads(b"[" + b",".join(raw) + b"]")
        except orjson.JSONDecodeError:
            parsed = []
            for line in raw:
                try:
                    parsed.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    parsed.append(None)
        low, high = self._window
        # ISO-8601 UTC timestamps of one format compare as text.
        records = [
            r for r in parsed
            if type(r) is dict and type(r.get("features")) is dict and low <= str(r.get("time", "")) < high
        ]  # fmt: skip
        self.skipped += sum(1 for r in parsed if type(r) is not dict or type(r.get("features")) is not dict)
        return records

    def flush(self) -> None:
        """Count the pending lines."""
        by_version: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for record in self._parse():
            by_version.setdefault(str(record.get("model_version")), []).append(record)
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
    columns: dict[str, Any] = {}
    try:
        # One C call per row when every row carries every feature (the normal case): rows -> matrix.
        getter = itemgetter(*names)
        values = [getter(row) for row in features] if len(names) > 1 else [(row[names[0]],) for row in features]
        matrix = np.array(values, dtype=np.float64)  # None -> NaN; text raises
        columns = {name: matrix[:, i] for i, name in enumerate(names)}
    except (KeyError, TypeError, ValueError):
        for name in names:
            column = [row.get(name) for row in features]
            try:
                columns[name] = np.array(column, dtype=np.float64)
            except (TypeError, ValueError):
                columns[name] = column  # categories and booleans as text
    if manifest.task == "classification":
        predictions: list[object] = [record.get("label") for record in records]
    else:
        predictions = [record.get("value") for record in records]
    times = [record.get("time") or "" for record in records]
    first, last = min(times), max(times)
    return count_columns(
        manifest,
        columns,
        predictions,
        start=datetime.fromisoformat(first) if first else None,
        end=datetime.fromisoformat(last) if last else None,
    )
