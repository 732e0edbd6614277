"""The retrain functions' configuration, read from the environment once per cold start."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import Field, field_validator

from functions.core.config import FunctionConfig
from functions.core.data_source import DataSource
from functions.core.gate import GatePolicy
from functions.core.labelled import LabelCaps


class RetrainConfig(FunctionConfig):
    """Environment of the retrain step functions, the drift trigger and the rollback watcher."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    code_revision: str | None = Field(None, alias="CODE_REVISION")
    gate_policy: GatePolicy = Field(GatePolicy(), alias="GATE_POLICY", description="JSON: retrain.gate.")
    state_machine_arn: str | None = Field(None, alias="STATE_MACHINE_ARN")
    # The stage always sets these (stage.environments): their defaults live in the stage settings alone.
    recipe: str = Field(alias="RECIPE", min_length=1, description="The recipe module: the stage's `recipe`.")
    cooldown_minutes: int = Field(alias="COOLDOWN_MINUTES", ge=0)
    rollback_window_minutes: int = Field(alias="ROLLBACK_WINDOW_MINUTES", ge=0)
    notify_topic_arn: str | None = Field(None, alias="NOTIFY_TOPIC_ARN")
    data_source: DataSource = Field(DataSource(), alias="DATA_SOURCE", description="JSON: the stage's `data`.")
    label_caps: LabelCaps = Field(LabelCaps(), alias="LABEL_CAPS", description="JSON: retrain.label_caps.")

    @field_validator("data_source", "label_caps", "gate_policy", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value


@cache
def config() -> RetrainConfig:
    """The configuration, read once per process."""
    return RetrainConfig.from_environ()
