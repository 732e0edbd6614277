"""The training data set's file format: JSON Lines, one row per line, `{"features": {...}, "target": ...}`.

The base data set lives at `layout.BASE_DATA_KEY`; each retrain run writes the
table it trained on (base + labelled feedback) beside its decision, so a run
can be repeated exactly. Column order is the order of the first row's keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.core.labelled import LabelledRow
from functions.training.train import data_hash


class DataSetError(ValueError):
    """The training data set is empty or malformed; the message names the line."""


@dataclass(frozen=True)
class TrainingTable:
    """Named feature columns and the target, in row order."""

    columns: dict[str, np.ndarray]
    target: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.target)

    @property
    def hash(self) -> str:
        return data_hash(self.columns, self.target)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[dict[str, Any], Any]]) -> TrainingTable:
        rows = list(rows)
        if not rows:
            raise DataSetError("the training data set has no rows")
        names = list(rows[0][0])
        columns = {name: np.asarray([features.get(name) for features, _ in rows]) for name in names}
        return cls(columns, np.asarray([target for _, target in rows]))

    def iter_rows(self) -> Iterable[tuple[dict[str, Any], Any]]:
        names = list(self.columns)
        for i in range(self.rows):
            yield {name: _plain(self.columns[name][i]) for name in names}, _plain(self.target[i])

    def to_jsonl(self) -> bytes:
        """Canonical bytes: the same table always serialises identically."""
        lines = (json.dumps({"features": f, "target": t}, separators=(",", ":")) for f, t in self.iter_rows())
        return ("\n".join(lines) + "\n").encode()

    @classmethod
    def from_jsonl(cls, raw: bytes) -> TrainingTable:
        rows: list[tuple[dict[str, Any], Any]] = []
        for number, line in enumerate(raw.decode().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append((dict(record["features"]), record["target"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise DataSetError(
                    f"line {number} of the data set is not {{'features': {{...}}, 'target': ...}}: {exc}"
                ) from exc
        return cls.from_rows(rows)

    def with_labelled(self, labelled: list[LabelledRow]) -> TrainingTable:
        """This table with `labelled` appended (in request order); missing features stay missing (imputed)."""
        ordered = sorted(labelled, key=lambda r: (r.time, r.request_id, r.row))
        names = list(self.columns)
        extra = [({name: row.features.get(name) for name in names}, row.label) for row in ordered]
        return TrainingTable.from_rows([*self.iter_rows(), *extra])


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
