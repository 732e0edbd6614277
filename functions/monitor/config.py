"""The monitor function's configuration, read from the environment once per cold start."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from functions.core.config import FunctionConfig
from functions.core.drift import DriftPolicy
from functions.core.segments import SegmentPolicy


class MonitorConfig(FunctionConfig):
    """Environment of the monitor function; a bad value fails the cold start at once."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    # The stage always sets these (stage.environments): their defaults live in the stage settings alone.
    window_hours: int = Field(alias="WINDOW_HOURS", ge=1, le=168)
    quality_window_hours: int = Field(alias="QUALITY_WINDOW_HOURS", ge=1, le=2160)
    drift_policy: DriftPolicy = Field(alias="DRIFT_POLICY", description="JSON in the environment.")
    segment_policy: SegmentPolicy = Field(SegmentPolicy(), alias="SEGMENT_POLICY", description="JSON, as drift_policy.")
    estimated_quality_alarm_below: float | None = Field(
        None, alias="ESTIMATED_QUALITY_ALARM_BELOW", description="A retrain reason below it; None: off."
    )
    labels_uri: str | None = Field(
        None, alias="LABELS_URI", description="The stage's data.labels: label files taken into feedback each cycle."
    )
    event_source: str = Field(alias="EVENT_SOURCE", min_length=1)
    event_bus: str = Field("default", alias="EVENT_BUS_NAME")
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    service: str = Field(alias="POWERTOOLS_SERVICE_NAME", min_length=1)

    @field_validator("drift_policy", "segment_policy", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value
