"""Data capture on the request path: one JSON line per row of a sampled request, on stdout.

No network call: Lambda ships stdout to CloudWatch Logs, whose subscription
filter (on the capture marker) forwards the lines through Firehose to hourly
partitions in S3. The request is sampled before anything is serialised, and
all of its lines leave in one write.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from functions.core.capture import CAPTURE_MARKER, CAPTURE_SCHEMA
from functions.core.features import FeatureSpec, FeatureType, canonical
from functions.core.predictor import Prediction


class _SpecColumns:
    """What capture needs of a feature spec, computed once per loaded model."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.names = spec.names
        numeric = [f.type in (FeatureType.NUMBER, FeatureType.INTEGER) for f in spec.features]
        self.all_numeric = all(numeric)
        self.numeric = np.array(numeric)
        self.scale = np.array([f.scale for f in spec.features])


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
        spec: FeatureSpec | None,
        model_version: str | None,
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction],
    ) -> int:
        """Write the request's rows when it is sampled; the number of rows written."""
        if self.sampling_rate <= 0 or spec is None or self._sample() >= self.sampling_rate:
            return 0
        columns = self._columns.get(id(spec))
        if columns is None:
            columns = self._columns[id(spec)] = _SpecColumns(spec)
        features = _canonical_rows(columns, rows)
        head = {
            CAPTURE_MARKER: CAPTURE_SCHEMA,
            "request_id": request_id,
            "time": self._clock().isoformat(),
            "model_version": model_version,
        }
        lines = [
            orjson.dumps({**head, "row": index, "features": values, **prediction})
            for index, (values, prediction) in enumerate(zip(features, predictions, strict=True))
        ]
        # sys.stdout is looked up per call: the local stack redirects it to the function log.
        sys.stdout.write(b"\n".join(lines).decode() + "\n")
        return len(lines)


def _canonical_rows(columns: _SpecColumns, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each row's features at their precision; missing ones as None (NaN, which orjson writes as null)."""
    names = columns.names
    values = [[row.get(name) for name in names] for row in rows]
    if columns.all_numeric:
        matrix = canonical(np.array(values, dtype=np.float64), columns.scale)
        return [dict(zip(names, row, strict=True)) for row in matrix.tolist()]
    out = []
    for row in values:
        out.append(
            {
                name: (float(canonical(np.float64(v), scale)) if numeric and v is not None else v)
                for name, v, numeric, scale in zip(names, row, columns.numeric, columns.scale, strict=True)
            }
        )
    return out
