"""Labelled rows gathered from production: the contract between monitoring and retraining.

The monitor stores ground truth sent to POST /feedback and joins it with the
captured features of the same request; retraining reads the result through
`LabelledRowSource` and appends it to the base training data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class LabelledRow(BaseModel):
    """One served row whose true label (or value) arrived later."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    row: int
    key: str | None = None
    caller: str | None = None
    time: datetime
    features: dict[str, float | int | str | bool | None]
    label: str | float
    source: str | None = Field(None, description="The feedback object its label was read from.")


class LabelSources(BaseModel):
    """Which stored label objects one retrain run trained on, and how many rows each caller gave it.

    Kept with the run (layout.run_labels_key), so that when one caller's labels are purged, the runs,
    and through their gate decisions the models, that learned from them can be found.
    """

    model_config = ConfigDict(frozen=True)

    objects: tuple[str, ...]
    rows_by_caller: dict[str, int]

    @classmethod
    def of(cls, rows: Sequence[LabelledRow]) -> LabelSources:
        callers = Counter(row.caller or "unknown" for row in rows)
        return cls(objects=tuple(sorted({row.source for row in rows if row.source})), rows_by_caller=dict(callers))


class LabelledRowSource(Protocol):
    """Where retraining finds the labelled rows gathered since a point in time, in served order
    (time, request id, row), so that the same rows always make the same table."""

    def labelled_rows(self, since: datetime | None = None) -> list[LabelledRow]: ...


class LabelCaps(BaseModel):
    """How much of a run's training data labels from production may be (`retrain.label_caps` in the settings).

    Counted against the rows of the user's own data in the run's table: labels never outnumber it, and no one
    caller's labels (one API key, one IAM principal; the label files count as one caller) make more than half
    of it. Over a cap, the newest labelled rows are kept.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    labelled_max_ratio: float = Field(1.0, ge=0, description="Labelled rows per row of the user's own data, at most.")
    caller_max_ratio: float = Field(0.5, ge=0, description="One caller's labelled rows per own row, at most.")


def cap_labelled(rows: Sequence[LabelledRow], *, table_rows: int, caps: LabelCaps) -> tuple[list[LabelledRow], int]:
    """The rows within the caps (each caller's newest, then the newest overall), in served order; how many were cut.

    `rows` come in served order (LabelledRowSource), so the newest are last.
    """
    per_caller = math.floor(caps.caller_max_ratio * table_rows)
    overall = math.floor(caps.labelled_max_ratio * table_rows)
    by_caller: dict[str | None, list[int]] = {}
    for index, row in enumerate(rows):
        by_caller.setdefault(row.caller, []).append(index)
    newest = [indices[max(0, len(indices) - per_caller) :] if per_caller else [] for indices in by_caller.values()]
    kept = sorted(index for indices in newest for index in indices)
    kept = kept[max(0, len(kept) - overall) :] if overall else []
    return [rows[index] for index in kept], len(rows) - len(kept)
