"""The monitor function's configuration, read from the environment once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, Json

from functions.core.drift import DriftPolicy


class MonitorConfig(BaseModel):
    """Environment of the monitor function; a bad value fails the cold start at once."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    window_hours: int = Field(1, alias="WINDOW_HOURS", ge=1, le=168)
    quality_window_hours: int = Field(168, alias="QUALITY_WINDOW_HOURS", ge=1, le=2160)
    drift_policy: Json[DriftPolicy] = Field(alias="DRIFT_POLICY")
    event_source: str = Field(alias="EVENT_SOURCE", min_length=1)
    event_bus: str = Field("default", alias="EVENT_BUS_NAME")
    metrics_namespace: str = Field(alias="POWERTOOLS_METRICS_NAMESPACE", min_length=1)
    service: str = Field(alias="POWERTOOLS_SERVICE_NAME", min_length=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> MonitorConfig:
        return cls.model_validate({key: value for key, value in environ.items() if key in _ENV_NAMES})


_ENV_NAMES = {field.alias for field in MonitorConfig.model_fields.values()}
