"""The capture record: one served row as the monitor reads it back from S3.

The inference handler writes one JSON line per captured row on stdout (no
network call on the request path); CloudWatch Logs ships the lines through
Firehose to hourly partitions under `capture/YYYY/MM/DD/HH/`. The local stack
lands the same lines in the same layout.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.core.layout import CAPTURE_PREFIX

# Marks a stdout line as a capture record; the CloudWatch Logs subscription filter matches on it.
CAPTURE_MARKER = "slipway_capture"
CAPTURE_SCHEMA = 1
# The filter pattern of the subscription that ships capture lines (and nothing else) to Firehose.
CAPTURE_FILTER_PATTERN = f"{{ $.{CAPTURE_MARKER} = {CAPTURE_SCHEMA} }}"

FeatureValue = float | int | str | bool | None


class CaptureRecord(BaseModel):
    """One captured row: canonical features (None when missing), the answer and its flags."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    schema_: int = Field(CAPTURE_SCHEMA, alias=CAPTURE_MARKER, description="Capture format version.")
    request_id: str
    row: int = Field(ge=0, description="Index of the row in its request.")
    time: datetime
    model_version: str | None
    features: dict[str, FeatureValue]
    label: str | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None
    imputed: list[str] = Field(default_factory=list)
    out_of_range: list[str] = Field(default_factory=list)
    fallback: str | None = None


def capture_key(hour: datetime, name: str) -> str:
    """Key of a capture object of `hour` (UTC), in the Firehose layout capture/YYYY/MM/DD/HH/name."""
    return f"{CAPTURE_PREFIX}{hour:%Y/%m/%d/%H}/{name}"


def record_dict(**fields: Any) -> dict[str, Any]:
    """A capture record as the dict written on stdout (the fields of CaptureRecord, by alias)."""
    return {CAPTURE_MARKER: CAPTURE_SCHEMA, **fields}
