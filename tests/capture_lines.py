"""Capture lines as the inference handler writes them (columnar records), built from rows for tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from functions.core.capture import CAPTURE_MARKER, CAPTURE_SCHEMA, ROWS_PER_LINE


def capture_lines(
    *,
    request_id: str,
    time: str,
    model_version: str | None,
    features: Sequence[Mapping[str, Any]],
    labels: Sequence[str | None] | None = None,
    probabilities: Sequence[Mapping[str, float]] | None = None,
    values: Sequence[float | None] | None = None,
    keys: Sequence[str | None] | None = None,
    rows_per_line: int = ROWS_PER_LINE,
) -> list[bytes]:
    """The lines of one request whose rows are `features`, ROWS_PER_LINE rows a line."""
    names = list(dict.fromkeys(name for row in features for name in row))
    lines = []
    for start in range(0, len(features), rows_per_line):
        end = min(start + rows_per_line, len(features))
        part = features[start:end]
        record: dict[str, Any] = {
            CAPTURE_MARKER: CAPTURE_SCHEMA,
            "request_id": request_id,
            "time": time,
            "model_version": model_version,
            "first_row": start,
            "rows": end - start,
            "features": {name: [row.get(name) for row in part] for name in names},
            "keys": list(keys[start:end]) if keys is not None else None,
            "label": list(labels[start:end]) if labels is not None else None,
            "probabilities": (
                {c: [p[c] for p in probabilities[start:end]] for c in probabilities[0]} if probabilities else None
            ),
            "value": list(values[start:end]) if values is not None else None,
            "imputed": [[] for _ in part],
            "out_of_range": [[] for _ in part],
            "fallback": [None for _ in part],
        }
        lines.append(orjson.dumps(record))
    return lines
