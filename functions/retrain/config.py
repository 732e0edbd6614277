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
    recipe: str = Field("model.recipe", alias="RECIPE")
    code_revision: str | None = Field(None, alias="CODE_REVISION")
    gate_tolerance: float = Field(0.01, alias="GATE_TOLERANCE", ge=0)
    gate_floor: float | None = Field(None, alias="GATE_FLOOR")
    allow_incompatible_spec: bool = Field(False, alias="ALLOW_INCOMPATIBLE_SPEC")
    gate_max_gap_increase: float | None = Field(None, alias="GATE_MAX_GAP_INCREASE", ge=0)
    state_machine_arn: str | None = Field(None, alias="STATE_MACHINE_ARN")
    cooldown_minutes: int = Field(360, alias="COOLDOWN_MINUTES", ge=0)
    rollback_window_minutes: int = Field(60, alias="ROLLBACK_WINDOW_MINUTES", ge=0)
    notify_topic_arn: str | None = Field(None, alias="NOTIFY_TOPIC_ARN")
    data_source: DataSource = Field(DataSource(), alias="DATA_SOURCE", description="JSON: the stage's `data`.")
    label_caps: LabelCaps = Field(LabelCaps(), alias="LABEL_CAPS", description="JSON: retrain.label_caps.")

    @field_validator("data_source", "label_caps", mode="before")
    @classmethod
    def _parse_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    @property
    def gate_policy(self) -> GatePolicy:
        return GatePolicy(
            tolerance=self.gate_tolerance,
            floor=self.gate_floor,
            allow_incompatible_spec=self.allow_incompatible_spec,
            max_gap_increase=self.gate_max_gap_increase,
        )


@cache
def config() -> RetrainConfig:
    """The configuration, read once per process."""
    return RetrainConfig.from_environ()
