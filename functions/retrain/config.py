"""The retrain functions' configuration, read from the environment once per cold start."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from functions.core.config import FunctionConfig
from functions.core.data_source import DataSource
from functions.core.gate import GatePolicy
from functions.core.labelled import LabelCaps


class RetrainPolicy(BaseModel):
    """What the retrain functions read of the stage's `retrain` settings.

    The stage's settings section extends this model (stage.settings.RetrainSettings), so the
    functions receive their section whole, and these defaults are the settings' defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cooldown_minutes: int = Field(
        360, ge=0, le=10080, description="A drift event within this of the last start is ignored."
    )
    gate: GatePolicy = Field(GatePolicy(), description="When a candidate may replace the live model.")
    rollback_window_minutes: int = Field(
        60, ge=0, le=1440, description="An alarm this soon after a promotion rolls back."
    )
    label_caps: LabelCaps = Field(
        LabelCaps(),
        description="How much of a run's training data labels from production may be, overall and per caller.",
    )


class RetrainConfig(FunctionConfig):
    """Environment of the retrain step functions, the drift trigger and the rollback watcher."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    code_revision: str | None = Field(None, alias="CODE_REVISION")
    state_machine_arn: str | None = Field(None, alias="STATE_MACHINE_ARN")
    # The stage always sets these (stage.environments): their defaults live in the stage settings alone.
    recipe: str = Field(alias="RECIPE", min_length=1, description="The recipe module: the stage's `recipe`.")
    policy: RetrainPolicy = Field(alias="RETRAIN_POLICY", description="JSON in the environment: the retrain section.")
    notify_topic_arn: str | None = Field(None, alias="NOTIFY_TOPIC_ARN")
    data_source: DataSource = Field(DataSource(), alias="DATA_SOURCE", description="JSON: the stage's `data`.")

    @field_validator("data_source", "policy", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value


@cache
def config() -> RetrainConfig:
    """The configuration, read once per process."""
    return RetrainConfig.from_environ()
