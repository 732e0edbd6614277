"""Events the components exchange on EventBridge (the default bus of the stage's account)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

DRIFT_DETECTED = "DriftDetected"


def event_source(project: str, stage: str) -> str:
    """The `source` of every event a stage's functions put, e.g. 'slipway.dev'."""
    return f"{project}.{stage}"


class EstimatedQualityDrop(BaseModel):
    """The live model's quality, estimated without labels, below the stage's alarm threshold."""

    model_config = ConfigDict(frozen=True)

    metric: str
    value: float
    threshold: float


class DriftDetectedDetail(BaseModel):
    """Detail of a DriftDetected event: the monitor found drift in a capture window, or the live model's quality
    estimated from it fell below the stage's threshold (then `drifted_features` names "estimated_quality")."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    window_start: datetime
    window_end: datetime
    rows: int = Field(ge=0)
    drift_share: float = Field(ge=0, le=1, description="Share of features whose drift verdict is true.")
    drifted_features: list[str]
    report_key: str = Field(description="S3 key of the JSON drift report of this window.")
    estimated_quality: EstimatedQualityDrop | None = Field(
        None, description="Set when the estimated quality fell below monitor.estimated_quality_alarm_below."
    )
