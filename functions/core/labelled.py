"""Labelled rows gathered from production: the contract between monitoring and retraining.

The monitor stores ground truth sent to POST /feedback and joins it with the
captured features of the same request; retraining reads the result through
`LabelledRowSource` and appends it to the base training data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict


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


class LabelledRowSource(Protocol):
    """Where retraining finds the labelled rows gathered since a point in time, in served order
    (time, request id, row), so that the same rows always make the same table."""

    def labelled_rows(self, since: datetime | None = None) -> list[LabelledRow]: ...
