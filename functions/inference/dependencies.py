"""What every route module of the inference function is given: one object, built once per cold start."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Metrics

from functions.adapters import factory
from functions.core.feedback import FeedbackStore
from functions.core.jobs import JobQueue, JobStore
from functions.inference.config import InferenceConfig
from functions.inference.live_model import LiveModel
from functions.inference.schemas import PredictRequest


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class RouteDependencies:
    """The live model, metrics, the deployment's /predict body model and the stores the routes use."""

    metrics: Metrics
    live_model: LiveModel
    request_model: type[PredictRequest]
    jobs: JobStore
    queue: JobQueue | None  # None: /predict/async answers 503
    feedback: FeedbackStore
    clock: Callable[[], datetime] = _now


def route_dependencies(
    config: InferenceConfig, *, metrics: Metrics, live_model: LiveModel, request_model: type[PredictRequest]
) -> RouteDependencies:
    """The routes' dependencies, with the stores named by the function's configuration."""
    return RouteDependencies(
        metrics=metrics,
        live_model=live_model,
        request_model=request_model,
        jobs=factory.job_store(config.artifacts_bucket),
        queue=factory.job_queue(config.requests_queue_url) if config.requests_queue_url else None,
        feedback=factory.monitoring_store(config.artifacts_bucket),
    )
