"""The monitor function's configuration, read from the environment once per cold start."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.core.config import FunctionConfig
from functions.core.drift import DriftPolicy
from functions.core.segments import SegmentPolicy


class MonitorPolicy(BaseModel):
    """How the monitor judges a window: the part of the stage's `monitor` settings its function reads.

    The stage's settings section extends this model (stage.settings.MonitorSettings), so the
    function receives its section whole, and these defaults are the settings' defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_hours: int = Field(1, ge=1, le=168, description="Hours of capture each run judges.")
    quality_window_hours: int = Field(168, ge=1, le=2160, description="Hours of feedback the live metric covers.")
    drift: DriftPolicy = DriftPolicy()
    segments: SegmentPolicy = SegmentPolicy()
    estimated_quality_alarm_below: float | None = Field(
        None,
        description="Alarm, and start a retrain, when the gate metric estimated without labels falls below this "
        "(classification, a metric where higher is better; None: off).",
    )


class MonitorConfig(FunctionConfig):
    """Environment of the monitor function; a bad value fails the cold start at once."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    # The stage always sets it (stage.environments): its defaults are the stage settings'.
    policy: MonitorPolicy = Field(alias="MONITOR_POLICY", description="JSON in the environment: the monitor section.")
    labels_uri: str | None = Field(
        None, alias="LABELS_URI", description="The stage's data.labels: label files taken into feedback each cycle."
    )
    event_source: str = Field(alias="EVENT_SOURCE", min_length=1)
    event_bus: str = Field("default", alias="EVENT_BUS_NAME")
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    service: str = Field(alias="POWERTOOLS_SERVICE_NAME", min_length=1)

    @field_validator("policy", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value
