"""The inference function's configuration, read from the environment once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class InferenceConfig(BaseModel):
    """Environment of the inference function; a bad value fails the cold start at once."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    pointer_refresh_seconds: float = Field(30, alias="POINTER_REFRESH_SECONDS", gt=0)
    max_instances: int = Field(1000, alias="MAX_INSTANCES", ge=1)
    max_body_bytes: int = Field(1_048_576, alias="MAX_BODY_BYTES", ge=1)
    capture_sampling_rate: float = Field(1.0, alias="CAPTURE_SAMPLING_RATE", ge=0, le=1)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> InferenceConfig:
        return cls.model_validate({key: value for key, value in environ.items() if key in _ENV_NAMES})


_ENV_NAMES = {field.alias for field in InferenceConfig.model_fields.values()}


class WorkerConfig(BaseModel):
    """Environment of the async worker, the dead-letter fallback and the batch functions."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    live_pointer_parameter: str = Field(alias="LIVE_POINTER_PARAMETER", pattern=r"^/")
    pointer_refresh_seconds: float = Field(30, alias="POINTER_REFRESH_SECONDS", gt=0)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> WorkerConfig:
        names = {field.alias for field in cls.model_fields.values()}
        return cls.model_validate({key: value for key, value in environ.items() if key in names})


class AsyncConfig(BaseModel):
    """The async routes' part of the inference function's environment; without a queue URL they answer 503."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET", min_length=3)
    requests_queue_url: str | None = Field(None, alias="REQUESTS_QUEUE_URL")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> AsyncConfig:
        names = {field.alias for field in cls.model_fields.values()}
        return cls.model_validate({key: value for key, value in environ.items() if key in names})
