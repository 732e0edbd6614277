"""The configuration of the inference package's functions, read from the environment once per cold start."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from functions.core.config import FunctionConfig

# The front doors a stage may choose (its api.type): the one list of them.
FrontDoorType = Literal["rest", "http", "function_url"]


class InferenceConfig(FunctionConfig):
    """Environment of the inference function (its routes included); a bad value fails the cold start at once."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    # The stage always sets these (stage.environments): their defaults live in the stage settings alone.
    pointer_refresh_seconds: float = Field(alias="POINTER_REFRESH_SECONDS", gt=0)
    front_door: FrontDoorType = Field(
        alias="FRONT_DOOR", description="The stage's api.type: which event shape the function receives."
    )
    max_instances: int = Field(alias="MAX_INSTANCES", ge=1)
    max_body_bytes: int = Field(alias="MAX_BODY_BYTES", ge=1)
    capture_sampling_rate: float = Field(alias="CAPTURE_SAMPLING_RATE", ge=0, le=1)
    row_key: str | None = Field(
        None, alias="ROW_KEY", min_length=1, description="The stage's data.key: a row field captured, never scored."
    )
    model_name: str | None = Field(
        None, alias="MODEL_NAME", description="The stage's inference.model_name; unset: the recipe's last part."
    )
    requests_queue_url: str | None = Field(
        None, alias="REQUESTS_QUEUE_URL", description="Where /predict/async queues jobs; unset: it answers 503."
    )


class WorkerConfig(FunctionConfig):
    """Environment of the async worker, the dead-letter fallback and the batch functions."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    pointer_refresh_seconds: float = Field(alias="POINTER_REFRESH_SECONDS", gt=0)
