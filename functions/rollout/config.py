"""The rollout functions' configuration, read from the environment once per cold start."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from functions.core.config import FunctionConfig
from functions.core.drift import DriftPolicy
from functions.core.rollout import RolloutPolicy


class RolloutConfig(FunctionConfig):
    """Environment of the rollout's step functions and of what starts a rollout; a bad value fails the cold start."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    policy: RolloutPolicy = Field(RolloutPolicy(), alias="ROLLOUT_POLICY", description="JSON in the environment.")
    drift_policy: DriftPolicy = Field(DriftPolicy(), alias="DRIFT_POLICY", description="JSON in the environment.")
    alarm_names: list[str] = Field(
        default_factory=list, alias="ROLLOUT_ALARMS", description="JSON list: alarms that refuse a phase."
    )
    # What starts a rollout (the retrain pipeline's step, `slipway rollout`).
    state_machine_arn: str | None = Field(None, alias="ROLLOUT_STATE_MACHINE_ARN")
    bake_seconds: int = Field(alias="BAKE_SECONDS", ge=1, le=86400, description="The stage's rollout.bake_minutes.")
    settle_seconds: int = Field(
        0, alias="SETTLE_SECONDS", ge=0, le=3600, description="Capture's delivery delay: judged after it."
    )

    @field_validator("policy", "drift_policy", "alarm_names", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value
